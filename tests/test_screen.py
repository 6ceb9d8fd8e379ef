"""Candidate sources, stacks, stack metrics against the core, ranking and its determinism."""

from __future__ import annotations

import numpy as np
import pytest
from pymatgen.core import Composition as C

from screening.errors import InputError
from screening.screen.candidates import (DataFilter, anion_class, charge_balanced, from_data, from_library,
                                         grid, merge)
from screening.screen.config import config_from_dict
from screening.screen.evaluate import evaluate_candidates
from screening.screen.rank import pareto_ranks
from screening.screen.stacks import make_stack
from screening.thermo.analysis import analyse_pair, analyse_stability, analyse_window

SMALL = {
    "run": "small",
    "candidates": {"data": {"require": ["Li"], "allow": ["Al", "Nb", "P", "O"], "max_elements": 3},
                   "grids": [{"ends": ["Li2O", "Al2O3"], "step": 0.25}],
                   "charge_balanced": [{"base": ["Li", "O"], "metals": ["Ta"], "max_stoichiometry": 3}],
                   "library": False},
    "stacks": [{"electrode": "NMC811", "electrolyte": "LPSCl"}, {"electrode": "Li", "electrolyte": "LLZO"}],
}


def test_data_source_filters(table):
    found = from_data(table, DataFilter(require=("Li",), anions=("oxide",), max_elements=3,
                                        exclude=("Co",)))
    assert 200 < len(found) < 2000
    for cand in found:
        symbols = set(cand.elements)
        assert "Li" in symbols and "O" in symbols and "Co" not in symbols and len(symbols) <= 3
        assert anion_class(cand.composition) == "oxide"
    radioactive = from_data(table, DataFilter(require=("Li", "U"), exclude_radioactive=False))
    assert radioactive and not from_data(table, DataFilter(require=("Li", "U")))
    halides = from_data(table, DataFilter(require=("Li",), anions=("halide",), max_elements=2))
    assert {"LiF", "LiCl", "LiBr", "LiI"} <= {c.formula for c in halides}


def test_grid_points_are_hypothetical_and_merge_with_data(table):
    points = grid(("Li2O", "Al2O3"), 0.25, penalty=0.05)
    assert [p.formula for p in points] == ["LiAl3O5", "LiAlO2", "Li3AlO3"]
    assert all(p.hypothetical and p.energy_penalty == 0.05 for p in points)
    merged = {c.formula: c for c in merge(from_data(table, DataFilter(allow=("Al", "O"))), points)}
    assert not merged["LiAlO2"].hypothetical and merged["LiAlO2"].energy_penalty == 0.0
    assert merged["LiAl3O5"].hypothetical and merged["LiAlO2"].sources == ("data", "grid")
    with pytest.raises(InputError):
        grid(("Li2O", "Li2O"), 0.1)


def test_charge_balanced_space():
    found = {c.formula for c in charge_balanced(("Li", "Nb", "O"), max_stoichiometry=4)}
    assert {"LiNbO3", "Li3NbO4"} <= found
    with pytest.raises(InputError):
        charge_balanced(("Li", "Qq"))


def test_library_coatings_flag_proxies():
    coatings = {c.name: c for c in from_library()}
    assert coatings["alucone"].proxy_for == "alucone" and coatings["alucone"].formula == "Al2O3"
    assert coatings["LiNbO3"].proxy_for is None
    assert len(coatings) >= 29


def test_stacks():
    cathode = make_stack({"electrode": "NMC811", "electrolyte": "LPSCl"})
    assert cathode.side == "cathode" and cathode.potential == 4.3
    assert cathode.electrode_charged.composition.almost_equals(C("Li0.25Ni0.8Co0.1Mn0.1O2"))
    anode = make_stack({"electrode": "Li", "electrolyte": "LLZO"})
    assert anode.side == "anode" and anode.potential == 0.0
    with pytest.raises(InputError):
        make_stack({"electrode": "Unobtainium", "electrolyte": "LPSCl"})
    with pytest.raises(InputError):
        make_stack({"electrode": "NMC811", "electrolyte": "LPSCl", "potential": "high"})


