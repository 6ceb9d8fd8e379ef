"""Property data beside the energies: PBE band gaps and measured Li-ion conductivities (../shared/data).

Both files are optional: `load_band_gaps()` / `load_conductivities()` return None when the file is absent
(the caller says so in one line) and raise DataError when it is present but corrupt.

Band gaps (`mp_gap_2019.csv.gz`, Materials Project PBE gaps of the same 2019 retrieval as the energies)
have no ids, so a gap is tied to a composition this way, and the way is recorded per composition:
1. `ground_state`: the cell formula of the composition's lowest-energy row in the energy file occurs once
   in each file: that structure's gap;
2. `ground_state_cell_median`: the cell formula occurs several times (polymorphs with the same cell): the
   median of their gaps;
3. `polymorph_median`: otherwise the median gap of all the composition's structures in the gap file.
The median, not the smallest gap: one metallic high-energy polymorph (LiNbO3 has 12 structures, gaps
0.0-3.75 eV) must not make a compound a conductor.
"""

from __future__ import annotations

import csv
import functools
import io
import math
import os
import re
import statistics
from dataclasses import dataclass
from pathlib import Path

from screening.errors import DataError, InputError
from screening.safe_io import read_text

GAP_FILE = "mp_gap_2019.csv.gz"
CONDUCTIVITY_FILE = "obelix_li_conductivity.csv"
ALD_FILE = "ald_materials.csv"
GAP_SHA256 = "4084e584467e6f81ec8bf12c438eeb2c049ae39e11401bae694ef6a9983b9d9f"  # uncompressed, per its README
MAX_BAND_GAP = 30.0  # eV; anything larger is not a PBE gap
_TOKEN = re.compile(r"([A-Z][a-z]?)(\d+(?:\.\d+)?)")
_LIMIT = 64 << 20  # bytes of a property file once decompressed


def data_dir() -> Path:
    """The folder of the property files: $SCREENING_DATA_DIR, else the embedded energy file's folder."""
    env = os.environ.get("SCREENING_DATA_DIR")
    if env:
        return Path(env).expanduser()
    from screening.data.snapshot import default_entries_path

    return default_entries_path().parent


def composition_key(amounts: dict[str, float]) -> tuple[tuple[str, float], ...]:
    """A hashable key of a composition independent of its formula units: (element, atom fraction) pairs."""
    total = sum(amounts.values())
    if not total > 0:
        raise ValueError("empty composition")
    return tuple(sorted((el, round(amt / total, 8)) for el, amt in amounts.items() if amt > 0))


def key_of(comp) -> tuple[tuple[str, float], ...]:
    """composition_key of a pymatgen Composition (or formula string)."""
    from pymatgen.core import Composition

    comp = Composition(comp) if not isinstance(comp, Composition) else comp
    return composition_key({str(el): float(amt) for el, amt in comp.get_el_amt_dict().items()})


def _cell_amounts(formula: str, path: Path, lineno: int) -> dict[str, float]:
    tokens = _TOKEN.findall(formula)
    if not tokens or "".join(el + num for el, num in tokens) != formula:
        raise DataError(f"corrupt property file {path}: line {lineno} formula {formula[:40]!r}")
    amounts: dict[str, float] = {}
    for el, num in tokens:
        amounts[el] = amounts.get(el, 0.0) + float(num)
    return amounts


def read_csv_rows(path: Path, columns: tuple[str, ...]):
    """(line number, record) of a CSV whose header starts with `columns`."""
    text = read_text(path, "property file", limit=_LIMIT)
    reader = csv.reader(io.StringIO(text))
    try:
        header = next(reader, None)
        if header is None or tuple(h.strip() for h in header[:len(columns)]) != columns:
            raise DataError(f"corrupt property file {path}: expected a header starting {','.join(columns)}")
        for lineno, record in enumerate(reader, start=2):
            if len(record) < len(columns):
                raise DataError(f"corrupt property file {path}: line {lineno} has too few fields")
            yield lineno, [field.strip() for field in record]
    except csv.Error as exc:
        raise DataError(f"corrupt property file {path}: {exc}") from None


@dataclass(frozen=True)
class GapValue:
    """A composition's band gap (eV, PBE) and how it was found."""

    gap: float | None
    method: str  # ground_state, ground_state_cell_median, polymorph_median, decomposition, none
    n_structures: int = 0


