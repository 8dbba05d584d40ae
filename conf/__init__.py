"""Hydra's config groups, a package so that ``pip install .`` puts them next to ``train.py``."""
