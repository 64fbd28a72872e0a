"""Evaluation datasets, metrics, baselines and benchmarks."""
