"""Candidate coating compositions: from the data, composition grids, charge-balanced spaces, the library.

Each source works alone or combined; duplicates (same reduced formula) merge, keeping every source.
"""

from __future__ import annotations

import itertools
import math
import os
import re
from dataclasses import dataclass, replace
from typing import Callable

from pymatgen.core import Composition, Element

from screening.data.table import EntryTable
from screening.errors import InputError
from screening.screen.materials import by_role, resolve_material

NOBLE_GASES = ("He", "Ne", "Ar", "Kr", "Xe", "Rn")
# Elements with no stable isotope (Tc, Pm, and Po onwards).
RADIOACTIVE = ("Tc", "Pm", "Po", "At", "Rn", "Fr", "Ra", "Ac", "Th", "Pa", "U", "Np", "Pu", "Am",
               "Cm", "Bk", "Cf", "Es", "Fm", "Md", "No", "Lr")
# Toxic or scarce/expensive elements a coating process would avoid (configurable).
TOXIC_OR_SCARCE = ("Be", "Cd", "Hg", "Tl", "Pb", "As", "Se", "Te", "Os", "Ir", "Ru", "Rh", "Pd",
                   "Pt", "Au", "Re", "Sc", "Ga", "In", "Ge", "Cs")
ANION_CLASSES = {"O": "oxide", "S": "sulfide", "Se": "selenide", "Te": "telluride", "F": "fluoride",
                 "Cl": "chloride", "Br": "bromide", "I": "iodide", "N": "nitride", "P": "phosphide",
                 "C": "carbide", "H": "hydride", "B": "boride", "Si": "silicide"}
HALIDES = {"fluoride", "chloride", "bromide", "iodide"}
ANION_FILTERS = frozenset(ANION_CLASSES.values()) | {"halide", "intermetallic", "element"}

# Bounds on what a config can make us enumerate (README, "Security and limits"); each can be raised
# with its environment variable. SMACT tries about 3 million stoichiometries a second here.
_LIMITS = {
    "SCREENING_MAX_ENUMERATION": 20_000_000,  # stoichiometries tried, all charge-balanced spaces together
    "SCREENING_MAX_CANDIDATES": 500_000,  # candidates of one screen (grid points included)
}


def enumeration_limit() -> int:
    """Most stoichiometries the charge-balanced spaces of one screen may try (SCREENING_MAX_ENUMERATION)."""
    return _limit("SCREENING_MAX_ENUMERATION")


def candidate_limit() -> int:
    """Most candidates one screen may have (SCREENING_MAX_CANDIDATES)."""
    return _limit("SCREENING_MAX_CANDIDATES")


def _limit(name: str) -> int:
    text = os.environ.get(name, "").strip()
    if not text:
        return _LIMITS[name]
    if not re.fullmatch(r"[0-9]{1,15}", text) or int(text) < 1:
        raise InputError(f"{name} must be a positive whole number, not {text[:40]!r}")
    return int(text)


@dataclass(frozen=True)
class Candidate:
    """A coating composition to screen. energy_penalty (eV/atom) is added above the hull for
    hypothetical (grid) compositions, e.g. an amorphisation penalty."""

    name: str
    composition: Composition
    sources: tuple[str, ...]
    hypothetical: bool = False
    energy_penalty: float = 0.0
    proxy_for: str | None = None
    note: str = ""

    @property
    def formula(self) -> str:
        return self.composition.reduced_formula

    @property
    def elements(self) -> tuple[str, ...]:
        return tuple(sorted(str(e) for e in self.composition.elements))

    def as_dict(self) -> dict:
        return {"name": self.name, "composition": self.composition.formula, "sources": list(self.sources),
                "hypothetical": self.hypothetical, "energy_penalty": self.energy_penalty,
                "proxy_for": self.proxy_for, "note": self.note}

    @classmethod
    def from_dict(cls, data: dict) -> "Candidate":
        return cls(data["name"], Composition(data["composition"]), tuple(data["sources"]),
                   data["hypothetical"], data["energy_penalty"], data["proxy_for"], data["note"])


