"""Exact lower-convex-hull energies by linear programming, closed or open to one element.

pymatgen's PhaseDiagram builds the whole hull with qhull, whose cost grows combinatorially with the
number of elements (a 10-element system takes tens of minutes and GBs). We only ever need the hull
at given compositions and along lines, which is the linear program

    minimise  sum_i x_i e_i   subject to  sum_i x_i a_i = c,  x >= 0

(a_i: atom fractions of entry i, e_i: eV/atom, x_i: atom fraction of the mixture held by entry i).
Its optimum is the hull energy at c, its optimal basis the decomposition, and its duals a supporting
hyperplane. One HiGHS model per chemical system is reused for every query (only the right-hand side
changes; the previous basis warm-starts the next solve).

Open to an element (grand potential at chemical potential mu, eV): the open element's row is dropped,
the pure open-element entries are removed, and entry i costs (e_i - mu a_i,open) / (1 - a_i,open) per
atom of the other elements, exactly as pymatgen's GrandPotentialPhaseDiagram normalises.
"""

from __future__ import annotations

import weakref
from contextlib import contextmanager
from dataclasses import dataclass

import highspy
import numpy as np
from scipy.linalg.lapack import dgels as _dgels
from pymatgen.core import Composition

from screening.data.table import ChemSys
from screening.errors import InputError

AMOUNT_TOL = 1e-9  # atom fractions below this are dropped from a decomposition
# A phase holding less than this atom fraction of a kink's mixture is round-off of the kink's location
# (seen: 3e-7), not chemistry (the smallest real amounts seen: 7e-4).
TRACE_TOL = 1e-5


def _silence_highs_banner() -> None:
    """HiGHS prints a banner from C++ to fd 1 on its first instance; that would corrupt --json output."""
    import os
    import sys

    sys.stdout.flush()
    saved = os.dup(1)
    try:
        with open(os.devnull, "w") as devnull:
            os.dup2(devnull.fileno(), 1)
            highspy.Highs()
    finally:
        os.dup2(saved, 1)
        os.close(saved)


_silence_highs_banner()


def least_squares(matrix: np.ndarray, rhs: np.ndarray) -> np.ndarray:
    """x minimising |matrix @ x - rhs| (rhs a vector or columns), for matrices with at least as many
    rows (elements) as columns (phases). LAPACK's QR solver (dgels) called directly: numpy's lstsq
    spends about 19 us per call in its wrapper and SVD, dgels about 3, and this runs some 700 times
    per candidate. Both give the unique solution of a full-rank system to round-off; a rank-deficient
    or overflowing one falls back to the SVD (minimum-norm) solution."""
    rows, cols = matrix.shape
    if rows >= cols > 0:
        factor, solution, info = _dgels(matrix, rhs)
        diagonal = np.abs(np.diagonal(factor)[:cols])  # R of the QR factorisation: full rank?
        if info == 0 and diagonal.min() > 1e-10 * diagonal.max():
            x = solution[:cols]
            if np.isfinite(x).all():
                return x
    return np.linalg.lstsq(matrix, rhs, rcond=None)[0]


def line_crossing(phases: np.ndarray, start: np.ndarray, direction: np.ndarray) -> float | None:
    """The t where start + t direction lies in the span of the columns of `phases` (elements x phases),
    or None when no t does exactly (to 1e-12) or the system is not overdetermined."""
    matrix = np.column_stack([phases, -direction])
    if matrix.shape[1] > matrix.shape[0]:
        return None
    joint = least_squares(matrix, start)
    if np.abs(matrix @ joint - start).max() > 1e-12:
        return None
    return float(joint[-1])


