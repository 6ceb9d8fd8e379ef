"""The hull along a line by simplex pivots (screening.thermo.hull_line) against the LP probes it replaced:
the same vertices, energies and phases on real systems of the embedded data, closed and open to Li,
on the whole table and on its hull-stable rows, along lines that start at vertices, on faces (an
element absent) and inside the simplex."""

from __future__ import annotations

import numpy as np
import pytest

from screening.screen.pruning import stable_table
from screening.thermo.hull import HullSolver
from screening.thermo.hull_line import MAX_PIVOTS, line_vertices, pivot_vertices, sandwich_vertices

SYSTEMS = (("Li", "Co", "O", "P", "S"), ("Li", "Fe", "P", "O", "C"), ("Li", "Y", "Cl", "Al", "O"),
           ("Li", "La", "Zr", "O", "Nb"), ("Li", "Ni", "Mn", "Co", "O", "S", "Cl"), ("Li", "Ge", "P", "S"))


def _lines(solver: HullSolver, rng: np.random.Generator, count: int):
    """Pairs of compositions: entry to entry (walks that start at a vertex), an entry's composition
    without Li (or without its first element) to the corner of that element (windows), and random
    points inside the simplex."""
    k = len(solver.elements)
    rows = rng.choice(len(solver.coords), size=2 * count)
    for i in range(count):
        a, b = solver.coords[rows[2 * i]], solver.coords[rows[2 * i + 1]]
        if not np.allclose(a, b):
            yield a, b
        face = a.copy()
        face[0] = 0.0
        if face.sum() > 0:
            corner = np.zeros(k)
            corner[0] = 1.0
            yield face / face.sum(), corner
        yield rng.dirichlet(np.ones(k)), rng.dirichlet(np.ones(k))


def _assert_same(pivots, probes):
    assert [round(k.t, 9) for k in pivots] == pytest.approx([round(k.t, 9) for k in probes], abs=2e-9)
    for p, q in zip(pivots, probes):
        assert p.point.energy == pytest.approx(q.point.energy, abs=1e-9)
        assert set(p.point.phases) == set(q.point.phases)
        assert p.point.amounts == pytest.approx(q.point.amounts, abs=1e-9)


@pytest.mark.parametrize("pruned", [True, False], ids=["hull-stable rows", "every row"])
def test_pivots_find_what_lp_probes_find(table, pruned):
    source = stable_table(table) if pruned else table
    rng = np.random.default_rng(7)
    walks = bent = 0
    for elements in SYSTEMS:
        cs = source.chemsys(elements)
        for solver in (HullSolver(cs), HullSolver(cs, "Li", -3.0), HullSolver(cs, "Li", -4.5)):
            for start, end in _lines(solver, rng, 12):
                pivots = pivot_vertices(solver, start, end)
                assert pivots is not None, (elements, solver.chempot, start, end)
                _assert_same(pivots, sandwich_vertices(solver, start, end))
                walks += 1
                bent += len(pivots) > 3
    assert walks > 300 and bent > 50  # the comparison covers walks with several vertices


def test_line_vertices_falls_back_to_lp_probes(table, monkeypatch):
    """When the pivots cannot finish (here: no pivot allowed), the probes answer, unchanged."""
    from pymatgen.core import Composition

    from screening.thermo import hull_line

    cs = stable_table(table).chemsys(SYSTEMS[0])
    solver = HullSolver(cs, "Li", -4.2)
    start, end = solver.vector(Composition("Li3PS4")), solver.vector(Composition("LiCoO2"))
    expected = pivot_vertices(solver, start, end)
    assert len(expected) > 3 and MAX_PIVOTS > len(expected)
    monkeypatch.setattr(hull_line, "MAX_PIVOTS", 1)
    assert pivot_vertices(solver, start, end) is None
    _assert_same(line_vertices(solver, start, end), expected)


def test_a_vertex_recomputed_onto_the_end_is_the_end():
    """The full-matrix screen's walk of Li2Mg2(SO4)3 with charged NMC111 at 4.3 V: its last vertex,
    recomputed from its phases, landed on t = 1 exactly, the end's t, and the bend test divided by zero.
    A point within 1e-9 of the next one is that point."""
    from screening.thermo.hull_line import _bending

    ts = [0.0, 0.00059339767013273691, 0.0011860915163242479, 0.0028419005833381257, 0.35998192890152242,
          0.36159925645090601, 0.48831591977094618, 0.49728218179533101, 1.0, 1.0]
    energies = [-1.8451225714151593, -1.8455588976622401, -1.8459932310590441, -1.8472010534858063,
                -2.1058945083432117, -2.1070295430417159, -2.1957731154057707, -2.2016298460294683,
                -2.5039313211677698, -2.503931321167761]
    kept = _bending(ts, energies)
    assert kept[0] == 0 and kept[-1] == len(ts) - 1 and 8 not in kept
    assert all(ts[b] - ts[a] > 1e-9 for a, b in zip(kept, kept[1:]))
    # coinciding interior points and one slightly behind the next (non-monotonic round-off)
    assert _bending([0.0, 0.5, 0.5, 1.0], [0.0, -1.0, -1.0, 0.0]) == [0, 2, 3]
    assert _bending([0.0, 0.5, 0.5 - 1e-12, 1.0], [0.0, -1.0, -1.0, 0.0]) == [0, 2, 3]


def test_the_screen_row_of_that_walk_equals_the_lp_probes(table, monkeypatch):
    """The whole row of that candidate and stack, by pivots and by LP probes: equal to 1e-9."""
    import math

    from pymatgen.core import Composition

    from screening.screen.candidates import Candidate
    from screening.screen.evaluate import evaluate_candidates
    from screening.screen.stacks import make_stack
    from screening.thermo import hull_line

    candidate = Candidate("Li2Mg2(SO4)3", Composition("Li2Mg2(SO4)3"), ("data",))
    stacks = [make_stack({"electrode": "NMC111", "electrolyte": "LAGP"})]
    pivots = evaluate_candidates(table, [candidate], stacks)
    monkeypatch.setattr(hull_line, "pivot_vertices", lambda *args, **kwargs: None)
    probes = evaluate_candidates(table, [candidate], stacks)
    assert len(pivots) == len(probes) == 1
    for key, value in pivots[0].items():
        other = probes[0][key]
        if isinstance(value, float) and isinstance(other, float):
            assert math.isclose(value, other, abs_tol=1e-9) or (math.isnan(value) and math.isnan(other)), key
        else:
            assert value == other, key
