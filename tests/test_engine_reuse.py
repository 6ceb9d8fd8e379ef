"""The engine's reuse of work (issue 14): one LP model open to Li per chemical system, re-costed for each
potential instead of rebuilt, and the direct LAPACK least squares of the hot loops. Both must give what
a new model per potential and numpy's lstsq give, on real systems of the embedded data."""

from __future__ import annotations

import random

import numpy as np
import pytest
from pymatgen.core import Composition

from screening.screen import evaluate
from screening.screen.candidates import Candidate
from screening.screen.evaluate import evaluate_candidates
from screening.screen.pruning import stable_table
from screening.screen.stacks import make_stack
from screening.thermo.hull import HullSolver, least_squares
from test_pruning import assert_same_rows

ELEMENTS = ("Li", "O", "S", "P", "Cl", "Ni", "Co", "Mn", "Fe", "La", "Zr", "Al", "Nb", "B", "Ti")
# cathodes at four top-of-charge potentials (4.2, 4.3, 4.8, 3.5 V) against two electrolytes
STACKS = [{"electrode": e, "electrolyte": s} for e in ("LCO", "NMC811", "LNMO", "LFP") for s in ("LPSCl", "LLZO")]


@pytest.fixture(scope="module")
def small_table(table):
    keep = np.zeros(len(table), dtype=bool)
    keep[table.rows_within(ELEMENTS)] = True
    return table.subset(keep)


def test_recosted_open_model_equals_a_new_one(small_table):
    """An open model moved through several potentials (and back) has a new model's costs to the bit
    and its hull energies and decompositions at 40 random compositions and along mixing lines."""
    cs = stable_table(small_table).chemsys(("Li", "Co", "Ni", "O", "P", "S"))
    reused = HullSolver(cs, "Li", -4.3)
    rng = np.random.default_rng(17)
    points = rng.dirichlet(np.ones(len(reused.elements)), size=40)
    for potential in (4.2, 0.0, 4.8, 3.5, 4.2):
        reused.set_chempot(-potential)
        fresh = HullSolver(cs, "Li", -potential)
        assert np.array_equal(reused.costs, fresh.costs) and reused.chempot == fresh.chempot
        for c in points:
            a, b = reused.solve(c), fresh.solve(c)
            assert abs(a.energy - b.energy) <= 1e-12
            assert a.phases == b.phases
            np.testing.assert_allclose(a.amounts, b.amounts, atol=1e-12)
        start, end = reused.vector(Composition("Li3PS4")), reused.vector(Composition("LiCoO2"))
        t_a, p_a = reused.most_negative_mixture(start, end, -1.0, -1.5)
        t_b, p_b = fresh.most_negative_mixture(start, end, -1.0, -1.5)
        assert abs(t_a - t_b) <= 1e-12 and abs(p_a.energy - p_b.energy) <= 1e-12 and p_a.phases == p_b.phases
    with pytest.raises(ValueError):
        HullSolver(cs).set_chempot(-4.2)


def test_one_model_per_system_equals_one_model_per_potential(small_table, monkeypatch):
    """60 random compounds of the data and two hypothetical ones against cathodes at four potentials:
    the screen's rows equal, value for value and text for text, those of an engine that builds a new
    open model for every potential (the engine before the reuse)."""
    names = [str(n) for n in small_table.names if 2 <= len(Composition(str(n)).elements) <= 4]
    picked = sorted(random.Random(5).sample(names, 60))
    candidates = [Candidate(name, Composition(name), ("data",)) for name in picked]
    candidates += [Candidate(f"grid:{f}", Composition(f), ("grid",), hypothetical=True, energy_penalty=0.05)
                   for f in ("Li5Al3O7", "Li3Al2PO8")]
    stacks = [make_stack(dict(spec)) for spec in STACKS]
    reused = evaluate_candidates(small_table, candidates, stacks)

    def one_model_per_potential(self, elements, potential=None):
        key = (tuple(sorted(set(elements))), potential)
        if key not in self._solvers:
            cs = self.chemsys(key[0])
            self._solvers[key] = HullSolver(cs) if potential is None else HullSolver(cs, "Li", -potential)
        return self._solvers[key]

    monkeypatch.setattr(evaluate._Systems, "solver", one_model_per_potential)
    rebuilt = evaluate_candidates(small_table, candidates, stacks)
    assert_same_rows(reused, rebuilt)
    # the comparison means something: open reactions at several potentials react, and walk kinks
    assert sum((r["rxn_electrolyte_open"] or 0.0) < -0.05 for r in reused) > 50
    assert len({r["potential"] for r in reused if (r["rxn_electrode_open"] or 0.0) < -0.01}) == 4
    assert sum(bool(r["rxn_electrolyte_open_phases"]) for r in reused) > 50