def _new_highs() -> highspy.Highs:
    highs = highspy.Highs()
    highs.setOptionValue("output_flag", False)
    highs.setOptionValue("threads", 1)
    highs.setOptionValue("primal_feasibility_tolerance", 1e-10)
    highs.setOptionValue("dual_feasibility_tolerance", 1e-10)
    # Three in four solves of a screen start cold (a new model, or the mixing column, basic at the
    # optimum, deleted): on these LPs (at most ~10 rows, ~100 columns) presolve costs more than the
    # simplex, 490 -> 270 us per cold solve (and 675 -> 325 with the mixing column), measured over
    # a default screen's candidates. The optimum is the same LP's either way.
    highs.setOptionValue("presolve", "off")
    return highs


# A new highspy.Highs costs about 0.2 ms (its Python callback objects), a third of a small system's
# model build, and a screen builds about nine models per candidate: a solver that is garbage hands its
# instance back here, and the next model is passed into it (passModel replaces the model and discards
# the old basis, so a solve starts as on a new instance).
_SPARE_HIGHS: list[highspy.Highs] = []
SPARE_HIGHS_MAX = 64


def _spare(highs: highspy.Highs) -> None:
    if len(_SPARE_HIGHS) < SPARE_HIGHS_MAX:
        _SPARE_HIGHS.append(highs)


OWN_ENERGY = -1  # gradient key of a compound's own energy when it is not a row (a user's --energy)


def combine_gradients(*terms: tuple[float, dict[int, float]]) -> dict[int, float]:
    """sum_k c_k g_k of gradients ({row: d value / d energy}); terms that cancel are dropped."""
    out: dict[int, float] = {}
    for coefficient, gradient in terms:
        for key, value in gradient.items():
            out[key] = out.get(key, 0.0) + coefficient * value
    return {key: value for key, value in sorted(out.items()) if abs(value) > 1e-15}


@dataclass(frozen=True)
class HullPoint:
    """The hull at one composition.

    energy: eV/atom (closed) or eV per atom of the non-open elements (open).
    phases: rows of the chemical system; amounts: their atom fractions (sum to 1, in the solver's
    normalisation). dual: a supporting hyperplane, hull(c') >= dual . c' for every composition c'.
    """

    composition: np.ndarray
    energy: float
    phases: tuple[int, ...]
    amounts: tuple[float, ...]
    dual: np.ndarray


