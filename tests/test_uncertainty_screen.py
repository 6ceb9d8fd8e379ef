"""Error bars in screens: first-order columns of every row, Monte Carlo of the top rows per stack."""

from __future__ import annotations

import copy
import json
import math

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition

from screening.cli import main
from screening.errors import InputError
from screening.execution.screen_run import run_screen
from screening.screen.config import config_from_dict
from screening.screen.monte_carlo import EnergyDraws, MonteCarloSettings, candidate_draws, stack_partners
from screening.thermo.error_model import ErrorModel

SMALL = {
    "run": "mc",
    "candidates": {"data": {"require": ["Li", "O"], "allow": ["Al", "Nb", "P"], "max_elements": 3},
                   "grids": [{"ends": ["Li2O", "Al2O3"], "step": 0.25}],
                   "amorphisation_penalty": 0.02, "library": False},
    "stacks": [{"electrode": "NMC811", "electrolyte": "LPSCl"}, {"electrode": "Li", "electrolyte": "LLZO"}],
    "uncertainty": {"monte_carlo_top": 12, "draws": 16, "seed": 7},
}
STD_COLUMNS = ["e_above_hull_std", "decomposition_energy_std", "reduction_potential_std", "oxidation_potential_std",
               "rxn_electrode_std", "rxn_electrode_open_std", "rxn_electrolyte_std", "rxn_electrolyte_open_std"]


def screen(tmp_path, name: str, raw: dict, workers: int = 0) -> pd.DataFrame:
    config = config_from_dict(copy.deepcopy(raw))
    return run_screen(config, tmp_path / name, workers=workers)


@pytest.fixture(scope="module")
def default_run(tmp_path_factory):
    folder = tmp_path_factory.mktemp("mc")
    return screen(folder, "run", SMALL), folder / "run"


def test_screen_rows_carry_first_order_errors_and_top_rows_probabilities(default_run):
    frame, folder = default_run
    assert set(STD_COLUMNS) <= set(frame.columns)
    assert (frame["rxn_electrolyte_std"].dropna() >= 0).all() and frame["rxn_electrolyte_std"].max() > 0.005
    top = frame["rank"] <= 12
    for column in ("p_pass_all", "p_top10", "p_pass_e_above_hull", "p_pass_rxn_electrolyte"):
        assert frame.loc[top, column].between(0, 1).all(), column
        assert frame.loc[~top, column].isna().all(), column
    # a probability is a count of draws over 16
    assert np.allclose(frame.loc[top, "p_pass_all"] * 16, np.round(frame.loc[top, "p_pass_all"] * 16))
    # passing everything in a draw needs passing each criterion in it
    for column in [c for c in frame.columns if c.startswith("p_pass_") and c != "p_pass_all"]:
        assert (frame.loc[top, "p_pass_all"] <= frame.loc[top, column] + 1e-12).all()
    # the error bars make some top rows uncertain (neither 0 nor 1)
    uncertain = frame.loc[top, "p_pass_all"].between(0.01, 0.99)
    assert uncertain.any()
    provenance = json.loads((folder / "provenance.json").read_text())
    assert provenance["monte_carlo"]["draws"] == 16 and provenance["monte_carlo"]["seed"] == 7
    assert provenance["uncertainty"]["first_order"]["independent_error_eV_per_atom"] == pytest.approx(0.024)


def test_zero_errors_reproduce_the_ranking_exactly(tmp_path):
    raw = copy.deepcopy(SMALL)
    raw["uncertainty"].update(independent_error=0.0, correction_errors="none", draws=3)
    frame = screen(tmp_path, "zero", raw)
    for column in STD_COLUMNS:
        assert (frame[column].dropna() == 0.0).all(), column
    top = frame[frame["rank"] <= 12]
    assert (top["p_pass_all"] == top["passes_all"].astype(float)).all()
    assert (top["p_top10"] == (top["rank"] <= 10).astype(float)).all()
    for name in ("e_above_hull", "window_shortfall", "rxn_electrode", "rxn_electrolyte"):
        assert (top[f"p_pass_{name}"] == top[f"pass_{name}"].astype(float)).all(), name


def test_monte_carlo_is_reproducible_and_seeded(tmp_path, default_run):
    frame, _ = default_run
    again = screen(tmp_path, "again", SMALL)
    columns = [c for c in frame.columns if c.startswith("p_")]
    pd.testing.assert_frame_equal(frame[columns], again[columns])
    raw = copy.deepcopy(SMALL)
    raw["uncertainty"]["seed"] = 8
    other = screen(tmp_path, "other", raw)
    assert not frame["p_top10"].fillna(-1).equals(other["p_top10"].fillna(-1))


def test_dask_workers_give_the_same_probabilities(tmp_path, default_run):
    frame, _ = default_run
    parallel = screen(tmp_path, "parallel", SMALL, workers=2)
    columns = [c for c in frame.columns if c.startswith("p_") or c.endswith("_std")]
    pd.testing.assert_frame_equal(frame[columns], parallel[columns])


