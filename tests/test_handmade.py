"""A Li-X binary whose hull, window, decomposition and reaction energies are worked out by hand.

Entries (eV/atom): X 0, LiX -0.5 (t = 0.5), Li3X -0.4 (t = 0.75), Li 0, plus Li2X at -0.3 (above hull).
Hull segments along t (Li fraction): [0, 0.5] mu = -1.0 eV -> 1.0 V; [0.5, 0.75] mu = -0.3 -> 0.3 V;
[0.75, 1] mu = 0 -> 0 V.
"""

import pytest
from pymatgen.core import Composition as C

from screening.data.table import ChemSys
from screening.thermo.hull import HullSolver
from screening.thermo.reaction import interface_reaction
from screening.thermo.stability import decomposition_at_potential, stability
from screening.thermo.window import electrochemical_window

X = "Br"  # stands for any non-Li element


@pytest.fixture(scope="module")
def binary():
    return ChemSys.from_pairs([(C("Li"), 0.0), (C(X), 0.0), (C(f"Li{X}"), -0.5),
                               (C(f"Li3{X}"), -0.4), (C(f"Li2{X}"), -0.3)])


def test_hull_energy_and_decomposition(binary):
    solver = HullSolver(binary)
    point = solver.solve(solver.vector(C(f"Li2{X}")))  # t = 2/3, between LiX and Li3X
    # lever rule: LiX fraction (0.75 - 2/3) / 0.25 = 1/3 of atoms
    assert point.energy == pytest.approx(-0.5 / 3 - 0.4 * 2 / 3, abs=1e-12)
    assert dict(zip(solver.phase_names(point), point.amounts)) == pytest.approx(
        {f"Li{X}": 1 / 3, f"Li3{X}": 2 / 3}, abs=1e-12)


def test_stability(binary):
    lix = stability(binary, C(f"Li{X}"))
    assert lix.e_above_hull == 0.0
    # without LiX, the hull at t = 0.5 is the chord X - Li3X: -0.4 * 0.5 / 0.75
    assert lix.decomposition_energy == pytest.approx(-0.5 + 0.4 * 0.5 / 0.75, abs=1e-12)
    li3x = stability(binary, C(f"Li3{X}"))
    assert li3x.decomposition_energy == pytest.approx(-0.4 + 0.25, abs=1e-12)
    li2x = stability(binary, C(f"Li2{X}"))
    assert li2x.e_above_hull == pytest.approx(-0.3 + 0.5 / 3 + 0.8 / 3, abs=1e-12)
    assert li2x.decomposition_energy == li2x.e_above_hull
    assert stability(binary, C(X)).decomposition_energy is None