def test_stack_metrics_equal_the_core(table):
    cfg = config_from_dict(SMALL)
    candidates = [c for c in cfg.candidates(table) if c.formula in ("Li3PO4", "LiNbO3", "Li3AlO3")]
    rows = evaluate_candidates(table, candidates, cfg.stacks)
    by_key = {(r["formula"], r["stack"]): r for r in rows}
    nmc, nmc_charged, lpscl = C("LiNi0.8Co0.1Mn0.1O2"), C("Li0.25Ni0.8Co0.1Mn0.1O2"), C("Li6PS5Cl")
    for formula in ("Li3PO4", "LiNbO3"):
        row = by_key[(formula, "NMC811|LPSCl")]
        comp = C(formula)
        window, stab = analyse_window(table, comp)
        assert row["reduction_potential"] == pytest.approx(window.reduction_potential, abs=1e-9)
        assert row["oxidation_potential"] == pytest.approx(window.oxidation_potential, abs=1e-9)
        assert row["e_above_hull"] == pytest.approx(stab.e_above_hull, abs=1e-9)
        assert row["rxn_electrode"] == pytest.approx(
            analyse_pair(table, comp, nmc).most_negative.reaction_energy, abs=1e-9)
        assert row["rxn_electrode_open"] == pytest.approx(analyse_pair(
            table, comp, nmc_charged, potential=4.3, include_no_mixing_energy=False
        ).most_negative.reaction_energy, abs=1e-9)
        assert row["rxn_electrolyte"] == pytest.approx(
            analyse_pair(table, comp, lpscl).most_negative.reaction_energy, abs=1e-9)
        assert row["window_covers"] == (window.oxidation_potential >= 4.3)
    # a hypothetical grid point sits its penalty above the hull
    hypo = by_key[("Li3AlO3", "Li|LLZO")]
    assert hypo["hypothetical"] and hypo["e_above_hull"] == pytest.approx(0.0, abs=1e-9)
    assert analyse_stability(table, C("Li3AlO3")).in_data is False


def test_pareto_ranks_brute_force():
    rng = np.random.default_rng(3)
    values = np.round(rng.random((150, 3)), 1)
    ranks = pareto_ranks(values)
    for i in range(len(values)):
        dominators = [j for j in range(len(values))
                      if np.all(values[j] <= values[i]) and np.any(values[j] < values[i])]
        assert (ranks[i] == 1) == (not dominators)
        if dominators:
            assert ranks[i] == max(ranks[j] for j in dominators) + 1


def test_pareto_ranks_ignore_round_off():
    """Two rows whose window shortfalls are equal but for round-off (0.8076615125 +- 1e-9, as two
    floating-point paths to one vertex give): the row with the lower energy above hull dominates
    either way (compared exactly, one of the two cases made them both front rows)."""
    import pandas as pd

    from screening.screen.rank import OBJECTIVES, objective_matrix

    for shortfalls in ((0.807661512, 0.807661513), (0.807661513, 0.807661512),
                       (0.8076614999999, 0.8076615000001)):  # either side of a 1e-6 rounding boundary
        frame = pd.DataFrame({column: [-0.1, -0.1] for column in OBJECTIVES})
        frame["e_above_hull"] = [0.0, 0.01]
        frame["window_shortfall"] = list(shortfalls)
        assert list(pareto_ranks(objective_matrix(frame))) == [1, 2], shortfalls
    frame["window_shortfall"] = [0.807661, 0.807663]  # 2e-6 apart: a real difference still counts
    frame["e_above_hull"] = [0.01, 0.0]
    assert list(pareto_ranks(objective_matrix(frame))) == [1, 1]


def test_config_errors():
    for bad, message in [
        ({"stacks": [{"electrode": "Unobtainium", "electrolyte": "LPSCl"}]}, "Unobtainium"),
        ({"thresholds": {"e_above_hull": "low"}}, "finite number"),
        ({"thresholds": {"e_above_hul": 0.1}}, "unknown key"),
        ({"candidates": {"data": {"require": ["Xq"]}}}, "unknown element"),
        ({"stacks": []}, "empty"),
        ({"run": "../escape"}, "run name"),
        ([1, 2], "mapping"),
    ]:
        with pytest.raises(InputError, match=message):
            config_from_dict(bad)


def test_a_hypothetical_penalty_is_not_counted_as_a_reaction(table):
    cfg = config_from_dict({"candidates": {"data": False, "library": False,
                                           "grids": [{"ends": ["Li2O", "Al2O3"], "step": 0.5, "penalty": 0.1}]},
                            "stacks": [{"electrode": "LCO", "electrolyte": "Li3PO4"}]})
    rows = evaluate_candidates(table, cfg.candidates(table), cfg.stacks)
    (row,) = [r for r in rows if r["formula"] == "LiAlO2"]
    assert row["hypothetical"] and row["e_above_hull"] == pytest.approx(0.1)
    # LiAlO2 and Li3PO4 / LiCoO2 do not react (see the seeds' claims): the penalty must not show up here
    assert row["rxn_electrolyte"] == pytest.approx(0.0, abs=1e-9)
    assert row["rxn_electrode"] == pytest.approx(0.0, abs=1e-9)


