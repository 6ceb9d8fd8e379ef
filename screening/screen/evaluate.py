"""Metrics of candidates in cell stacks: stability, window, reactions with each neighbour.

Pure computation on an entry table; a task is a list of candidates, evaluated group by group (same
element set) so that each chemical system's entry matrix and LP models are built once per group.
Reaction energies in stacks are the most negative mixture (one LP each): closed, eV/atom; open to Li
at the stack potential, eV per non-Li atom, mutual reaction only (each reactant's own instability at
that potential is measured by its window, not counted twice).

First-order standard deviations (`<column>_std`, with an ErrorModel): of e_above_hull,
decomposition_energy, the window limits and the four reaction energies, from the gradients of their
optimal decompositions (screening.thermo.propagation); a hypothetical candidate's own energy carries
the model's error of a composition.

Interphase phases (`rxn_<label>_phases`): the product phases of every kink more negative than
INTERPHASE_MAGNITUDE (a Li-richer mixture can form a metal the most negative one does not). Walking
every kink costs several LPs, so it is done where the most negative energy is at or above
KINK_WALK_FLOOR; below it (a reaction that fails any reaction threshold down to the floor) the phases
are those of the most negative mixture.
"""

from __future__ import annotations

import itertools
import math

from pymatgen.core import Composition

from screening.data.table import EntryTable
from screening.screen.candidates import Candidate, anion_class
from screening.screen.interphase import DEFAULT_MAGNITUDE as INTERPHASE_MAGNITUDE
from screening.screen.pruning import stable_table
from screening.screen.stacks import Stack
from screening.thermo.blas_threads import one_blas_thread
from screening.thermo.error_model import ErrorModel, standard_deviation
from screening.thermo.hull import OWN_ENERGY, HullSolver
from screening.thermo.reaction import interface_reaction
from screening.thermo.stability import stability
from screening.thermo.window import electrochemical_window

WINDOW_TOL = 1e-6  # V
KINK_WALK_FLOOR = -0.1  # eV/atom (eV per non-Li atom open to Li): see the module docstring


def products_text(products: dict[str, float]) -> str:
    """'0.5 Li2O + Li3P' (formula units), '' for none."""
    parts = []
    for name, amount in products.items():
        coeff = f"{amount:.4g}"
        parts.append(name if coeff == "1" else f"{coeff} {name}")
    return " + ".join(parts)


class _Systems:
    """Chemical systems and LP models shared by the candidates of one group. `table`: the entries the
    systems are built from (the hull-stable ones for reactions: same hull, fewer columns)."""

    def __init__(self, table: EntryTable, energies: dict | None = None, error_model: ErrorModel | None = None):
        self.table = table
        self.error_model = error_model
        self._chemsys: dict[tuple, object] = {}
        self._solvers: dict[tuple, HullSolver] = {}
        # reactants' hull energies depend on nothing but the entries: shared across groups
        self._energies: dict[tuple, float] = {} if energies is None else energies

    def chemsys(self, elements):
        key = tuple(sorted(set(elements)))
        if key not in self._chemsys:
            self._chemsys[key] = self.table.chemsys(key)
        return self._chemsys[key]

    def solver(self, elements, potential: float | None = None) -> HullSolver:
        """The system's closed model, or its one model open to Li re-costed to `potential` (V): the
        columns do not depend on the potential, and a warm start beats a new model. A solver handed
        out open stays valid until this is asked for the same system at another potential."""
        key = (tuple(sorted(set(elements))), potential is not None)
        solver = self._solvers.get(key)
        if solver is None:
            cs = self.chemsys(key[0])
            solver = HullSolver(cs) if potential is None else HullSolver(cs, "Li", -potential)
            self._solvers[key] = solver
        elif potential is not None:
            solver.set_chempot(-potential)
        return solver

    def reactant_energy(self, comp: Composition, potential: float | None) -> float:
        """Hull energy of a reactant (eV/atom), or open to Li its grand hull energy per non-Li atom:
        the hull at a composition only involves its own elements, so its own small system suffices
        and the value is shared by every pair it takes part in."""
        key = (comp.reduced_formula, potential)
        if key not in self._energies:
            elements = {str(e) for e in comp.elements} | ({"Li"} if potential is not None else set())
            solver = self.solver(elements, potential)
            self._energies[key] = solver.energy(solver.vector(comp))
        return self._energies[key]

    def reactant_gradient(self, comp: Composition, potential: float | None) -> dict[str, float]:
        """{phase formula: d reactant_energy / d its energy}: by formula, since it is used in larger systems."""
        key = ("gradient", comp.reduced_formula, potential)  # shared across groups like the energies
        if key not in self._energies:
            elements = {str(e) for e in comp.elements} | ({"Li"} if potential is not None else set())
            solver = self.solver(elements, potential)
            gradient = solver.energy_gradient(solver.solve(solver.vector(comp)))
            self._energies[key] = {solver.chemsys.names[r]: v for r, v in gradient.items()}
        return self._energies[key]

    def std(self, chemsys, gradient, own_formula: str = "") -> float | None:
        """First-order standard deviation of a quantity with this gradient over chemsys' rows."""
        return standard_deviation(self.error_model, lambda k: own_formula if k == OWN_ENERGY
                                  else chemsys.names[k], gradient)