def test_least_squares_equals_numpys():
    """Square and tall full-rank systems (one or two right-hand sides) to round-off; a rank-deficient
    one gives lstsq's minimum-norm solution."""
    rng = np.random.default_rng(3)
    for rows, cols in ((5, 5), (8, 5), (4, 1), (6, 3), (2, 2)):
        for _ in range(50):
            matrix = rng.random((rows, cols)) * (rng.random((rows, cols)) > 0.3)
            if np.linalg.matrix_rank(matrix) < cols:
                continue
            rhs = matrix @ rng.random(cols)
            for b in (rhs, np.column_stack([rhs, rng.random(rows)])):
                np.testing.assert_allclose(least_squares(matrix, b), np.linalg.lstsq(matrix, b, rcond=None)[0],
                                           rtol=1e-8, atol=1e-11)
    deficient = np.array([[1.0, 1.0], [1.0, 1.0], [0.0, 0.0]])
    np.testing.assert_allclose(least_squares(deficient, np.array([1.0, 1.0, 0.0])), [0.5, 0.5], atol=1e-14)
    wide = np.array([[1.0, 2.0, 0.5]])
    np.testing.assert_allclose(least_squares(wide, np.array([1.0])),
                               np.linalg.lstsq(wide, np.array([1.0]), rcond=None)[0], atol=1e-14)


WALK_ELEMENTS = ("Li", "O", "Al", "Fe", "Y", "Cl", "Cs", "B", "Ti", "P", "V", "Cr", "C")
# pairs where the walk's meeting point once landed 1e-4..1e-3 from a vertex with a nearly flat bend,
# so the interphase phases depended on which solves came before (seen on the matrix screen)
NEAR_FLAT_PAIRS = (("Li2Al2FeO6", "Li3YCl6", None), ("Cs3Li4(BO2)7", "Li1.3Ti1.7Al0.3P3O12", None),
                   ("Li10V5Cr3O16", "Li1.3Ti1.7Al0.3P3O12", 4.8))


@pytest.fixture(params=["pivots", "lp probes"])
def walk_method(request, monkeypatch):
    """Walk by simplex pivots (the default) or by the LP probes it falls back to."""
    if request.param == "lp probes":
        from screening.thermo import hull_line
        monkeypatch.setattr(hull_line, "pivot_vertices", lambda *args: None)
    return request.param


@pytest.fixture(scope="module")
def walk_table(table):
    keep = np.zeros(len(table), dtype=bool)
    keep[table.rows_within(WALK_ELEMENTS)] = True
    return stable_table(table.subset(keep))


def _kinks(table, a: str, b: str, potential, warm_up: str):
    from screening.screen.evaluate import INTERPHASE_MAGNITUDE, _Systems
    from screening.thermo.reaction import interface_reaction

    systems = _Systems(table)
    ca, cb = Composition(a), Composition(b)
    elements = {str(e) for e in ca.elements} | {str(e) for e in cb.elements} | {"Li"}
    closed = systems.solver(elements)
    opened = systems.solver(elements, potential) if potential is not None else None
    solver = opened or closed
    energies = (systems.reactant_energy(ca, potential), systems.reactant_energy(cb, potential))
    arguments = dict(potential=potential, include_no_mixing_energy=False, closed_solver=closed,
                     open_solver=opened, reactant_energies=energies)
    if warm_up == "most negative":  # what a screen does first
        interface_reaction(table.chemsys(elements), ca, cb, minimum_only=True, **arguments)
    elif warm_up == "random":
        for c in np.random.default_rng(0).dirichlet(np.ones(len(solver.elements)), size=25):
            solver.solve(c)
    result = interface_reaction(table.chemsys(elements), ca, cb, kinks_below=INTERPHASE_MAGNITUDE, **arguments)
    return [(k.mixing_ratio, k.reaction_energy, sorted(k.products)) for k in result.kinks]


