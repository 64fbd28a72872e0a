"""The HTTP service and its web pages."""

import kb  # noqa: F401  (first: it sets the offline and telemetry defaults before any library is imported)
