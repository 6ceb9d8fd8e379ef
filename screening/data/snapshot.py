"""Loading entry data: the embedded MP snapshot (CSV), users' entry JSON, and the on-disk cache.

The first load of a file parses it and stores a columnar copy (numpy .npz) in the cache folder,
keyed by the file's sha256; later loads read that copy. Nothing is ever written next to the data.
"""

from __future__ import annotations

import csv
import gzip
import hashlib
import io
import json
import math
import os
import re
import tempfile
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Element

from screening.data.table import DataSource, EntryTable
from screening.errors import DataError

CACHE_FORMAT = 2  # bump when the cached arrays or the parser change
ENV_ENTRIES = "SCREENING_ENTRIES"
ENV_CACHE = "SCREENING_CACHE_DIR"
SNAPSHOT_NAME = "mp_e_form_2019.csv.gz"
SNAPSHOT_DESCRIPTION = ("Materials Project GGA/GGA+U formation energies (legacy corrections), "
                        "retrieved 2019-04-02 (Matbench mp_e_form)")
_TOKEN = re.compile(r"([A-Z][a-z]?)(\d+(?:\.\d+)?)")
_ELEMENTS = frozenset(el.symbol for el in Element)


def default_entries_path() -> Path:
    """The data file to use: $SCREENING_ENTRIES, else ../shared/data beside the repository."""
    env = os.environ.get(ENV_ENTRIES)
    if env:
        return Path(env).expanduser()
    repo_root = Path(__file__).resolve().parents[2]
    candidates = [repo_root.parent / "shared" / "data" / SNAPSHOT_NAME,
                  Path.cwd().parent / "shared" / "data" / SNAPSHOT_NAME,
                  Path.cwd() / ".." / ".." / "shared" / "data" / SNAPSHOT_NAME]
    for path in candidates:
        if path.is_file():
            return path
    return candidates[0]


def cache_dir() -> Path:
    """Cache folder: $SCREENING_CACHE_DIR, else $XDG_CACHE_HOME/screening, else ~/.cache/screening."""
    env = os.environ.get(ENV_CACHE)
    if env:
        return Path(env).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "screening"


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


# Read once at import (reading the umask means setting it, which is not thread-safe later).
_UMASK = os.umask(0o022)
os.umask(_UMASK)


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write payload to path so that readers see the old file or the whole new one, never a part."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp files are private; results get the usual mode
        with os.fdopen(fd, "wb") as handle:
            handle.write(payload)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        try:
            os.unlink(tmp)
        except FileNotFoundError:
            pass
        raise


def load_entries(path: str | os.PathLike | None = None, use_cache: bool = True) -> EntryTable:
    """Load an entry table from a snapshot CSV(.gz) or a JSON list of pymatgen entries.

    Raises DataError naming the path for a missing, unreadable or corrupt file.
    """
    path = Path(path).expanduser() if path is not None else default_entries_path()
    if not path.exists():
        raise DataError(f"data file not found: {path} (set --entries or ${ENV_ENTRIES})")
    if not path.is_file():
        raise DataError(f"data path is not a file: {path}")
    try:
        sha = file_sha256(path)
    except OSError as exc:
        raise DataError(f"cannot read data file {path}: {exc.strerror or exc}") from exc
    kind = "entries-json" if path.name.endswith((".json", ".json.gz")) else "snapshot-csv"
    description = SNAPSHOT_DESCRIPTION if path.name == SNAPSHOT_NAME else ""
    source = DataSource(kind=kind, path=str(path.resolve()), sha256=sha, description=description)
    cache_file = cache_dir() / f"entries-{sha[:32]}-v{CACHE_FORMAT}.npz"
    if use_cache:
        table = _read_cache(cache_file, source)
        if table is not None:
            return table
    table = _parse_json(path, source) if kind == "entries-json" else _parse_csv(path, source)
    if use_cache:
        _write_cache(cache_file, table)
    return table


