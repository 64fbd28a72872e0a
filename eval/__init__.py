"""Evaluation datasets, metrics, baselines and benchmarks."""

import kb  # noqa: F401  (first: it sets the offline and telemetry defaults before any library is imported)
