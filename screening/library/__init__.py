"""Data files shipped with the package (materials library)."""
