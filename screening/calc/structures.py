"""Structures: reading a user's file (CIF, POSCAR, extxyz, ...) and building known phases.

`read_structure(path)` returns ASE Atoms or raises InputError with one line. It reads CIF, POSCAR/CONTCAR
and extxyz (the last frame of a trajectory; format from the name, else the content; gzip/bzip2/xz allowed),
checks what the text declares before parsing it with ASE (then pymatgen), and refuses what cannot be
relaxed as a crystal (structure_checks: sizes, counts, occupancies, density, overlapping atoms).

`build(spec)` makes the starting structure of one calibration build (see calibration_set.yaml):
``{"bulk": name, "crystalstructure": ..., "a": ...}`` (ase.build.bulk) or
``{"aflow": label, "species": {...}, "volume_per_atom": ...}`` (a prototype of the AFLOW library
shipped with pymatgen), or
``{"spacegroup": symbol or number, "lattice": [a, b, c, alpha, beta, gamma], "sites": [[el, x, y, z], ...]}``
(pymatgen's Structure.from_spacegroup with literature Wyckoff positions; the primitive cell is kept).
Any build may add ``"supercell": [n1, n2, n3]`` (or a 3x3 integer matrix) and ``"replace": {index: element}``
(sites of the supercell substituted, e.g. Co and Mn in a LiNiO2 supercell: an ordered approximant of NMC).
"""

from __future__ import annotations

import gzip
import io
import json
import warnings
from functools import lru_cache
from pathlib import Path

from screening.calc.structure_checks import (FORMATS, check_atoms, detect_format, max_atoms,
                                             max_structure_bytes, scan_text)
from screening.errors import InputError
from screening.safe_io import decode_text, quote, read_bytes

PYMATGEN_FIRST_SITES = 300  # CIF sites above which pymatgen reads faster than ASE (quadratic in sites)


