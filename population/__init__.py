"""Population training: the runs of a sweep that share an architecture, trained together as one
stacked model in one process (``hydra/launcher=population``)."""
