"""The seeds' claims about the snapshot, as checks (README of shared/data and the issue)."""

import pytest
from pymatgen.core import Composition as C

from screening.thermo.analysis import analyse_pair, analyse_stability, analyse_window


def test_snapshot_readme_hull_distances(table):
    assert analyse_stability(table, C("Li7La3Zr2O12")).e_above_hull == pytest.approx(0.007, abs=1e-3)
    assert analyse_stability(table, C("Li6PS5Cl")).e_above_hull == pytest.approx(0.083, abs=1e-3)
    assert analyse_stability(table, C("Li3PS4")).e_above_hull == 0.0
    assert analyse_stability(table, C("LiNbO3")).e_above_hull == 0.0


def test_li6ps5cl_reduction_near_1_7_V(table):
    window, _ = analyse_window(table, C("Li6PS5Cl"))
    assert window.reduction_potential == pytest.approx(1.7, abs=0.1)
    products = set(window.reduction_products)
    assert {"Li2S", "LiCl"} <= products and products & {"P", "Li3P"}


def test_li3po4_window(table):
    window, _ = analyse_window(table, C("Li3PO4"))
    assert window.reduction_potential == pytest.approx(0.69, abs=0.01)
    assert window.oxidation_potential == pytest.approx(4.21, abs=0.01)


def test_oxide_coatings_react_far_less_with_lco_than_thiophosphates(table):
    lco = C("LiCoO2")
    coatings = [analyse_pair(table, lco, C(f)).most_negative.reaction_energy for f in ("Li3PO4", "LiAlO2")]
    sulfides = [analyse_pair(table, lco, C(f)).most_negative.reaction_energy for f in ("Li3PS4", "Li6PS5Cl")]
    assert max(sulfides) < -0.25
    assert min(coatings) > -0.05
    assert min(coatings) - max(sulfides) > 0.2  # far less: by more than 0.2 eV/atom


def test_li_metal_reduces_li3ps4_but_barely_llzo(table):
    li = C("Li")
    lps = analyse_pair(table, li, C("Li3PS4")).most_negative.reaction_energy
    llzo = analyse_pair(table, li, C("Li7La3Zr2O12")).most_negative.reaction_energy
    assert lps < -0.5
    assert -0.02 < llzo <= 0.0
