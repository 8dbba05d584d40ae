"""A run: built from its config in one place (``build``), trained (``single``, or as a member
of a population), and described by one typed record (``record``: its ``metrics.json``)."""