@pytest.mark.parametrize("a,b,potential", NEAR_FLAT_PAIRS)
def test_walk_does_not_depend_on_earlier_solves(walk_table, walk_method, a, b, potential):
    """The same kinks (mixing ratio, energy, products) from a new model, after the most negative
    mixture's LP and after 25 unrelated solves; closed, every interior kink is a vertex (its
    neighbours' slopes differ; open to Li the mixing ratio is not the line's parameter)."""
    walks = [_kinks(walk_table, a, b, potential, warm_up) for warm_up in ("none", "most negative", "random")]
    for other in walks[1:]:
        assert len(other) == len(walks[0])
        for (x1, e1, p1), (x2, e2, p2) in zip(walks[0], other):
            assert abs(x1 - x2) <= 1e-9 and abs(e1 - e2) <= 1e-12 and p1 == p2
    kinks = walks[0] if potential is None else []
    for (x0, e0, _), (x1, e1, _), (x2, e2, _) in zip(kinks, kinks[1:], kinks[2:]):
        assert (e2 - e1) / (x2 - x1) - (e1 - e0) / (x1 - x0) > 1e-7


def test_window_with_a_kink_next_to_the_candidate(walk_table, walk_method):
    """Li2FePCO7 sits at a vertex of the Li line next to another 4e-9 away in the walk: its
    reduction limit is pymatgen's 3.210074 V (LiFe(CO3)2 + LiFePO4 + Li3PO4), after any solves."""
    from screening.thermo.window import electrochemical_window

    comp = Composition("Li2FePCO7")
    cs = walk_table.chemsys(("C", "Fe", "Li", "O", "P"))
    solver = HullSolver(cs)
    for c in np.random.default_rng(1).dirichlet(np.ones(5), size=10):
        solver.solve(c)
    for s in (None, solver):
        window = electrochemical_window(cs, comp, solver=s)
        assert window.reduction_potential == pytest.approx(3.210074, abs=2e-6)
        assert window.oxidation_potential == pytest.approx(4.138399, abs=2e-6)
        assert set(window.reduction_products) == {"LiFe(CO3)2", "LiFePO4", "Li3PO4"}


def test_held_mixing_line_equals_a_new_column_in_every_draw(small_table):
    """A Monte Carlo keeps the mixing column in the model across draws (warm starts): each draw's most
    negative mixture equals the one found with the column added and deleted again, and no other solve
    may run while it is held."""
    cs = stable_table(small_table).chemsys(("Li", "Co", "O", "P", "S", "Cl"))
    rng = np.random.default_rng(3)
    for potential in (None, 4.2):
        held = HullSolver(cs) if potential is None else HullSolver(cs, "Li", -potential)
        fresh = HullSolver(cs) if potential is None else HullSolver(cs, "Li", -potential)
        start, end = held.vector(Composition("Li6PS5Cl")), held.vector(Composition("LiCoO2"))
        reacted = 0
        with held.holding_line(start, end):
            with pytest.raises(ValueError):
                held.solve(start)
            with pytest.raises(ValueError):
                held.most_negative_mixture(end, start, 0.0, 0.0)
            for _ in range(30):
                energies = cs.energies + rng.normal(0.0, 0.03, cs.size)
                held.set_energies(energies)
                fresh.set_energies(energies)
                e_start, e_end = rng.normal(-1.0, 0.1, 2)
                t1, p1 = held.most_negative_mixture(start, end, e_start, e_end)
                t2, p2 = fresh.most_negative_mixture(start, end, e_start, e_end)
                value1 = p1.energy - t1 * e_end - (1 - t1) * e_start
                value2 = p2.energy - t2 * e_end - (1 - t2) * e_start
                assert value1 == pytest.approx(value2, abs=1e-10)
                reacted += value1 < -0.01
        assert reacted > 10
        middle = 0.5 * (start + end)  # released: the column is gone, solves are the hull's again
        assert held.solve(middle).energy == pytest.approx(fresh.solve(middle).energy, abs=1e-12)


class _UnknownOnce:
    """A HiGHS model whose next run reports "Unknown" once, as HiGHS 1.16 did after a warm start."""

    def __init__(self, highs):
        self.highs, self.fail, self.cleared = highs, True, 0

    def __getattr__(self, name):
        return getattr(self.highs, name)

    def getModelStatus(self):
        import highspy

        if self.fail:
            self.fail = False
            return highspy.HighsModelStatus.kUnknown
        return self.highs.getModelStatus()

    def clearSolver(self):
        self.cleared += 1
        return self.highs.clearSolver()


