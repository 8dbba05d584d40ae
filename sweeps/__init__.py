"""A sweep: its runs loaded from their records, compared once (report, tests, plots, TensorBoard)."""
