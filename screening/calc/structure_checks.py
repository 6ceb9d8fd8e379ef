"""Checks on a structure file before and after parsing: bounded sizes and counts, physical cells.

Structure files are hostile input: a count line may declare 10^9 atoms, a cell may be 1e6 Angstrom wide,
an occupancy may be 1.5. Before anything is parsed, `scan_text` checks what the text declares (atoms per
extxyz frame, POSCAR counts, CIF site rows, symmetry operations and occupancies) against the limits and
against the text itself; after parsing, `check_atoms` refuses what is not a physical crystal. Each
failure is an InputError with one line.

Limits (environment variables override the defaults):
    SCREENING_MAX_ATOMS            atoms of a structure (default 2000)
    SCREENING_MAX_STRUCTURE_BYTES  bytes of a structure file, after decompression (default 8 MiB)
Physical bounds (fixed): volume per atom VOLUME_PER_ATOM (2..200 A^3), no two atoms (or an atom and its
own periodic image) closer than MIN_DISTANCE (0.5 A), a finite 3D periodic cell, occupancies 1.
"""

from __future__ import annotations

import math
import os
import re

import numpy as np

from screening.errors import InputError
from screening.safe_io import quote

DEFAULT_MAX_ATOMS = 2000
DEFAULT_MAX_STRUCTURE_BYTES = 8 << 20  # a 2000-atom CIF is ~0.3 MB; ASE parses CIF at ~0.5 MB/s
MIN_DISTANCE = 0.5  # Angstrom: closer atoms mean a broken file, not a structure
VOLUME_PER_ATOM = (2.0, 200.0)  # Angstrom^3: the densest solids have ~5, open frameworks ~30
MAX_SYMMETRY_OPERATIONS = 192  # the order of Fm-3m with its centring, the largest of any space group
OCCUPANCY_TOLERANCE = 1e-3
FORMATS = {"cif": "CIF", "vasp": "POSCAR", "extxyz": "extxyz"}
_COUNT = re.compile(r"[0-9]{1,9}")
_NUMBER = re.compile(r"[-+]?(?:[0-9]+\.?[0-9]*|\.[0-9]+)(?:[eE][-+]?[0-9]{1,4})?")


def _env_limit(name: str, default: int) -> int:
    env = f"SCREENING_{name}"
    text = os.environ.get(env, "").strip()
    if not text:
        return default
    if not re.fullmatch(r"[0-9]{1,15}", text) or int(text) < 1:
        raise InputError(f"{env} must be a positive integer, not {quote(text)}")
    return int(text)


def max_atoms() -> int:
    """The largest structure accepted (atoms; SCREENING_MAX_ATOMS)."""
    return _env_limit("MAX_ATOMS", DEFAULT_MAX_ATOMS)


def max_structure_bytes() -> int:
    """The largest structure file accepted (bytes once decompressed; SCREENING_MAX_STRUCTURE_BYTES)."""
    return _env_limit("MAX_STRUCTURE_BYTES", DEFAULT_MAX_STRUCTURE_BYTES)


def _too_many_atoms(label, n, where: str = "") -> InputError:
    return InputError(f"{label}{where} declares {n} atoms; at most {max_atoms()} are supported "
                      "(SCREENING_MAX_ATOMS raises the limit)")


# ---------------------------------------------------------------- before parsing


def detect_format(name: str, text: str) -> str | None:
    """'cif', 'vasp' or 'extxyz' from the file name (compression suffix removed), else from the text."""
    lower = name.lower()
    for suffix in (".gz", ".bz2", ".xz"):
        if lower.endswith(suffix):
            lower = lower[: -len(suffix)]
    if lower.endswith((".cif", ".mcif")):
        return "cif"
    if lower.endswith((".vasp", ".poscar")) or "poscar" in lower or "contcar" in lower:
        return "vasp"
    if lower.endswith((".xyz", ".extxyz")):
        return "extxyz"
    lines = text.lstrip().splitlines()
    if not lines:
        return None
    if _COUNT.fullmatch(lines[0].strip()):
        return "extxyz"
    if re.search(r"^\s*data_", text, re.MULTILINE) and "_cell_length_a" in text:
        return "cif"
    if len(lines) >= 8 and all(len(_numbers(line)) >= 3 for line in lines[2:5]) and _numbers(lines[1]):
        return "vasp"
    return None


