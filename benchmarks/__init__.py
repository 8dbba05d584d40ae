"""Runnable experiments and measurements: `python -m benchmarks.<name> --help`."""
