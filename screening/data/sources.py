"""One entry point for the entry table a computation uses: a data file plus users' own entries."""

from __future__ import annotations

from screening.data.snapshot import load_entries
from screening.data.table import EntryTable


def load_table(entries: str | None = None, user_entries: tuple[str, ...] | list[str] = (),
               user_scheme: str | None = None, use_cache: bool = True) -> EntryTable:
    """The data file (default: the embedded snapshot) with the users' entry files merged over it."""
    table = load_entries(entries, use_cache=use_cache)
    if user_entries:
        from screening.data.user_entries import merge_user_entries

        table = merge_user_entries(table, list(user_entries), scheme=user_scheme)
    return table
