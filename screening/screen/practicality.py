"""Would anyone deposit it? Practicality flags, raw-material cost and supply concentration of a composition.

Flags (each with its reason in words):
- `hydrous`: H with O (hydrates, hydroxides, acid salts: water loss, not stable in vacuum processing);
- `nitrate`, `oxyhalide` (perchlorate, chlorate, bromate, iodate): N, Cl, Br or I that the composition's
  cations cannot balance at their usual anion charge, so they must be oxidised (NO3-, ClO4-, ...);
- `peroxide`: more O than the cations can balance at -2 (peroxides, superoxides: strong oxidisers);
- `toxic`: an element of TOXIC;
- `precious_or_scarce`: an element of PRECIOUS_OR_SCARCE;
- `intermetallic`: no anion (metals and metalloids only: an electronic conductor).
The charge rule takes every other element at its highest known oxidation state (pymatgen), O at -2,
F at -1 and N, Cl, Br, I at their lowest: a composition these charges cannot balance needs the oxidised
form. Cost ($/kg) and HHI (Herfindahl-Hirschman index of production, 0-10,000) are pymatgen's
CostDBElements and HHIModel.
"""

from __future__ import annotations

import functools
import math

from pymatgen.core import Composition, Element

TOXIC = ("As", "Be", "Cd", "Hg", "Pb", "Tl", "Se", "Te")
PRECIOUS = ("Ir", "Os", "Rh", "Ru", "Pt", "Pd", "Au", "Re")
# heavy rare earths: crustal abundance below ~4 ppm, production concentrated in one country; Sc: no
# primary production
SCARCE = ("Tb", "Dy", "Ho", "Er", "Tm", "Yb", "Lu", "Sc")
PRECIOUS_OR_SCARCE = PRECIOUS + SCARCE
FLAG_NAMES = ("hydrous", "nitrate", "oxyhalide", "peroxide", "toxic", "precious_or_scarce", "intermetallic")
_CHARGE_TOLERANCE = 1e-6  # charge per formula unit


@functools.lru_cache(maxsize=None)
def _max_oxidation(symbol: str) -> int:
    states = Element(symbol).oxidation_states  # every known state: flag only what no charge can balance
    return max([s for s in states if s > 0], default=0)


def _fixed_anion_charge(symbol: str) -> int | None:
    """The charge at which an element counts as an anion in the charge rule, or None for a cation."""
    return {"O": -2, "F": -1, "N": -3, "Cl": -1, "Br": -1, "I": -1}.get(symbol)


def is_intermetallic(comp: Composition) -> bool:
    """Metals and metalloids only (no anion): an electronic conductor."""
    return all(el.is_metal or el.is_metalloid for el in comp.elements)


def practicality_flags(comp) -> dict[str, str]:
    """{flag: reason} for a composition (empty if none applies); see the module docstring."""
    comp = Composition(comp)
    amounts = {str(el): float(amt) for el, amt in comp.get_el_amt_dict().items()}
    flags: dict[str, str] = {}
    if "H" in amounts and "O" in amounts:
        flags["hydrous"] = "contains H with O (hydrate, hydroxide or acid salt)"
    supply = sum(amt * _max_oxidation(el) for el, amt in amounts.items() if _fixed_anion_charge(el) is None
                 and el != "H")
    demand = sum(-amt * _fixed_anion_charge(el) for el, amt in amounts.items()
                 if _fixed_anion_charge(el) is not None)
    if "O" in amounts and supply < demand - _CHARGE_TOLERANCE * comp.num_atoms and "H" not in amounts:
        if "N" in amounts:
            flags["nitrate"] = "N must be oxidised to balance the charges (nitrate or nitrite)"
        halogens = [el for el in ("Cl", "Br", "I") if el in amounts]
        if halogens:
            flags["oxyhalide"] = (f"{halogens[0]} must be oxidised to balance the charges "
                                  "(perchlorate, chlorate, bromate or iodate)")
        if "N" not in amounts and not halogens:
            flags["peroxide"] = "more O than the cations balance at O2- (peroxide or superoxide)"
    toxic = [el for el in TOXIC if el in amounts]
    if toxic:
        flags["toxic"] = f"contains {', '.join(toxic)}"
    scarce = [el for el in PRECIOUS_OR_SCARCE if el in amounts]
    if scarce:
        flags["precious_or_scarce"] = f"contains {', '.join(scarce)}"
    if len(amounts) > 1 and is_intermetallic(comp):
        flags["intermetallic"] = "no anion: an alloy or intermetallic (an electronic conductor)"
    return flags


