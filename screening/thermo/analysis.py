"""Entry points on a whole entry table: pick the chemical system, then call the pure functions."""

from __future__ import annotations

from pymatgen.core import Composition

from screening.data.table import ChemSys, EntryTable
from screening.errors import InputError
from screening.thermo.hull import HullSolver
from screening.thermo.reaction import InterfaceReaction, interface_reaction
from screening.thermo.stability import (DecompositionAtPotential, Stability,
                                        decomposition_at_potential, stability)
from screening.thermo.window import Window, electrochemical_window


def elements_of(*comps: Composition) -> tuple[str, ...]:
    return tuple(sorted({str(el) for comp in comps for el in comp.elements}))


def system_for(table: EntryTable, *comps: Composition, extra: tuple[str, ...] = ()) -> ChemSys:
    """Entries of the chemical system spanned by the compositions (plus `extra` elements)."""
    for comp in comps:
        missing = table.missing_elements(comp)
        if missing:
            raise InputError(f"the data has no entry for element {missing[0]} "
                             f"(in {comp.reduced_formula})")
    return table.chemsys(elements_of(*comps) + tuple(extra))


def analyse_stability(table: EntryTable, comp: Composition, energy: float | None = None) -> Stability:
    return stability(system_for(table, comp), comp, energy=energy)


def analyse_window(table: EntryTable, comp: Composition, as_is: bool = False,
                   energy: float | None = None, ion: str = "Li") -> tuple[Window, Stability]:
    chemsys = system_for(table, comp, extra=(ion,))
    solver = HullSolver(chemsys)
    return (electrochemical_window(chemsys, comp, ion, as_is=as_is, energy=energy, solver=solver),
            stability(chemsys, comp, solver=solver, energy=energy))


def analyse_pair(table: EntryTable, comp_a: Composition, comp_b: Composition,
                 potential: float | None = None, use_hull_energy: bool = True,
                 include_no_mixing_energy: bool = True) -> InterfaceReaction:
    extra = ("Li",) if potential is not None else ()
    chemsys = system_for(table, comp_a, comp_b, extra=extra)
    return interface_reaction(chemsys, comp_a, comp_b, potential=potential,
                              use_hull_energy=use_hull_energy,
                              include_no_mixing_energy=include_no_mixing_energy)


def analyse_decomposition_at(table: EntryTable, comp: Composition, potential: float,
                             energy: float | None = None) -> DecompositionAtPotential:
    chemsys = system_for(table, comp, extra=("Li",))
    return decomposition_at_potential(chemsys, comp, potential, energy=energy)
