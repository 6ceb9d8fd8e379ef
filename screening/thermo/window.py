"""Electrochemical stability window vs Li/Li+ and the Li uptake/release profile (Zhu, He & Mo 2015).

The compound C is put on the line from its Li-free composition (t = 0) to Li metal (t = 1), t being
the Li atom fraction. Along that line the hull is convex and piecewise linear; on each segment the
phases at both ends coexist with a Li reservoir at one chemical potential, the segment's line value
at t = 1 (formation energies: Li metal is 0 eV, so V = -mu_Li). C's window is bounded by the
segments left (Li-poorer: oxidation) and right (Li-richer: reduction) of C's own point.

Default ("hull"): a metastable compound is first lowered onto the hull (Zhu 2015; Richards 2016).
If its composition is then inside a segment rather than at a vertex, its window has zero width.
"as_is": the compound keeps its own energy and the limits are the least favourable potentials at which
a Li uptake/release reaction to any hull vertex becomes downhill. If Li uptake is downhill above the
potential at which Li release already is, the compound decomposes at every potential: it has no window
(both limits None, `decomposes_at_every_potential`), the two onsets are kept, and its profile is the
equilibrium one of its composition (the hull's), ordered like every profile.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Composition

from screening.data.table import ChemSys
from screening.errors import InputError
from screening.thermo.hull import OWN_ENERGY, HullSolver, combine_gradients
from screening.thermo.hull_line import LineKink, line_vertices
from screening.thermo.reaction_text import clean_amount

T_TOL = 1e-9
ZERO_WIDTH_TOL = 1e-9  # V


@dataclass(frozen=True)
class ProfileStep:
    """At `potential` (V vs Li/Li+) the compound has gained (+) or lost (-) `li_change` Li per formula
    unit, forming `products` ({formula: formula units per formula unit of the compound})."""

    potential: float
    li_change: float
    products: dict[str, float]

    def as_dict(self) -> dict:
        return {"potential": self.potential, "li_change": self.li_change, "products": self.products}


@dataclass(frozen=True)
class Window:
    """Electrochemical window of one composition. Potentials in V vs Li/Li+; None where no limit exists
    (no Li to remove) or where there is no window at all (`decomposes_at_every_potential`).

    reduction_onset/oxidation_onset: only for a compound that decomposes at every potential, the
    potentials below/above which its own Li uptake/release is downhill (onset reduction > oxidation).
    """

    formula: str
    method: str
    reduction_potential: float | None
    oxidation_potential: float | None
    reduction_products: dict[str, float]
    oxidation_products: dict[str, float]
    profile: list[ProfileStep] = field(default_factory=list)
    decomposes_at_every_potential: bool = False
    reduction_onset: float | None = None
    oxidation_onset: float | None = None
    at_hull_vertex: bool = True  # False: the composition lies inside a segment of the hull along Li
    # first order, {row (OWN_ENERGY: the given energy): d V / d energy (V per eV/atom)} of the
    # reduction and oxidation limits (or onsets); empty where the limit does not exist
    reduction_gradient: dict = field(default_factory=dict, compare=False, repr=False)
    oxidation_gradient: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def width(self) -> float | None:
        if self.reduction_potential is None or self.oxidation_potential is None:
            return None
        return self.oxidation_potential - self.reduction_potential

    @property
    def zero_width(self) -> bool:
        """Stable at one potential only (a composition inside a hull segment along the Li line)."""
        return self.width is not None and abs(self.width) <= ZERO_WIDTH_TOL

    def contains(self, potential: float, tol: float = 1e-6) -> bool:
        """Whether `potential` (V vs Li/Li+) lies within the window."""
        if self.decomposes_at_every_potential:
            return False
        low = self.reduction_potential if self.reduction_potential is not None else 0.0
        high = self.oxidation_potential if self.oxidation_potential is not None else float("inf")
        return low - tol <= potential <= high + tol

    def as_dict(self) -> dict:
        return {"formula": self.formula, "method": self.method,
                "reduction_potential": self.reduction_potential,
                "oxidation_potential": self.oxidation_potential,
                "reduction_products": self.reduction_products,
                "oxidation_products": self.oxidation_products,
                "decomposes_at_every_potential": self.decomposes_at_every_potential,
                "reduction_onset": self.reduction_onset, "oxidation_onset": self.oxidation_onset,
                "zero_width": self.zero_width, "at_hull_vertex": self.at_hull_vertex,
                "profile": [s.as_dict() for s in self.profile]}


class _LiLine:
    """The hull along Li-free(C) -> Li, with per-formula-unit bookkeeping for C."""

    def __init__(self, chemsys: ChemSys, comp: Composition, ion: str, solver: HullSolver | None):
        if ion not in chemsys.elements:
            raise InputError(f"{ion} is not in the system {'-'.join(chemsys.elements)}")
        if set(str(e) for e in comp.elements) == {ion}:
            raise InputError(f"the window of {ion} metal itself is not defined")
        self.chemsys, self.comp, self.ion = chemsys, comp, ion
        self.solver = solver or HullSolver(chemsys)
        j_ion = chemsys.elements.index(ion)
        full = self.solver.vector(comp)
        self.t0 = float(full[j_ion])
        start = full.copy()
        start[j_ion] = 0.0
        start /= start.sum()
        end = np.zeros_like(full)
        end[j_ion] = 1.0
        self.kinks: list[LineKink] = line_vertices(self.solver, start, end)
        self.t = np.array([k.t for k in self.kinks])
        self.f = np.array([k.point.energy for k in self.kinks])
        reduced = comp.reduced_composition  # per formula unit of the reduced formula, as reported
        self.host_atoms = reduced.num_atoms - reduced[ion]  # non-ion atoms per formula unit
        self.ion_atoms = reduced[ion]

    def segment_mu(self, k: int) -> float:
        """Ion chemical potential (eV) of the segment between vertices k and k+1."""
        slope = (self.f[k + 1] - self.f[k]) / (self.t[k + 1] - self.t[k])
        return float(self.f[k] + slope * (1.0 - self.t[k]))

    def vertex_gradient(self, k: int) -> dict[int, float]:
        return self.solver.energy_gradient(self.kinks[k].point)

    def segment_gradient(self, k: int) -> dict[int, float]:
        """d segment_mu(k) / d entry energies."""
        weight = (1.0 - self.t[k]) / (self.t[k + 1] - self.t[k])
        return combine_gradients((1.0 - weight, self.vertex_gradient(k)),
                                 (weight, self.vertex_gradient(k + 1)))

    def li_change(self, t: float) -> float:
        """Ion atoms gained per formula unit of comp on going to Li fraction t."""
        return clean_amount(self.host_atoms * t / (1.0 - t) - self.ion_atoms)

    def products(self, k: int) -> dict[str, float]:
        """Phases at vertex k in formula units per formula unit of comp."""
        kink = self.kinks[k]
        total_atoms = self.host_atoms / (1.0 - kink.t)
        point = self.solver.drop_traces(kink.point)
        out = {}
        for row, amount in zip(point.phases, point.amounts):
            name = self.chemsys.names[row]
            out[name] = clean_amount(amount * total_atoms / self.chemsys.atoms_per_formula[row])
        return dict(sorted(out.items(), key=lambda p: (-round(p[1], 6), p[0])))

    def locate(self) -> tuple[int | None, int]:
        """(vertex index at t0 or None, index of the segment containing t0 or left of the vertex)."""
        hits = np.flatnonzero(np.abs(self.t - self.t0) < T_TOL)
        if hits.size:
            return int(hits[0]), int(hits[0]) - 1
        return None, int(np.searchsorted(self.t, self.t0) - 1)


def electrochemical_window(chemsys: ChemSys, comp: Composition, ion: str = "Li",
                           as_is: bool = False, energy: float | None = None,
                           solver: HullSolver | None = None) -> Window:
    """Window of `comp` vs the ion's metal (V), its products beyond each limit and its profile.

    as_is: keep the compound's own energy (its lowest entry, or `energy` eV/atom) instead of the hull.
    """
    line = _LiLine(chemsys, comp, ion, solver)
    vertex, left = line.locate()
    if vertex is not None:
        ox_vertex = vertex - 1 if vertex > 0 else None
        red_vertex = vertex + 1
        mu_ox = line.segment_mu(vertex - 1) if vertex > 0 else None
        mu_red = line.segment_mu(vertex)
    else:
        ox_vertex, red_vertex = left, left + 1
        mu_ox = mu_red = line.segment_mu(left)
    hull = (mu_red, red_vertex, mu_ox, ox_vertex)
    hull_gradients = (line.segment_gradient(red_vertex - 1),
                      line.segment_gradient(ox_vertex) if ox_vertex is not None else {})
    if not as_is:
        return _window(line, "hull", hull, hull, at_hull_vertex=vertex is not None,
                       gradients=hull_gradients)
    own = energy if energy is not None else chemsys.energy_of(comp)
    if own is None:
        raise InputError(f"{comp.reduced_formula} has no entry in the data: its window can only be "
                         "computed on the hull")
    limits = _as_is_limits(line, own)
    gradients = _as_is_gradients(line, limits, {OWN_ENERGY if energy is not None
                                                else chemsys.index_of(comp.reduced_formula): 1.0})
    mu_red, _, mu_ox, _ = limits
    if mu_ox is not None and -mu_red > -mu_ox + ZERO_WIDTH_TOL:
        # Li uptake downhill above the potential where Li release already is: no potential is safe
        return _window(line, "as_is", limits, hull, at_hull_vertex=vertex is not None, everywhere=True,
                       gradients=gradients)
    return _window(line, "as_is", limits, limits, at_hull_vertex=vertex is not None, gradients=gradients)


def _as_is_gradients(line: _LiLine, limits, own_gradient: dict[int, float]):
    """d mu / d energies of the as-is limits (Li uptake/release lines through the own energy)."""
    _, red_vertex, _, ox_vertex = limits
    t0 = line.t0
    red = {}
    if red_vertex is not None:
        weight = (1.0 - t0) / (line.t[red_vertex] - t0)
        red = combine_gradients((1.0 - weight, own_gradient), (weight, line.vertex_gradient(red_vertex)))
    ox = {}
    if ox_vertex is not None:
        t = line.t[ox_vertex]
        weight = (1.0 - t) / (t0 - t)
        ox = combine_gradients((1.0 - weight, line.vertex_gradient(ox_vertex)), (weight, own_gradient))
    return red, ox


def _window(line: _LiLine, method: str, limits, profile_limits, at_hull_vertex: bool,
            everywhere: bool = False, gradients=({}, {})) -> Window:
    """The Window for limits (mu_red, red_vertex, mu_ox, ox_vertex); the profile from profile_limits."""
    mu_red, red_vertex, mu_ox, ox_vertex = limits
    last = len(line.kinks) - 1
    # Next to Li metal the compound is stable down to 0 V; beyond it Li plates: no new phases.
    reduction_products = line.products(red_vertex) if red_vertex < last else {}
    oxidation_products = line.products(ox_vertex) if ox_vertex is not None else {}
    return Window(
        formula=line.comp.reduced_formula, method=method,
        reduction_potential=None if everywhere else _volts(mu_red),
        oxidation_potential=None if everywhere else _volts(mu_ox),
        reduction_products=reduction_products, oxidation_products=oxidation_products,
        profile=_profile(line, *profile_limits),
        decomposes_at_every_potential=everywhere,
        reduction_onset=_volts(mu_red) if everywhere else None,
        oxidation_onset=_volts(mu_ox) if everywhere else None,
        at_hull_vertex=at_hull_vertex,
        # V = -mu
        reduction_gradient=combine_gradients((-1.0, gradients[0])),
        oxidation_gradient=combine_gradients((-1.0, gradients[1])) if mu_ox is not None else {})


def _profile(line: _LiLine, mu_red, red_vertex, mu_ox, ox_vertex) -> list[ProfileStep]:
    """Steps outward from the compound: Li uptake from red_vertex, Li release from ox_vertex.

    Ordered from the highest potential down (the most Li released first).
    """
    last = len(line.kinks) - 1
    profile = []
    for k in range(red_vertex, last):
        mu = mu_red if k == red_vertex else line.segment_mu(k - 1)
        profile.append(ProfileStep(_volts(mu), line.li_change(line.t[k]), line.products(k)))
    if ox_vertex is not None:
        for k in range(ox_vertex, -1, -1):
            mu = mu_ox if k == ox_vertex else line.segment_mu(k)
            profile.append(ProfileStep(_volts(mu), line.li_change(line.t[k]), line.products(k)))
    profile.sort(key=lambda s: (-s.potential, s.li_change))
    return profile


def _volts(mu: float | None) -> float | None:
    return None if mu is None else float(-mu) + 0.0


def _as_is_limits(line: _LiLine, own: float):
    """Limits for the compound at its own energy: the first Li uptake/release reaction to go downhill."""
    t0 = line.t0
    mu_red, red_vertex = np.inf, None
    mu_ox, ox_vertex = None, None
    for k, (t, f) in enumerate(zip(line.t, line.f)):
        if t > t0 + T_TOL:
            mu = own + (f - own) * (1.0 - t0) / (t - t0)
            if mu < mu_red - 1e-12:
                mu_red, red_vertex = mu, k
        elif t < t0 - T_TOL:
            mu = f + (own - f) * (1.0 - t) / (t0 - t)
            if mu_ox is None or mu > mu_ox + 1e-12:
                mu_ox, ox_vertex = mu, k
    return float(mu_red), red_vertex, mu_ox, ox_vertex
