"""Sources -> documents -> passages: parsers, the structure-aware splitter, the manifest, incremental ingest."""

import kb  # noqa: F401  (first: it sets the offline and telemetry defaults before any library is imported)
