"""The pruned engine (reactions and windows on the hull-stable entries, screening.screen.pruning)
against the full one (every entry), on real systems of the embedded data, users' entries and
hypothetical candidates: every value identical to 1e-9, every text equal."""

from __future__ import annotations

import json
import math
import random
import warnings

import numpy as np
import pytest
from pymatgen.analysis.phase_diagram import PDEntry
from pymatgen.core import Composition

from screening.data.user_entries import merge_user_entries
from screening.screen.candidates import Candidate
from screening.screen.evaluate import evaluate_candidates
from screening.screen.pruning import stable_table
from screening.screen.stacks import make_stack
from screening.thermo.analysis import analyse_stability
from conftest import pymatgen_pd

# the cathodes' and electrolytes' elements of the stacks below, and common coating cations
ELEMENTS = ("Li", "O", "S", "P", "Cl", "Ni", "Co", "Mn", "La", "Zr", "Al", "Nb", "B", "Ti")
STACKS = ({"electrode": "NMC811", "electrolyte": "LPSCl"}, {"electrode": "LCO", "electrolyte": "LLZO"},
          {"electrode": "Li", "electrolyte": "LLZO"})


@pytest.fixture(scope="module")
def small_table(table):
    """The embedded data restricted to ELEMENTS (its hull-stable set takes a second, not 40 s)."""
    keep = np.zeros(len(table), dtype=bool)
    keep[table.rows_within(ELEMENTS)] = True
    return table.subset(keep)


@pytest.fixture(scope="module")
def stacks():
    return [make_stack(dict(spec)) for spec in STACKS]


def assert_same_rows(pruned: list[dict], full: list[dict]) -> None:
    assert len(pruned) == len(full) and pruned
    for a, b in zip(pruned, full):
        assert a.keys() == b.keys()
        for key in a:
            x, y = a[key], b[key]
            if isinstance(x, float) and isinstance(y, float):
                if math.isnan(x) or math.isinf(x):
                    assert (math.isnan(x) and math.isnan(y)) or x == y, (a["candidate"], a["stack"], key, x, y)
                else:
                    assert abs(x - y) <= 1e-9, (a["candidate"], a["stack"], key, x, y)
            else:
                assert x == y, (a["candidate"], a["stack"], key, x, y)


def test_stable_set_is_pymatgens(small_table):
    """The pruned rows of a system are pymatgen's stable entries (plus entries within 1e-6 eV/atom
    of the hull, kept as equally good decompositions)."""
    pruned = stable_table(small_table)
    for system in (("Li", "Al", "O"), ("Li", "P", "S", "Cl"), ("Li", "La", "Zr", "O"), ("Li", "Ni", "O")):
        cs = small_table.chemsys(system)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            pd = pymatgen_pd(cs)
            stable = {e.composition.reduced_formula for e in pd.stable_entries}
            kept = set(pruned.chemsys(system).names)
            assert stable <= kept, system
            for name in kept - stable:
                entry = next(e for e in pd.all_entries if e.composition.reduced_formula == name)
                assert pd.get_e_above_hull(entry) <= 1e-6, (system, name)
        assert len(kept) < cs.size, system  # it prunes something


def test_pruned_engine_equals_full_engine_on_real_candidates(small_table, stacks):
    """80 random compounds of the data (2-5 elements) and hypothetical mixtures in three stacks."""
    names = [str(n) for n in small_table.names if 2 <= len(Composition(str(n)).elements) <= 5]
    rng = random.Random(14)
    picked = sorted(rng.sample(names, 80))
    candidates = [Candidate(name, Composition(name), ("data",)) for name in picked]
    # hypothetical grid points (between two phases, at their hull energy plus a penalty) and
    # compositions the data lacks
    for formula, penalty in (("Li5Al3O7", 0.05), ("Li7Nb3O11", 0.0), ("Li9B3P2O14", 0.1),
                             ("Li4Ti3Zr2O12", 0.02), ("Li3Al2PO8", 0.05)):
        assert small_table.row_of(Composition(formula).reduced_formula) is None, formula
        candidates.append(Candidate(f"grid:{formula}", Composition(formula), ("grid",), hypothetical=True,
                                    energy_penalty=penalty))
    pruned = evaluate_candidates(small_table, candidates, stacks, prune=True)
    full = evaluate_candidates(small_table, candidates, stacks, prune=False)
    assert_same_rows(pruned, full)
    assert len(pruned) == len(candidates) * len(stacks)
    # the comparison means something: reactions, windows and interphase phases are there
    assert sum((r["rxn_electrolyte_open"] or 0.0) < -0.05 for r in pruned) > 10
    assert sum(bool(r["rxn_electrode_phases"]) for r in pruned) > 10
    assert sum(r["oxidation_potential"] is not None for r in pruned) > 20
    assert any(r["hypothetical"] and (r["rxn_electrode"] or 0.0) < 0 for r in pruned)