def test_first_order_agrees_with_monte_carlo_on_real_reactions(table):
    # LiNbO3 against LPSCl (closed) and LLZO (closed): products far from a change of decomposition
    config = config_from_dict(copy.deepcopy(SMALL))
    stack = config.stacks[0]
    model = ErrorModel()
    draws = EnergyDraws(table, model, 400, 3)
    partners = list(stack_partners(stack).values())
    drawn = candidate_draws(table, draws, "LiNbO3", False, None, partners)
    from screening.screen.candidates import Candidate
    from screening.screen.evaluate import evaluate_candidates

    rows = evaluate_candidates(table, [Candidate("LiNbO3", Composition("LiNbO3"), ("data",))], [stack],
                               error_model=model)
    row = rows[0]
    closed = drawn[(stack.electrolyte.composition.reduced_formula, None)]
    assert np.mean(closed) == pytest.approx(row["rxn_electrolyte"], abs=3 * row["rxn_electrolyte_std"] / 20)
    assert np.std(closed, ddof=1) == pytest.approx(row["rxn_electrolyte_std"], rel=0.2)
    # LiNbO3's oxidation limit is near a change of decomposition: Li-deficient orderings of LiNbO3
    # (Li15Nb16O48, Li17Nb18O54) lie within the errors of the hull, and in the draws where one of
    # them is stable LiNbO3 loses Li to it below 2 V. First order sees only the Nb2O5 + O2 limit.
    ox = drawn["oxidation_potential"]
    near = np.abs(ox - row["oxidation_potential"]) < 3 * row["oxidation_potential_std"]
    assert 0.5 < near.mean() < 0.97 and (ox < 2.5).mean() > 0.03
    assert np.std(ox[near], ddof=1) == pytest.approx(row["oxidation_potential_std"], rel=0.25)


def test_uncertainty_config_is_checked():
    for section, words in (({"independent_error": -0.01}, "non-negative"),
                           ({"draws": 0}, "draws"),
                           ({"correction_errors": "mp2077"}, "correction_errors"),
                           ({"monte_carlo_top": "all"}, "monte_carlo_top"),
                           ({"entry_errors": {"Li3PO4": 5}}, "above"),
                           ({"entry_errors": {"Xx2O": 0.01}}, "Xx"),
                           ({"bogus": 1}, "bogus")):
        raw = copy.deepcopy(SMALL)
        raw["uncertainty"] = section
        with pytest.raises(InputError) as info:
            config_from_dict(raw)
        assert words in str(info.value) and "\n" not in str(info.value), section


def test_bad_uncertainty_config_is_one_line_and_exit_2(tmp_path, capsys):
    path = tmp_path / "bad.yaml"
    path.write_text("stacks: [{electrode: NMC811, electrolyte: LPSCl}]\nuncertainty: {draws: -3}\n")
    code = main(["screen", "--config", str(path), "--out", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 2 and len(err.strip().splitlines()) == 1 and "draws" in err
    assert not (tmp_path / "out").exists()


def test_energy_draws_share_corrections_and_reproduce(table):
    model = ErrorModel(independent=0.0)
    draws = EnergyDraws(table, model, 50, 1)
    rows = np.array([table.row_of("Li2O"), table.row_of("Al2O3"), table.row_of("LiF")])
    values = draws.of_rows(rows)
    fractions = np.array([1 / 3, 3 / 5])  # O atom fraction: the one oxide correction moves both
    assert np.allclose(values[:, 0] / fractions[0], values[:, 1] / fractions[1])
    again = EnergyDraws(table, model, 50, 1).of_rows(rows[::-1])
    assert np.array_equal(again[:, ::-1], values)  # a row's draws do not depend on which rows are asked
    assert math.isclose(EnergyDraws(table, ErrorModel(0.0, "none"), 5, 1).of_rows(rows).std(), 0.0)


def test_drawn_reactions_follow_interface_reaction_in_every_draw(table):
    # the Monte Carlo's shortcut of the most negative mixture against the full computation, per draw
    from screening.screen.monte_carlo import _reaction_draws
    from screening.thermo.reaction import interface_reaction

    draws = EnergyDraws(table, ErrorModel(), 6, 5)
    for coating, other, potential in (("LiNbO3", "Li6PS5Cl", None), ("Li3PO4", "LiCoO2", 4.2),
                                      ("Li2O", "Li3PS4", 0.5)):
        a, b = Composition(coating), Composition(other)
        values = _reaction_draws(table, draws, a, b, potential)
        key = tuple(sorted({str(e) for e in a.elements} | {str(e) for e in b.elements} | {"Li"}))
        rows = table.rows_within(key)
        cs = table.chemsys_of_rows(rows, key)
        delta = draws.of_rows(rows)
        for k in range(6):
            drawn = cs.__class__(cs.elements, cs.fractions, cs.energies + delta[k], cs.names, cs.atoms_per_formula)
            reaction = interface_reaction(drawn, a, b, potential=potential, include_no_mixing_energy=False,
                                          minimum_only=True)
            assert values[k] == pytest.approx(reaction.most_negative.reaction_energy, abs=1e-9)
