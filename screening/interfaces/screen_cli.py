"""Screening commands (filled in by the screening layer)."""


def add_commands(sub, common) -> None:
    """Register the screening subcommands."""