def _numbers(line: str) -> list[str]:
    return [tok for tok in line.split() if _NUMBER.fullmatch(tok)]


def scan_text(text: str, fmt: str, label) -> int:
    """Refuse declared counts above the limits or beyond what the text holds, before any parser runs.

    Returns the most atom sites a CIF block lists (0 for other formats): ASE's CIF reader is quadratic
    in them (40 s for 2000 sites in P1, pymatgen 2 s).
    """
    if fmt == "cif":
        return _scan_cif(text, label)
    {"vasp": _scan_poscar, "extxyz": _scan_xyz}[fmt](text, label)
    return 0


def _scan_xyz(text: str, label) -> None:
    """Every frame: a count line, a comment line, then that many atom lines."""
    lines = text.splitlines()
    limit, i, frame = max_atoms(), 0, 0
    while i < len(lines):
        head = lines[i].strip()
        if not head:
            i += 1
            continue
        if not (head.isascii() and head.isdigit()):
            if frame == 0:
                raise InputError(f"{label} is not an (ext)xyz file: its first line {quote(head, 40)} is not an "
                                 "atom count")
            return  # trailing text after the last frame: the parser decides
        where = f" (frame {frame + 1})" if frame else ""
        if len(head) > 9 or int(head) > limit:
            raise _too_many_atoms(label, int(head) if len(head) <= 30 else f"{len(head)}-digit", where)
        n = int(head)
        if i + 2 + n > len(lines):
            raise InputError(f"{label}{where} declares {n} atoms but holds only {max(len(lines) - i - 2, 0)} "
                             "atom lines (a truncated file?)")
        i += 2 + n
        frame += 1


def _is_count(token: str) -> bool:
    return token.isascii() and token.isdigit()


def _scan_poscar(text: str, label) -> None:
    """The counts line (line 6, or 7 after a species line) against the limit and the lines that follow."""
    lines = text.splitlines()
    if len(lines) < 7:
        raise InputError(f"{label} is not a POSCAR: {len(lines)} lines, fewer than a header needs")
    at = 5 if lines[5].split() and all(_is_count(tok) for tok in lines[5].split()) else 6
    tokens = lines[at].split() if at < len(lines) else []
    # VASP allows comments after the counts; they start at the first token that is not a count
    counts = []
    for tok in tokens:
        if not _is_count(tok):
            break
        counts.append(tok)
    if not counts:
        shown = quote(lines[at].strip() if at < len(lines) else "", 40)
        raise InputError(f"{label} is not a POSCAR: line {at + 1} ({shown}) should hold the number of atoms "
                         "of each species")
    if any(len(tok) > 30 for tok in counts):
        raise _too_many_atoms(label, "more than 10^30")
    total = sum(int(tok) for tok in counts)
    if total > max_atoms():
        raise _too_many_atoms(label, total)
    available = len(lines) - at - 2  # after the counts: the Direct/Cartesian line, then one line per atom
    if total > available:
        raise InputError(f"{label} declares {total} atoms but holds only {max(available, 0)} coordinate lines "
                         "(a truncated file?)")


_SITE_KEYS = ("_atom_site_fract_x", "_atom_site_cartn_x")
_SYMOP_KEYS = ("_symmetry_equiv_pos_as_xyz", "_space_group_symop_operation_xyz")
_GROUP_KEYS = ("_space_group_it_number", "_symmetry_int_tables_number", "_space_group_name_h-m_alt",
               "_symmetry_space_group_name_h-m")
MAX_CIF_BLOCKS = 1000  # every block is parsed (the last one is used): ~1 ms each
# A site's multiplicity is at least (symmetry operations / 48), 48 being the largest point group, so a
# block whose sites x operations exceed 48 x max_atoms() would hold more atoms than accepted.
POINT_GROUP_ORDER_MAX = 48


def _cif_number(value: str) -> float | None:
    """A CIF numeric value without its standard uncertainty, '0.25(3)' -> 0.25; None if not a number."""
    value = re.sub(r"\([0-9]+\)$", "", value.strip())
    if not _NUMBER.fullmatch(value):
        return None
    return float(value)