def test_interphase_phases_cover_every_kink_below_the_magnitude(table):
    """Sr2LiReN4 | Li6PS5Cl open to Li at 0 V: the most negative mixture forms no metal, a Li-richer
    kink forms Re; the phases column holds the products of every kink below -0.025 (the pair's own
    profile), Li to the reservoir left out."""
    from screening.screen.candidates import Candidate
    from screening.screen.evaluate import INTERPHASE_MAGNITUDE, KINK_WALK_FLOOR

    stacks = [make_stack({"electrode": "Li", "electrolyte": "LPSCl"})]
    row = evaluate_candidates(table, [Candidate("Sr2LiReN4", C("Sr2LiReN4"), ("data",))], stacks)[0]
    pair = analyse_pair(table, C("Sr2LiReN4"), C("Li6PS5Cl"), potential=0.0, include_no_mixing_energy=False)
    assert KINK_WALK_FLOOR <= row["rxn_electrolyte_open"] < INTERPHASE_MAGNITUDE
    assert row["rxn_electrolyte_open"] == pytest.approx(pair.most_negative.reaction_energy, abs=1e-9)
    expected = sorted({p for k in pair.kinks if k.reaction_energy < INTERPHASE_MAGNITUDE for p in k.products} - {"Li"})
    assert row["rxn_electrolyte_open_phases"].split(",") == expected
    assert "Re" in expected and "Re" not in row["rxn_electrolyte_open_products"].split(" ")
    # below the floor the most negative mixture's products stand (Li | LGPS-like: Ge at the minimum)
    row = evaluate_candidates(table, [Candidate("Li10GeP2S12", C("Li10GeP2S12"), ("data",))], stacks)[0]
    assert row["rxn_electrode"] < KINK_WALK_FLOOR and row["rxn_electrode_phases"] == "Ge,Li2S,Li3P"


def test_a_cathode_given_in_a_state_meets_the_coating_in_that_state():
    plain = make_stack({"electrode": "NMC111", "electrolyte": "LPS"})
    charged = make_stack({"electrode": "NMC111@charged", "electrolyte": "LPS"})
    assert plain.electrode.composition["Li"] == pytest.approx(1.0)
    assert charged.electrode.composition["Li"] == pytest.approx(0.4)
    assert plain.electrode_charged.composition == charged.electrode_charged.composition


def test_stack_matrix_is_every_electrode_with_every_electrolyte():
    from screening.screen.config import load_config
    from screening.screen.materials import by_role

    config = load_config("workflows/config/matrix.yaml")
    cathodes, electrolytes = by_role("cathode"), by_role("electrolyte")
    assert len(config.stacks) == len(cathodes) * len(electrolytes) == 117
    assert config.stack_specs[:2] == [{"electrode": cathodes[0].name, "electrolyte": electrolytes[0].name},
                                      {"electrode": cathodes[0].name, "electrolyte": electrolytes[1].name}]
    # each cathode meets the coating charged at its own top of charge
    by_name = {s.name: s for s in config.stacks}
    assert by_name["LNMO|LLZO"].potential == pytest.approx(4.8) and by_name["LFP|LLZO"].potential == pytest.approx(3.5)
    assert by_name["LFP|LLZO"].electrode_charged.composition.reduced_formula == "FePO4"
    small = config_from_dict({"stacks": {"electrodes": ["Li", "LiIn"], "electrolytes": ["LPSCl", "LLZO"]}})
    assert [s.name for s in small.stacks] == ["Li|LPSCl", "Li|LLZO", "LiIn|LPSCl", "LiIn|LLZO"]
    for bad, mention in (({"electrodes": "all", "electrolytes": ["LLZO"]}, "library-cathodes"),
                         ({"electrodes": [], "electrolytes": ["LLZO"]}, "electrodes"),
                         ({"electrodes": ["Li"]}, "electrolytes"),
                         ({"electrodes": ["Li"], "electrolytes": ["LLZO"], "potential": 1}, "unknown key"),
                         ({"electrodes": [f"Li{i}" for i in range(1, 60)], "electrolytes": ["LLZO"] * 40}, "2000")):
        with pytest.raises(InputError, match=mention):
            config_from_dict({"stacks": bad})
