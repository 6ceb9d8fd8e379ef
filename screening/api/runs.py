"""Reading a finished run folder: results/<run>/rankings.parquet and provenance.json."""

from __future__ import annotations

from pathlib import Path

from screening.errors import InputError


def load_run(path):
    """(rankings DataFrame, provenance dict) of a run folder written by `screening screen`.

    Both files are read with the report's bounds and checks (sizes, rows, columns, keys and types);
    a missing file is InputError, a damaged one DataError, each one line.
    """
    from screening.interfaces.report import (MAX_PROVENANCE_BYTES, check_provenance, read_rankings)
    from screening.safe_io import loads_json, read_text

    if not isinstance(path, (str, Path)) or not str(path).strip():
        raise InputError("a run folder is a path, e.g. results/default")
    folder = Path(path).expanduser()
    if not folder.is_dir():
        raise InputError(f"not a run folder: {folder} is not a directory")
    for name in ("rankings.parquet", "provenance.json"):
        if not (folder / name).is_file():
            raise InputError(f"not a finished run folder: {folder / name} is missing")
    text = read_text(folder / "provenance.json", "provenance", limit=MAX_PROVENANCE_BYTES)
    provenance = loads_json(text, f"provenance {folder / 'provenance.json'}")
    check_provenance(provenance)
    frame = read_rankings(folder / "rankings.parquet", [s["name"] for s in provenance["stacks"]])
    return frame, provenance
