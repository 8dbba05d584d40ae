"""User tools that inspect inits and dashboards: `python -m tools.<name> --help`."""