# Elements that form oxyanions (PO4, BO3, SiO4, SO4, CO3, NO3, GeO4, AsO4, SeO4, TeO6, MoO4, WO4): an
# oxide with one of them is a polyanion oxide (Xiao et al. 2019 single out polyanion oxides as coatings).
POLYANION_FORMERS = frozenset({"B", "C", "N", "Si", "P", "S", "Ge", "As", "Se", "Te", "Mo", "W"})


def is_polyanion_oxide(comp: Composition) -> bool:
    """An oxide (O the most electronegative element) with an oxyanion-forming element (POLYANION_FORMERS)."""
    return anion_class(comp) == "oxide" and any(str(e) in POLYANION_FORMERS for e in comp.elements)


def anion_class(comp: Composition) -> str:
    """Class by the most electronegative element (Pauling): oxide, sulfide, chloride, ... or intermetallic."""
    if len(comp.elements) == 1:
        return "element"
    anion = max(comp.elements, key=lambda el: (el.X if not math.isnan(el.X) else 0.0, el.Z))
    return ANION_CLASSES.get(str(anion), "intermetallic")


@dataclass(frozen=True)
class DataFilter:
    """Filters on the compositions of the data set."""

    require: tuple[str, ...] = ("Li",)
    allow: tuple[str, ...] | None = None
    exclude: tuple[str, ...] = ()
    exclude_radioactive: bool = True
    exclude_noble_gases: bool = True
    exclude_toxic_scarce: bool = False
    toxic_scarce: tuple[str, ...] = TOXIC_OR_SCARCE
    anions: tuple[str, ...] | None = None
    max_elements: int | None = None
    min_elements: int = 2

    def excluded(self) -> set[str]:
        out = set(self.exclude)
        if self.exclude_radioactive:
            out |= set(RADIOACTIVE)
        if self.exclude_noble_gases:
            out |= set(NOBLE_GASES)
        if self.exclude_toxic_scarce:
            out |= set(self.toxic_scarce)
        return out

    def accepts(self, comp: Composition) -> bool:
        if not self.accepts_elements({str(e) for e in comp.elements}):
            return False
        if self.anions is not None:
            cls = anion_class(comp)
            wanted = set(self.anions)
            if cls not in wanted and not ("halide" in wanted and cls in HALIDES):
                return False
        return True

    def accepts_elements(self, symbols: set[str]) -> bool:
        """The filters on the element set alone (all but the anion class)."""
        if not set(self.require) <= symbols or symbols & self.excluded():
            return False
        if self.allow is not None and not symbols <= set(self.allow) | set(self.require):
            return False
        return not (len(symbols) < self.min_elements or (self.max_elements and len(symbols) > self.max_elements))


def from_data(table: EntryTable, data_filter: DataFilter) -> list[Candidate]:
    """Compositions of the data set passing the filters (energy above hull is filtered at evaluation)."""
    for symbol in (*data_filter.require, *(data_filter.allow or ())):
        if not _is_element(symbol):
            raise InputError(f"unknown element {symbol!r} in the candidate filter")
    out = []
    for i in range(len(table)):
        # the element set first, from the table's columns: a Composition for every row is seconds
        if not data_filter.accepts_elements(table.element_set(i)):
            continue
        comp = table.composition(i)
        if data_filter.accepts(comp):
            out.append(Candidate(comp.reduced_formula, comp, ("data",)))
    return out