@functools.lru_cache(maxsize=1)
def _cost_and_hhi_tables() -> tuple[dict[str, float], dict[str, float], float]:
    """({element: cost of one mol of its atoms, $}, {element: HHI of production}, kg per mol of 1 amu)
    from pymatgen's CostDBElements and HHIModel.

    Why not their CostAnalyzer.get_cost_per_kg and HHIModel.get_hhi_production per composition: the
    first builds a PhaseDiagram of the price entries for every composition (about 2.5 ms; 23 s of a
    whole default screen's 30 s ranking). With one price per element (CostDBElements' table) its
    lowest-cost decomposition is always the elements themselves, so the cost is the sum below; the
    numbers agree to 1e-12 relative on every candidate of the default screen
    (tests/test_properties.py)."""
    import warnings

    import scipy.constants as const
    from pymatgen.analysis.cost import CostDBElements
    from pymatgen.analysis.hhi import HHIModel
    from pymatgen.core.units import FloatWithUnit

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        costdb, hhi = CostDBElements(), HHIModel()
    cost_per_mol: dict[str, float] = {}
    for element in Element:
        prices = [entry.energy_per_atom for entry in costdb.get_entries([element])]
        if prices:
            cost_per_mol[element.symbol] = min(prices)
    production = {symbol: values[0] for symbol, values in hhi.symbol_hhip_hhir.items()}
    # kg per mol of a mass of 1 amu, as CostAnalyzer converts (comp.weight.to("kg") * N_A)
    kg_per_mol_of_amu = float(FloatWithUnit(1.0, "amu").to("kg")) * const.N_A
    return cost_per_mol, production, kg_per_mol_of_amu


def _amounts_and_masses(comp) -> tuple[dict[str, float], dict[str, float]]:
    comp = Composition(comp)
    amounts = {str(el): float(amt) for el, amt in comp.get_el_amt_dict().items()}
    return amounts, {symbol: amounts[symbol] * float(Element(symbol).atomic_mass) for symbol in amounts}


def cost_per_kg(comp) -> float | None:
    """Raw-material cost of the elements, $/kg (pymatgen CostDBElements); None if an element has no price."""
    prices, _, kg_per_mol_of_amu = _cost_and_hhi_tables()
    amounts, masses = _amounts_and_masses(comp)
    if not amounts or any(symbol not in prices for symbol in amounts):
        return None
    weight = sum(masses.values())  # amu per formula unit
    if not weight > 0:
        return None
    value = sum(amounts[symbol] * prices[symbol] for symbol in amounts) / (weight * kg_per_mol_of_amu)
    return value if math.isfinite(value) else None


def hhi_production(comp) -> float | None:
    """Herfindahl-Hirschman index of the elements' production (0-10,000; above 2,500 is concentrated),
    weighted by mass fraction (pymatgen HHIModel); None if an element has no value."""
    _, production, _ = _cost_and_hhi_tables()
    amounts, masses = _amounts_and_masses(comp)
    if not amounts or any(symbol not in production for symbol in amounts):
        return None
    weight = sum(masses.values())
    value = sum(production[symbol] * masses[symbol] / weight for symbol in amounts) if weight > 0 else math.nan
    return float(value) if math.isfinite(value) else None


def li_fraction(comp) -> float:
    """Atom fraction of Li."""
    return float(Composition(comp).get_atomic_fraction(Element("Li")))