def _read_cache(cache_file: Path, source: DataSource) -> EntryTable | None:
    """The cached table, or None if absent or unreadable (a bad cache is rebuilt, never trusted)."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as arrays:
            if str(arrays["sha256"]) != source.sha256 or int(arrays["format"]) != CACHE_FORMAT:
                return None
            names, indptr, indices = arrays["names"], arrays["indptr"], arrays["indices"]
            n, elements = len(names), arrays["elements"].tolist()
            consistent = (indptr.ndim == 1 and len(indptr) == n + 1 and indptr[0] == 0
                          and np.all(np.diff(indptr) >= 1) and len(indices) == indptr[-1]
                          and len(arrays["amounts"]) == indptr[-1]
                          and all(len(arrays[k]) == n for k in ("energies", "n_polymorphs", "user_supplied"))
                          and (len(indices) == 0 or (indices.min() >= 0 and indices.max() < len(elements)))
                          and np.all(np.isfinite(arrays["energies"])) and np.all(arrays["amounts"] > 0))
            if not consistent:
                return None
            return EntryTable(elements, names, indptr, indices, arrays["amounts"], arrays["energies"],
                              arrays["n_polymorphs"], source, arrays["user_supplied"])
    except Exception:
        return None


def _write_cache(cache_file: Path, table: EntryTable) -> None:
    buffer = io.BytesIO()
    np.savez(buffer, sha256=np.array(table.source.sha256), format=np.array(CACHE_FORMAT),
             **table.to_arrays())
    try:
        atomic_write_bytes(cache_file, buffer.getvalue())
    except OSError:
        pass  # an unwritable cache folder only costs speed


def _open_text(path: Path):
    if path.name.endswith(".gz"):
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8")
    return open(path, encoding="utf-8")


def _parse_csv(path: Path, source: DataSource) -> EntryTable:
    rows: list[tuple[Composition, float]] = []
    cache: dict[str, Composition] = {}
    try:
        with _open_text(path) as handle:
            reader = csv.reader(handle)
            header = next(reader, None)
            if header is None or [h.strip() for h in header[:2]] != ["formula", "target"]:
                raise DataError(f"corrupt data file {path}: expected a header 'formula,target'")
            for lineno, record in enumerate(reader, start=2):
                if len(record) < 2:
                    raise DataError(f"corrupt data file {path}: line {lineno} has too few fields")
                formula, target = record[0].strip(), record[1].strip()
                comp = cache.get(formula)
                if comp is None:
                    comp = _parse_data_formula(formula, path, lineno)
                    cache[formula] = comp
                try:
                    energy = float(target)
                except ValueError:
                    raise DataError(f"corrupt data file {path}: line {lineno} energy {target!r}") from None
                if not math.isfinite(energy):
                    raise DataError(f"corrupt data file {path}: line {lineno} energy {target!r}")
                rows.append((comp, energy))
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, csv.Error) as exc:
        raise DataError(f"corrupt or unreadable data file {path}: {exc}") from exc
    if not rows:
        raise DataError(f"data file {path} has no entries")
    return EntryTable.from_compositions(rows, source)


def _parse_data_formula(formula: str, path: Path, lineno: int) -> Composition:
    tokens = _TOKEN.findall(formula)
    if (not tokens or "".join(el + num for el, num in tokens) != formula
            or any(el not in _ELEMENTS or float(num) <= 0 for el, num in tokens)):
        raise DataError(f"corrupt data file {path}: line {lineno} formula {formula!r}")
    try:
        return Composition({el: float(num) for el, num in tokens})
    except Exception:
        raise DataError(f"corrupt data file {path}: line {lineno} formula {formula!r}") from None


def _parse_json(path: Path, source: DataSource) -> EntryTable:
    """A JSON list of pymatgen ComputedEntry/PDEntry dicts whose energies are formation energies.

    Energies are taken as total formation energies (eV per cell), as a PDEntry holds them; each
    element present must have a reference entry at 0 eV/atom.
    """
    from monty.json import MontyDecoder

    try:
        with _open_text(path) as handle:
            raw = json.load(handle)
        objects = MontyDecoder().process_decoded(raw)
    except (OSError, EOFError, gzip.BadGzipFile, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"corrupt or unreadable entries file {path}: {exc}") from exc
    except Exception as exc:
        raise DataError(f"entries file {path} holds objects that are not pymatgen entries: {exc}") from exc
    if isinstance(objects, dict) and "entries" in objects:
        objects = objects["entries"]
    if not isinstance(objects, list) or not objects:
        raise DataError(f"entries file {path} must hold a non-empty list of pymatgen entries")
    rows = []
    for k, entry in enumerate(objects):
        if not (hasattr(entry, "composition") and hasattr(entry, "energy_per_atom")):
            raise DataError(f"entries file {path}: item {k} is not a pymatgen entry")
        energy = float(entry.energy_per_atom)
        if not math.isfinite(energy):
            raise DataError(f"entries file {path}: item {k} has a non-finite energy")
        rows.append((entry.composition, energy))
    return EntryTable.from_compositions(rows, source)