def _symmetry_operations(data: dict) -> int:
    """Operations a block lists, else the order of its named space group (192 if it cannot be told)."""
    ops = next((data[k] for k in _SYMOP_KEYS if k in data), None)
    if ops is not None:
        return 1 if isinstance(ops, str) else len(ops)
    for key in _GROUP_KEYS:
        value = data.get(key)
        if isinstance(value, str) and value.strip() not in ("", "?", "."):
            try:
                from ase.spacegroup import Spacegroup

                text = value.strip()
                return int(Spacegroup(int(text) if text.isascii() and text.isdigit() else text).nsymop)
            except Exception:
                break
    return MAX_SYMMETRY_OPERATIONS


def _scan_cif(text: str, label) -> int:
    """Blocks, site rows and symmetry operations within bounds; occupancies in [0, 1]. Returns the most
    site rows of a block."""
    from pymatgen.io.cif import CifFile

    try:
        cif = CifFile.from_str(text)
    except Exception as exc:  # the tokenizer's failure is a malformed file
        raise InputError(f"{label} is not a readable CIF: {type(exc).__name__}: {quote(str(exc), 100)}") from None
    if not cif.data:
        raise InputError(f"{label} is not a CIF: no data_ block")
    if len(cif.data) > MAX_CIF_BLOCKS:
        raise InputError(f"{label} holds {len(cif.data)} data blocks, more than {MAX_CIF_BLOCKS}: give the "
                         "structure in a file of its own")
    limit = max_atoms()
    positions, most_rows = 0, 0
    for name, block in cif.data.items():
        data = {key.lower().replace(".", "_"): value for key, value in block.data.items()}
        where = f" (data block {quote(name, 40)})"
        rows = next((data[k] for k in _SITE_KEYS if k in data), [])
        rows = [rows] if isinstance(rows, str) else list(rows)
        if len(rows) > limit:
            raise InputError(f"{label}{where} lists {len(rows)} atom sites; at most {limit} atoms are supported "
                             "(SCREENING_MAX_ATOMS raises the limit)")
        n_ops = _symmetry_operations(data)
        if n_ops > MAX_SYMMETRY_OPERATIONS:
            raise InputError(f"{label}{where} lists {n_ops} symmetry operations; no space group has more than "
                             f"{MAX_SYMMETRY_OPERATIONS}")
        positions += len(rows) * n_ops
        most_rows = max(most_rows, len(rows))
        _check_occupancies(data, rows, label, where)
    if positions > POINT_GROUP_ORDER_MAX * limit:
        raise InputError(f"{label}: {positions} positions from its sites and symmetry operations, more than "
                         f"{POINT_GROUP_ORDER_MAX} x {limit}: more atoms than the {limit} supported "
                         "(SCREENING_MAX_ATOMS raises the limit)")
    return most_rows


def _as_list(value, n: int) -> list[str]:
    if value is None:
        return ["?"] * n
    return [value] * n if isinstance(value, str) else list(value)


def _check_occupancies(data: dict, rows: list, label, where: str) -> None:
    """Each occupancy a number in [0, 1], their sum per position at most 1; then any below 1 is disorder.

    Done on the CIF's own text, so no parser's leniency (or failure) lets 1.5 or -1 through.
    """
    if "_atom_site_occupancy" not in data:
        return
    n = len(rows)
    occupancies = _as_list(data["_atom_site_occupancy"], n)
    names = _as_list(data.get("_atom_site_label"), n)
    coords = [_as_list(data.get(f"_atom_site_fract_{axis}"), n) for axis in "xyz"]
    per_position: dict[tuple, list] = {}
    partial = None
    for k, raw in enumerate(occupancies):
        site = f"site {quote(names[k], 30)}" if k < len(names) else f"site {k + 1}"
        if raw.strip() in ("?", "."):  # unknown: CIF's default occupancy is 1
            occ = 1.0
        else:
            occ = _cif_number(raw)
            if occ is None or not math.isfinite(occ):
                raise InputError(f"{label}{where}: the occupancy {quote(raw, 30)} of {site} is not a number")
        if occ < 0:
            raise InputError(f"{label}{where}: {site} has a negative occupancy ({occ:g})")
        if occ > 1 + OCCUPANCY_TOLERANCE:
            raise InputError(f"{label}{where}: {site} has an occupancy of {occ:g}, more than 1")
        if occ < 1 - OCCUPANCY_TOLERANCE and partial is None:
            partial = (site, occ)
        xyz = [_cif_number(c[k]) if k < len(c) else None for c in coords]
        if all(v is not None and math.isfinite(v) for v in xyz):
            key = tuple(round((v % 1.0) * 1000) % 1000 for v in xyz)
            per_position.setdefault(key, []).append((site, occ))
    for sites in per_position.values():
        total = sum(occ for _, occ in sites)
        if len(sites) > 1 and total > 1 + OCCUPANCY_TOLERANCE:
            names_text = ", ".join(site for site, _ in sites[:3]) + (", ..." if len(sites) > 3 else "")
            raise InputError(f"{label}{where}: {names_text} share one position with a total occupancy of "
                             f"{total:g}, more than 1")
    if partial is not None:
        raise InputError(f"{label} is a disordered structure (partial occupancies: {partial[0]} has "
                         f"{partial[1]:g}): give an ordered approximant, e.g. from pymatgen's "
                         "OrderDisorderedStructureTransformation")


