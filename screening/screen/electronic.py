"""Electronic character of the single-material and pair results: band gaps and interphase types.

Used by the stability, window and pair commands (and the Python API) on top of the thermodynamic
results: the gap of a material (its own, or the smallest of its hull phases), the interphase beyond
each window limit, and the interphase of a pair judged over every kink more negative than the
magnitude threshold (see screen.interphase).
"""

from __future__ import annotations

from screening.screen.annotate import PropertySet
from screening.screen.interphase import DEFAULT_MAGNITUDE, Interphase, classify, classify_reactions

_PROPERTIES: dict = {}


def properties_for(table) -> PropertySet:
    """The property files for this table's data (ground states from its file when it is a snapshot CSV);
    loaded once per process."""
    path = getattr(table.source, "path", None)
    energies = path if path and str(path).endswith((".csv", ".csv.gz")) else None
    key = str(energies)
    if key not in _PROPERTIES:
        _PROPERTIES[key] = PropertySet.load(energies=energies)
    return _PROPERTIES[key]


def material_gap(properties: PropertySet, formula: str, decomposition: dict | None) -> dict:
    """{"band_gap", "band_gap_method", "electronic_insulator"} of a material."""
    value = properties.gap_of(formula, decomposition)
    insulator = None if value.gap is None else bool(value.gap >= properties.gap_threshold)
    return {"band_gap": value.gap, "band_gap_method": value.method, "electronic_insulator": insulator}


def window_interphases(properties: PropertySet, window) -> tuple[Interphase | None, Interphase | None]:
    """The interphases formed beyond the reduction and the oxidation limit (None where there is no limit
    or no band-gap data)."""
    if properties.gaps is None:
        return None, None
    reduction = (classify(window.reduction_products, properties.gap_of, properties.gap_threshold)
                 if window.reduction_potential is not None and window.reduction_products else None)
    oxidation = (classify(window.oxidation_products, properties.gap_of, properties.gap_threshold)
                 if window.oxidation_potential is not None and window.oxidation_products else None)
    return reduction, oxidation


def kink_interphases(properties: PropertySet, result) -> list[str | None]:
    """The interphase type of every kink of a pair ('stable' where it does not react)."""
    if properties.gaps is None:
        return [None] * len(result.kinks)
    return [classify(kink.products if kink.reacts else (), properties.gap_of, properties.gap_threshold).type
            for kink in result.kinks]


def pair_interphase(properties: PropertySet, result, magnitude: float = DEFAULT_MAGNITUDE) -> Interphase | None:
    """The interphase of a pair over all kinks more negative than `magnitude` (eV/atom, or eV per non-Li
    atom open to Li); None without band-gap data."""
    if properties.gaps is None:
        return None
    return classify_reactions([(k.reaction_energy, list(k.products)) for k in result.kinks if k.reacts],
                              properties.gap_of, properties.gap_threshold, magnitude)


def gap_text(gap: dict) -> str:
    """'3.396 eV (PBE; ground-state structure): electronic insulator' in words."""
    if gap["band_gap"] is None:
        return "unknown (no band gap in the data)"
    how = {"ground_state": "its ground-state structure", "ground_state_cell_median":
           "median of the structures sharing its ground state's cell formula",
           "polymorph_median": "median of its polymorphs", "decomposition": "smallest of its hull phases",
           "intermetallic": "an intermetallic"}.get(gap["band_gap_method"], gap["band_gap_method"])
    kind = "electronic insulator" if gap["electronic_insulator"] else "electronic conductor"
    return f"{gap['band_gap']:.3f} eV (PBE, {how}): {kind}"
