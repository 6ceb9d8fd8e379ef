"""Execution: running screens in parallel (dask)."""