def grid(ends: tuple[str, str], step: float, penalty: float = 0.0) -> list[Candidate]:
    """Points x A + (1 - x) B (formula units) along a pseudo-binary line, ends excluded, x a multiple
    of step; hypothetical, at their hull energy plus `penalty` eV/atom."""
    if not 0 < step < 1:
        raise InputError(f"grid step must be between 0 and 1, got {step}")
    if grid_size(step) > candidate_limit():
        raise InputError(f"a grid with step {step:g} has {grid_size(step)} points, more than the limit of "
                         f"{candidate_limit()} candidates (SCREENING_MAX_CANDIDATES)")
    if not math.isfinite(penalty) or penalty < 0:
        raise InputError(f"amorphisation penalty must be a non-negative number, got {penalty}")
    a, b = (resolve_material(e).composition for e in ends)
    if a.reduced_composition == b.reduced_composition:
        raise InputError(f"grid ends are the same composition ({a.reduced_formula})")
    out = []
    n = int(round(1.0 / step))
    for k in range(1, n):
        x = round(k * step, 10)
        if x >= 1:
            break
        comp = Composition({el: round(x * a[el] + (1 - x) * b[el], 10)
                            for el in set(a.elements) | set(b.elements)})
        comp = Composition({el: amt for el, amt in comp.items() if amt > 0})
        integer_formula, _ = comp.get_integer_formula_and_factor(max_denominator=1000)
        comp = Composition(integer_formula)  # LiAl3O5 rather than Li0.5Al1.5O2.5
        label = f"{x:g}{a.reduced_formula}-{1 - x:g}{b.reduced_formula}"
        out.append(Candidate(label, comp, ("grid",), hypothetical=True, energy_penalty=penalty,
                             note=f"hypothetical point on the {a.reduced_formula}-{b.reduced_formula} line"))
    return out


def grid_size(step: float) -> int:
    """Points of a grid with this step (ends excluded)."""
    return max(0, int(round(1.0 / step)) - 1)


def _oxidation_states(elements: tuple[str, ...], oxidation_states_set: str) -> list[list[int]]:
    from smact import Element as SmactElement

    for symbol in elements:
        if not _is_element(symbol):
            raise InputError(f"unknown element {symbol!r} in a charge-balanced space")
    states = []
    for symbol in elements:
        try:
            found = getattr(SmactElement(symbol), f"oxidation_states_{oxidation_states_set}")
        except (AttributeError, NameError, KeyError) as exc:
            raise InputError(f"no {oxidation_states_set} oxidation states for {symbol} (SMACT: {exc})") from None
        if not found:
            raise InputError(f"{symbol} has no {oxidation_states_set} oxidation states: it cannot be in a "
                             "charge-balanced space")
        states.append(list(found))
    return states


def charge_balanced_work(elements: tuple[str, ...], max_stoichiometry: int,
                         oxidation_states_set: str = "icsd24") -> int:
    """Stoichiometries SMACT tries for a space: its oxidation-state combinations x max_stoichiometry^n."""
    states = _oxidation_states(elements, oxidation_states_set)
    return math.prod(len(s) for s in states) * max_stoichiometry ** len(elements)


def check_enumeration(work: int, what: str) -> None:
    """Refuse an enumeration above SCREENING_MAX_ENUMERATION, saying how large it would be."""
    limit = enumeration_limit()
    if work > limit:
        raise InputError(f"{what} would try {work:.3g} stoichiometries (about {_duration(work / 3e6)}), more "
                         f"than the limit of {limit:.3g}: lower max_stoichiometry or use fewer elements "
                         "(SCREENING_MAX_ENUMERATION raises the limit)")


