"""Error bars: the error model, first-order propagation against hand derivations and Monte Carlo."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from pymatgen.core import Composition

from screening.cli import main
from screening.data.table import ChemSys
from screening.thermo.error_model import ErrorModel, correction_species, mp2020_uncertainties
from screening.thermo.propagation import Settings, perturbed_systems, sample_summary, std_of
from screening.thermo.reaction import interface_reaction
from screening.thermo.window import electrochemical_window


def run_json(capsys, *argv):
    code = main(list(argv) + ["--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def system(pairs: dict[str, float]) -> ChemSys:
    return ChemSys.from_pairs([(Composition(f), e) for f, e in pairs.items()])


def test_correction_species_follow_pymatgen_rules():
    assert correction_species("Li3PO4") == (("anion:oxide", 0.5),)
    assert dict(correction_species("Li6PS5Cl")) == pytest.approx({"anion:S": 5 / 13, "anion:Cl": 1 / 13})
    assert correction_species("Li2SO4") == (("anion:oxide", 4 / 7),)  # a sulfate: no sulfide correction
    assert dict(correction_species("LiCoO2")) == pytest.approx({"U:Co": 0.25, "anion:oxide": 0.5})
    assert dict(correction_species("Li2PO2N")) == pytest.approx({"anion:N": 1 / 6, "anion:oxide": 1 / 3})
    assert correction_species("LiNO3") == (("anion:oxide", 0.6),)  # nitrate N is not an anion
    assert correction_species("Li2O2") == (("anion:peroxide", 0.5),)
    assert correction_species("Li") == ()
    assert mp2020_uncertainties()["anion:oxide"] == pytest.approx(0.002)
    assert mp2020_uncertainties()["U:Co"] == pytest.approx(0.006)


def test_binary_window_edge_derived_by_hand():
    # S, LiS (-1 eV/atom), Li: oxidation of LiS at V = 2 (-e_LiS) / (1 Li per 2 atoms) ... = -2 e_LiS,
    # so sd(V_ox) = 2 sd(e_LiS); sd(e_LiS)^2 = independent^2 + (x_S sd_sulfide)^2
    chemsys = system({"S": 0.0, "LiS": -1.0, "Li": 0.0})
    window = electrochemical_window(chemsys, Composition("LiS"))
    assert window.oxidation_potential == pytest.approx(2.0)
    sd_sulfide = mp2020_uncertainties()["anion:S"]
    settings = Settings(model=ErrorModel(independent=0.03))
    expected = 2 * math.sqrt(0.03**2 + (0.5 * sd_sulfide) ** 2)
    assert std_of(settings, chemsys, "LiS", window.oxidation_gradient) == pytest.approx(expected, rel=1e-12)
    assert std_of(settings, chemsys, "LiS", window.reduction_gradient) == 0.0  # Li plating: 0 V exactly
    # Monte Carlo agrees (no change of decomposition is possible here)
    mc = Settings("monte-carlo", ErrorModel(independent=0.03), draws=4000, seed=3)
    values = [electrochemical_window(drawn, Composition("LiS")).oxidation_potential
              for drawn, _ in perturbed_systems(chemsys, mc)]
    assert sample_summary(values)["std"] == pytest.approx(expected, rel=0.05)


def test_shared_correction_cancels_in_a_reaction_between_oxides():
    # Li2O + SiO2 -> Li2SiO3: the oxide correction's error is on both sides in the same amount of O
    chemsys = system({"Li": 0.0, "Si": 0.0, "O": 0.0, "Li2O": -2.07, "SiO2": -3.03, "Li2SiO3": -2.7})
    correlated_only = Settings(model=ErrorModel(independent=0.0))
    reaction = interface_reaction(chemsys, Composition("Li2O"), Composition("SiO2"))
    best = reaction.most_negative
    assert best.reaction_energy < -0.05 and best.mixing_ratio == pytest.approx(0.5)
    assert std_of(correlated_only, chemsys, "", best.gradient) == pytest.approx(0.0, abs=1e-9)
    # the hull energy itself carries it: x_O * sd(oxide correction)
    point_sd = std_of(correlated_only, chemsys, "", {chemsys.index_of("Li2SiO3"): 1.0})
    assert point_sd == pytest.approx(0.5 * mp2020_uncertainties()["anion:oxide"])
    mc = Settings("monte-carlo", ErrorModel(independent=0.0), draws=300, seed=1)
    energies = [interface_reaction(drawn, Composition("Li2O"), Composition("SiO2"), minimum_only=True)
                .most_negative.reaction_energy for drawn, _ in perturbed_systems(chemsys, mc)]
    assert np.ptp(energies) < 1e-9
    # an independent error per composition does not cancel
    assert std_of(Settings(), chemsys, "", best.gradient) > 0.01


ZERO = ["--independent-error", "0", "--correction-errors", "none"]


@pytest.mark.parametrize("method", ["first-order", "monte-carlo"])
def test_zero_errors_collapse_every_interval(capsys, method):
    plain = run_json(capsys, "window", "Li3PO4")
    data = run_json(capsys, "window", "Li3PO4", "--uncertainty", method, "--draws", "20", *ZERO)
    for edge in ("reduction_potential", "oxidation_potential"):
        assert data[f"{edge}_std"] == 0.0
        assert data[f"{edge}_interval_95"] == [plain[edge], plain[edge]]
    pair = run_json(capsys, "pair", "LiNbO3", "Li6PS5Cl", "--uncertainty", method, "--draws", "10", *ZERO)
    value = pair["min_reaction_energy"]
    assert pair["min_reaction_energy_std"] == 0.0 and pair["min_reaction_energy_interval_95"] == [value, value]
    assert pair["p_reacts"] == 1.0
    stab = run_json(capsys, "stability", "Li6PS5Cl", "--uncertainty", method, "--draws", "10", *ZERO)
    assert stab["e_above_hull_std"] == 0.0 and stab["p_stable"] == 0.0


def test_first_order_agrees_with_monte_carlo_far_from_a_change(capsys):
    first = run_json(capsys, "window", "Li3PO4", "--uncertainty", "first-order")
    mc = run_json(capsys, "window", "Li3PO4", "--uncertainty", "monte-carlo", "--draws", "1000")
    assert mc["reduction_potential_std"] == pytest.approx(first["reduction_potential_std"], rel=0.15)
    assert mc["reduction_products_outcomes"][0]["outcome"] == "Li2O + Li3P"
    assert mc["reduction_products_outcomes"][0]["fraction"] > 0.99
    assert first["reduction_potential_std"] == pytest.approx(0.045, abs=0.005)


def test_monte_carlo_sees_the_second_product_set_near_a_change(capsys):
    # Li3PO4's oxidation: Li4P2O7 + O2 at 4.21 V, LiPO3 + O2 only 0.12 V higher
    mc = run_json(capsys, "window", "Li3PO4", "--uncertainty", "monte-carlo", "--potential", "4.3")
    outcomes = {o["outcome"]: o["fraction"] for o in mc["oxidation_products_outcomes"]}
    assert set(outcomes) == {"Li4P2O7 + O2", "LiPO3 + O2"}
    assert outcomes["LiPO3 + O2"] > 0.05
    # a second decomposition makes the edge less spread than first order says (it caps the potential)
    first = run_json(capsys, "window", "Li3PO4", "--uncertainty", "first-order", "--potential", "4.3")
    assert mc["oxidation_potential_std"] < first["oxidation_potential_std"]
    assert 0.0 < mc["p_oxidation_limit_above"] < 1.0 and 0.0 < first["p_oxidation_limit_above"] < 1.0
    assert mc["uncertainty"]["draws"] == 200 and mc["uncertainty"]["seed"] == 0


def test_seeded_monte_carlo_is_reproducible(capsys):
    argv = ["pair", "LiNbO3", "Li6PS5Cl", "--uncertainty", "monte-carlo", "--draws", "50"]
    one, two = run_json(capsys, *argv), run_json(capsys, *argv)
    other = run_json(capsys, *argv, "--seed", "7")
    assert one == two
    assert one["min_reaction_energy_interval_95"] != other["min_reaction_energy_interval_95"]
    assert 0.005 < one["min_reaction_energy_std"] < 0.05


def test_given_energy_and_entry_error(capsys):
    # a user's energy carries the independent error unless --entry-error gives it one; --entry-error
    # sets the error of every entry of that composition (here the data's LiNbO3, the hull, too)
    base = run_json(capsys, "stability", "LiNbO3", "--energy", "-2.6", "--uncertainty", "first-order",
                    "--independent-error", "0", "--correction-errors", "none")
    assert base["e_above_hull_std"] == 0.0
    own = run_json(capsys, "stability", "LiNbO3", "--energy", "-2.6", "--uncertainty", "first-order",
                   "--independent-error", "0", "--correction-errors", "none", "--entry-error", "LiNbO3=0.05")
    assert own["e_above_hull_std"] == pytest.approx(0.05 * math.sqrt(2))
    other = run_json(capsys, "stability", "LiNbO3", "--energy", "-2.6", "--uncertainty", "first-order",
                     "--independent-error", "0", "--correction-errors", "none", "--entry-error", "Nb2O5=0.05")
    assert other["e_above_hull_std"] == 0.0


@pytest.mark.parametrize("argv, message", [
    (["window", "Li3PO4", "--uncertainty", "monte-carlo", "--draws", "0"], "draws must be an integer from 1"),
    (["window", "Li3PO4", "--uncertainty", "monte-carlo", "--draws", "100001"], "draws must be an integer"),
    (["window", "Li3PO4", "--uncertainty", "first-order", "--independent-error", "-0.01"], "non-negative"),
    (["window", "Li3PO4", "--uncertainty", "first-order", "--independent-error", "nan"], "non-negative"),
    (["window", "Li3PO4", "--uncertainty", "first-order", "--independent-error", "5"], "not an error estimate"),
    (["window", "Li3PO4", "--uncertainty", "bayesian"], "invalid choice"),
    (["window", "Li3PO4", "--uncertainty", "first-order", "--correction-errors", "mp2030"], "invalid choice"),
    (["pair", "LiNbO3", "Li3PS4", "--uncertainty", "monte-carlo", "--seed", "-1"], "seed"),
    (["stability", "Li3PO4", "--uncertainty", "first-order", "--entry-error", "Li3PO4"], "FORMULA=EV"),
    (["stability", "Li3PO4", "--uncertainty", "first-order", "--entry-error", "Xx9=0.1"], "not a formula"),
    (["stability", "Li3PO4", "--uncertainty", "first-order", "--entry-error", "Li3PO4=-1"], "non-negative"),
    (["stability", "Li3PO4", "--draws", "50"], "only with --uncertainty"),
    (["window", "Li3PO4", "--potential", "4"], "only with --uncertainty"),
    (["pair", "LiNbO3", "Li3PS4", "--reacts-below", "-0.05"], "only with --uncertainty"),
])
def test_bad_uncertainty_input_is_one_line_exit_2(capsys, argv, message):
    code = main(argv)
    out, err = capsys.readouterr()
    assert code == 2
    lines = [line for line in err.strip().splitlines() if line.strip()]
    assert len(lines) == 1 and message in lines[0], err
    assert "Traceback" not in err
