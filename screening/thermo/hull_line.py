"""The hull along a line: its vertices (kinks) between two compositions, for reactions and windows.

Along c(t) = start + t (end - start) the hull is convex and piecewise linear. The LP that gives the hull
at c(t) keeps one optimal basis over each linear piece (the amounts of its phases are linear in t, its
duals constant), so the whole line is walked by the parametric dual simplex: from the optimal basis at
t = 0, go to the t where a phase's amount reaches zero (a vertex), swap that phase for the one the dual
ratio test picks, repeat to t = 1. Each vertex costs one k x k inverse (k: elements) and a few passes
over the columns in numpy, tens of microseconds, against about two HiGHS solves and the bookkeeping
around them for the LP probes of the sandwich method, which stays as the fallback (a walk of the
default screen: 0.9 ms against 2.7 ms). Neither HiGHS nor scipy offers a parametric right-hand side,
hence the few lines here.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from scipy.linalg.lapack import dgesv as _dgesv

from screening.thermo.hull import AMOUNT_TOL, HullPoint, HullSolver, least_squares, line_crossing

PIVOT_TOL = 1e-12  # amounts per unit t, and pivot-row entries, closer to zero than this are zero
MAX_PIVOTS = 200  # per walk, before the LP probes take over (real walks: 3-40)


@dataclass(frozen=True)
class LineKink:
    """A vertex of the hull restricted to a line: at parameter t (0..1), with its hull point."""

    t: float
    point: HullPoint


def line_vertices(solver: HullSolver, start: np.ndarray, end: np.ndarray, tol: float = 1e-10,
                  only_below: tuple[float, float, float] | None = None) -> list[LineKink]:
    """All vertices of the hull along the segment start -> end (parameter t from 0 to 1), endpoints
    included, each with its exact hull point: by simplex pivots (pivot_vertices), or where those
    cannot start or finish, by LP probes (sandwich_vertices; tol applies there).

    only_below = (e_start, e_end, level): only the ends and the vertices where hull(t) - (1 - t)
    e_start - t e_end (a reaction energy) is below `level` are asked for; others may be left out."""
    kinks = pivot_vertices(solver, start, end)
    if kinks is None:
        return sandwich_vertices(solver, start, end, tol, only_below)
    if only_below is not None:
        e_start, e_end, level = only_below
        kinks = [k for i, k in enumerate(kinks) if i in (0, len(kinks) - 1)
                 or k.point.energy - k.t * e_end - (1.0 - k.t) * e_start < level]  # as reaction.py sums it
    return kinks


def pivot_vertices(solver: HullSolver, start: np.ndarray, end: np.ndarray) -> list[LineKink] | None:
    """The vertices along start -> end by the parametric dual simplex, or None when its start basis is
    unusable or it does not finish in MAX_PIVOTS (the caller then probes with LPs).

    Ties, in the phase that leaves and the one that enters, go to the lowest column (Bland's rule: no
    cycling at degenerate vertices)."""
    direction = np.asarray(end, dtype=float) - np.asarray(start, dtype=float)
    start = np.asarray(start, dtype=float)
    matrix = solver.coords.T  # elements x columns
    costs = solver.costs
    first = solver.solve(start)
    basis = _start_basis(solver, matrix)
    if basis is None:
        return None
    factored = _factor(matrix, costs, basis)
    if factored is None or (factored[0] @ start).min() < -1e-9:
        return None  # not an optimal basis at t = 0 after all
    inverse, reduced = factored
    nonbasic = np.ones(len(costs), dtype=bool)
    nonbasic[basis] = False
    line = np.column_stack([start, direction])
    t = 0.0
    pieces = []  # (t where a piece ends, its basis, inverse)
    for _ in range(MAX_PIVOTS):
        amounts, per_t = (inverse @ line).T
        falling = per_t < -PIVOT_TOL
        if not falling.any():
            break
        zero_at = np.full(len(basis), np.inf)
        zero_at[falling] = -amounts[falling] / per_t[falling]
        t_next = max(float(zero_at.min()), t)
        if t_next >= 1.0 - 1e-12:
            break
        ties = np.flatnonzero(zero_at <= zero_at.min() + 1e-15)
        leaving = int(ties[np.argmin(basis[ties])])
        pivot_row = inverse[leaving] @ matrix
        entering = np.flatnonzero((pivot_row < -PIVOT_TOL) & nonbasic)
        if entering.size == 0:
            return None  # the line leaves the feasible compositions: cannot happen inside the simplex
        ratios = np.maximum(reduced[entering], 0.0) / -pivot_row[entering]
        enter = int(entering[np.argmax(ratios <= ratios.min() + 1e-15)])
        if t_next > t + 1e-12:
            pieces.append((_piece_end(solver, line, basis, inverse, t, t_next), basis.copy(), inverse))
        t = t_next
        nonbasic[basis[leaving]] = True
        basis[leaving] = enter
        nonbasic[enter] = False
        factored = _factor(matrix, costs, basis)
        if factored is None:
            return None  # round-off broke optimality (an ill-conditioned basis): let the LPs answer
        inverse, reduced = factored
    else:
        return None
    if (inverse @ (start + direction)).min() < -1e-9:
        return None
    pieces.append((1.0, basis, inverse))
    ts = [0.0] + [piece[0] for piece in pieces]
    compositions = [start + piece[0] * direction for piece in pieces]
    energies = [first.energy] + [float(costs[b] @ (inv @ c)) for (_, b, inv), c in zip(pieces, compositions)]
    kinks = []
    for i in _bending(ts, energies):
        if i == 0:
            kinks.append(LineKink(0.0, first))
        else:
            _, b, inv = pieces[i - 1]
            kinks.append(LineKink(ts[i], _vertex_point(solver, compositions[i - 1], b, inv,
                                                        costs[b] @ inv)))
    return kinks


def _factor(matrix: np.ndarray, costs: np.ndarray, basis: np.ndarray):
    """(basis inverse, reduced costs) of an optimal basis, or None when the basis is singular or a
    reduced cost is negative (not optimal, beyond round-off)."""
    # LAPACK's dgesv against the identity, as np.linalg.inv computes it, without numpy's wrapper (10 us
    # of the 12 per call; about ten calls per walk)
    _, _, inverse, info = _dgesv(matrix[:, basis], np.eye(len(basis)))
    if info != 0:
        return None
    reduced = costs - (costs[basis] @ inverse) @ matrix
    return None if reduced.min() < -1e-9 else (inverse, reduced)


def _piece_end(solver: HullSolver, line: np.ndarray, basis: np.ndarray, inverse: np.ndarray,
               t_from: float, t_to: float) -> float:
    """t_to, the vertex ending the piece [t_from, t_to], recomputed from the vertex's own phases (those
    present there, in column order): the t where the line crosses their span. The basis inverse gives
    the same t but for its last bits, which depend on the path of pivots, and so on which solves came
    before (seen: window edges differing by 5e-15 V between a screen run whole and in shards, enough
    to flip a ninth digit); the phases present at a vertex do not."""
    start, direction = line[:, 0], line[:, 1]
    amounts = inverse @ (start + t_to * direction)
    phases = np.sort(basis[amounts > AMOUNT_TOL])
    crossing = line_crossing(solver.coords[phases].T, start, direction)
    if crossing is None or abs(crossing - t_to) > 1e-9 or crossing <= t_from:
        return t_to
    return crossing


def _start_basis(solver: HullSolver, matrix: np.ndarray) -> np.ndarray | None:
    """The columns of the optimal basis HiGHS ended its last solve with; a basic row (its slack basic
    at zero: a degenerate vertex, row dual 0) is replaced by the row's element entry, whose column is
    that same unit vector (the lowest-cost one: formation energy 0, so the duals are unchanged; the
    caller checks). None if that element has no entry."""
    _, basic = solver._highs.getBasicVariables()
    basis = np.array(basic, dtype=np.intp)
    if basis.size != matrix.shape[0]:
        return None
    for position in np.flatnonzero(basis < 0):
        row = -1 - basis[position]
        unit = np.flatnonzero((matrix[row] == 1.0) & (np.count_nonzero(matrix, axis=0) == 1))
        if unit.size == 0:
            return None
        basis[position] = unit[np.argmin(solver.costs[unit])]  # open to Li, Li3Ni is a unit column too
    return basis


def _vertex_point(solver: HullSolver, composition: np.ndarray, basis: np.ndarray, inverse: np.ndarray,
                  dual: np.ndarray) -> HullPoint:
    """The hull point at a vertex of the walk from the basis of the piece that ends there: its phases
    those holding more than AMOUNT_TOL, amounts re-solved from the balance as HullSolver.solve does."""
    amounts = inverse @ composition
    keep = np.flatnonzero(amounts > AMOUNT_TOL)
    order = keep[np.argsort(basis[keep])]  # column order, as a solve reports them
    index = basis[order]
    amounts = amounts[order]
    balance = solver.coords[index].T
    exact = least_squares(balance, composition)
    if exact.min() > -1e-12 and np.abs(balance @ exact - composition).max() <= 1e-12:
        amounts = np.clip(exact, 0.0, None)
    energy = float(solver.costs[index] @ amounts)
    return HullPoint(composition, energy, tuple(int(r) for r in solver.rows[index]),
                     tuple(float(a) for a in amounts), dual)


def sandwich_vertices(solver: HullSolver, start: np.ndarray, end: np.ndarray, tol: float = 1e-10,
                      only_below: tuple[float, float, float] | None = None) -> list[LineKink]:
    """The vertices of the hull along start -> end by LP probes alone (line_vertices' fallback).

    only_below = (e_start, e_end, level): only the vertices where hull(t) - (1 - t) e_start - t e_end
    (a reaction energy) is below `level` are sought; an interval on which a lower bound of it (from
    the supporting lines at its ends) is not below `level` is not split (its inner vertices are left
    out: none of them is below `level`).

    Exact sandwich method: the supporting lines at the two ends of an interval (from the LP duals)
    meet at t_m; if the hull touches their meeting point the interval holds exactly one vertex there,
    otherwise the interval is split at t_m. Each vertex costs about two LP solves.
    """
    direction = end - start

    def probe(t: float) -> HullPoint:
        return solver.solve(start + t * direction)

    def slope(point: HullPoint) -> float:
        return float(point.dual @ direction)

    p0, p1 = probe(0.0), probe(1.0)
    found: dict[float, HullPoint] = {0.0: p0, 1.0: p1}
    stack = [(0.0, p0, 1.0, p1)]
    while stack:
        ta, pa, tb, pb = stack.pop()
        sa, sb = slope(pa), slope(pb)
        if tb - ta <= 1e-12:
            continue
        chord = (pb.energy - pa.energy) / (tb - ta)
        # The hull is linear on [ta, tb] when both supporting lines agree with the chord.
        if sb - sa <= tol or (abs(chord - sa) <= tol and abs(chord - sb) <= tol):
            continue
        tm = (pb.energy - pa.energy - sb * tb + sa * ta) / (sa - sb)
        if not (ta < tm < tb):
            tm = min(max(tm, ta), tb)
            if tm - ta <= 1e-12 or tb - tm <= 1e-12:
                continue
        if only_below is not None:
            # on [ta, tb] the reaction energy is at least max(both supporting lines) - baseline, a
            # convex function whose least value is at ta, tm or tb
            e0, e1, level = only_below
            bound = min(pa.energy + sa * (tm - ta) - (1.0 - tm) * e0 - tm * e1,
                        pa.energy - (1.0 - ta) * e0 - ta * e1, pb.energy - (1.0 - tb) * e0 - tb * e1)
            if bound >= level:
                continue
        pm = probe(tm)
        # Every probe is an exact hull point: keep it; points where the hull does not bend are
        # dropped below. (Keeping only confirmed meeting points loses a vertex that was first met
        # as a split point and later confirmed at the end of a sub-interval.)
        if tm - ta > 1e-9 and tb - tm > 1e-9:
            found[tm] = pm
        support = pa.energy + sa * (tm - ta)
        if pm.energy - support <= tol * max(1.0, abs(pm.energy)):
            continue
        stack.append((ta, pa, tm, pm))
        stack.append((tm, pm, tb, pb))
    kinks = _drop_collinear([LineKink(t, found[t]) for t in sorted(found)])
    # Where the hull bends little a meeting point can miss its vertex (seen: 1e-5 to 1e-3 in t): each
    # point is replaced by the exact vertices it stands for (_snap_to_vertex), so the kinks do not
    # depend on which LP solves came before.
    snapped = [kinks[0]]
    for k in range(1, len(kinks) - 1):
        replacement = _snap_to_vertex(solver, start, direction, kinks[k].t, kinks[k].point,
                                      snapped[-1].t, kinks[k + 1].t)
        snapped.extend([kinks[k]] if replacement is None else [LineKink(*r) for r in replacement])
    snapped.append(kinks[-1])
    return _drop_collinear(snapped) if len(snapped) != len(kinks) else snapped


SNAP_DISTANCE = 1e-4  # in t: a crossing of a lower-dimensional face farther than this is not a near miss
VERTEX_GAP = 1e-9  # in t: a vertex this close to a neighbour is that neighbour


def _snap_to_vertex(solver: HullSolver, start, direction, t: float, point: HullPoint, ta: float, tb: float):
    """The exact vertices that replace the walk's point at t (between its neighbours ta < t < tb), as
    [(t', hull point)], or None when t is a vertex itself.

    A point whose phases all hold some of the mixture, with the line running inside their span, is
    inside a straight piece of the hull: never a vertex, however close to one (where the hull bends by
    less than the walk's tolerance, a meeting point was seen 1e-3 from its vertex). It is replaced by
    the two ends of its piece, where a phase vanishes, each unless it is one of the neighbours (within
    VERTEX_GAP) or beyond them. A point where the line only crosses its phases' span moves to the
    crossing when that is within SNAP_DISTANCE (round-off of the kink's location).
    """
    index = np.searchsorted(solver.rows, np.array(point.phases))
    matrix = solver.coords[index].T
    solution = least_squares(matrix, np.column_stack([start, direction]))
    base, per_t = solution[:, 0], solution[:, 1]
    if np.abs(matrix @ base - start).max() <= 1e-9 and np.abs(matrix @ per_t - direction).max() <= 1e-9:
        # the line runs inside these phases' span: amounts are linear in t, the piece ends at zeros
        with np.errstate(divide="ignore", invalid="ignore"):
            zeros = -base / per_t
        zeros = zeros[np.isfinite(zeros)]
        below, above = zeros[zeros < t], zeros[zeros > t]
        ends = ([float(below.max())] if below.size else []) + ([float(above.min())] if above.size else [])
        if (np.abs(zeros - t) <= 1e-12).any():
            return None  # a phase vanishes at t itself: t is the vertex
        return [_point_on_facet(solver, start, direction, z, point, index, matrix) for z in ends
                if ta + VERTEX_GAP < z < tb - VERTEX_GAP]
    # the line crosses their span at one point: solve for it (amounts and t together)
    joint = least_squares(np.column_stack([matrix, -direction]), start)
    crossing = float(joint[-1])
    exact = np.abs(matrix @ joint[:-1] - direction * crossing - start).max() <= 1e-12
    if not exact or abs(crossing - t) > SNAP_DISTANCE or not ta < crossing < tb or crossing == t:
        return None
    return [_point_on_facet(solver, start, direction, crossing, point, index, matrix)]


def _point_on_facet(solver: HullSolver, start, direction, target: float, point: HullPoint, index, matrix):
    """(target, hull point) at `target` on the facet of `point`'s phases: its amounts follow from the
    balance, its energy from theirs, and the facet's hyperplane (point.dual) still supports the hull
    there (falls back to a solve when the balance is not exact)."""
    composition = start + target * direction
    amounts = least_squares(matrix, composition)
    if amounts.min() < -1e-9 or np.abs(matrix @ amounts - composition).max() > 1e-12:
        return target, solver.solve(composition)
    keep = amounts > AMOUNT_TOL
    amounts = np.clip(amounts[keep], 0.0, None)
    if not keep.all():  # the vanishing phase: the others' amounts re-solved without it
        exact = least_squares(matrix[:, keep], composition)
        if np.abs(matrix[:, keep] @ exact - composition).max() > 1e-12 or exact.min() < 0:
            return target, solver.solve(composition)
        amounts = exact
    index = index[keep]
    energy = float(solver.costs[index] @ amounts)
    return target, HullPoint(composition, energy, tuple(int(r) for r in solver.rows[index]),
                             tuple(float(a) for a in amounts), point.dual)


def _drop_collinear(kinks: list[LineKink]) -> list[LineKink]:
    """The kinks without the interior points where the hull does not bend (_bending)."""
    keep = _bending([k.t for k in kinks], [k.point.energy for k in kinks])
    return [kinks[i] for i in keep]


def _bending(ts, energies, tol: float = 1e-6) -> list[int]:
    """Indices of the points (t ascending, hull energies) to keep: both ends and the interior points
    where the slope grows by more than tol (eV per unit t). Less is LP round-off (seen: 1e-9..1e-8), not
    chemistry (real kinks here: 1e-3 and up). A point within 1e-9 in t of the last kept one, or of the
    next point, is that point: a vertex recomputed from its phases can land on the next piece's end
    (seen: on t = 1, a division by zero in a full-matrix screen)."""
    if len(ts) <= 2:
        return list(range(len(ts)))
    kept = [0]
    for k in range(1, len(ts) - 1):
        prev = kept[-1]
        if ts[k] - ts[prev] <= 1e-9 or ts[k + 1] - ts[k] <= 1e-9:
            continue
        s1 = (energies[k] - energies[prev]) / (ts[k] - ts[prev])
        s2 = (energies[k + 1] - energies[k]) / (ts[k + 1] - ts[k])
        if s2 - s1 > tol:
            kept.append(k)
    kept.append(len(ts) - 1)
    return kept
