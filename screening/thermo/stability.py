"""Phase stability of one composition: energy above hull, decomposition energy and products.

Conventions follow pymatgen: the decomposition energy of a stable compound is its distance (negative)
to the hull built without every entry of its composition (get_decomp_and_phase_separation_energy);
for an unstable one it is the energy above hull. Energies in eV/atom.

Open to Li at a potential the quantity is a reaction energy instead, with the opposite sign: the
decomposition reaction energy of C + Li reservoir -> products, negative when energy is released
(Zhu, He & Mo 2015), 0 when C is stable at that potential.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pymatgen.core import Composition

from screening.data.table import ChemSys
from screening.thermo.hull import OWN_ENERGY, HullSolver, combine_gradients
from screening.thermo.reaction_text import clean_amount

STABLE_TOL = 1e-8  # eV/atom: at or below this above the hull counts as on the hull


@dataclass(frozen=True)
class Stability:
    """Stability of one composition. Energies eV/atom; decomposition as atom fractions."""

    formula: str
    in_data: bool
    energy: float | None  # lowest entry energy at this composition (formation energy, eV/atom)
    hull_energy: float
    e_above_hull: float | None  # None when the data has no entry at this composition
    decomposition_energy: float | None  # None for elements and for compositions not in the data
    decomposition: dict[str, float]  # phases of the hull at this composition (atom fractions)
    competing_phases: dict[str, float]  # for a stable compound: the hull without it
    # first order: {quantity: {row (OWN_ENERGY: the given energy): d quantity / d energy}}
    gradients: dict = field(default_factory=dict, compare=False, repr=False)

    @property
    def is_stable(self) -> bool:
        return self.e_above_hull is not None and self.e_above_hull <= STABLE_TOL

    def as_dict(self) -> dict:
        return {"formula": self.formula, "in_data": self.in_data, "energy": self.energy,
                "hull_energy": self.hull_energy, "e_above_hull": self.e_above_hull,
                "decomposition_energy": self.decomposition_energy,
                "decomposition": self.decomposition, "competing_phases": self.competing_phases}


def decomposition_dict(solver: HullSolver, point) -> dict[str, float]:
    """{reduced formula: atom fraction} of a hull point, largest first, ties by name."""
    pairs = sorted(zip(solver.phase_names(point), point.amounts), key=lambda p: (-round(p[1], 6), p[0]))
    return {name: clean_amount(amount) for name, amount in pairs}


def stability(chemsys: ChemSys, comp: Composition, solver: HullSolver | None = None,
              energy: float | None = None) -> Stability:
    """Stability of `comp` against the entries of `chemsys`.

    energy: eV/atom to use for the compound instead of its lowest entry (a user's own value).
    """
    solver = solver or HullSolver(chemsys)
    vector = solver.vector(comp)
    point = solver.solve(vector)
    name = comp.reduced_formula
    row = chemsys.index_of(name)
    in_data = row is not None
    own = chemsys.energy_of(comp) if energy is None else float(energy)
    decomposition = decomposition_dict(solver, point)
    hull_gradient = solver.energy_gradient(point)
    if own is None:
        return Stability(name, False, None, point.energy, None, None, decomposition, {},
                         {"hull_energy": hull_gradient})
    own_gradient = {row if energy is None else OWN_ENERGY: 1.0}
    above_gradient = combine_gradients((1.0, own_gradient), (-1.0, hull_gradient))
    e_above = max(own - point.energy, 0.0)
    if e_above > STABLE_TOL or len(comp.elements) == 1:
        gradients = {"hull_energy": hull_gradient, "e_above_hull": above_gradient}
        if len(comp.elements) > 1:
            gradients["decomposition_energy"] = above_gradient
        return Stability(name, in_data, own, point.energy, e_above,
                         e_above if len(comp.elements) > 1 else None, decomposition, {}, gradients)
    if row is None:  # a user's energy on the hull for a composition the data lacks: nothing to remove
        return Stability(name, False, own, point.energy, e_above, own - point.energy, {name: 1.0},
                         decomposition, {"hull_energy": hull_gradient, "e_above_hull": {},
                                         "decomposition_energy": above_gradient})
    reduced = solver.without([row])
    rest = reduced.solve(vector)
    below_gradient = combine_gradients((1.0, own_gradient), (-1.0, reduced.energy_gradient(rest)))
    # on the hull: the own entry is the decomposition, so hull and own move together (e_above stays 0)
    return Stability(name, True, own, point.energy, e_above, own - rest.energy,
                     {name: 1.0}, decomposition_dict(reduced, rest),
                     {"hull_energy": hull_gradient, "e_above_hull": {},
                      "decomposition_energy": below_gradient})


@dataclass(frozen=True)
class DecompositionAtPotential:
    """Zhu, He & Mo (2015): C + Li reservoir at V -> phase equilibria. reaction_energy: the
    decomposition reaction energy, eV per atom of C, negative = energy released, 0 when C is stable
    at V (so -e_above_hull where the products take up no Li: the opposite sign of pymatgen's
    decomposition energy). Li taken up (+) or released (-) per formula unit."""

    formula: str
    potential: float
    reaction_energy: float
    li_change: float
    products: dict[str, float]  # formula units per formula unit of C
    gradient: dict = field(default_factory=dict, compare=False, repr=False)  # of reaction_energy

    @property
    def reacts(self) -> bool:
        return self.reaction_energy < 0.0

    def as_dict(self) -> dict:
        return {"formula": self.formula, "potential": self.potential,
                "decomposition_reaction_energy": self.reaction_energy,
                "li_change": self.li_change, "products": self.products}


def decomposition_at_potential(chemsys: ChemSys, comp: Composition, potential: float, ion: str = "Li",
                               energy: float | None = None,
                               closed: HullSolver | None = None) -> DecompositionAtPotential:
    """Decomposition reaction energy of `comp` open to `ion` at `potential` V vs ion/ion+ (mu = -V eV).

    The compound's energy is `energy`, else its lowest entry, else its hull energy (eV/atom).
    """
    closed = closed or HullSolver(chemsys)
    own = energy if energy is not None else chemsys.energy_of(comp)
    if energy is not None:
        own_gradient = {OWN_ENERGY: 1.0}
    elif own is not None:
        own_gradient = {chemsys.index_of(comp.reduced_formula): 1.0}
    else:
        own_point = closed.solve(closed.vector(comp))
        own, own_gradient = own_point.energy, closed.energy_gradient(own_point)
    mu = -float(potential)
    grand = HullSolver(chemsys, ion, mu)
    x_ion = comp.get_atomic_fraction(ion)
    share = 1.0 - x_ion
    point = grand.solve(grand.vector(comp))
    own_grand = (own - mu * x_ion) / share
    delta = (point.energy - own_grand) * share
    gradient = combine_gradients((share, grand.energy_gradient(point)), (-1.0, own_gradient))
    if delta > -STABLE_TOL:  # LP round-off of a compound on the grand hull: stable, no reaction
        delta, gradient = 0.0, {}
    host_atoms = comp.reduced_composition.num_atoms * share
    products, ion_atoms = {}, 0.0
    j = chemsys.elements.index(ion)
    for row, amount in zip(point.phases, point.amounts):
        frac = chemsys.fractions[row]
        fu = amount * host_atoms / (chemsys.atoms_per_formula[row] * (1.0 - frac[j]))
        products[chemsys.names[row]] = clean_amount(fu)
        ion_atoms += fu * chemsys.atoms_per_formula[row] * frac[j]
    if delta == 0.0:
        products = {comp.reduced_formula: 1.0}
        ion_atoms = comp.reduced_composition[ion]
    products = dict(sorted(products.items(), key=lambda p: (-round(p[1], 6), p[0])))
    return DecompositionAtPotential(comp.reduced_formula, float(potential), float(delta) + 0.0,
                                    clean_amount(ion_atoms - comp.reduced_composition[ion]), products,
                                    gradient)
