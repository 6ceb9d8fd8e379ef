"""An entry table from pymatgen entries held in memory (a list, or a PhaseDiagram's entries).

Energies are read as pymatgen's PhaseDiagram reads them: each entry's `energy` (for a ComputedEntry
the corrected energy) per atom, minus the lowest elemental entry of each of its elements per atom.
Total DFT energies with elemental entries and formation energies with elements at 0 both work; every
element needs an elemental entry. The result is the data layer's EntryTable (formation energies,
eV/atom, lowest polymorph per composition).
"""

from __future__ import annotations

import hashlib
import json
import math

from screening.data.entry_checks import FORMATION_RANGE, check_energy, element_composition
from screening.data.table import DataSource, EntryTable
from screening.errors import InputError

MAX_ENTRIES = 2_000_000  # entries in one in-memory list
KIND = "entries-memory"


def _accepted(entry) -> bool:
    from pymatgen.analysis.phase_diagram import PDEntry
    from pymatgen.core.entries import ComputedEntry

    if type(entry) is PDEntry:
        return True
    return isinstance(entry, ComputedEntry) and type(entry).__name__ != "GibbsComputedStructureEntry"


def entries_of(data) -> list:
    """The entries of a PhaseDiagram (not a grand one), or the items of a list/tuple."""
    from pymatgen.analysis.phase_diagram import GrandPotentialPhaseDiagram, PhaseDiagram

    if isinstance(data, GrandPotentialPhaseDiagram):
        raise InputError("a GrandPotentialPhaseDiagram's entries hold grand potentials: give the "
                         "PhaseDiagram it was built from")
    if isinstance(data, PhaseDiagram):
        return list(data.all_entries)
    if isinstance(data, (str, bytes, dict)) or not hasattr(data, "__iter__"):
        raise InputError(f"entries must be a list of pymatgen entries or a PhaseDiagram, not "
                         f"{type(data).__name__}")
    items = []
    for item in data:
        items.append(item)
        if len(items) > MAX_ENTRIES:
            raise InputError(f"more than {MAX_ENTRIES} entries")
    return items


def table_from_entries(data) -> EntryTable:
    """An EntryTable of formation energies (eV/atom) from pymatgen entries or a PhaseDiagram.

    Raises InputError (one line, naming the entry) for an item that is not a PDEntry, ComputedEntry
    or ComputedStructureEntry, a non-finite energy, an element without an elemental entry, or a
    formation energy outside the range the data layer accepts.
    """
    entries = entries_of(data)
    if not entries:
        raise InputError("no entries given")
    parsed = []
    for k, entry in enumerate(entries):
        label = f"entry {k}"
        if not _accepted(entry):
            raise InputError(f"{label} is a {type(entry).__name__}, not a pymatgen PDEntry, ComputedEntry "
                             "or ComputedStructureEntry")
        comp = element_composition(entry.composition, label)
        label = f"entry {k} ({comp.reduced_formula})"
        try:
            energy = float(entry.energy)
        except (TypeError, ValueError):
            energy = math.nan
        if not math.isfinite(energy):
            raise InputError(f"{label} has a non-finite energy")
        parsed.append((label, comp, energy / comp.num_atoms))
    refs: dict[str, float] = {}
    for _, comp, per_atom in parsed:
        if len(comp.elements) == 1:
            el = str(comp.elements[0])
            refs[el] = min(per_atom, refs.get(el, math.inf))
    rows = []
    for label, comp, per_atom in parsed:
        missing = [str(el) for el in comp.elements if str(el) not in refs]
        if missing:
            raise InputError(f"no elemental entry for {missing[0]} (needed by {label}): energies are taken "
                             "relative to the lowest elemental entries, as pymatgen's PhaseDiagram does")
        e_form = per_atom - sum(refs[str(el)] * amt for el, amt in comp.items()) / comp.num_atoms
        if len(comp.elements) == 1:
            e_form = max(e_form, 0.0)  # an element's lowest entry is its reference
        else:
            check_energy(e_form, label)
        rows.append((comp, float(e_form)))
    digest = hashlib.sha256(json.dumps(sorted((c.formula, round(e, 12)) for c, e in rows)).encode()).hexdigest()
    n = len(rows)
    source = DataSource(kind=KIND, path="<pymatgen entries in memory>", sha256=digest,
                        description=f"{n} pymatgen entr{'y' if n == 1 else 'ies'} given in Python "
                                    "(formation energies vs the lowest elemental entries)",
                        extra={"formation_range": list(FORMATION_RANGE)})
    return EntryTable.from_compositions(rows, source)
