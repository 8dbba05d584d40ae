"""What runs the studies and writes their pages: seeded runs, tables and figures, run_all."""
