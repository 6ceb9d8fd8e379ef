"""The hull-stable entries of a table, for the LPs of a screen's reactions (screening.thermo.stable_set).

Computed once per table (about 40 s for the embedded data on one core) and kept in the cache folder
beside the columnar entry cache, keyed by a sha256 over the table's arrays (data file, user entries
and exclusions all change it) with a sha256 of the stored mask beside it; a copy that fails either
check, or whose size or elements disagree with the table, is recomputed, never used.
"""

from __future__ import annotations

import io

import numpy as np

from screening.data.snapshot import arrays_digest, atomic_write_bytes, cache_dir
from screening.data.table import EntryTable
from screening.thermo.stable_set import STABLE_TOL, hull_stable_mask

PRUNE_FORMAT = 1  # bump when hull_stable_mask or its tolerance changes
_MEMO: dict[str, EntryTable] = {}


def table_key(table: EntryTable) -> str:
    """sha256 over the table's arrays (names, compositions, energies, flags)."""
    return arrays_digest(table.to_arrays())


def stable_table(table: EntryTable, use_cache: bool = True) -> EntryTable:
    """The table of `table`'s hull-stable rows (same order and source)."""
    key = table_key(table)
    if key in _MEMO:
        return _MEMO[key]
    mask = _read(key, len(table), table) if use_cache else None
    if mask is None:
        mask = hull_stable_mask(table)
        if use_cache:
            _write(key, mask)
    pruned = table.subset(mask)
    if len(_MEMO) > 4:  # one screen uses one table; bound the memory of long-lived workers
        _MEMO.clear()
    _MEMO[key] = pruned
    return pruned


def _path(key: str):
    return cache_dir() / f"stable-{key[:32]}-v{PRUNE_FORMAT}.npz"


def _read(key: str, n_rows: int, table: EntryTable) -> np.ndarray | None:
    path = _path(key)
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        mask = arrays["stable"]
        if (str(arrays["key"]) != key or int(arrays["format"]) != PRUNE_FORMAT
                or float(arrays["tolerance"]) != STABLE_TOL or str(arrays["digest"]) != arrays_digest(arrays)
                or mask.dtype != np.bool_ or mask.shape != (n_rows,)):
            return None
        # every element keeps its reference entry, or a system could not be built from the rest
        if not mask[np.diff(table.indptr) == 1].all():
            return None
        return mask
    except Exception:
        return None


def _write(key: str, mask: np.ndarray) -> None:
    arrays = {"key": np.array(key), "format": np.array(PRUNE_FORMAT), "tolerance": np.array(STABLE_TOL),
              "stable": np.asarray(mask, dtype=bool)}
    arrays["digest"] = np.array(arrays_digest(arrays))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        atomic_write_bytes(_path(key), buffer.getvalue())
    except OSError:
        pass  # an unwritable cache folder only costs time