def _reaction_energy(systems: _Systems, coating: Candidate, other: Composition, potential: float | None):
    """(most negative reaction energy, products text, mixing ratio, interphase phases text, its
    first-order standard deviation or None) or Nones when undefined; the phases text joins the sorted product formulas of the kinks below
    INTERPHASE_MAGNITUDE with ',' (Li left out open to Li: it goes to the reservoir).

    Both reactants at their hull energies: a hypothetical film's penalty is in its energy above hull,
    not counted again as a reaction."""
    if coating.composition.reduced_composition == other.reduced_composition:
        return None, "", None, "", None
    if potential is not None and {str(e) for e in other.elements} == {"Li"}:
        return None, "", None, "", None
    elements = set(coating.elements) | {str(e) for e in other.elements} | {"Li"}
    cs = systems.chemsys(elements)
    closed = systems.solver(elements)
    open_solver = systems.solver(elements, potential) if potential is not None else None
    energies = (systems.reactant_energy(coating.composition, potential),
                systems.reactant_energy(other, potential))
    arguments = dict(potential=potential, include_no_mixing_energy=False, closed_solver=closed,
                     open_solver=open_solver, reactant_energies=energies)
    gradients = None
    if systems.error_model is not None:
        gradients = tuple({cs.index_of(name): v for name, v in systems.reactant_gradient(comp, potential).items()}
                          for comp in (coating.composition, other))
        if any(None in g for g in gradients):  # a reactant's hull phase outside this system's rows
            gradients = None
    result = interface_reaction(cs, coating.composition, other, minimum_only=True,
                                reactant_gradients=gradients, **arguments)
    best = result.most_negative
    sd = systems.std(cs, best.gradient) if gradients is not None else None
    products = best.products if result.reacts else {}
    kinks = [best]
    if KINK_WALK_FLOOR <= best.reaction_energy < INTERPHASE_MAGNITUDE:
        kinks = interface_reaction(cs, coating.composition, other, kinks_below=INTERPHASE_MAGNITUDE,
                                   **arguments).kinks
    phases = sorted({name for kink in kinks if kink.reaction_energy < INTERPHASE_MAGNITUDE
                     for name in kink.products if not (potential is not None and name == "Li")})
    # no reaction: every mixture is as good as none, so no mixing ratio (the LP's pick would be arbitrary)
    ratio = best.mixing_ratio if result.reacts else None
    return best.reaction_energy, products_text(products), ratio, ",".join(phases), sd


def evaluate_candidates(table: EntryTable, candidates: list[Candidate], stacks: list[Stack],
                        max_e_above_hull: float | None = None, prune: bool = True,
                        error_model: ErrorModel | None = None) -> list[dict]:
    """One row per (candidate, stack), in candidate order then stack order.

    prune: build the reactions' LPs on the hull-stable entries only (screening.screen.pruning; the
    same hull energies, decompositions and kinks with far fewer columns); the windows too, since the
    hull along the Li line is made of hull-stable entries. Stability uses every entry of the
    candidate's own system either way (a stable candidate's decomposition energy needs the entries it
    makes unstable). error_model: add first-order `<column>_std` columns."""
    with one_blas_thread():
        return _evaluate(table, candidates, stacks, max_e_above_hull, prune, error_model)


def _evaluate(table, candidates, stacks, max_e_above_hull, prune, error_model) -> list[dict]:
    reaction_table = stable_table(table) if prune else table
    rows: list[dict] = []
    ordered = sorted(enumerate(candidates), key=lambda ic: (ic[1].elements, ic[0]))
    by_index: dict[int, list[dict]] = {}
    energies: dict = {}
    for elements, group in itertools.groupby(ordered, key=lambda ic: ic[1].elements):
        systems = _Systems(table, energies if not prune else None, error_model)
        reactions = _Systems(reaction_table, energies, error_model) if prune else systems
        for index, candidate in group:
            by_index[index] = _evaluate_one(systems, reactions, candidate, stacks, max_e_above_hull)
    for index in range(len(candidates)):
        rows.extend(by_index[index])
    return rows


