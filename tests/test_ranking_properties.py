"""Rankings a coating researcher acts on (issue 13): property columns, interphase types of every reaction
column, the property criteria, failed_criteria, ties broken by margins, the funnel."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from screening.cli import main
from screening.errors import InputError
from screening.screen.annotate import PropertySet, annotate_frame
from screening.screen.config import config_from_dict
from screening.screen.rank import funnel, rank

STACKS = ["X|Y"]
THERMO = {"e_above_hull": 0.025, "window_shortfall": 0.0, "rxn_electrode": -0.05, "rxn_electrolyte": -0.05,
          "rxn_electrolyte_open": None}
ALL_ON = dict(THERMO, band_gap=0.5, interphase=True, ald_evidence="components", practicality=True)


@pytest.fixture(scope="module")
def properties():
    props = PropertySet.load()
    if props.gaps is None or props.ald is None:
        pytest.skip("the property files are not beside the data")
    return props


def _row(candidate, formula, **values):
    row = {"stack": "X|Y", "side": "cathode", "potential": 4.3, "candidate": candidate, "formula": formula,
           "hypothetical": False, "proxy_for": "", "e_above_hull": 0.0, "decomposition_energy": -0.1,
           "decomposition": formula, "reduction_potential": 1.0, "oxidation_potential": 5.0,
           "window_shortfall": 0.0}
    for label in ("electrode", "electrode_open", "electrolyte", "electrolyte_open"):
        row.update({f"rxn_{label}": 0.0, f"rxn_{label}_products": "", f"rxn_{label}_x": None})
    row.update(values)
    return row


def test_interphase_types_of_each_reaction_column(properties):
    rows = pd.DataFrame([
        # Li | Li3PS4's products: Li2S and Li3P insulate (passivating)
        _row("a", "Li3PS4", rxn_electrode=-0.5, rxn_electrode_products="4 Li2S + Li3P"),
        # Li-Ge alloys conduct (mixed-conducting, named)
        _row("b", "Li10GeP2S12", rxn_electrode=-0.4, rxn_electrode_products="12 Li2S + 2 Li3P + Li15Ge4"),
        # too small a reaction to judge
        _row("c", "LiNbO3", rxn_electrolyte=-0.01, rxn_electrolyte_products="0.5 Li15Ge4"),
        # open to Li: the Li released to the reservoir is not a phase of the interphase
        _row("d", "Al2O3", rxn_electrolyte_open=-0.07, rxn_electrolyte_open_products="1.5 AlCl3 + 27 Li + 2 P2S7"),
    ])
    annotate_frame(rows, properties)
    got = {c: rows.set_index("candidate").loc[c] for c in "abcd"}
    assert got["a"]["interphase_electrode"] == "passivating"
    assert got["b"]["interphase_electrode"] == "mixed-conducting"
    assert "Li15Ge4" in got["b"]["interphase_electrode_conducting"].split(",")
    assert got["c"]["interphase_electrolyte"] == "stable" and got["c"]["interphase_worst"] == "stable"
    assert got["d"]["interphase_electrolyte_open"] != "mixed-conducting"
    assert "Li" not in got["d"]["interphase_electrolyte_open_conducting"].split(",")
    assert got["b"]["interphase_worst"] == "mixed-conducting"
    assert got["a"]["band_gap"] > 2 and got["a"]["electronic_insulator"]


def test_property_criteria_failed_criteria_and_funnel(properties):
    rows = [
        _row("LiNbO3", "LiNbO3"),  # passes all
        _row("LiNO3", "LiNO3"),  # a nitrate: practicality flag
        _row("LiCoO2", "LiCoO2", reduction_potential=5.0, window_shortfall=0.7),  # window misses, small gap?
        _row("Li2O", "Li2O", rxn_electrode=-0.4, rxn_electrode_products="0.5 Li15Ge4 + Li2S"),  # conducting
    ]
    frame = rank(rows, {"X|Y": {"bare_rxn": None, "bare_rxn_products": "", "bare_rxn_open": None,
                                "bare_rxn_open_products": ""}}, ALL_ON, {"window_shortfall": 0.1}, STACKS,
                 properties=properties)
    by = frame.set_index("candidate")
    assert by.loc["LiNbO3", "failed_criteria"] == "" and bool(by.loc["LiNbO3", "passes_all"])
    assert "practicality" in by.loc["LiNO3", "failed_criteria"].split(",")
    assert "nitrate" in by.loc["LiNO3", "practicality_flags"]
    assert by.loc["Li2O", "failed_criteria"].split(",") == ["rxn_electrode", "interphase"]
    assert "window_shortfall" in by.loc["LiCoO2", "failed_criteria"].split(",")
    assert frame["candidate"].iloc[0] == "LiNbO3"
    # the funnel, by hand: 4 -> e_above_hull 4 -> band_gap (LiCoO2's PBE gap?) -> window (LiCoO2 out) ...
    steps = funnel(frame, ["e_above_hull", "band_gap", "window_shortfall", "rxn_electrode", "rxn_electrolyte",
                           "interphase", "ald_evidence", "practicality"])["X|Y"]
    counts = {s["criterion"]: s["remaining"] for s in steps}
    assert counts["candidates"] == 4 and counts["e_above_hull"] == 4
    assert counts["window_shortfall"] <= 3 and counts["rxn_electrode"] == counts["window_shortfall"] - 1
    assert counts["practicality"] == 1  # LiNbO3 alone
    assert [s["criterion"] for s in steps][0] == "candidates"
    assert list(counts.values()) == sorted(counts.values(), reverse=True)


def test_property_criteria_off_without_their_files():
    rows = [_row("LiNbO3", "LiNbO3"), _row("LiNO3", "LiNO3")]
    frame = rank(rows, {}, ALL_ON, {}, STACKS, properties=PropertySet())  # no gap, ALD or conductivity file
    assert frame["band_gap"].isna().all() and frame["ald_evidence"].isna().all()
    for name in ("band_gap", "interphase", "ald_evidence"):
        assert frame[f"pass_{name}"].isna().all(), name
    assert frame.set_index("candidate").loc["LiNO3", "failed_criteria"] == "practicality"


def test_score_rewards_window_and_gap_then_ties_fall_to_margins(properties):
    rows = [_row("A-narrow", "LiNbO3", oxidation_potential=4.35),  # 0.05 V beyond 4.3 V
            _row("B-wide", "Li3PO4", oxidation_potential=4.9),
            _row("C-widest-no-ox", "LiF", oxidation_potential=None)]
    frame = rank(rows, {}, THERMO, {}, STACKS, properties=properties).set_index("candidate")
    assert frame.index.tolist() == ["C-widest-no-ox", "B-wide", "A-narrow"]
    assert frame["window_margin"].tolist() == pytest.approx([3.3, 0.6, 0.05])
    # by hand: -0.01 * (min(4.3 - 1.0, 5) + min(ox - 4.3, 5)) - 0.005 * min(gap, 8)
    for name, above in (("A-narrow", 0.05), ("B-wide", 0.6), ("C-widest-no-ox", 5.0)):
        gap = min(frame.loc[name, "band_gap"], 8.0)
        assert frame.loc[name, "score"] == pytest.approx(-0.01 * (3.3 + above) - 0.005 * gap, abs=1e-9)
    # reaction energies and energy above hull still cost more than the rewards give
    worse = rank([_row("C", "LiF", oxidation_potential=None, rxn_electrolyte=-0.2), _row("A", "LiNbO3")],
                 {}, THERMO, {}, STACKS, properties=properties)
    assert worse["candidate"].tolist() == ["A", "C"]
    # without the rewards the scores tie and the window margin, then the gap, order them
    flat = rank(rows, {}, THERMO, {"window_margin": 0.0, "band_gap": 0.0}, STACKS, properties=properties)
    assert flat["score"].nunique() == 1
    assert flat["candidate"].tolist() == ["C-widest-no-ox", "B-wide", "A-narrow"]


def test_closed_and_open_electrode_reactions_are_separate_criteria():
    thresholds = dict(THERMO, rxn_electrode_open=-0.05)
    rows = [_row("closed", "LiNbO3", rxn_electrode=-0.07),  # eV/atom
            _row("open", "Li3PO4", rxn_electrode_open=-0.07),  # eV per non-Li atom
            _row("open-off", "LiF", rxn_electrode_open=-0.07)]
    by = rank(rows, {}, thresholds, {}, STACKS).set_index("candidate")
    assert by.loc["closed", "failed_criteria"] == "rxn_electrode"
    assert by.loc["open", "failed_criteria"] == "rxn_electrode_open"
    loose = rank(rows, {}, dict(thresholds, rxn_electrode_open=-0.1), {}, STACKS).set_index("candidate")
    assert loose.loc["open-off", "failed_criteria"] == "" and loose.loc["closed", "failed_criteria"] == "rxn_electrode"
    assert "rxn_electrode_worst" not in by.columns


def test_window_limit_criteria_whatever_the_stack():
    thresholds = dict(THERMO, window_shortfall=None, reduction_limit=2.7, oxidation_limit=4.0)
    rows = [_row("inside", "LiNbO3", reduction_potential=1.5, oxidation_potential=4.2),
            _row("red-high", "Li3PO4", reduction_potential=2.9, oxidation_potential=4.5),
            _row("ox-low", "LiF", reduction_potential=0.0, oxidation_potential=3.9),
            _row("no-ox", "Li2O", reduction_potential=0.0, oxidation_potential=None),
            _row("no-window", "Li", reduction_potential=None, oxidation_potential=None)]
    by = rank(rows, {}, thresholds, {}, STACKS).set_index("candidate")
    assert by.loc["inside", "failed_criteria"] == "" and by.loc["no-ox", "failed_criteria"] == ""
    assert by.loc["red-high", "failed_criteria"] == "reduction_limit"
    assert by.loc["ox-low", "failed_criteria"] == "oxidation_limit"
    assert by.loc["no-window", "failed_criteria"] == "reduction_limit"
    counts = [s["remaining"] for s in funnel(by.reset_index(), ["reduction_limit", "oxidation_limit"])["X|Y"]]
    assert counts == [5, 3, 2]


def test_interphase_is_judged_over_every_kink_below_the_magnitude(properties):
    # the most negative mixture forms insulators, a Li-richer kink forms an alloy: the phases column
    # (every kink below -0.025) decides
    rows = pd.DataFrame([_row("a", "Li3PS4", rxn_electrode=-0.3, rxn_electrode_products="Li2S + Li3P",
                              rxn_electrode_phases="Li15Ge4,Li2S,Li3P"),
                         _row("b", "Li3PS4", rxn_electrode=-0.3, rxn_electrode_products="Li2S + Li3P")])
    annotate_frame(rows, properties)
    assert rows["interphase_electrode"].tolist() == ["mixed-conducting", "passivating"]
    assert rows["interphase_electrode_conducting"].iloc[0] == "Li15Ge4"


@pytest.mark.parametrize("thresholds, words", [
    ({"band_gap": -1}, "band_gap"), ({"band_gap": "wide"}, "band_gap"), ({"interphase": "yes"}, "interphase"),
    ({"ald_evidence": "some"}, "ald_evidence"), ({"practicality": 1}, "practicality"),
])
def test_property_thresholds_are_checked(thresholds, words):
    with pytest.raises(InputError, match=words):
        config_from_dict({"thresholds": thresholds})


def test_funnel_order_is_configurable_and_checked():
    config = config_from_dict({"funnel": ["band_gap", "e_above_hull"]})
    assert config.funnel_order[:2] == ("band_gap", "e_above_hull") and "practicality" in config.funnel_order
    for bad in (["band_gap", "band_gap"], ["nope"], "band_gap"):
        with pytest.raises(InputError, match="funnel"):
            config_from_dict({"funnel": bad})


def test_a_real_screen_records_the_funnel_and_properties(tmp_path, capsys, properties):
    config = {"run": "small", "candidates": {"data": {"require": ["Li", "O"], "allow": ["Al", "B", "Nb"],
                                                      "max_elements": 3}, "library": False},
              "stacks": [{"electrode": "Li", "electrolyte": "LLZO"}],
              "thresholds": {"band_gap": 0.5, "interphase": True, "ald_evidence": "components",
                             "practicality": True}}
    path = tmp_path / "c.yaml"
    path.write_text(json.dumps(config), encoding="utf-8")
    assert main(["screen", "--config", str(path), "--out", str(tmp_path / "run"), "--workers", "0",
                 "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "funnel: candidates" in out
    prov = json.loads((tmp_path / "run" / "provenance.json").read_text(encoding="utf-8"))
    steps = prov["funnel"]["Li|LLZO"]
    frame = pd.read_parquet(tmp_path / "run" / "rankings.parquet")
    assert steps[0] == {"criterion": "candidates", "remaining": len(frame)}
    assert steps[-1]["remaining"] == int(frame["passes_all"].sum())
    assert prov["properties"]["band_gaps"]["sha256"]
    top = frame[frame["passes_all"]]
    assert (top["band_gap"] >= 0.5).all() and (top["practicality_flags"] == "").all()
    assert not (top["interphase_worst"] == "mixed-conducting").any()
    assert main(["report", "--run-dir", str(tmp_path / "run")]) == 0
    page = (tmp_path / "run" / "report.html").read_text(encoding="utf-8")
    assert "band gap (eV)" in page and "ALD evidence at least" in page


def test_polyanion_oxides():
    from pymatgen.core import Composition

    from screening.screen.candidates import is_polyanion_oxide

    for formula in ("Li3PO4", "LiBO2", "Li2SiO3", "Li2SO4", "Li2WO4", "LiH2PO4"):
        assert is_polyanion_oxide(Composition(formula)), formula
    for formula in ("LiNbO3", "Li2O", "Li3PS4", "LiAlO2", "Li3P", "Li2ZrO3"):
        assert not is_polyanion_oxide(Composition(formula)), formula
    rows = [_row("Li3PO4", "Li3PO4"), _row("LiNbO3", "LiNbO3")]
    by = rank(rows, {}, dict(THERMO, polyanion_oxide=True), {}, STACKS).set_index("candidate")
    assert by.loc["LiNbO3", "failed_criteria"] == "polyanion_oxide" and by.loc["Li3PO4", "passes_all"]


def test_xiao2019_config_follows_the_paper():
    from pathlib import Path

    from screening.screen.config import load_config

    config = load_config(Path(__file__).resolve().parents[1] / "workflows" / "config" / "xiao2019.yaml")
    (stack,) = config.stacks
    # the closed reaction is with charged NMC111, at its charged composition
    assert stack.electrode.composition.reduced_composition == stack.electrode_charged.composition.reduced_composition
    assert stack.electrode.composition["Li"] == pytest.approx(0.4) and stack.potential == pytest.approx(4.3)
    assert stack.electrolyte.composition.reduced_formula == "Li3PS4"
    t = config.thresholds
    assert (t["band_gap"], t["e_above_hull"], t["reduction_limit"], t["oxidation_limit"]) == (0.5, 0.005, 2.7, 4.0)
    assert t["rxn_electrode"] == t["rxn_electrolyte"] == -0.1 and t["polyanion_oxide"] is True
    assert t["window_shortfall"] is None and t["interphase"] is None
    assert config.funnel_order[:7] == ("band_gap", "e_above_hull", "reduction_limit", "oxidation_limit",
                                       "rxn_electrolyte", "rxn_electrode", "polyanion_oxide")
    assert config.library is False and config.data_filter.require == ("Li",)


def test_rows_failing_a_property_criterion_rank_below_thermodynamic_failures(properties):
    rows = [_row("nitrate", "LiNO3"),  # passes every thermodynamic criterion, fails practicality
            _row("reactive", "LiNbO3", rxn_electrolyte=-0.3, rxn_electrolyte_products="Li3PO4 + LiCl"),
            _row("clean", "Li3PO4")]
    frame = rank(rows, {}, ALL_ON, {}, STACKS, properties=properties)
    assert frame["candidate"].tolist() == ["clean", "reactive", "nitrate"]
    assert frame["property_criteria_failed"].tolist() == [0, 0, 1]
    assert frame["criteria_failed"].tolist() == [0, 1, 1]


def test_in_place_sort_equals_sort_values():
    """rank() sorts the frame one column at a time (memory); the order and every value are those of
    a stable sort_values, with ties, NaN and text keys, and mixed column types."""
    import numpy as np

    from screening.screen.rank import _sort_in_place

    rng = np.random.default_rng(3)
    n = 5000
    frame = pd.DataFrame({
        "stack_order": rng.integers(0, 3, n),
        "criteria_failed": rng.integers(0, 2, n),
        "score": np.where(rng.random(n) < 0.1, np.nan, rng.integers(0, 50, n) / 7.0),
        "candidate": [f"C{k % 97}" for k in range(n)],
        "flag": rng.random(n) < 0.5,
        "products": [None if k % 11 == 0 else f"{k % 13} LiF" for k in range(n)],
        "value": rng.random(n),
    })
    keys = ["stack_order", "criteria_failed", "score", "candidate"]
    expected = frame.sort_values(keys, kind="mergesort").reset_index(drop=True)
    _sort_in_place(frame, keys)
    pd.testing.assert_frame_equal(frame, expected)
    assert not frame["value"].is_monotonic_increasing  # the rows moved with their keys, not sorted alone
