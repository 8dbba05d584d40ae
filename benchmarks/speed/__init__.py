"""Speed measurements: the pipeline against a raw loop, and what a sweep costs per launcher."""
