"""A sweep: its runs loaded from their records and compared once (report, tests, plots,
TensorBoard)."""
