"""Defaults of the energy error model and its propagation (no imports: the command line's parser uses them)."""

DEFAULT_INDEPENDENT_ERROR = 0.024  # eV/atom per composition: Hautier et al., PRB 85, 155208 (2012)
CORRECTION_SCHEMES = ("mp2020", "none")  # shared errors of the fitted corrections, or none
METHODS = ("first-order", "monte-carlo")
DEFAULT_DRAWS = 200
MAX_DRAWS = 10_000