# ---------------------------------------------------------------- after parsing


def check_atoms(atoms, label) -> None:
    """Refuse what is not a physical, ordered 3D crystal of at most max_atoms() atoms (one line)."""
    n = len(atoms)
    if n == 0:
        raise InputError(f"{label} holds no atoms")
    if n > max_atoms():
        raise InputError(f"{label} has {n} atoms; at most {max_atoms()} are supported "
                         "(SCREENING_MAX_ATOMS raises the limit)")
    cell = np.asarray(atoms.cell[:], dtype=float)
    if not np.all(np.isfinite(cell)):
        raise InputError(f"{label} has a non-finite cell (NaN or infinite lattice vectors)")
    if not all(atoms.pbc) or abs(float(np.linalg.det(cell))) < 1e-6:
        raise InputError(f"{label} has no 3D periodic cell: a crystal structure (CIF, POSCAR, extxyz "
                         "with a Lattice) is needed")
    numbers = atoms.get_atomic_numbers()
    if np.any(numbers <= 0) or np.any(numbers > 118):
        raise InputError(f"{label} has atoms that are not elements (dummy or vacancy sites)")
    if not np.all(np.isfinite(atoms.get_positions())):
        raise InputError(f"{label} has non-finite atom positions")
    low, high = VOLUME_PER_ATOM
    per_atom = abs(float(np.linalg.det(cell))) / n
    if not low <= per_atom <= high:
        raise InputError(f"{label}: {per_atom:.6g} A^3 per atom is not a solid's density (accepted "
                         f"{low:g}..{high:g} A^3 per atom): a wrong lattice parameter or unit?")
    _check_distances(atoms, label)


def _check_distances(atoms, label) -> None:
    """No pair of atoms, periodic images included, closer than MIN_DISTANCE.

    A neighbour list on the Minkowski-reduced cell: linear in the atoms, bounded for any cell shape
    (a full distance matrix with minimum-image search would take GBs for 2000 atoms in a skewed cell).
    """
    from ase.neighborlist import neighbor_list

    work = atoms.copy()
    try:
        reduced, _ = work.cell.minkowski_reduce()
    except Exception:  # a degenerate lattice that cannot be reduced
        raise InputError(f"{label} has a degenerate cell (its lattice vectors cannot be reduced)") from None
    work.set_cell(reduced, scale_atoms=False)
    work.wrap()
    cell = np.asarray(work.cell[:], dtype=float)
    volume = abs(float(np.linalg.det(cell)))
    heights = [volume / float(np.linalg.norm(np.cross(cell[j], cell[k]))) for j, k in ((1, 2), (2, 0), (0, 1))]
    if min(heights) < MIN_DISTANCE:
        raise InputError(f"{label}: the cell is too thin ({min(heights):.2f} A between lattice planes): "
                         "atoms overlap their periodic images")
    first, second, dist = neighbor_list("ijd", work, MIN_DISTANCE)
    if len(dist):
        k = int(np.argmin(dist))
        i, j = int(first[k]), int(second[k])
        what = "its own periodic image" if i == j else f"atom {j} ({atoms[j].symbol})"
        raise InputError(f"{label}: atom {i} ({atoms[i].symbol}) and {what} are {float(dist[k]):.2f} A apart: "
                         "overlapping atoms (a duplicated site?)")
