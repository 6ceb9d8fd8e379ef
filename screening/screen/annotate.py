"""Per-candidate properties for the rankings: band gap, electronic insulation, ALD evidence, practicality
flags, cost, supply concentration, Li fraction and measured Li-ion conductivity.

The property files are optional: `PropertySet.load()` keeps going without any of them (the columns are
then null) and says which are missing in `notes` (one line each, for the CLI and provenance).
"""

from __future__ import annotations

from dataclasses import dataclass, field

from pymatgen.core import Composition

from screening.data.properties import (BandGaps, GapValue, key_of, load_band_gaps, load_conductivities)
from screening.screen.ald import AldList, load_ald_list
from screening.screen.interphase import DEFAULT_GAP_THRESHOLD
from screening.screen.practicality import (cost_per_kg, hhi_production, is_intermetallic, li_fraction,
                                           practicality_flags)

PROPERTY_COLUMNS = ("band_gap", "band_gap_method", "electronic_insulator", "ald_evidence", "ald_reason",
                    "practicality_flags", "practicality_reasons", "cost_per_kg", "hhi_production",
                    "li_fraction", "li_conductivity", "li_conductivity_bound")


@dataclass
class PropertySet:
    """The loaded property files (each may be None) and the band-gap threshold (eV, PBE)."""

    gaps: BandGaps | None = None
    ald: AldList | None = None
    conductivities: dict | None = None
    gap_threshold: float = DEFAULT_GAP_THRESHOLD
    notes: list[str] = field(default_factory=list)

    @classmethod
    def load(cls, energies=None, gap_threshold: float = DEFAULT_GAP_THRESHOLD) -> "PropertySet":
        """The default property files beside the energy file; a missing one is a note, not an error."""
        gaps = load_band_gaps(energies=energies)
        ald = load_ald_list()
        conductivities = load_conductivities()
        notes = [f"no {what} file: the {cols} columns are null and their criteria off" for what, cols, value in (
            ("band-gap", "band_gap/electronic_insulator/interphase", gaps),
            ("ALD list", "ald_evidence", ald),
            ("Li-conductivity", "li_conductivity", conductivities)) if value is None]
        return cls(gaps, ald, conductivities, gap_threshold, notes)

    def gap_of(self, comp, decomposition=None) -> GapValue:
        """A composition's gap: its own where the data has one, else the smallest of its hull
        decomposition's phases (a hypothetical composition); GapValue(None, 'none') without gap data."""
        if self.gaps is None:
            return GapValue(None, "none")
        comp = Composition(comp)
        own = self.gaps.lookup(comp)
        if own.gap is not None or not decomposition:
            if own.gap is None and is_intermetallic(comp):
                return GapValue(0.0, "intermetallic")
            return own
        return self.gaps.of_phases(list(decomposition))

    def provenance(self) -> dict:
        return {"band_gaps": self.gaps.provenance() if self.gaps else None,
                "ald_list": self.ald.provenance() if self.ald else None,
                "li_conductivity": {"compositions": len(self.conductivities)} if self.conductivities else None,
                "gap_threshold_eV": self.gap_threshold, "notes": list(self.notes)}


def candidate_properties(comp, properties: PropertySet, decomposition=None) -> dict:
    """The PROPERTY_COLUMNS of one composition. `decomposition`: its hull decomposition ({formula:
    amount}) when the data has no entry for it."""
    comp = Composition(comp)
    gap = properties.gap_of(comp, decomposition)
    flags = practicality_flags(comp)
    row = {
        "band_gap": gap.gap, "band_gap_method": gap.method,
        "electronic_insulator": None if gap.gap is None else bool(gap.gap >= properties.gap_threshold),
        "ald_evidence": None, "ald_reason": "",
        "practicality_flags": ",".join(flags), "practicality_reasons": "; ".join(flags.values()),
        "cost_per_kg": cost_per_kg(comp), "hhi_production": hhi_production(comp),
        "li_fraction": li_fraction(comp), "li_conductivity": None, "li_conductivity_bound": "",
    }
    if properties.ald is not None:
        row["ald_evidence"], row["ald_reason"] = properties.ald.evidence(comp)
    if properties.conductivities is not None:
        measured = properties.conductivities.get(key_of(comp))
        if measured is not None:
            row["li_conductivity"] = measured.value
            row["li_conductivity_bound"] = measured.bound or ""
    return row


