"""Structures: reading a user's file (CIF, POSCAR, extxyz, ...) and building known phases.

`read_structure(path)` returns ASE Atoms or raises InputError with one line. It tries ASE's readers
(format from the name or content; the last frame of a trajectory) and then pymatgen's, and refuses
what cannot be relaxed as a crystal: no atoms, no 3D periodic cell, partial occupancies, overlapping
atoms.

`build(spec)` makes the starting structure of one calibration build (see calibration_set.yaml):
``{"bulk": name, "crystalstructure": ..., "a": ...}`` (ase.build.bulk) or
``{"aflow": label, "species": {...}, "volume_per_atom": ...}`` (a prototype of the AFLOW library
shipped with pymatgen), or
``{"spacegroup": symbol or number, "lattice": [a, b, c, alpha, beta, gamma], "sites": [[el, x, y, z], ...]}``
(pymatgen's Structure.from_spacegroup with literature Wyckoff positions; the primitive cell is kept).
"""

from __future__ import annotations

import gzip
import json
import warnings
from functools import lru_cache
from pathlib import Path

import numpy as np

from screening.errors import InputError

MIN_DISTANCE = 0.5  # Angstrom: closer atoms mean a broken file, not a structure
MAX_ATOMS = 2000


def _one_line(text, limit: int = 160) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_structure(path) -> "ase.Atoms":  # noqa: F821
    """ASE Atoms of the crystal in `path`; InputError with one line if it is not a usable crystal."""
    path = Path(path).expanduser()
    if not path.exists():
        raise InputError(f"structure file not found: {path}")
    if not path.is_file():
        raise InputError(f"structure path is not a file: {path}")
    try:
        with open(path, "rb") as handle:
            head = handle.read(1 << 16)
    except OSError as exc:
        raise InputError(f"cannot read structure file {path}: {exc.strerror or exc}") from None
    if not head.strip():
        raise InputError(f"structure file {path} is empty")
    atoms, errors = None, []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            atoms = _read_ase(path)
        except InputError:
            raise
        except Exception as exc:  # every reader failure is a parse failure here
            errors.append(f"{type(exc).__name__}: {_one_line(exc, 100)}")
        if atoms is None:
            try:
                atoms = _read_pymatgen(path)
            except InputError:
                raise
            except Exception as exc:
                errors.append(f"{type(exc).__name__}: {_one_line(exc, 100)}")
    if atoms is None:
        reason = errors[0] if errors else "unknown format"
        raise InputError(f"cannot read a crystal structure from {path} (CIF, POSCAR, extxyz or another "
                         f"format ASE or pymatgen reads): {reason}")
    _check_atoms(atoms, path)
    return atoms


def _read_ase(path: Path):
    import ase.io

    atoms = ase.io.read(str(path))  # last frame of a multi-frame file
    if isinstance(atoms, list):
        atoms = atoms[-1]
    if path.suffix.lower() == ".cif":
        _check_cif_order(path)
    return atoms


def _check_cif_order(path: Path) -> None:
    """ASE reads partial occupancies of a CIF silently; a disordered structure cannot be relaxed."""
    from pymatgen.io.cif import CifParser

    try:
        structures = CifParser(str(path)).parse_structures(primitive=False)
    except Exception:
        return  # ASE read it; pymatgen's stricter parser is only a check here
    if structures and not structures[-1].is_ordered:
        raise InputError(f"{path} is a disordered structure (partial occupancies): give an ordered "
                         "approximant, e.g. from pymatgen's OrderDisorderedStructureTransformation")


def _read_pymatgen(path: Path):
    from pymatgen.core import Structure
    from pymatgen.io.ase import AseAtomsAdaptor

    structure = Structure.from_file(str(path))
    if not structure.is_ordered:
        raise InputError(f"{path} is a disordered structure (partial occupancies): give an ordered "
                         "approximant, e.g. from pymatgen's OrderDisorderedStructureTransformation")
    return AseAtomsAdaptor.get_atoms(structure)


def _check_atoms(atoms, path) -> None:
    n = len(atoms)
    if n == 0:
        raise InputError(f"{path} holds no atoms")
    if n > MAX_ATOMS:
        raise InputError(f"{path} has {n} atoms; at most {MAX_ATOMS} are supported")
    if not all(atoms.pbc) or abs(atoms.cell.volume) < 1e-6:
        raise InputError(f"{path} has no 3D periodic cell: a crystal structure (CIF, POSCAR, extxyz "
                         "with a Lattice) is needed")
    numbers = atoms.get_atomic_numbers()
    if np.any(numbers <= 0) or np.any(numbers > 118):
        raise InputError(f"{path} has atoms that are not elements (dummy or vacancy sites)")
    if not np.all(np.isfinite(atoms.get_positions())):
        raise InputError(f"{path} has non-finite atom positions")
    if n > 1:
        from ase.geometry import get_distances

        _, dist = get_distances(atoms.get_positions(), cell=atoms.cell, pbc=atoms.pbc)
        np.fill_diagonal(dist, np.inf)
        closest = float(dist.min())
        if closest < MIN_DISTANCE:
            i, j = np.unravel_index(np.argmin(dist), dist.shape)
            raise InputError(f"{path}: atoms {i} ({atoms[i].symbol}) and {j} ({atoms[j].symbol}) are "
                             f"{closest:.2f} A apart: overlapping atoms (a duplicated site?)")
    else:
        lengths = atoms.cell.lengths()
        if float(lengths.min()) < MIN_DISTANCE:
            raise InputError(f"{path}: the cell is too small ({lengths.min():.2f} A)")


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
    """ASE Atoms of one build spec (see the module doc); InputError for a bad spec."""
    if "bulk" in spec:
        from ase.build import bulk

        kwargs = {k: spec[k] for k in ("crystalstructure", "a", "b", "c", "alpha", "covera", "u",
                                       "orthorhombic", "cubic") if k in spec}
        try:
            return bulk(str(spec["bulk"]), **kwargs)
        except Exception as exc:
            raise InputError(f"cannot build {spec}: {_one_line(exc)}") from None
    if "aflow" in spec:
        from pymatgen.core import Structure
        from pymatgen.io.ase import AseAtomsAdaptor

        library = _aflow_library()
        label = str(spec["aflow"])
        if label not in library:
            raise InputError(f"AFLOW prototype {label!r} is not in pymatgen's library")
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            structure = Structure.from_dict(library[label])
            if "label" in structure.site_properties:
                structure.remove_site_property("label")
            if spec.get("species"):
                structure.replace_species({str(k): str(v) for k, v in spec["species"].items()})
            if spec.get("volume_per_atom"):
                structure.scale_lattice(float(spec["volume_per_atom"]) * len(structure))
        atoms = AseAtomsAdaptor.get_atoms(structure)
        atoms.info.clear()
        atoms.arrays.pop("label", None)
        return atoms
    if "spacegroup" in spec:
        return _from_spacegroup(spec)
    raise InputError(f"a build needs 'bulk', 'aflow' or 'spacegroup': {spec}")


def _from_spacegroup(spec: dict):
    """A crystal from its space group, lattice parameters and asymmetric unit (primitive cell)."""
    from pymatgen.core import Lattice, Structure
    from pymatgen.io.ase import AseAtomsAdaptor

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
        raise InputError(f"cannot build {spec}: {_one_line(exc)}") from None
    atoms = AseAtomsAdaptor.get_atoms(structure)
    atoms.info.clear()
    return atoms