class BandGaps:
    """PBE band gaps by composition (see the module docstring for the assignment rule)."""

    def __init__(self, by_key: dict, path: Path, sha256: str):
        self._by_key = by_key
        self.path = path
        self.sha256 = sha256

    def __len__(self) -> int:
        return len(self._by_key)

    def lookup(self, comp) -> GapValue:
        """The gap of a composition in the data, or GapValue(None, 'none')."""
        return self._by_key.get(key_of(comp), GapValue(None, "none"))

    def of_phases(self, phases) -> GapValue:
        """The gap of a mixture (a hypothetical composition's hull decomposition): the smallest gap of its
        phases (a percolating conductor is enough to conduct); None if any phase has no gap."""
        values = [self.lookup(phase) for phase in phases]
        if not values or any(v.gap is None for v in values):
            return GapValue(None, "none")
        return GapValue(min(v.gap for v in values), "decomposition", len(values))

    def provenance(self) -> dict:
        return {"file": str(self.path), "sha256": self.sha256, "compositions": len(self),
                "rule": "ground-state cell formula, else median over polymorphs (PBE, eV)"}


def load_band_gaps(path: str | Path | None = None, energies: str | Path | None = None) -> BandGaps | None:
    """Band gaps from the gap file (default beside the energy file); None if the file is absent.
    `energies`: the energy CSV whose lowest rows define the ground states (default: the embedded one)."""
    gap_path = Path(path) if path else data_dir() / GAP_FILE
    if not gap_path.is_file():
        if path:
            raise InputError(f"band-gap file not found: {gap_path}")
        return None
    if energies is None:
        from screening.data.snapshot import default_entries_path

        energies = default_entries_path()
    energies = Path(energies)
    stat = gap_path.stat()
    e_stat = energies.stat() if energies.is_file() else None
    return _cached_band_gaps(str(gap_path), stat.st_mtime_ns, stat.st_size, str(energies),
                             e_stat.st_mtime_ns if e_stat else 0, e_stat.st_size if e_stat else 0)


_GAP_CACHE_FORMAT = 1


@functools.lru_cache(maxsize=4)
def _cached_band_gaps(gap_path: str, _mtime: int, _size: int, energies: str, _e_mtime: int, _e_size: int):
    """The assignment, from the disk cache when its key (both files' sha256) and its own digest match:
    parsing both files takes seconds, a single command milliseconds."""
    import hashlib
    import json

    from screening.data.snapshot import atomic_write_bytes, cache_dir, file_sha256

    energies_sha = file_sha256(Path(energies)) if Path(energies).is_file() else "none"
    key = hashlib.sha256(f"{_GAP_CACHE_FORMAT}:{file_sha256(Path(gap_path))}:{energies_sha}".encode()).hexdigest()
    cache_file = cache_dir() / f"band_gaps_{key[:24]}.json"
    try:
        payload = json.loads(cache_file.read_text(encoding="utf-8"))
        body = json.dumps(payload["gaps"], sort_keys=True, separators=(",", ":"))
        if payload.get("key") == key and payload.get("digest") == hashlib.sha256(body.encode()).hexdigest():
            by_key = {tuple((el, frac) for el, frac in item[0]): GapValue(item[1], item[2], item[3])
                      for item in payload["gaps"]}
            return BandGaps(by_key, Path(gap_path), payload["sha256"])
    except (OSError, ValueError, KeyError, TypeError, IndexError):
        pass  # absent or not ours: rebuilt below
    gaps = _load_band_gaps(gap_path, energies)
    items = sorted([[list(map(list, k)), v.gap, v.method, v.n_structures] for k, v in gaps._by_key.items()])
    body = json.dumps(items, sort_keys=True, separators=(",", ":"))
    payload = {"key": key, "sha256": gaps.sha256, "gaps": items, "digest": hashlib.sha256(body.encode()).hexdigest()}
    try:
        atomic_write_bytes(cache_file, json.dumps(payload, separators=(",", ":")).encode())
    except OSError:
        pass  # a read-only cache folder costs time, not correctness
    return gaps