# Reaction columns of a screen row whose products are judged for the interphase they form.
REACTION_LABELS = ("electrode", "electrode_open", "electrolyte", "electrolyte_open")


def _phases_of(text: str) -> list[str]:
    """Formulas of a products text ('0.5 Li2O + Li3P' -> ['Li2O', 'Li3P'])."""
    phases = []
    for part in text.split(" + ") if text else []:
        bits = part.split(" ")
        phases.append(bits[-1])
    return phases


def annotate_frame(frame, properties: PropertySet, magnitude: float | None = None):
    """The screen rows with PROPERTY_COLUMNS and, per reaction column, `interphase_<label>` (type) and
    `interphase_<label>_conducting` (phases), judged on the phases of every kink below the magnitude
    (`rxn_<label>_phases`, screen.evaluate; the most negative mixture's products for rows without
    it) when the most negative energy is below `magnitude` (eV/atom; per non-Li atom open to Li);
    `interphase_worst` over the four. A hypothetical candidate without a gap of its own takes the
    smallest gap of its hull phases (`decomposition` column). New columns; the frame is changed in place and returned."""
    import pandas as pd

    from screening.screen.interphase import DEFAULT_MAGNITUDE, TYPES, classify

    magnitude = DEFAULT_MAGNITUDE if magnitude is None else magnitude
    per_formula: dict[str, dict] = {}
    decompositions = frame["decomposition"] if "decomposition" in frame.columns else pd.Series([""] * len(frame))
    for formula, decomposition in zip(frame["formula"], decompositions):
        if formula not in per_formula:
            phases = {p: 1.0 for p in _phases_of(decomposition or "")}
            per_formula[formula] = candidate_properties(formula, properties, phases or None)
    for column in PROPERTY_COLUMNS:
        frame[column] = [per_formula[f][column] for f in frame["formula"]]
    gap_cache: dict = {}

    def gap_of(comp):
        key = comp.reduced_formula
        if key not in gap_cache:
            gap_cache[key] = properties.gap_of(comp).gap if properties.gaps is not None else None
        return gap_cache[key]

    judged: dict[tuple, tuple[str, str]] = {}
    worst = [0] * len(frame)
    for label in REACTION_LABELS:
        types, conducting = [], []
        opened = label.endswith("_open")
        # the phases of every kink below the magnitude (screen.evaluate); rows without them (an older
        # evaluate step) are judged on the most negative mixture's products
        phase_texts = (frame[f"rxn_{label}_phases"] if f"rxn_{label}_phases" in frame.columns
                       else [None] * len(frame))
        phase_lists = [(text.split(",") if text else []) if isinstance(text, str)
                       else [p for p in _phases_of(products if isinstance(products, str) else "")
                             if not (opened and p == "Li")]
                       for text, products in zip(phase_texts, frame[f"rxn_{label}_products"])]
        for i, (energy, phases) in enumerate(zip(frame[f"rxn_{label}"], phase_lists)):
            if energy is None or energy != energy or energy >= magnitude or not phases:
                kind, names = "stable", ""
            else:
                key = tuple(phases)
                if key not in judged:
                    found = classify(list(phases), gap_of, properties.gap_threshold)
                    judged[key] = (found.type, ",".join(found.conducting_phases))
                kind, names = judged[key]
            types.append(kind)
            conducting.append(names)
            worst[i] = max(worst[i], TYPES.index(kind))
        frame[f"interphase_{label}"] = types
        frame[f"interphase_{label}_conducting"] = conducting
    frame["interphase_worst"] = [TYPES[k] for k in worst]
    return frame
