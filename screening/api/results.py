"""Result objects of the Python API: dataclasses with the CLI's JSON keys as attributes, monty MSONable.

Energies in eV/atom (pair: eV per atom of the mixture closed, eV per non-Li atom open to Li), potentials
in V vs Li/Li+, kJ/mol per mol of the reaction as written. `.as_dict()`/`.from_dict()` round-trip them
(also through monty.json's MontyEncoder/MontyDecoder). A reaction is a pymatgen `Reaction` in
`.reaction`, its text in `.reaction_text` (the JSON key "reaction").
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from pathlib import Path

from monty.json import MSONable

from screening.api.reactions import make_reaction


def _pick(cls, payload: dict, **extra) -> dict:
    """The payload's values of cls's fields (the CLI's JSON keys), plus `extra`."""
    names = {f.name for f in dataclasses.fields(cls)}
    return {**{k: v for k, v in payload.items() if k in names}, **extra}


def _frame(rows: list[dict]):
    import pandas as pd

    return pd.DataFrame(rows)


def _phase_text(products: dict) -> str:
    from screening.interfaces.answer_text import format_phases

    return format_phases(products)


@dataclass
class StabilityResult(MSONable):
    """`screening stability`: energy above hull, decomposition energy (eV/atom), hull phases (atom
    fractions); `at_potential` the decomposition open to Li at the material's @V state."""

    formula: str
    e_above_hull: float | None
    decomposition_energy: float | None
    decomposition: dict
    in_data: bool
    energy: float | None
    hull_energy: float
    competing_phases: dict
    at_potential: dict | None = None
    band_gap: float | None = None
    band_gap_method: str | None = None
    electronic_insulator: bool | None = None
    material: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    @property
    def is_stable(self) -> bool:
        """On the hull (e_above_hull 0 within 1e-8 eV/atom)."""
        return self.e_above_hull is not None and self.e_above_hull <= 1e-8

    def to_frame(self):
        """Hull phases at the composition: formula, atom_fraction."""
        return _frame([{"formula": k, "atom_fraction": v} for k, v in self.decomposition.items()])


@dataclass
class WindowResult(MSONable):
    """`screening window`: reduction and oxidation limits (V vs Li/Li+, None where none exists), the
    phases beyond each and the Li uptake/release profile (list of {potential, li_change, products})."""

    formula: str
    reduction_potential: float | None
    oxidation_potential: float | None
    reduction_products: dict
    oxidation_products: dict
    profile: list
    e_above_hull: float | None = None
    method: str = "hull"
    decomposes_at_every_potential: bool = False
    reduction_onset: float | None = None
    oxidation_onset: float | None = None
    zero_width: bool = False
    potential: float | None = None
    potential_in_window: bool | None = None
    band_gap: float | None = None
    band_gap_method: str | None = None
    electronic_insulator: bool | None = None
    reduction_interphase: dict | None = None
    oxidation_interphase: dict | None = None
    material: dict = field(default_factory=dict)
    notes: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    @property
    def width(self) -> float | None:
        """oxidation - reduction potential (V), None without both limits."""
        if self.reduction_potential is None or self.oxidation_potential is None:
            return None
        return self.oxidation_potential - self.reduction_potential

    def to_frame(self):
        """The profile: potential (V vs Li/Li+), li_change (Li per formula unit), products (text)."""
        return _frame([{"potential": s["potential"], "li_change": s["li_change"],
                        "products": _phase_text(s["products"])} for s in self.profile])

    def to_window(self):
        """The thermo layer's Window (what the plots take)."""
        from screening.thermo.window import ProfileStep, Window

        return Window(self.formula, self.method, self.reduction_potential, self.oxidation_potential,
                      dict(self.reduction_products), dict(self.oxidation_products),
                      [ProfileStep(s["potential"], s["li_change"], dict(s["products"])) for s in self.profile],
                      self.decomposes_at_every_potential, self.reduction_onset, self.oxidation_onset,
                      not self.zero_width)

    def plot(self, path) -> Path:
        """Write the Li uptake/release profile (PNG or SVG) to `path`; returns the path."""
        from screening.interfaces.plots import plot_voltage_profile

        return plot_voltage_profile(self.to_window(), path)


@dataclass
class KinkResult(MSONable):
    """One kink of a pair's reaction energy: mixing ratio x (atom fraction of the first material),
    reaction energy (the pair's unit) and in kJ/mol of the reaction as written, its reaction.

    `reactant_coefficients`/`products` are formula units of the reaction as written (first reactant 1);
    empty reactants mean no reaction. Open to Li: `total_reaction_energy` counts each reactant's own
    reaction with the Li reservoir, `mutual_reaction_energy` does not (None when closed)."""

    mixing_ratio: float
    reaction_energy: float
    reaction_text: str
    products: dict
    reactant_coefficients: dict = field(default_factory=dict)
    reaction_energy_kj_per_mol: float = 0.0
    atoms_in_reaction: float = 0.0
    interphase_type: str | None = None
    total_reaction_energy: float | None = None
    mutual_reaction_energy: float | None = None

    @property
    def reacts(self) -> bool:
        return bool(self.reactant_coefficients)

    @property
    def reaction(self):
        """The balanced pymatgen Reaction (None where no energy is released)."""
        if not self.reactant_coefficients:
            return None
        return make_reaction(self.reactant_coefficients, self.products)


@dataclass
class PairResult(MSONable):
    """`screening pair`: the most negative reaction energy of A | B and every kink, closed (eV/atom of
    the mixture) or open to Li at `potential` (eV per non-Li atom; `energy_unit` says which)."""

    reactants: list
    potential: float | None
    energy_unit: str
    min_reaction_energy: float
    mixing_ratio: float
    reaction_text: str
    products: dict
    kinks: list
    reactant_alone: str | None = None
    interphase: dict | None = None
    mutual_only: bool = False
    own_energies: bool = False
    total_min_reaction_energy: float | None = None
    mutual_min_reaction_energy: float | None = None
    materials: list = field(default_factory=list)
    provenance: dict = field(default_factory=dict)

    @property
    def most_negative(self) -> KinkResult:
        """The kink of the most negative reaction energy (the lowest x on a tie)."""
        return min(self.kinks, key=lambda k: (k.reaction_energy, k.mixing_ratio))

    @property
    def reacts(self) -> bool:
        return self.most_negative.reacts

    @property
    def reaction(self):
        """The pymatgen Reaction at the most negative kink (None when the pair does not react)."""
        return self.most_negative.reaction

    @property
    def min_reaction_energy_kj_per_mol(self) -> float:
        """The most negative kink's energy in kJ per mol of its reaction as written."""
        return self.most_negative.reaction_energy_kj_per_mol

    def to_frame(self):
        """Kinks: mixing_ratio, reaction_energy, reaction_energy_kj_per_mol, total/mutual energies (open),
        interphase_type, reaction (text)."""
        rows = [{"mixing_ratio": k.mixing_ratio, "reaction_energy": k.reaction_energy,
                 "reaction_energy_kj_per_mol": k.reaction_energy_kj_per_mol,
                 "total_reaction_energy": k.total_reaction_energy,
                 "mutual_reaction_energy": k.mutual_reaction_energy,
                 "interphase_type": k.interphase_type, "reaction": k.reaction_text} for k in self.kinks]
        return _frame(rows)

    def to_interface_reaction(self):
        """The thermo layer's InterfaceReaction (what the plots take)."""
        from screening.thermo.reaction import InterfaceReaction, Kink

        kinks = [Kink(k.mixing_ratio, k.reaction_energy, k.reaction_text, dict(k.products)) for k in self.kinks]
        return InterfaceReaction(tuple(self.reactants), self.potential, self.energy_unit, kinks)

    def plot(self, path) -> Path:
        """Write reaction energy against mixing ratio (PNG or SVG) to `path`; returns the path."""
        from screening.interfaces.plots import plot_reaction

        return plot_reaction(self.to_interface_reaction(), path)


@dataclass
class DecompositionResult(MSONable):
    """`screening decompose`: per potential (V vs Li/Li+) the decomposition reaction energy open to Li
    (eV per atom of the compound, negative = released, 0 = stable), Li change per formula unit, phases."""

    formula: str
    decomposition: list
    material: dict = field(default_factory=dict)
    provenance: dict = field(default_factory=dict)

    def at(self, potential: float) -> dict:
        """The entry at `potential` (V, within 1e-9)."""
        for item in self.decomposition:
            if abs(item["potential"] - potential) <= 1e-9:
                return item
        raise KeyError(potential)

    def to_frame(self):
        """potential, decomposition_reaction_energy, li_change, products (text)."""
        return _frame([{**{k: v for k, v in item.items() if k != "products"},
                        "products": _phase_text(item["products"])} for item in self.decomposition])


RESULT_CLASSES = (StabilityResult, WindowResult, KinkResult, PairResult, DecompositionResult)
