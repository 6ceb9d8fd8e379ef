"""Reading user entry files: pymatgen entry JSON (optionally compressed) and VASP vasprun.xml.

``read_user_file(path)`` returns (format, sha256, items): one `UserItem` per accepted entry, its kind
("formation": a formation energy per cell, used as given; "computed": an absolute DFT energy that
screening.data.user_entries corrects and converts) and its composition in elements. What is accepted
and refused is documented in screening.data.user_entries; every refusal is one line naming the file
and the entry.
"""

from __future__ import annotations

import math
import os
import re
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

from pymatgen.core import Composition

from screening import safe_io
from screening.data.entry_checks import bytes_to_text, check_energy, decode_entries, element_composition
from screening.data.snapshot import file_sha256
from screening.errors import DataError, InputError

MAX_MESSAGE = 240
_XML_DECLARATION = re.compile(rb"^<\?xml[^>]*\?>")


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
    text = safe_io.redact(" ".join(str(text).split()))
    return text if len(text) <= limit else text[:limit - 3] + "..."


def read_user_file(path: Path) -> tuple[str, str, list[UserItem]]:
    """(format, sha256, items) of one user file.

    The file is read once, capped (screening.safe_io: decompressed size), and told apart by content:
    leading whitespace and a byte-order mark are skipped, UTF-16/32 text is accepted.
    """
    if not path.exists():
        raise DataError(f"user entries file not found: {path}")
    if not path.is_file():
        raise DataError(f"user entries path is not a file: {path}")
    data = safe_io.read_bytes(path, "user entries file")
    try:
        sha = file_sha256(path)  # of what is on disk, compressed or not
    except OSError as exc:
        raise DataError(f"cannot read user entries file {path}: {exc.strerror or exc}") from None
    xml = _as_utf8_xml(data)
    if xml is not None:
        return "vasprun", sha, [_vasprun_item(path, data, xml)]
    start = data.lstrip(b"\xef\xbb\xbf \t\r\n")[:1]
    if start in (b"{", b"[") or data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:2]:
        return "json", sha, _json_items(path, data)
    raise DataError(f"{path} is neither a pymatgen entries JSON file nor a VASP vasprun.xml")


def _as_utf8_xml(data: bytes) -> bytes | None:
    """The XML document in `data` without leading whitespace (UTF-16/32 re-encoded as UTF-8), or None
    if `data` is not XML."""
    text = None
    if data.startswith((b"\xff\xfe", b"\xfe\xff")) or (len(data) > 1 and 0 in data[:2]):
        try:
            text = bytes_to_text(data, "file")
        except InputError:
            return None
        if not text.lstrip("\ufeff \t\r\n").startswith("<"):
            return None
        body = text.lstrip("\ufeff \t\r\n").encode("utf-8")
        return _XML_DECLARATION.sub(b"", body, count=1)  # its encoding= no longer holds
    body = data.lstrip(b"\xef\xbb\xbf \t\r\n")
    return body if body.startswith(b"<") else None


def _json_items(path: Path, data: bytes) -> list[UserItem]:
    what = f"user entries file {path}"
    objects = decode_entries(data, what)
    if not objects:
        raise DataError(f"user entries file {path} holds no entries")
    return [_entry_item(obj, path, k if len(objects) > 1 else None) for k, obj in enumerate(objects)]


def _vasprun_item(path: Path, data: bytes, xml: bytes) -> UserItem:
    head = xml[:8192]
    if b"<modeling" not in head:
        raise DataError(f"{path} is an XML file but not a VASP vasprun.xml (no <modeling> element)")
    if b"<!DOCTYPE" in xml or b"<!ENTITY" in xml:  # vasprun.xml never has them; entities can read files
        raise InputError(f"{path}: a vasprun.xml with a DOCTYPE or ENTITY declaration is refused")
    if xml == data:
        return _parse_vasprun(path, path)
    # compressed, indented or UTF-16: pymatgen reads a plain UTF-8 copy (the capped bytes, not the file)
    fd, tmp = tempfile.mkstemp(prefix="screening-vasprun-", suffix=".xml")
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(xml)
        return _parse_vasprun(path, Path(tmp))
    finally:
        os.unlink(tmp)


def _parse_vasprun(path: Path, readable: Path) -> UserItem:
    from lxml import etree
    from pymatgen.io.vasp.outputs import Vasprun

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            run = Vasprun(str(readable), parse_dos=False, parse_eigen=False)
    except etree.XMLSyntaxError as exc:
        raise DataError(f"{path} is a truncated or malformed vasprun.xml (did the run finish?): "
                        f"{one_line(exc, 100)}") from exc
    except RecursionError:
        raise InputError(f"{path} is nested too deeply") from None
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
            raise InputError(f"{label}: unknown data['energy_type'] {safe_io.quote(energy_type, 40)} "
                             "(use 'formation' or leave it out)")
    else:
        raise DataError(f"{label} is a {type(entry).__name__}, not a pymatgen PDEntry, ComputedEntry "
                        "or ComputedStructureEntry")
    comp = element_composition(entry.composition, label)
    where = f"{label} ({comp.reduced_formula})"
    try:
        energy = float(entry.energy if kind == "formation" else entry.uncorrected_energy)
    except (TypeError, ValueError):
        energy = math.nan
    if not math.isfinite(energy):
        raise DataError(f"{where} has a non-finite energy")
    check_energy(energy / comp.num_atoms, where, "formation" if kind == "formation" else "absolute")
    return UserItem(where=where, path=str(path), comp=comp, kind=kind, energy=energy,
                    entry=entry if kind == "computed" else None)
