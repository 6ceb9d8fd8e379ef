"""Data sources: the embedded snapshot, users' entry files, the on-disk cache."""