def test_a_solve_without_optimum_is_solved_again_from_scratch(small_table):
    cs = stable_table(small_table).chemsys(("Li", "Co", "O", "P", "S", "Cl"))
    reference = HullSolver(cs)
    solver = HullSolver(cs)
    start, end = solver.vector(Composition("Li6PS5Cl")), solver.vector(Composition("LiCoO2"))
    proxy = solver._highs = _UnknownOnce(solver._highs)
    assert solver.solve(0.5 * (start + end)).energy == pytest.approx(reference.energy(0.5 * (start + end)), abs=1e-12)
    assert proxy.cleared == 1
    proxy.fail = True
    with solver.holding_line(start, end):
        t, point = solver.most_negative_mixture(start, end, -1.0, -1.5)
    t_ref, point_ref = reference.most_negative_mixture(start, end, -1.0, -1.5)
    assert proxy.cleared == 2 and t == pytest.approx(t_ref, abs=1e-9)
    assert point.energy == pytest.approx(point_ref.energy, abs=1e-12)


def test_rows_do_not_depend_on_how_a_screen_is_split(table):
    """The demo screen evaluated whole and in four pieces (half the candidates x one stack, as the
    workflow shards it) gives the same rows to the bit: window kinks and most negative mixtures are
    recomputed from the phases present there, and no-reaction round-off is 0, so nothing depends on the
    LP solves that came before (before this, 177 values differed in their last bits; a ninth digit
    flipped once)."""
    import math

    from pathlib import Path

    from screening.screen.config import load_config

    config = load_config(str(Path(__file__).resolve().parents[1] / "workflows" / "config" / "demo.yaml"))
    candidates, stacks = config.candidates(table), config.stacks
    whole = {(r["stack"], r["candidate"]): r for r in evaluate_candidates(table, candidates, stacks)}
    half = (len(candidates) + 1) // 2
    pieces = {}
    for part in (candidates[:half], candidates[half:]):
        for stack in stacks:
            pieces.update({(r["stack"], r["candidate"]): r for r in evaluate_candidates(table, part, [stack])})
    assert whole.keys() == pieces.keys() and len(whole) > 300
    different = [(key, column) for key, row in whole.items() for column, value in row.items()
                 if not (value == pieces[key][column] or (isinstance(value, float) and math.isnan(value)
                                                          and math.isnan(pieces[key][column])))]
    assert different == []


def test_a_reused_highs_instance_solves_as_a_new_one(small_table, monkeypatch):
    """A model passed into the HiGHS instance of a solver that is gone (one left with a mixing column
    and a warm basis by an interrupted Monte Carlo) gives, bit for bit, the hull energies,
    decompositions, duals and most negative mixtures of a model on a new instance; the spares are
    bounded."""
    import gc

    from screening.thermo import hull

    monkeypatch.setattr(hull, "_SPARE_HIGHS", [])
    stable = stable_table(small_table)
    first = HullSolver(stable.chemsys(("Li", "Co", "Ni", "Mn", "O", "S")), "Li", -4.3)
    start, end = first.vector(Composition("Li2S")), first.vector(Composition("CoO"))
    with pytest.raises(KeyboardInterrupt), first.holding_line(start, end):
        first.most_negative_mixture(start, end, -1.0, -1.2)
        raise KeyboardInterrupt
    instance = first._highs
    del first
    gc.collect()
    assert hull._SPARE_HIGHS == [instance]
    cs = stable.chemsys(("Li", "La", "Zr", "O", "P", "S", "Cl"))
    reused = HullSolver(cs)
    assert reused._highs is instance and hull._SPARE_HIGHS == []
    monkeypatch.setattr(hull, "SPARE_HIGHS_MAX", 0)
    fresh = HullSolver(cs)
    rng = np.random.default_rng(5)
    for c in rng.dirichlet(np.ones(len(cs.elements)), size=40):
        a, b = reused.solve(c), fresh.solve(c)
        assert (a.energy, a.phases, a.amounts) == (b.energy, b.phases, b.amounts)
        assert np.array_equal(a.dual, b.dual)
    for pair in (("Li6PS5Cl", "Li7La3Zr2O12"), ("Li3PS4", "La2O3"), ("LiCl", "ZrO2")):
        start, end = (reused.vector(Composition(f)) for f in pair)
        t_a, p_a = reused.most_negative_mixture(start, end, reused.energy(start), reused.energy(end))
        t_b, p_b = fresh.most_negative_mixture(start, end, fresh.energy(start), fresh.energy(end))
        assert (t_a, p_a.energy, p_a.phases, p_a.amounts) == (t_b, p_b.energy, p_b.phases, p_b.amounts)
    del reused, fresh
    gc.collect()
    assert hull._SPARE_HIGHS == []  # none kept beyond SPARE_HIGHS_MAX
    monkeypatch.setattr(hull, "SPARE_HIGHS_MAX", 3)
    solvers = [HullSolver(cs) for _ in range(5)]
    del solvers
    gc.collect()
    assert len(hull._SPARE_HIGHS) == 3