def _evaluate_one(systems: _Systems, reactions: _Systems, candidate: Candidate, stacks: list[Stack],
                  max_e_above_hull: float | None) -> list[dict]:
    comp = candidate.composition
    own_elements = set(candidate.elements) | {"Li"}
    cs = systems.chemsys(own_elements)
    solver = systems.solver(own_elements)
    energy = None
    # a composition the data lacks (grid point, SMACT composition, a library film) is hypothetical:
    # at its hull energy plus its penalty
    hypothetical = candidate.hypothetical or cs.energy_of(comp) is None
    if hypothetical:
        energy = solver.energy_of_composition(comp) + candidate.energy_penalty
    stab = stability(cs, comp, solver=solver, energy=energy)
    e_above = stab.e_above_hull
    if max_e_above_hull is not None and e_above is not None and e_above > max_e_above_hull + 1e-12:
        return []
    has_li = comp["Li"] > 0
    window_cs = reactions.chemsys(own_elements)
    if {str(e) for e in comp.elements} == {"Li"}:
        window = None
    else:
        # the hull along the Li line only involves hull-stable entries: the pruned system's LPs
        window = electrochemical_window(window_cs, comp, solver=reactions.solver(own_elements))
    base = {
        "candidate": candidate.name, "formula": candidate.formula,
        "sources": "+".join(candidate.sources), "hypothetical": hypothetical,
        "proxy_for": candidate.proxy_for or "", "n_elements": len(candidate.elements),
        "anion_class": anion_class(comp), "contains_li": has_li,
        "e_above_hull": e_above, "decomposition_energy": stab.decomposition_energy,
        "decomposition": " + ".join(sorted(stab.decomposition)),  # its hull phases (for a hypothetical's gap)
        "reduction_potential": window.reduction_potential if window else None,
        "oxidation_potential": window.oxidation_potential if window else None,
        "reduction_products": products_text(window.reduction_products) if window else "",
        "oxidation_products": products_text(window.oxidation_products) if window else "",
    }
    if systems.error_model is not None:
        name = comp.reduced_formula
        base["e_above_hull_std"] = systems.std(cs, stab.gradients.get("e_above_hull"), name)
        base["decomposition_energy_std"] = systems.std(cs, stab.gradients.get("decomposition_energy"), name)
        base["reduction_potential_std"] = systems.std(window_cs, window.reduction_gradient, name) if window else None
        base["oxidation_potential_std"] = (systems.std(window_cs, window.oxidation_gradient, name)
                                           if window and window.oxidation_potential is not None else None)
    rows = []
    done: dict[tuple, tuple] = {}  # stacks share electrodes, electrolytes and potentials
    for stack in stacks:
        row = {"stack": stack.name, "side": stack.side, "potential": stack.potential, **base}
        row.update(_window_fit(window, stack))
        for label, other, potential in (
                ("electrode", stack.electrode.composition, None),
                ("electrode_open", stack.electrode_charged.composition, stack.potential),
                ("electrolyte", stack.electrolyte.composition, None),
                ("electrolyte_open", stack.electrolyte.composition, stack.potential)):
            key = (other.reduced_formula, potential)
            if key not in done:
                done[key] = _reaction_energy(reactions, candidate, other, potential)
            e, products, x, phases, sd = done[key]
            row[f"rxn_{label}"] = e
            row[f"rxn_{label}_products"] = products
            row[f"rxn_{label}_x"] = x
            row[f"rxn_{label}_phases"] = phases
            if systems.error_model is not None:
                row[f"rxn_{label}_std"] = sd
        rows.append(row)
    return rows


def _window_fit(window, stack: Stack) -> dict:
    """Does the window contain the electrode potential? shortfall: V by which it misses (0 if it does)."""
    if window is None:
        return {"window_covers": False, "window_shortfall": math.inf}
    v, red, ox = stack.potential, window.reduction_potential, window.oxidation_potential
    shortfall = max(0.0, red - v, (v - ox) if ox is not None else 0.0)
    return {"window_covers": shortfall <= WINDOW_TOL, "window_shortfall": shortfall}


def bare_pairs(table: EntryTable, stacks: list[Stack], prune: bool = True) -> dict[str, dict]:
    """Electrode | electrolyte with no coating, per stack: closed and open reaction energies."""
    out = {}
    reaction_table = stable_table(table) if prune else table
    for stack in stacks:
        fake = Candidate(stack.electrolyte.label, stack.electrolyte.composition, ("stack",))
        systems = _Systems(reaction_table)
        e_closed, p_closed, _, _, _ = _reaction_energy(systems, fake, stack.electrode.composition, None)
        e_open, p_open, _, _, _ = _reaction_energy(systems, fake, stack.electrode_charged.composition,
                                                   stack.potential)
        out[stack.name] = {"bare_rxn": e_closed, "bare_rxn_products": p_closed,
                           "bare_rxn_open": e_open, "bare_rxn_open_products": p_open}
    return out