def test_windows(binary):
    w = electrochemical_window(binary, C(f"Li{X}"))
    assert w.reduction_potential == pytest.approx(0.3, abs=1e-12)
    assert w.oxidation_potential == pytest.approx(1.0, abs=1e-12)
    assert w.reduction_products == pytest.approx({f"Li3{X}": 1.0})
    assert w.oxidation_products == pytest.approx({X: 1.0})
    assert [s.potential for s in w.profile] == pytest.approx([1.0, 0.3])
    assert [s.li_change for s in w.profile] == pytest.approx([-1.0, 2.0])
    w3 = electrochemical_window(binary, C(f"Li3{X}"))
    assert w3.reduction_potential == 0.0 and w3.reduction_products == {}
    assert w3.oxidation_potential == pytest.approx(0.3, abs=1e-12)
    assert w3.oxidation_products == pytest.approx({f"Li{X}": 1.0})
    # Li2X is lowered onto the hull inside the LiX-Li3X segment: zero width at 0.3 V
    w2 = electrochemical_window(binary, C(f"Li2{X}"))
    assert w2.reduction_potential == pytest.approx(0.3) and w2.oxidation_potential == pytest.approx(0.3)
    # as is: Li2X + Li -> Li3X is downhill below mu = E + (f - E)(1 - t0)/(t - t0) at Li3X, i.e. below
    # 0.7 V, and Li2X -> LiX + Li above -0.1 V: downhill at every potential, so no window at all
    w2a = electrochemical_window(binary, C(f"Li2{X}"), as_is=True)
    mu_red = -0.3 + (-0.4 + 0.3) * (1 / 3) / (0.75 - 2 / 3)
    mu_ox = -0.5 + (-0.3 + 0.5) * 0.5 / (2 / 3 - 0.5)
    assert w2a.decomposes_at_every_potential and w2a.width is None
    assert w2a.reduction_potential is None and w2a.oxidation_potential is None
    assert w2a.reduction_onset == pytest.approx(-mu_red, abs=1e-12)
    assert w2a.oxidation_onset == pytest.approx(-mu_ox, abs=1e-12)
    assert w2a.reduction_products == pytest.approx({f"Li3{X}": 1.0})
    assert w2a.profile == w2.profile  # what its composition becomes at each potential
    assert not w2a.contains(0.3) and w2.contains(0.3) and not w2.at_hull_vertex and w2.zero_width
    # no Li to lose: no oxidation limit
    wx = electrochemical_window(binary, C(X))
    assert wx.oxidation_potential is None and wx.reduction_potential == pytest.approx(1.0)


def test_closed_reaction(binary):
    r = interface_reaction(binary, C(X), C(f"Li3{X}"))
    best = r.most_negative
    # 2 X + Li3X -> 3 LiX: 2 X atoms per 4 Li3X atoms, x = 1/3
    assert best.mixing_ratio == pytest.approx(1 / 3, abs=1e-12)
    assert best.reaction_energy == pytest.approx(-0.5 + (2 / 3) * 0.4, abs=1e-12)
    assert best.reaction == f"{X} + 0.5 Li3{X} -> 1.5 Li{X}"
    assert [k.mixing_ratio for k in r.kinks] == pytest.approx([0.0, 1 / 3, 1.0])


def test_open_reaction(binary):
    # at 0.5 V (mu = -0.5): grand energies per X atom: X 0, LiX -0.5, Li3X -0.1
    r = interface_reaction(binary, C(X), C(f"Li3{X}"), potential=0.5)
    energies = {round(k.mixing_ratio, 12): k.reaction_energy for k in r.kinks}
    assert energies == pytest.approx({0.0: -0.4, 1.0: -0.5})
    mutual = interface_reaction(binary, C(X), C(f"Li3{X}"), potential=0.5, include_no_mixing_energy=False)
    assert [k.reaction_energy for k in mutual.kinks] == pytest.approx([0.0, 0.0])


def test_decomposition_at_potential(binary):
    # LiX at 0 V: LiX + 2 Li -> Li3X; per atom of LiX: (grand hull - grand LiX) * share
    d = decomposition_at_potential(binary, C(f"Li{X}"), 0.0)
    assert d.reaction_energy == pytest.approx((-1.6 - (-1.0)) * 0.5, abs=1e-12)
    assert d.li_change == pytest.approx(2.0) and d.products == pytest.approx({f"Li3{X}": 1.0})
    assert decomposition_at_potential(binary, C(f"Li{X}"), 0.5).reaction_energy == 0.0
    high = decomposition_at_potential(binary, C(f"Li{X}"), 2.0)
    assert high.reaction_energy == pytest.approx((0.0 - (-1.0 + 2.0)) * 0.5) and high.li_change == pytest.approx(-1.0)


def test_as_is_equals_hull_for_stable_compounds(binary):
    for formula in (f"Li{X}", f"Li3{X}"):
        hull = electrochemical_window(binary, C(formula))
        as_is = electrochemical_window(binary, C(formula), as_is=True)
        assert as_is.reduction_potential == pytest.approx(hull.reduction_potential, abs=1e-12)
        assert as_is.oxidation_potential == pytest.approx(hull.oxidation_potential, abs=1e-12)
