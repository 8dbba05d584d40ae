"""Experiments only, by group: `python -m benchmarks.<studies|speed|harness>.<name> --help`."""
