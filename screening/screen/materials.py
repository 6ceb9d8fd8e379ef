"""The materials library (screening/library/materials.yaml) and name resolution.

Wherever a formula is accepted, so is a library name or alias (case-insensitive), optionally with a
state: `NMC811@charged` (the charged composition at the library's top-of-charge potential),
`NMC811@4.3V` (charged composition, open to Li at 4.3 V), `Li0.5CoO2@4.2V` (any formula at a potential).
"""

from __future__ import annotations

import difflib
import functools
import math
import re
from dataclasses import dataclass, field
from importlib import resources

import yaml
from pymatgen.core import Composition

from screening.chem import parse_formula
from screening.errors import InputError

ROLES = {"cathodes": "cathode", "electrolytes": "electrolyte", "anodes": "anode", "coatings": "coating"}
_STATE = re.compile(r"^(?P<base>[^@]+)@(?P<state>charged|[-+]?[0-9]+(?:\.[0-9]+)?\s*V?)$", re.IGNORECASE)


@dataclass(frozen=True)
class LibraryMaterial:
    """One named material of the library; potentials in V vs Li/Li+."""

    name: str
    role: str
    formula: str
    note: str = ""
    aliases: tuple[str, ...] = ()
    potential: float | None = None  # operating potential (top of charge for a cathode)
    charged: str | None = None  # delithiated composition at `potential`
    proxy: str | None = None  # inorganic stand-in for a hybrid film with no DFT entry


@dataclass(frozen=True)
class Material:
    """A resolved material: what to compute with, and what to tell the user about it."""

    label: str
    composition: Composition
    role: str | None = None
    potential: float | None = None  # set only by an explicit state (@charged, @4.3V)
    operating_potential: float | None = None
    library_name: str | None = None
    proxy_for: str | None = None
    note: str = ""
    notes: list[str] = field(default_factory=list)
    spec: str = ""  # as typed, e.g. NMC811@charged

    def as_dict(self) -> dict:
        return {"label": self.label, "formula": self.composition.reduced_formula,
                "composition": self.composition.formula, "role": self.role,
                "library_name": self.library_name, "potential": self.potential,
                "operating_potential": self.operating_potential, "proxy_for": self.proxy_for,
                "notes": self.notes}


@functools.lru_cache(maxsize=1)
def library() -> dict[str, LibraryMaterial]:
    """All library materials by name."""
    text = resources.files("screening.library").joinpath("materials.yaml").read_text(encoding="utf-8")
    raw = yaml.safe_load(text)
    out: dict[str, LibraryMaterial] = {}
    for section, role in ROLES.items():
        for item in raw.get(section, []):
            material = LibraryMaterial(
                name=item["name"], role=role, formula=item["formula"], note=item.get("note", ""),
                aliases=tuple(item.get("aliases", [])), potential=item.get("potential"),
                charged=item.get("charged"), proxy=item.get("proxy"))
            key = material.name if material.name not in out else f"{material.name}-{role}"
            out[key] = material
    return out


@functools.lru_cache(maxsize=1)
def _lookup() -> dict[str, LibraryMaterial]:
    table: dict[str, LibraryMaterial] = {}
    for key, material in library().items():
        for name in (key, material.name, *material.aliases):
            table.setdefault(name.lower(), material)
    return table


def find_library_material(name: str) -> LibraryMaterial | None:
    return _lookup().get(name.strip().lower())


def _squash(name: str) -> str:
    """A name without case, spaces or punctuation: 'NMC 811', 'nmc-811' -> 'nmc811'."""
    return re.sub(r"[^0-9a-z]", "", name.lower())


def closest_library_names(name: str, limit: int = 3) -> list[str]:
    """Library names closest to `name`, best first (only the one whose name or alias it is, but for
    case, spaces and punctuation); empty when nothing is close."""
    by_key: dict[str, str] = {}
    for material in library().values():
        for alias in (material.name, *material.aliases):
            by_key.setdefault(_squash(alias), material.name)
    key = _squash(name)
    if not key:
        return []
    if key in by_key:
        return [by_key[key]]
    found: list[str] = []
    for match in difflib.get_close_matches(key, list(by_key), n=limit * 3, cutoff=0.6):
        if by_key[match] not in found:
            found.append(by_key[match])
    return found[:limit]


def _not_a_name(text: str, reason: str) -> InputError:
    """The error for a name that is neither a formula nor a library name, with the closest names."""
    close = closest_library_names(text)
    hint = (f"did you mean {' or '.join(close)}? see `screening library`" if close
            else "not a library name either: see `screening library`")
    return InputError(f"{reason}; {hint}")


def by_role(role: str) -> list[LibraryMaterial]:
    return [m for m in library().values() if m.role == role]


def _parse_state(state: str) -> float | str:
    if state.lower() == "charged":
        return "charged"
    value = float(state.rstrip("Vv").strip())
    if not math.isfinite(value) or not -5.0 <= value <= 10.0:
        raise InputError(f"potential {value} V vs Li/Li+ is outside -5..10 V")
    return value


def resolve_material(text: str) -> Material:
    """A library name, alias or formula, with an optional @state, as a Material."""
    if not isinstance(text, str) or not text.strip():
        raise InputError("empty material name")
    text = text.strip()
    if len(text) > 200:
        raise InputError(f"material name too long ({len(text)} characters)")
    state = None
    spec = text
    match = _STATE.match(text)
    if "@" in text:
        if not match:
            raise InputError(f"cannot read the state in {text!r}: use NAME@charged or NAME@<volts>V")
        text, state = match.group("base").strip(), _parse_state(match.group("state"))
    entry = find_library_material(text)
    if entry is None:
        if state == "charged":
            raise _not_a_name(text, f"{text!r} is not a library material, so it has no charged state")
        try:
            comp = parse_formula(text)
        except InputError as exc:
            raise _not_a_name(text, str(exc)) from None
        label = text if state is None else f"{text}@{state:g}V"
        return Material(label, comp, potential=state if state is not None else None, spec=spec)
    notes = []
    if entry.proxy:
        notes.append(f"{entry.name} has no DFT entry: computed with the inorganic proxy {entry.proxy}")
    formula, potential = entry.formula, None
    if state is not None:
        if entry.charged is None:
            if state == "charged":
                raise InputError(f"library material {entry.name} has no charged state")
        else:
            formula = entry.charged
        potential = entry.potential if state == "charged" else state
        if potential is None:
            raise InputError(f"library material {entry.name} has no operating potential")
    label = text if state is None else f"{text}@{potential:g}V"
    return Material(label, parse_formula(formula), role=entry.role, potential=potential,
                    operating_potential=entry.potential, library_name=entry.name,
                    proxy_for=entry.name if entry.proxy else None, note=entry.note, notes=notes,
                    spec=spec)
