"""Interfacial reaction energy between two compositions (Richards et al. 2016; pymatgen InterfacialReactivity).

The mixture x A + (1 - x) B (x: atom fraction of A) reacts to the hull at its composition. The reaction
energy E(x) = hull(x) - x e_A - (1 - x) e_B is piecewise linear in x; its vertices (kinks) are found
exactly along the line. Closed: eV per atom of mixture. Open to Li at potential V (mu_Li = -V):
grand potential per atom of the non-Li elements, with x still reported as the atom fraction of A in
the original (Li-containing) mixture, as pymatgen's GrandPotentialInterfacialReactivity does.

Reactant energies: the hull energy at each composition by default (pymatgen use_hull_energy=True), or
the lowest own entry (falling back to the hull when the data lacks the composition). Open to Li, each
reactant's own reaction with the Li reservoir counts by default (pymatgen include_no_mixing_energy=True),
so E(0) and E(1) can be negative; `include_no_mixing_energy=False` measures only the mutual reaction.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from pymatgen.core import Composition

from screening.data.table import ChemSys
from screening.errors import InputError
from screening.thermo.hull import HullSolver, combine_gradients
from screening.thermo.hull_line import LineKink, line_vertices
from screening.thermo.reaction_text import clean_amounts, format_reaction, normalise

NO_REACTION_TOL = 1e-9  # eV/atom: a kink at or above -this releases no energy
NO_REACTION = "no reaction"
# eV/atom: a reaction energy closer to zero than this is round-off of a pair that does not react (the LP
# lands anywhere on a flat line, and its last bits depend on earlier solves); it is reported as 0
ROUND_OFF = 1e-12


@dataclass(frozen=True)
class Kink:
    """A vertex of E(x): mixing ratio x (atom fraction of A), energy (eV/atom), the balanced reaction.

    Where no energy is released the reaction is "no reaction" and the products are the reactants.
    """

    mixing_ratio: float
    reaction_energy: float
    reaction: str
    products: dict[str, float]  # formula units, in the normalisation of `reaction`
    # first order at this mixing ratio: {row: d reaction_energy / d energy of the row}; None when the
    # reactant energies were given without their gradients
    gradient: dict | None = field(default=None, compare=False, repr=False)

    @property
    def reacts(self) -> bool:
        return self.reaction_energy < -NO_REACTION_TOL

    def as_dict(self) -> dict:
        return {"mixing_ratio": self.mixing_ratio, "reaction_energy": self.reaction_energy,
                "reaction": self.reaction, "products": self.products}


@dataclass(frozen=True)
class InterfaceReaction:
    """All kinks of the reaction energy between A and B and the most negative one."""

    reactants: tuple[str, str]
    potential: float | None  # V vs Li/Li+, None for a closed system
    energy_unit: str
    kinks: list[Kink]

    @property
    def most_negative(self) -> Kink:
        return min(self.kinks, key=lambda k: (k.reaction_energy, k.mixing_ratio))

    @property
    def reacts(self) -> bool:
        """False when no mixture is below its reactants (the pair is thermodynamically stable)."""
        return self.most_negative.reacts

    @property
    def reactant_alone(self) -> str | None:
        """The reactant whose own reaction (decomposing by itself at its own energy, or with the Li
        reservoir) is the most negative point, at x = 0 or 1; None when a mixture is."""
        best = self.most_negative
        if not best.reacts or 0.0 < best.mixing_ratio < 1.0:
            return None
        return self.reactants[0] if best.mixing_ratio == 1.0 else self.reactants[1]

    def as_dict(self) -> dict:
        best = self.most_negative
        return {"reactants": list(self.reactants), "potential": self.potential,
                "energy_unit": self.energy_unit,
                "min_reaction_energy": best.reaction_energy, "mixing_ratio": best.mixing_ratio,
                "reaction": best.reaction, "products": best.products,
                "reactant_alone": self.reactant_alone,
                "kinks": [k.as_dict() for k in self.kinks]}


def interface_reaction(chemsys: ChemSys, comp_a: Composition, comp_b: Composition,
                       potential: float | None = None, use_hull_energy: bool = True,
                       include_no_mixing_energy: bool = True, open_element: str = "Li",
                       closed_solver: HullSolver | None = None, open_solver: HullSolver | None = None,
                       minimum_only: bool = False,
                       reactant_energies: tuple[float, float] | None = None,
                       kinks_below: float | None = None,
                       reactant_gradients: tuple[dict, dict] | None = None) -> InterfaceReaction:
    """Reaction energy profile of A | B, closed or open to `open_element` at `potential` V.

    minimum_only: find only the most negative kink, by one LP (for screening); `kinks` then holds it alone.
    open_solver: a grand HullSolver already built for this system and potential (reused across pairs).
    reactant_energies: (e_A, e_B) already known in this call's units (closed: eV/atom; open: grand
    potential per non-Li atom), e.g. cached across a screen; skips computing them.
    kinks_below: only the kinks more negative than this (in this call's units) are sought, with the
    two ends (the screen's interphase phases); the others may be left out.
    reactant_gradients: the first-order gradients of reactant_energies (else the kinks carry none).
    """
    name_a, name_b = comp_a.reduced_formula, comp_b.reduced_formula
    if comp_a.reduced_composition == comp_b.reduced_composition:
        raise InputError(f"the two reactants are the same composition ({name_a})")
    closed = closed_solver or HullSolver(chemsys)

    def own_energy(comp: Composition) -> tuple[float, dict[int, float]]:
        """Closed-system energy of a reactant, eV/atom, and its gradient."""
        if not use_hull_energy:
            energy = chemsys.energy_of(comp)
            if energy is not None:
                return energy, {chemsys.index_of(comp.reduced_formula): 1.0}
        point = closed.solve(closed.vector(comp))
        return point.energy, closed.energy_gradient(point)

    if potential is None:
        solver = closed
        computed = (lambda: (own_energy(comp_a), own_energy(comp_b)))
        share_a = share_b = 1.0
        unit = "eV/atom"
    else:
        if not np.isfinite(potential):
            raise InputError(f"potential must be a finite number, got {potential}")
        for comp in (comp_a, comp_b):
            if set(str(e) for e in comp.elements) == {open_element}:
                raise InputError(f"{open_element} metal cannot be a reactant of a system open to {open_element}")
        mu = -float(potential)
        solver = open_solver or HullSolver(chemsys, open_element, mu)
        share_a = 1.0 - comp_a.get_atomic_fraction(open_element)
        share_b = 1.0 - comp_b.get_atomic_fraction(open_element)

        if not include_no_mixing_energy and not use_hull_energy:
            raise InputError("own energies only matter when each reactant's reaction with the Li reservoir "
                             "counts: drop --mutual-only or --own-energies")

        def grand(comp: Composition, share: float) -> tuple[float, dict[int, float]]:
            if include_no_mixing_energy:
                energy, gradient = own_energy(comp)
                return ((energy - mu * comp.get_atomic_fraction(open_element)) / share,
                        combine_gradients((1.0 / share, gradient)))
            point = solver.solve(solver.vector(comp))
            return point.energy, solver.energy_gradient(point)

        computed = (lambda: (grand(comp_a, share_a), grand(comp_b, share_b)))
        unit = f"eV/atom of non-{open_element} elements"
    if reactant_energies is None:
        (energy_a, gradient_a), (energy_b, gradient_b) = computed()
    else:
        energy_a, energy_b = reactant_energies
        gradient_a, gradient_b = reactant_gradients or (None, None)
    vec_a, vec_b = solver.vector(comp_a), solver.vector(comp_b)
    if (np.abs(vec_a - vec_b) <= 1e-12 + 1e-5 * np.abs(vec_b)).all():  # np.allclose(atol=1e-12), inlined
        # Same composition once Li is open (e.g. X and Li3X): only the reactants' own reactions remain.
        point = solver.solve(vec_a)
        vertices = [LineKink(0.0, point), LineKink(1.0, point)]
    elif minimum_only:
        t, point = solver.most_negative_mixture(vec_b, vec_a, energy_b, energy_a)
        vertices = [LineKink(t, point)]
    else:
        vertices = line_vertices(solver, vec_b, vec_a, only_below=None if kinks_below is None
                                 else (energy_b, energy_a, kinks_below))
    kinks = []
    for vertex in vertices:
        t = vertex.t
        energy = vertex.point.energy - t * energy_a - (1.0 - t) * energy_b
        # x in the solver's normalisation -> atom fraction of A in the original mixture
        x = (t / share_a) / (t / share_a + (1.0 - t) / share_b)
        if energy < -NO_REACTION_TOL:
            reaction, products = _reaction(chemsys, solver.drop_traces(vertex.point), t, comp_a, comp_b,
                                           share_a, share_b, open_element if potential is not None else None)
        else:
            reaction, products = NO_REACTION, _reactants(t, comp_a, comp_b, share_a, share_b)
        gradient = None
        if gradient_a is not None and gradient_b is not None:
            gradient = combine_gradients((1.0, solver.energy_gradient(vertex.point)),
                                         (-t, gradient_a), (-(1.0 - t), gradient_b))
        if abs(energy) < ROUND_OFF:
            energy = 0.0
        kinks.append(Kink(float(x), float(energy) + 0.0, reaction, products, gradient))
    return InterfaceReaction((name_a, name_b), None if potential is None else float(potential),
                             unit, kinks)


def _reactant_terms(t, comp_a, comp_b, share_a, share_b) -> list[tuple[str, float]]:
    """Formula units of A and B in the mixture at solver parameter t (unnormalised)."""
    def fu_atoms(comp: Composition, share: float) -> float:
        return comp.reduced_composition.num_atoms * share  # solver-normalised atoms per formula unit

    return [(comp_a.reduced_formula, t / fu_atoms(comp_a, share_a)),
            (comp_b.reduced_formula, (1.0 - t) / fu_atoms(comp_b, share_b))]


def _reactants(t, comp_a, comp_b, share_a, share_b) -> dict[str, float]:
    """The reactants as the products of "no reaction", normalised as a reaction would be."""
    reactants, _ = normalise(_reactant_terms(t, comp_a, comp_b, share_a, share_b), [])
    return clean_amounts(dict(reactants))


def _reaction(chemsys, point, t, comp_a, comp_b, share_a, share_b, open_element):
    """Balanced reaction at one kink, with formula-unit coefficients (first reactant normalised to 1)."""
    reactants = _reactant_terms(t, comp_a, comp_b, share_a, share_b)
    products = []
    ion_balance = 0.0
    for row, amount in zip(point.phases, point.amounts):
        frac = chemsys.fractions[row]
        natoms = chemsys.atoms_per_formula[row]
        if open_element is not None:
            share = 1.0 - frac[chemsys.elements.index(open_element)]
            coeff = amount / (natoms * share)
            ion_balance += coeff * natoms * frac[chemsys.elements.index(open_element)]
        else:
            coeff = amount / natoms
        products.append((chemsys.names[row], coeff))
    if open_element is not None:
        for comp, coeff in ((comp_a, reactants[0][1]), (comp_b, reactants[1][1])):
            ion_balance -= coeff * comp.reduced_composition[open_element]
        if ion_balance > 1e-9:
            reactants.append((open_element, ion_balance))
        elif ion_balance < -1e-9:
            products.append((open_element, -ion_balance))
    products.sort(key=lambda p: p[0])
    reactants, products = normalise(reactants, products)
    return format_reaction(reactants, products), clean_amounts({n: float(c) for n, c in products})
