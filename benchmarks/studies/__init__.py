"""Paper and classic studies of initialization, each a claim, its source and a measurement."""
