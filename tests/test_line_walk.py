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