class HullSolver:
    """Hull energies of one chemical system, closed or open to `open_element` at `chempot` eV."""

    def __init__(self, chemsys: ChemSys, open_element: str | None = None, chempot: float = 0.0,
                 excluded_rows=()):
        self.chemsys = chemsys
        self.open_element = open_element
        self.chempot = float(chempot)
        keep = np.ones(chemsys.size, dtype=bool)
        keep[list(excluded_rows)] = False
        frac = chemsys.fractions
        energies = chemsys.energies
        if open_element is None:
            self.elements = chemsys.elements
            coords = frac
            costs = energies.copy()
        else:
            if open_element not in chemsys.elements:
                raise InputError(f"open element {open_element} is not in the system "
                                 f"{'-'.join(chemsys.elements)}")
            j_open = chemsys.elements.index(open_element)
            other = [j for j in range(len(chemsys.elements)) if j != j_open]
            self.elements = tuple(chemsys.elements[j] for j in other)
            share = 1.0 - frac[:, j_open]
            keep &= share > 1e-12  # the reservoir element itself is not a phase of the grand hull
            safe = np.where(share > 1e-12, share, 1.0)
            coords = frac[:, other] / safe[:, None]
            costs = (energies - self.chempot * frac[:, j_open]) / safe
        self.rows = np.flatnonzero(keep)
        self.coords = coords[self.rows]
        self.costs = costs[self.rows]
        # d cost / d (entry energy, eV/atom): 1 closed, 1 / (non-open share) open
        self.cost_scale = np.ones(len(self.rows)) if open_element is None else 1.0 / safe[self.rows]
        # kept to re-cost the model for new energies (set_energies) or another potential (set_chempot)
        self._open_fraction = (np.zeros(len(self.rows)) if open_element is None
                               else frac[self.rows, j_open])
        if len(self.rows) == 0:
            raise InputError("no phases left to build a hull from")
        self._held_line = None  # (start, end, direction) of the mixing column held by holding_line
        self._highs = self._build_model()

    def _build_model(self) -> highspy.Highs:
        n, k = self.coords.shape
        highs = _SPARE_HIGHS.pop() if _SPARE_HIGHS else _new_highs()
        weakref.finalize(self, _spare, highs)
        lp = highspy.HighsLp()
        lp.num_col_ = n
        lp.num_row_ = k
        lp.col_cost_ = self.costs
        lp.col_lower_ = np.zeros(n)
        lp.col_upper_ = np.full(n, highspy.kHighsInf)
        lp.row_lower_ = np.zeros(k)
        lp.row_upper_ = np.zeros(k)
        csc = self.coords.T  # rows = elements, columns = entries
        nonzero = self.coords > 0
        lp.a_matrix_.format_ = highspy.MatrixFormat.kColwise
        lp.a_matrix_.start_ = np.concatenate([[0], np.cumsum(nonzero.sum(axis=1))]).astype(np.int32)
        cols, rows = np.nonzero(nonzero)
        lp.a_matrix_.index_ = rows.astype(np.int32)
        lp.a_matrix_.value_ = csc[rows, cols]
        highs.passModel(lp)
        self._row_index = np.arange(k, dtype=np.int32)
        return highs

    def set_energies(self, energies: np.ndarray) -> None:
        """Re-cost the model for new energies (eV/atom) of every row of the chemical system, e.g. a
        Monte Carlo draw: the same columns, so the next solve warm-starts from the last basis."""
        energies = np.asarray(energies, dtype=float)
        if energies.shape != (self.chemsys.size,):
            raise ValueError("one energy per row of the chemical system is needed")
        self.chemsys = self.chemsys.with_energies(energies)
        self.costs = self.cost_scale * (energies[self.rows] - self.chempot * self._open_fraction)
        self._highs.changeColsCost(len(self.rows), np.arange(len(self.rows), dtype=np.int32), self.costs)

    def set_chempot(self, chempot: float) -> None:
        """Re-cost an open model for another chemical potential of the open element (eV): the same
        columns, so no model is rebuilt and the next solve warm-starts from the last basis. Costs
        equal, to the bit, those a new HullSolver at `chempot` would have."""
        if self.open_element is None:
            raise ValueError("a closed hull has no chemical potential")
        chempot = float(chempot)
        if chempot == self.chempot:
            return
        self.chempot = chempot
        share = 1.0 - self._open_fraction  # as in __init__, so the costs are a new model's to the bit
        self.costs = (self.chemsys.energies[self.rows] - chempot * self._open_fraction) / share
        self._highs.changeColsCost(len(self.rows), np.arange(len(self.rows), dtype=np.int32), self.costs)

    def vector(self, comp: Composition) -> np.ndarray:
        """Composition as fractions over this solver's elements (the open element dropped)."""
        outside = [str(el) for el in comp.elements if str(el) not in self.chemsys.elements]
        if outside:
            raise InputError(f"{comp.reduced_formula}: element {outside[0]} is not in the system "
                             f"{'-'.join(self.chemsys.elements)}")
        # by symbol from one pass over the composition (comp[symbol] parses the symbol every time)
        by_symbol = {str(el): amount for el, amount in comp.items()}
        amounts = np.array([by_symbol.get(el, 0.0) for el in self.elements], dtype=float)
        total = amounts.sum()
        if total <= 0:
            raise InputError(f"{comp.reduced_formula} has nothing but the open element {self.open_element}")
        return amounts / total

    def _run(self):
        """Solve from the last basis; if that ends without an optimum, solve again from scratch (seen:
        HiGHS 1.16 reporting "Unknown" after a warm start, once in a default screen's Monte Carlo, for
        a mixing line held across draws in Li-Co-Mn-Ni-O-Cl)."""
        self._highs.run()
        status = self._highs.getModelStatus()
        if status != highspy.HighsModelStatus.kOptimal:
            self._highs.clearSolver()
            self._highs.run()
            status = self._highs.getModelStatus()
        return status

    def solve(self, composition: np.ndarray) -> HullPoint:
        """Hull energy, decomposition and supporting hyperplane at a composition vector."""
        if self._held_line is not None:
            raise ValueError("a mixing line is held in this model: its column would join the solve")
        c = np.asarray(composition, dtype=float)
        self._highs.changeRowsBounds(len(c), self._row_index, c, c)
        status = self._run()
        if status != highspy.HighsModelStatus.kOptimal:
            raise InputError(f"no hull solution at this composition ({self._highs.modelStatusToString(status)})")
        solution = self._highs.getSolution()
        x = np.asarray(solution.col_value)
        dual = np.asarray(solution.row_dual)
        basis = np.flatnonzero(x > AMOUNT_TOL)
        amounts = self._refine(basis, c, x[basis])
        energy = float(self.costs[basis] @ amounts)
        return HullPoint(c, energy, tuple(int(r) for r in self.rows[basis]),
                         tuple(float(a) for a in amounts), dual)

    def _refine(self, basis: np.ndarray, c: np.ndarray, approx: np.ndarray) -> np.ndarray:
        """Amounts of the optimal phases solved exactly from the balance (removes LP tolerance noise)."""
        matrix = self.coords[basis].T
        exact = least_squares(matrix, c)
        if exact.min() > -1e-12 and np.abs(matrix @ exact - c).max() <= 1e-12:
            return np.clip(exact, 0.0, None)
        return approx

    def most_negative_mixture(self, start: np.ndarray, end: np.ndarray, e_start: float,
                              e_end: float) -> tuple[float, HullPoint]:
        """The t in [0, 1] minimising hull(start + t (end - start)) - (1 - t) e_start - t e_end.

        One LP with the mixing parameter t as an extra variable (the most negative reaction energy
        without tracing every kink). Returns (t, hull point at t).
        """
        if self._held_line is not None:
            if not (np.array_equal(self._held_line[0], start) and np.array_equal(self._held_line[1], end)):
                raise ValueError("another mixing line is held in this model")
            return self._mixing_solve(np.asarray(start, dtype=float), e_start, e_end)
        with self.holding_line(start, end):
            return self._mixing_solve(np.asarray(start, dtype=float), e_start, e_end)

    @contextmanager
    def holding_line(self, start: np.ndarray, end: np.ndarray):
        """Keep the mixing parameter's column of the line start -> end in the model while most_negative_mixture
        is asked on that line many times (a Monte Carlo's draws): each solve then warm-starts from the
        last optimal basis, which deleting the column (usually basic) and adding it again would discard.
        No other solve may run meanwhile (it would use the column)."""
        if self._held_line is not None:
            raise ValueError("a mixing line is already held in this model")
        start, end = np.array(start, dtype=float), np.array(end, dtype=float)
        direction = end - start
        nonzero = np.flatnonzero(np.abs(direction) > 0)
        self._highs.addCol(0.0, 0.0, 1.0, len(nonzero), nonzero.astype(np.int32), -direction[nonzero])
        self._held_line = (start, end, direction)
        try:
            yield
        finally:
            self._held_line = None
            self._highs.deleteCols(1, np.array([len(self.rows)], dtype=np.int32))

    def _mixing_solve(self, c: np.ndarray, e_start: float, e_end: float) -> tuple[float, HullPoint]:
        n = len(self.rows)
        direction = self._held_line[2]
        self._highs.changeColCost(n, -(e_end - e_start))
        self._highs.changeRowsBounds(len(c), self._row_index, c, c)
        status = self._run()
        if status != highspy.HighsModelStatus.kOptimal:
            raise InputError("no hull solution along this mixing line "
                             f"({self._highs.modelStatusToString(status)})")
        solution = self._highs.getSolution()
        x = np.asarray(solution.col_value)
        dual = np.asarray(solution.row_dual)
        t = float(np.clip(x[n], 0.0, 1.0))
        if t < 1e-12:
            t = 0.0
        elif t > 1 - 1e-12:
            t = 1.0
        # The optimal phases and the duals of this LP are those of the hull LP at the optimal mixture
        # (complementary slackness), so no second solve is needed.
        basis = np.flatnonzero(x[:n] > AMOUNT_TOL)
        if 0.0 < t < 1.0:
            t = self._crossing(basis, c, direction, t)
        composition = c + t * direction
        amounts = self._refine(basis, composition, x[basis])
        energy = float(self.costs[basis] @ amounts)
        point = HullPoint(composition, energy, tuple(int(r) for r in self.rows[basis]),
                          tuple(float(a) for a in amounts), dual)
        return t, point

    def _crossing(self, basis: np.ndarray, start: np.ndarray, direction: np.ndarray, t: float) -> float:
        """t recomputed as where the line start + t direction crosses the span of the phases (columns
        `basis`, ascending) present there. The LP's t carries its tolerance and, in its last bits, the
        warm start's path, so a screen's ninth digits would depend on which solves came before (on how
        it was sharded); the phases present at the optimum do not. t itself when that is not exact."""
        crossing = line_crossing(self.coords[basis].T, start, direction)
        if crossing is None or abs(crossing - t) > 1e-9 or not 0.0 < crossing < 1.0:
            return t
        return crossing

    def energy(self, composition: np.ndarray) -> float:
        return self.solve(composition).energy

    def energy_of_composition(self, comp: Composition) -> float:
        return self.solve(self.vector(comp)).energy

    def without(self, rows) -> "HullSolver":
        """The same hull with some entries (rows of the chemical system) removed."""
        excluded = set(int(r) for r in rows) | set(
            int(r) for r in np.setdiff1d(np.arange(self.chemsys.size), self.rows))
        return HullSolver(self.chemsys, self.open_element, self.chempot, sorted(excluded))

    def drop_traces(self, point: HullPoint, tol: float = TRACE_TOL) -> HullPoint:
        """The point without phases below `tol` (atom fraction), the others' amounts re-solved from the
        balance; the energy is kept (the exact LP value). For reporting what forms, not for energies.

        The tolerance shrinks to a hundredth of the scarcest element's fraction, so a phase that holds
        a trace dopant of the mixture is never dropped.
        """
        present = point.composition[point.composition > 0]
        tol = min(tol, 0.01 * float(present.min())) if present.size else tol
        keep = [i for i, amount in enumerate(point.amounts) if amount >= tol]
        if len(keep) == len(point.amounts) or not keep:
            return point
        rows = np.array([point.phases[i] for i in keep])
        matrix = self.coords[np.searchsorted(self.rows, rows)].T
        amounts = least_squares(matrix, point.composition)
        amounts = np.clip(amounts, 0.0, None)
        amounts /= amounts.sum()
        return HullPoint(point.composition, point.energy, tuple(int(r) for r in rows),
                         tuple(float(a) for a in amounts), point.dual)

    def energy_gradient(self, point: HullPoint) -> dict[int, float]:
        """d point.energy / d (energy of each chemical-system row, eV/atom) at the point's fixed
        decomposition: the phases' amounts (open: per non-open atom, so divided by their share)."""
        index = np.searchsorted(self.rows, np.array(point.phases, dtype=np.int64))
        scale = self.cost_scale[index] if len(index) else np.zeros(0)
        return {int(r): float(a * k) for r, a, k in zip(point.phases, point.amounts, scale)}

    def phase_names(self, point: HullPoint) -> list[str]:
        return [self.chemsys.names[r] for r in point.phases]