def _one_line(text, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_structure(path) -> "ase.Atoms":  # noqa: F821
    """ASE Atoms of the crystal in `path`; InputError with one line if it is not a usable crystal.

    The file (gzip, bzip2 or xz allowed) is read once, at most max_structure_bytes(); what it declares is
    checked (structure_checks.scan_text) before ASE, then pymatgen, parses that same text.
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"structure file not found: {path}")
    if not path.is_file():
        raise InputError(f"structure path is not a file: {path}")
    text = _read_text(path)
    if not text.strip():
        raise InputError(f"structure file {path} is empty")
    fmt = detect_format(path.name, text)
    if fmt is None:
        raise InputError(f"cannot tell the format of {path}: give a CIF (.cif), a POSCAR/CONTCAR (.vasp) or an "
                         "extxyz (.xyz/.extxyz) file")
    sites = scan_text(text, fmt, path)
    readers = (_read_pymatgen, _read_ase) if sites > PYMATGEN_FIRST_SITES else (_read_ase, _read_pymatgen)
    atoms, errors = None, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for reader in readers:
            try:
                atoms = reader(text, fmt, path)
            except InputError:
                raise
            except Exception as exc:  # every reader failure is a parse failure here
                errors.append(f"{type(exc).__name__}: {_one_line(exc, 100)}")
            if atoms is not None:
                break
    if atoms is None:
        raise InputError(f"cannot read a crystal structure from {path} as {FORMATS[fmt]}: {errors[0]}")
    check_atoms(atoms, path)
    return atoms


def _read_text(path: Path) -> str:
    limit = max_structure_bytes()
    try:
        size = path.stat().st_size
    except OSError as exc:
        raise InputError(f"cannot read structure file {path}: {exc.strerror or exc}") from None
    too_big = (f"structure file {path} is larger than {limit} bytes (SCREENING_MAX_STRUCTURE_BYTES "
               "raises the limit)")
    if size > limit:
        raise InputError(too_big)
    try:
        data = read_bytes(path, "structure file", limit=limit)
    except InputError as exc:
        if "once decompressed" in str(exc):  # the shared reader names the general limit, not this one
            raise InputError(too_big + " once decompressed") from None
        raise
    if b"\x00" in data[:4096]:
        raise InputError(f"cannot read a crystal structure from {path}: it is binary, not a CIF, POSCAR or "
                         "extxyz text file")
    return decode_text(data, f"structure file {path}")


def _read_ase(text: str, fmt: str, path):
    import ase.io

    return ase.io.read(io.StringIO(text), format=fmt, index=-1)  # the last frame of a trajectory


def _read_pymatgen(text: str, fmt: str, path):
    if fmt == "extxyz":
        return None  # pymatgen has no periodic xyz reader
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    structure = Structure.from_str(text, fmt="cif" if fmt == "cif" else "poscar")
    if not structure.is_ordered:
        raise InputError(f"{path} is a disordered structure (partial occupancies): give an ordered approximant, e.g. "
                         "from pymatgen's OrderDisorderedStructureTransformation")
    return AseAtomsAdaptor.get_atoms(structure)


def composition_of(atoms):
    """pymatgen Composition of the cell."""
    from pymatgen.core import Composition

    counts: dict[str, int] = {}
    for symbol in atoms.get_chemical_symbols():
        counts[symbol] = counts.get(symbol, 0) + 1
    return Composition(counts)


# ---------------------------------------------------------------- builders


@lru_cache(maxsize=1)
def _aflow_library() -> dict[str, dict]:
    """{aflow label: StructureNL dict} from the AFLOW prototype library shipped with pymatgen."""
    import pymatgen

    roots = [Path(p) for p in pymatgen.__path__]
    candidates = []
    for root in roots:
        candidates += [root / "analysis" / "prototypes" / "aflow_prototypes.json.gz",
                       root / "analysis" / "prototypes" / "aflow_prototypes.json",
                       root / "analysis" / "aflow_prototypes.json.gz",
                       root / "analysis" / "aflow_prototypes.json"]
    for path in candidates:
        if path.is_file():
            opener = gzip.open if path.suffix == ".gz" else open
            with opener(path, "rt", encoding="utf-8") as handle:
                data = json.load(handle)
            return {item["tags"]["aflow"]: item["snl"] for item in data}
    raise InputError("the AFLOW prototype library of pymatgen (aflow_prototypes.json) was not found: "
                     "upgrade pymatgen")


def build(spec: dict):
    """ASE Atoms of one build spec (see the module doc), checked as a file's structure would be;
    InputError for a bad spec."""
    atoms = _build(spec)
    if "supercell" in spec or "replace" in spec:
        atoms = _supercell_and_replace(atoms, spec)
    check_atoms(atoms, f"build {quote(spec, 120)}")
    return atoms


def _supercell_and_replace(atoms, spec: dict):
    """The build's supercell (3 repeats or a 3x3 integer matrix), then its site substitutions."""
    import numpy as np
    from ase.build import make_supercell
    from ase.data import atomic_numbers

    bad = InputError(f"build {quote(spec, 120)}: 'supercell' must be 3 whole numbers or a 3x3 integer matrix, "
                     f"at most {max_atoms()} atoms, and 'replace' a mapping of site index to element")
    try:
        matrix = np.array(spec.get("supercell", [1, 1, 1]), dtype=float)
        if matrix.shape == (3,):
            matrix = np.diag(matrix)
        if matrix.shape != (3, 3) or not np.all(matrix == np.round(matrix)):
            raise ValueError
        det = round(abs(np.linalg.det(matrix)))
        if det < 1 or det * len(atoms) > max_atoms():
            raise ValueError
        atoms = make_supercell(atoms, matrix.astype(int), wrap=True) if det > 1 or not np.allclose(
            matrix, np.eye(3)) else atoms.copy()
        replace = spec.get("replace") or {}
        if not isinstance(replace, dict):
            raise ValueError
        symbols = atoms.get_chemical_symbols()
        for index, element in replace.items():
            if str(element) not in atomic_numbers or not 0 <= int(index) < len(symbols):
                raise ValueError
            symbols[int(index)] = str(element)
        atoms.set_chemical_symbols(symbols)
    except (TypeError, ValueError, OverflowError):
        raise bad from None
    return atoms


def _build(spec: dict):
    if "bulk" in spec:
        from ase.build import bulk

        kwargs = {k: spec[k] for k in ("crystalstructure", "a", "b", "c", "alpha", "covera", "u",
                                       "orthorhombic", "cubic") if k in spec}
        try:
            return bulk(str(spec["bulk"]), **kwargs)
        except Exception as exc:
            raise InputError(f"cannot build {quote(spec, 120)}: {_one_line(exc)}") from None
    if "aflow" in spec:
        return _from_aflow(spec)
    if "spacegroup" in spec:
        return _from_spacegroup(spec)
    raise InputError(f"a build needs 'bulk', 'aflow' or 'spacegroup': {quote(spec, 120)}")


def _from_aflow(spec: dict):
    """A prototype of pymatgen's AFLOW library, species substituted, scaled to a volume per atom."""
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    library = _aflow_library()
    label = str(spec["aflow"])
    if label not in library:
        raise InputError(f"AFLOW prototype {quote(label)} is not in pymatgen's library")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_dict(library[label])
            if "label" in structure.site_properties:
                structure.remove_site_property("label")
            if spec.get("species"):
                structure.replace_species({str(k): str(v) for k, v in dict(spec["species"]).items()})
            if spec.get("volume_per_atom"):
                structure.scale_lattice(float(spec["volume_per_atom"]) * len(structure))
    except Exception as exc:
        raise InputError(f"cannot build {quote(spec, 120)}: {_one_line(exc)}") from None
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.info.clear()
    atoms.arrays.pop("label", None)
    return atoms


def _from_spacegroup(spec: dict):
    """A crystal from its space group, lattice parameters and asymmetric unit (primitive cell)."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    if not isinstance(spec.get("sites"), list) or len(spec["sites"]) > max_atoms():
        raise InputError(f"build of space group {quote(spec.get('spacegroup'))}: 'sites' must be a list of at "
                         f"most {max_atoms()} [element, x, y, z] rows")
    try:
        a, b, c, alpha, beta, gamma = (float(v) for v in spec["lattice"])
        sites = [(str(row[0]), [float(v) for v in row[1:4]]) for row in spec["sites"]]
        group = spec["spacegroup"]
        group = int(group) if isinstance(group, int) or str(group).isdigit() else str(group)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_spacegroup(group, Lattice.from_parameters(a, b, c, alpha, beta, gamma),
                                                  [el for el, _ in sites], [xyz for _, xyz in sites])
            structure = structure.get_primitive_structure()
    except Exception as exc:
        raise InputError(f"cannot build {quote(spec, 120)}: {_one_line(exc)}") from None
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.info.clear()
    return atoms
