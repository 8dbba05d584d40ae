"""Hydra sweeper plugin ``hydra/sweeper=initbench``: Hydra's basic sweeper, with every job's
config composed and checked before the first job runs."""
