"""Reading user entry files: pymatgen entry JSON (optionally compressed) and VASP vasprun.xml.

``read_user_file(path)`` returns (format, sha256, items): one `UserItem` per accepted entry, its kind
("formation": a formation energy per cell, used as given; "computed": an absolute DFT energy that
screening.data.user_entries corrects and converts) and its composition in elements. What is accepted
and refused is documented in screening.data.user_entries; every refusal is one line naming the file
and the entry.
"""

from __future__ import annotations

import json
import math
import warnings
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Composition, Element

from screening.data.snapshot import file_sha256
from screening.errors import DataError, InputError

MAX_MESSAGE = 240


@dataclass
class UserItem:
    """One accepted user entry."""

    where: str  # "file.json item 3 (Li2O)", for messages
    path: str
    comp: Composition  # element amounts of the cell
    kind: str  # "formation" or "computed"
    energy: float  # eV per cell: formation energy, or corrected absolute energy once processed
    entry: object = None  # the pymatgen entry (computed entries)


def one_line(text: str, limit: int = MAX_MESSAGE) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 3] + "..."


def _open(path: Path):
    from monty.io import zopen

    return zopen(path, mode="rb")


def read_user_file(path: Path) -> tuple[str, str, list[UserItem]]:
    """(format, sha256, items) of one user file."""
    if not path.exists():
        raise DataError(f"user entries file not found: {path}")
    if not path.is_file():
        raise DataError(f"user entries path is not a file: {path}")
    try:
        sha = file_sha256(path)
        with _open(path) as handle:
            head = handle.read(4096)
    except (OSError, EOFError, ValueError) as exc:
        raise DataError(f"cannot read user entries file {path}: {one_line(exc)}") from exc
    start = head.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start == b"<":
        if b"<modeling" not in head:
            raise DataError(f"{path} is an XML file but not a VASP vasprun.xml (no <modeling> element)")
        return "vasprun", sha, [_vasprun_item(path)]
    if start in (b"{", b"["):
        return "json", sha, _json_items(path)
    raise DataError(f"{path} is neither a pymatgen entries JSON file nor a VASP vasprun.xml")


def _json_items(path: Path) -> list[UserItem]:
    from monty.json import MontyDecoder

    try:
        with _open(path) as handle:
            raw = json.loads(handle.read().decode("utf-8"))
    except (OSError, EOFError, ValueError) as exc:  # JSONDecodeError and UnicodeDecodeError too
        raise DataError(f"corrupt or unreadable user entries file {path}: {one_line(exc)}") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            objects = MontyDecoder().process_decoded(raw)
    except Exception as exc:
        raise DataError(f"user entries file {path} holds objects that are not pymatgen entries: "
                        f"{one_line(exc, 120)}") from exc
    if isinstance(objects, dict) and "entries" in objects and "@class" not in objects:
        objects = objects["entries"]
    if not isinstance(objects, list):
        objects = [objects]
    if not objects:
        raise DataError(f"user entries file {path} holds no entries")
    return [_entry_item(obj, path, k if len(objects) > 1 else None) for k, obj in enumerate(objects)]


def _vasprun_item(path: Path) -> UserItem:
    from lxml import etree
    from pymatgen.io.vasp.outputs import Vasprun

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = Vasprun(str(path), parse_dos=False, parse_eigen=False)
    except etree.XMLSyntaxError as exc:
        raise DataError(f"{path} is a truncated or malformed vasprun.xml (did the run finish?): "
                        f"{one_line(exc, 100)}") from exc
    except Exception as exc:
        raise DataError(f"cannot parse vasprun {path}: {type(exc).__name__}: {one_line(exc, 120)}") from exc
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            if not run.ionic_steps:
                raise DataError(f"{path} has no ionic step: the run did not finish")
            electronic, ionic = run.converged_electronic, run.converged_ionic
            entry = run.get_computed_entry(inc_structure=True)
    except DataError:
        raise
    except Exception as exc:
        raise DataError(f"cannot read the result of vasprun {path}: {type(exc).__name__}: "
                        f"{one_line(exc, 120)}") from exc
    if not electronic:
        raise DataError(f"{path}: the last ionic step did not converge electronically (NELM reached)")
    if not ionic:
        raise DataError(f"{path}: the relaxation did not converge (NSW ionic steps reached)")
    return _entry_item(entry, path, None)


def _entry_item(entry, path: Path, k: int | None) -> UserItem:
    from pymatgen.analysis.phase_diagram import PDEntry
    from pymatgen.core.entries import ComputedEntry

    label = str(path) + (f" item {k}" if k is not None else "")
    gibbs = type(entry).__name__ == "GibbsComputedStructureEntry"
    if gibbs:
        raise InputError(f"{label}: a GibbsComputedStructureEntry holds a temperature-dependent Gibbs "
                         "energy; the data are 0 K DFT energies")
    if type(entry) is PDEntry:
        kind = "formation"
    elif isinstance(entry, ComputedEntry):
        energy_type = (entry.data or {}).get("energy_type")
        if energy_type in (None, "total", "absolute"):
            kind = "computed"
        elif energy_type == "formation":
            kind = "formation"
        else:
            raise InputError(f"{label}: unknown data['energy_type'] {energy_type!r} "
                             "(use 'formation' or leave it out)")
    else:
        raise DataError(f"{label} is a {type(entry).__name__}, not a pymatgen PDEntry, ComputedEntry "
                        "or ComputedStructureEntry")
    comp = _element_composition(entry.composition, label)
    where = f"{label} ({comp.reduced_formula})"
    try:
        energy = float(entry.energy if kind == "formation" else entry.uncorrected_energy)
    except (TypeError, ValueError):
        energy = math.nan
    if not math.isfinite(energy):
        raise DataError(f"{where} has a non-finite energy")
    return UserItem(where=where, path=str(path), comp=comp, kind=kind, energy=energy,
                 entry=entry if kind == "computed" else None)


def _element_composition(comp, label: str) -> Composition:
    try:
        elements = {}
        for sp, amount in comp.items():
            element = sp if isinstance(sp, Element) else getattr(sp, "element", None)
            if not isinstance(element, Element):
                raise ValueError(f"{sp} is not an element")
            elements[element.symbol] = elements.get(element.symbol, 0.0) + float(amount)
    except Exception as exc:
        raise DataError(f"{label}: unusable composition: {one_line(exc, 100)}") from None
    if not elements or any(not math.isfinite(a) or a <= 0 for a in elements.values()) \
            or not math.isfinite(sum(elements.values())):
        raise DataError(f"{label}: the composition must have positive, finite amounts")
    return Composition(elements)