def test_pruned_engine_with_users_entries(small_table, stacks, tmp_path):
    """A user's stable compound (joins the pruned set, makes a data compound unstable) and an unstable
    one (left out of the reactions' LPs, still screened with its own energy)."""
    hull = analyse_stability(small_table, Composition("LiAl7O11")).hull_energy
    new_hull = analyse_stability(small_table, Composition("Li2Al4O7")).hull_energy
    entries = [PDEntry(Composition("LiAl7O11"), (hull - 0.020) * 19),  # formation energies, eV
               PDEntry(Composition("Li2Al4O7"), (new_hull + 0.040) * 13)]
    path = tmp_path / "mine.json"
    path.write_text(json.dumps([e.as_dict() for e in entries]))
    merged = merge_user_entries(small_table, [path])
    pruned_set = set(stable_table(merged).names)
    assert "LiAl7O11" in pruned_set and "Li2Al4O7" not in pruned_set
    assert "LiAl5O8" in set(stable_table(small_table).names) and "LiAl5O8" not in pruned_set
    candidates = [Candidate(f, Composition(f), ("data",)) for f in ("LiAl7O11", "Li2Al4O7", "LiAl5O8", "LiAlO2",
                                                                      "Al2O3")]
    pruned = evaluate_candidates(merged, candidates, stacks, prune=True)
    full = evaluate_candidates(merged, candidates, stacks, prune=False)
    assert_same_rows(pruned, full)
    by_name = {r["candidate"]: r for r in pruned}
    assert by_name["LiAl7O11"]["e_above_hull"] == pytest.approx(0.0, abs=1e-9) and by_name["LiAl7O11"]["decomposition_energy"] < 0
    assert by_name["Li2Al4O7"]["e_above_hull"] >= 0.040 - 1e-9  # (the stable user entry lowers the hull)
    assert by_name["LiAl5O8"]["e_above_hull"] > 0


def test_rows_within_by_subset_lookup_equals_the_mask_scan(table):
    """EntryTable.rows_within looks each element subset up in a dictionary (up to
    SUBSET_LOOKUP_MAX_ELEMENTS elements) instead of scanning every row's mask: the same rows, in the
    same order, for systems of 1 to 14 elements of the real data, above and below the switch."""
    from screening.data.table import SUBSET_LOOKUP_MAX_ELEMENTS

    def scan(elements):
        outside = table.element_masks() & ~table._mask_of(elements)
        return np.flatnonzero((outside[:, 0] == 0) & (outside[:, 1] == 0))

    rng = random.Random(7)
    symbols = list(table.elements)
    queries = [rng.sample(symbols, rng.randint(1, 14)) for _ in range(400)]
    queries += [["Li"], ["Li", "O"], list(ELEMENTS), symbols[:SUBSET_LOOKUP_MAX_ELEMENTS],
                symbols[:SUBSET_LOOKUP_MAX_ELEMENTS + 1]]
    nonempty = 0
    for elements in queries:
        found = table.rows_within(elements)
        assert np.array_equal(found, scan(elements)), elements
        nonempty += len(found) > 1
    assert nonempty > 300
    assert len(table.rows_within(ELEMENTS)) > 1000
