"""Errors that reach the user as one clear line (exit status 2), never a traceback."""


class ScreeningError(Exception):
    """A problem with the user's input or data, reported as one line."""

    exit_code = 2


class InputError(ScreeningError):
    """Bad user input: a formula, an option value, a configuration."""


class DataError(ScreeningError):
    """Missing, corrupt or unusable entry data."""
