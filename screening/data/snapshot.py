"""Loading entry data: the embedded MP snapshot (CSV), users' entry JSON, and the on-disk cache.

The first load of a file parses it and stores a columnar copy (numpy .npz) in the cache folder,
keyed by the file's sha256, with a sha256 of the arrays themselves beside them; later loads read that
copy and check the digest (a tampered or damaged copy is rebuilt, never used). Nothing is ever written
next to the data. Every data file is read through screening.safe_io (sizes capped once decompressed).
"""

from __future__ import annotations

import csv
import hashlib
import io
import math
import os
import re
import socket
import stat
import tempfile
import time
from pathlib import Path

import numpy as np
from pymatgen.core import Composition, Element

from screening import safe_io
from screening.data.table import DataSource, EntryTable
from screening.errors import DataError

CACHE_FORMAT = 3  # bump when the cached arrays or the parser change
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


# Temporaries of atomic writes: ".<target>.<host>-<pid>.<random>.tmp" (older releases wrote
# ".<target>.<random>.tmp"). A writer killed by SIGKILL leaves one behind; the next write into the same
# folder removes those of dead processes on this host, and any older than STALE_TMP_SECONDS (old-style
# names only in the cache folder, where nothing else writes: elsewhere they could be another program's).
STALE_TMP_SECONDS = 6 * 3600
_HOST = re.sub(r"[^A-Za-z0-9-]", "-", socket.gethostname())[:40] or "host"
_TMP_NAME = re.compile(r"^\..+\.(?P<host>[A-Za-z0-9-]+)-(?P<pid>[0-9]{1,10})\.[a-z0-9_]{8}\.tmp$")
_OLD_TMP_NAME = re.compile(r"^\..+\.[a-z0-9_]{8}\.tmp$")


def _pid_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError, ValueError):
        return True  # someone else's process, or not a pid we can ask about: keep its file
    return True


def clean_stale_temporaries(folder: Path, now: float | None = None) -> list[Path]:
    """Remove temporaries that killed atomic writes left in `folder`; returns the removed paths.

    Only regular files of this user named as atomic_write_bytes names them are touched, and only when
    their writer is a dead process on this host or they are older than STALE_TMP_SECONDS.
    """
    now = time.time() if now is None else now
    removed = []
    try:
        in_cache = Path(folder).resolve() == cache_dir().resolve()
    except OSError:
        in_cache = False
    try:
        names = os.listdir(folder)
    except OSError:
        return removed
    for name in names:
        match = _TMP_NAME.match(name)
        if match is None and not (in_cache and _OLD_TMP_NAME.match(name)):
            continue
        path = Path(folder) / name
        try:
            info = os.lstat(path)
        except OSError:
            continue
        if not stat.S_ISREG(info.st_mode) or info.st_uid != os.getuid():
            continue
        stale = now - info.st_mtime > STALE_TMP_SECONDS
        dead = (match is not None and match.group("host") == _HOST and int(match.group("pid")) != os.getpid()
                and not _pid_alive(int(match.group("pid"))))
        if stale or dead:
            try:
                os.unlink(path)
                removed.append(path)
            except OSError:
                pass
    return removed


def atomic_write_bytes(path: Path, payload: bytes) -> None:
    """Write payload to path so that readers see the old file or the whole new one, never a part."""
    atomic_write_with(path, lambda handle: handle.write(payload))


def atomic_write_with(path: Path, write) -> None:
    """atomic_write_bytes for output too large to hold in memory: write(handle) streams it into a
    temporary file beside path (binary handle), which then replaces path."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    clean_stale_temporaries(path.parent)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.{_HOST}-{os.getpid()}.", suffix=".tmp")
    try:
        os.fchmod(fd, 0o666 & ~_UMASK)  # mkstemp files are private; results get the usual mode
        with os.fdopen(fd, "wb") as handle:
            write(handle)
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


def arrays_digest(arrays) -> str:
    """sha256 over the cached arrays (name, dtype, shape and bytes of each, in name order)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        if name == "digest":
            continue
        value = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}|{value.dtype.str}|{value.shape}|".encode())
        digest.update(value.tobytes())
    return digest.hexdigest()


def _read_cache(cache_file: Path, source: DataSource) -> EntryTable | None:
    """The cached table, or None if absent, unreadable or not what was written (rebuilt, never trusted)."""
    if not cache_file.is_file():
        return None
    try:
        with np.load(cache_file, allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
        if str(arrays["sha256"]) != source.sha256 or int(arrays["format"]) != CACHE_FORMAT:
            return None
        if str(arrays["digest"]) != arrays_digest(arrays):
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
    arrays = {"sha256": np.array(table.source.sha256), "format": np.array(CACHE_FORMAT), **table.to_arrays()}
    arrays = {name: np.asarray(value) for name, value in arrays.items()}
    arrays["digest"] = np.array(arrays_digest(arrays))
    buffer = io.BytesIO()
    np.savez(buffer, **arrays)
    try:
        atomic_write_bytes(cache_file, buffer.getvalue())
    except OSError:
        pass  # an unwritable cache folder only costs speed


def _parse_csv(path: Path, source: DataSource) -> EntryTable:
    rows: list[tuple[Composition, float]] = []
    cache: dict[str, Composition] = {}
    text = safe_io.read_text(path, "data file")
    try:
        with io.StringIO(text, newline="") as handle:
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
    except csv.Error as exc:
        raise DataError(f"corrupt data file {path}: {safe_io.quote(str(exc), 120)}") from None
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
    element present must have a reference entry at 0 eV/atom. Decoded as screening.data.entry_checks
    does (no class outside the allow-list, formation energies within FORMATION_RANGE).
    """
    from screening.data.entry_checks import check_energy, decode_entries, element_composition

    what = f"entries file {path}"
    objects = decode_entries(safe_io.read_bytes(path, "entries file"), what)
    if not objects:
        raise DataError(f"entries file {path} must hold a non-empty list of pymatgen entries")
    rows = []
    for k, entry in enumerate(objects):
        if not (hasattr(entry, "composition") and hasattr(entry, "energy")):
            raise DataError(f"entries file {path}: item {k} is not a pymatgen entry")
        label = f"entries file {path} item {k}"
        comp = element_composition(entry.composition, label)
        try:
            energy = float(entry.energy) / comp.num_atoms
        except (TypeError, ValueError):
            energy = math.nan
        check_energy(energy, f"{label} ({comp.reduced_formula})")
        rows.append((comp, energy))
    return EntryTable.from_compositions(rows, source)
