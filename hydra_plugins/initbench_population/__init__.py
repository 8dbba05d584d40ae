"""Hydra launcher plugin ``hydra/launcher=population``: a sweep's runs that share a model
architecture train together, as one stacked model in one process (``population/``)."""
