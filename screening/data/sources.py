"""One entry point for the entry table a computation uses: a data file plus users' own entries."""

from __future__ import annotations

from screening.data.snapshot import load_entries
from screening.data.table import EntryTable


def load_table(entries: str | None = None, user_entries: tuple[str, ...] | list[str] = (),
               user_scheme: str | None = None, use_cache: bool = True, *, user_mode: str | None = "add",
               exclude_entries: tuple[str, ...] | list[str] = ()) -> EntryTable:
    """The data file (default: the embedded snapshot) with the users' entry files merged over it.

    user_mode: "add" (a user entry is one more polymorph; the lowest sets the hull) or "replace" (it
    replaces the data's entries of its composition). exclude_entries: formulas whose every entry
    (data or user) is left out, recorded in the table's source (screening.data.selection).
    """
    from screening.data.user_entries import check_user_mode

    user_mode = check_user_mode(user_mode)
    table = load_entries(entries, use_cache=use_cache)
    return finish_table(table, user_entries, user_scheme, user_mode, exclude_entries)


def finish_table(table: EntryTable, user_entries=(), user_scheme: str | None = None,
                 user_mode: str | None = "add", exclude_entries=()) -> EntryTable:
    """`table` (from any source) with the user entries merged in and the excluded formulas left out."""
    if user_entries:
        from screening.data.user_entries import merge_user_entries

        table = merge_user_entries(table, list(user_entries), scheme=user_scheme, mode=user_mode)
    if exclude_entries:
        from screening.data.selection import exclude_entries as exclude

        table = exclude(table, exclude_entries)
    return table


def selection_of(source: dict) -> dict:
    """{"user_mode", "exclude_entries"} recorded in a table's source (DataSource.as_dict(), e.g. from
    a run's provenance), to load the same table again: load_table(path, files, scheme, **selection)."""
    from screening.errors import DataError

    if not isinstance(source, dict):
        raise DataError("the recorded data source is not a mapping")
    mode = source.get("user_mode") or "add"
    excluded = source.get("excluded_entries") or []
    if not isinstance(excluded, list) or not all(isinstance(r, dict) and isinstance(r.get("formula"), str)
                                                 for r in excluded):
        raise DataError("the recorded data source has malformed excluded_entries")
    return {"user_mode": mode, "exclude_entries": tuple(r["formula"] for r in excluded)}
