"""Does an interphase passivate? Its type from the band gaps of the phases a reaction forms.

After Zhu, He & Mo (2015), Richards et al. (2016) and Nolan et al. (2018): an interphase of electronic
insulators stops growing once it is thick enough to block electrons (`passivating`); one with an
electronic conductor among its phases keeps growing (`mixed-conducting`). Types:
- `stable`: no reaction (or none more negative than the magnitude threshold);
- `passivating`: every product phase has a band gap of at least the threshold (default 0.5 eV PBE,
  Xiao et al. 2019);
- `mixed-conducting`: at least one product conducts electrons (gap below the threshold, or a metal or
  intermetallic); the conducting phases are named;
- `unknown`: no conductor among the products, but at least one has no band gap in the data.
Over several reactions (the kinks of a pair), the worst type counts, in that order: mixed-conducting,
unknown, passivating, stable.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache

from pymatgen.core import Composition

from screening.screen.practicality import is_intermetallic

DEFAULT_GAP_THRESHOLD = 0.5  # eV, PBE (Xiao et al., Joule 2019)
DEFAULT_MAGNITUDE = -0.025  # eV/atom: reactions less negative than this are not judged
TYPES = ("stable", "passivating", "unknown", "mixed-conducting")  # from best to worst


@dataclass(frozen=True)
class Interphase:
    """The type of an interphase, the phases that conduct electrons and each product's gap (eV)."""

    type: str
    conducting_phases: tuple[str, ...] = ()
    product_band_gaps: dict = field(default_factory=dict)

    def as_dict(self) -> dict:
        return {"type": self.type, "conducting_phases": list(self.conducting_phases),
                "product_band_gaps": dict(self.product_band_gaps)}

    def describe(self) -> str:
        """The type in words, with the conducting phases."""
        if self.type == "mixed-conducting":
            return f"mixed-conducting ({', '.join(self.conducting_phases)} conduct electrons)"
        if self.type == "unknown":
            missing = [f for f, gap in self.product_band_gaps.items() if gap is None]
            return f"unknown (no band gap for {', '.join(missing)})"
        if self.type == "passivating":
            return "passivating (every product is an electronic insulator)"
        return "stable (no reaction)"


def _gap_value(value):
    return getattr(value, "gap", value)


def _facts(comp: Composition) -> tuple[Composition, str, bool]:
    return comp, comp.reduced_formula, is_intermetallic(comp)


@lru_cache(maxsize=65536)
def _product_facts(formula: str) -> tuple[Composition, str, bool]:
    """(composition, reduced formula, intermetallic?) of a product formula. A screen's hundreds of
    thousands of reactions name a few thousand phases; parsing each once made ranking the full matrix
    several times faster."""
    return _facts(Composition(formula))


def classify(products, gap_of, threshold: float = DEFAULT_GAP_THRESHOLD) -> Interphase:
    """The interphase formed by `products` (formulas or Compositions; empty: no reaction). `gap_of(comp)`
    gives a gap in eV (a number, a GapValue or None)."""
    gaps: dict[str, float | None] = {}
    conducting: list[str] = []
    for product in products:
        comp, formula, intermetallic = (_product_facts(product) if isinstance(product, str)
                                        else _facts(Composition(product)))
        if formula in gaps:
            continue
        gap = _gap_value(gap_of(comp))
        gaps[formula] = None if gap is None else float(gap)
        if intermetallic or (gap is not None and gap < threshold):
            conducting.append(formula)
    if not gaps:
        return Interphase("stable")
    if conducting:
        return Interphase("mixed-conducting", tuple(sorted(conducting)), gaps)
    if any(gap is None for gap in gaps.values()):
        return Interphase("unknown", (), gaps)
    return Interphase("passivating", (), gaps)


def worst(interphases) -> Interphase:
    """The combined interphase of several reactions: the worst type; conducting phases and gaps merged."""
    interphases = list(interphases)
    if not interphases:
        return Interphase("stable")
    rank = max(TYPES.index(i.type) for i in interphases)
    conducting = sorted({p for i in interphases for p in i.conducting_phases})
    gaps: dict = {}
    for item in interphases:
        gaps.update(item.product_band_gaps)
    return Interphase(TYPES[rank], tuple(conducting), dict(sorted(gaps.items())))


def classify_reactions(reactions, gap_of, threshold: float = DEFAULT_GAP_THRESHOLD,
                       magnitude: float = DEFAULT_MAGNITUDE) -> Interphase:
    """The interphase over (reaction energy in eV/atom, products) pairs: only reactions more negative
    than `magnitude` are judged (a Li-richer mixture may form a metal where the most negative does not)."""
    judged = [classify(products, gap_of, threshold) for energy, products in reactions
              if energy is not None and energy < magnitude]
    return worst(judged)
