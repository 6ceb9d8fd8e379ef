"""User interfaces: command line, plots, report."""