def _load_band_gaps(gap_path: str, energies: str) -> BandGaps:
    import hashlib

    path = Path(gap_path)
    by_cell: dict[str, list[float]] = {}
    by_key: dict[tuple, list[float]] = {}
    for lineno, (formula, target) in read_csv_rows(path, ("formula", "target")):
        try:
            gap = float(target)
        except ValueError:
            raise DataError(f"corrupt property file {path}: line {lineno} band gap {target[:20]!r}") from None
        if not (math.isfinite(gap) and 0.0 <= gap <= MAX_BAND_GAP):
            raise DataError(f"corrupt property file {path}: line {lineno} band gap {target[:20]!r} "
                            f"outside 0-{MAX_BAND_GAP:g} eV")
        key = composition_key(_cell_amounts(formula, path, lineno))
        by_cell.setdefault(formula, []).append(gap)
        by_key.setdefault(key, []).append(gap)
    if not by_key:
        raise DataError(f"property file {path} has no band gaps")
    ground_cell, cell_count = _ground_state_cells(Path(energies))
    out: dict[tuple, GapValue] = {}
    for key, gaps in by_key.items():
        cell = ground_cell.get(key)
        same_cell = by_cell.get(cell, []) if cell else []
        if same_cell and len(same_cell) == 1 and cell_count.get(cell) == 1:
            out[key] = GapValue(same_cell[0], "ground_state", len(gaps))
        elif same_cell:
            out[key] = GapValue(float(statistics.median(same_cell)), "ground_state_cell_median", len(gaps))
        else:
            out[key] = GapValue(float(statistics.median(gaps)), "polymorph_median", len(gaps))
    sha = hashlib.sha256(read_text(path, "property file", limit=_LIMIT).encode()).hexdigest()
    return BandGaps(out, path, sha)


def _ground_state_cells(energies: Path) -> tuple[dict[tuple, str], dict[str, int]]:
    """{composition key: cell formula of its lowest-energy row} and {cell formula: rows} of an energy CSV
    (empty when the energy source is not a snapshot CSV: every gap is then a polymorph median)."""
    if not energies.is_file() or not energies.name.endswith((".csv", ".csv.gz")):
        return {}, {}
    best: dict[tuple, tuple[float, str]] = {}
    count: dict[str, int] = {}
    for lineno, (formula, target) in read_csv_rows(energies, ("formula", "target")):
        try:
            energy = float(target)
        except ValueError:
            continue  # the energy loader reports a corrupt energy file itself
        count[formula] = count.get(formula, 0) + 1
        key = composition_key(_cell_amounts(formula, energies, lineno))
        if key not in best or energy < best[key][0]:
            best[key] = (energy, formula)
    return {key: formula for key, (_, formula) in best.items()}, count


@dataclass(frozen=True)
class Conductivity:
    """Measured room-temperature Li-ion conductivity (S/cm): the median of the measurements; `bound` is '<'
    when every measurement is only an upper bound."""

    value: float
    n_measurements: int
    bound: str | None = None


def load_conductivities(path: str | Path | None = None) -> dict | None:
    """{composition key: Conductivity} from the OBELiX file; None if it is absent."""
    cond_path = Path(path) if path else data_dir() / CONDUCTIVITY_FILE
    if not cond_path.is_file():
        if path:
            raise InputError(f"conductivity file not found: {cond_path}")
        return None
    values: dict[tuple, list[tuple[float, bool]]] = {}
    for lineno, record in read_csv_rows(cond_path, ("reduced_composition", "composition", "ionic_conductivity_S_per_cm")):
        text = record[2].replace(" ", "")
        bound = text.startswith("<")
        try:
            value = float(text.lstrip("<"))
        except ValueError:
            raise DataError(f"corrupt property file {cond_path}: line {lineno} conductivity "
                            f"{record[2][:20]!r}") from None
        if not (math.isfinite(value) and 0.0 <= value < 1e3):
            raise DataError(f"corrupt property file {cond_path}: line {lineno} conductivity {record[2][:20]!r}")
        try:
            key = key_of(record[0])
        except Exception:  # OBELiX writes a few hydrates in a notation pymatgen does not read: not ours
            continue
        values.setdefault(key, []).append((value, bound))
    out = {}
    for key, rows in values.items():
        measured = [v for v, b in rows if not b]
        if measured:
            out[key] = Conductivity(float(statistics.median(measured)), len(measured))
        else:
            out[key] = Conductivity(min(v for v, _ in rows), len(rows), "<")
    return out