def _duration(seconds: float) -> str:
    for unit, size in (("years", 3.15e7), ("days", 86400), ("hours", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.2g} {unit}"
    return f"{seconds:.2g} s"


def charge_balanced(elements: tuple[str, ...], max_stoichiometry: int = 4,
                    oxidation_states_set: str = "icsd24", penalty: float = 0.0,
                    progress: Callable[[int], None] | None = None) -> list[Candidate]:
    """Charge-neutral, electronegativity-ordered compositions of exactly these elements (SMACT's
    neutral_ratios and pauling_test, as smact_filter applies them, with progress).

    Hypothetical (like grid points: hull energy plus `penalty` eV/atom) unless the data has them,
    in which case merging with the data source makes them real. `progress(n)` is told of every n
    stoichiometries tried."""
    from smact import Element as SmactElement
    from smact import neutral_ratios
    from smact.screening import pauling_test

    if isinstance(max_stoichiometry, bool) or not isinstance(max_stoichiometry, int) \
            or not 1 <= max_stoichiometry <= 12:
        raise InputError(f"max_stoichiometry must be 1..12, got {max_stoichiometry}")
    states = _oxidation_states(elements, oxidation_states_set)
    check_enumeration(charge_balanced_work(elements, max_stoichiometry, oxidation_states_set),
                      f"the charge-balanced space {'-'.join(elements)} up to {max_stoichiometry} atoms each")
    electronegativities = [SmactElement(s).pauling_eneg for s in elements]
    per_combination = max_stoichiometry ** len(elements)
    found: dict[tuple[int, ...], None] = {}
    for ox_states in itertools.product(*states):
        ratios = neutral_ratios(list(ox_states), threshold=max_stoichiometry)
        if ratios and pauling_test(ox_states, electronegativities):
            found.update(dict.fromkeys(ratios))
        if progress:
            progress(per_combination)
    out, seen = [], set()
    for stoich in found:
        comp = Composition(dict(zip(elements, stoich)))
        if comp.reduced_formula not in seen:
            seen.add(comp.reduced_formula)
            out.append(Candidate(comp.reduced_formula, comp.reduced_composition, ("charge_balanced",),
                                 hypothetical=True, energy_penalty=penalty,
                                 note="charge-balanced composition (SMACT)"))
    return sorted(out, key=lambda c: c.formula)


def space_elements(base: tuple[str, ...], metal: str) -> tuple[str, ...]:
    """The elements of the space base + metal (in order, once each)."""
    return tuple(dict.fromkeys((*base, metal)))


def charge_balanced_spaces(base: tuple[str, ...], metals: tuple[str, ...], max_stoichiometry: int = 4,
                           penalty: float = 0.0, progress: Callable[[int], None] | None = None):
    """Every space base + M (e.g. Li-M-O for M in metals)."""
    return [c for m in metals
            for c in charge_balanced(space_elements(base, m), max_stoichiometry, penalty=penalty,
                                     progress=progress)]


def from_library() -> list[Candidate]:
    """The library's coatings (hybrid films with their inorganic proxy, flagged)."""
    out = []
    for item in by_role("coating"):
        material = resolve_material(item.name)
        out.append(Candidate(item.name, material.composition, ("library",), proxy_for=material.proxy_for,
                             note=item.note))
    return out


def merge(*groups: list[Candidate]) -> list[Candidate]:
    """Union by reduced formula (a proxy keeps its own row), sources merged; sorted by formula."""
    merged: dict[tuple[str, str | None], Candidate] = {}
    for candidate in itertools.chain(*groups):
        key = (candidate.formula, candidate.proxy_for)
        if key in merged:
            old = merged[key]
            sources = tuple(sorted(set(old.sources) | set(candidate.sources)))
            name = old.name if "library" in old.sources or "library" not in candidate.sources else candidate.name
            hypothetical = old.hypothetical and candidate.hypothetical
            merged[key] = replace(old, name=name, sources=sources, hypothetical=hypothetical,
                                  energy_penalty=old.energy_penalty if hypothetical else 0.0,
                                  note=old.note if old.note and not old.hypothetical else candidate.note)
        else:
            merged[key] = candidate
    return sorted(merged.values(), key=lambda c: (c.formula, c.proxy_for or "", c.name))


def _is_element(symbol: str) -> bool:
    try:
        Element(symbol)
        return True
    except (ValueError, KeyError):
        return False

