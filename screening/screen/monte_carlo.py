"""Monte Carlo of a screen's top candidates: how likely each passes its criteria and stays in the top 10.

For the `top` best-ranked rows of every stack, `draws` correlated sets of all entry energies are drawn
from the error model (one value per fitted correction shared by every entry in a draw, plus one per
composition; screening.thermo.error_model), and the row's thermodynamic numbers (energy above hull,
window limits and shortfall, the four reaction energies) are solved again in each draw, on every
entry of each chemical system (not only the hull-stable ones: an entry above the hull may become
stable in a draw). A hypothetical candidate keeps its penalty above the drawn hull, and its own energy
carries the model's error of its composition, as in the first-order columns.

Per row: `p_pass_<criterion>` for each enabled thermodynamic criterion, `p_pass_all` (every criterion,
the property criteria as computed: band gap, interphase types, ALD evidence and practicality come from
data files, not energies) and `p_top10` (its place in the stack is 10 or better). In a draw only the
top rows move: every other row of the stack keeps its computed values and Pareto rank; a drawn row's
Pareto rank is 1 + the highest Pareto rank among the rows that dominate it, which is exactly its front
in non-dominated sorting. With every error zero each draw reproduces the ranking exactly.
"""

from __future__ import annotations

import bisect
import hashlib
import math
from dataclasses import dataclass

import numpy as np
import pandas as pd
from pymatgen.core import Composition

from screening.chem import parse_formula
from screening.data.table import EntryTable
from screening.screen.rank import (CRITERIA, SORT_COLUMNS, dominance, objective_matrix, score,
                                   thermodynamic_passes, tie_keys, _window_margin)
from screening.screen.stacks import Stack
from screening.thermo.error_model import ErrorModel, correction_species
from screening.thermo.hull import HullSolver
from screening.thermo.window import electrochemical_window

TOP_PLACES = 10  # p_top10
REACTIONS = ("electrode", "electrode_open", "electrolyte", "electrolyte_open")
DRAWN_COLUMNS = ["e_above_hull", "reduction_potential", "oxidation_potential"] + [f"rxn_{r}" for r in REACTIONS]


@dataclass(frozen=True)
class MonteCarloSettings:
    """top: rows per stack; draws: correlated draws of every energy; seed: of the generator."""

    model: ErrorModel
    top: int = 50
    draws: int = 200
    seed: int = 0


class EnergyDraws:
    """Drawn errors (eV/atom) of a table's entry energies: draws x rows, reproducible from the seed.

    The shared part of a draw is one standard normal per correction label (every label of the model,
    whichever rows are asked for) times its sigma; the independent part is one standard normal per table
    row and draw. A composition outside the table (a hypothetical film) gets its own stream, seeded by
    its formula."""

    def __init__(self, table: EntryTable, model: ErrorModel, draws: int, seed: int):
        sigmas = model.correction_sigmas()
        self.labels = sorted(label for label, sigma in sigmas.items() if sigma > 0)
        self.model, self.table, self.draws, self.seed = model, table, draws, seed
        rng = np.random.default_rng(seed)
        self.shared = rng.standard_normal((draws, len(self.labels))) * np.array([sigmas[x] for x in self.labels])
        self._independent = rng.standard_normal((draws, len(table)))
        self._column = {label: j for j, label in enumerate(self.labels)}
        self.hull_cache: dict[tuple, np.ndarray] = {}  # (formula, potential): drawn hull energies

    def _content(self, formulas) -> np.ndarray:
        matrix = np.zeros((len(formulas), len(self.labels)))
        if self.labels:
            for i, formula in enumerate(formulas):
                for label, fraction in correction_species(formula):
                    if label in self._column:
                        matrix[i, self._column[label]] = fraction
        return matrix

    def of_rows(self, rows: np.ndarray) -> np.ndarray:
        """draws x len(rows) errors of these table rows."""
        names = [str(n) for n in self.table.names[rows]]
        sigma = np.array([self.model.independent_error(n) for n in names])
        return self.shared @ self._content(names).T + self._independent[:, rows] * sigma

    def of_formula(self, formula: str) -> np.ndarray:
        """draws errors of a composition that is not a row (its own independent stream)."""
        digest = int(hashlib.sha256(formula.encode()).hexdigest()[:15], 16)
        own = np.random.default_rng([self.seed, digest]).standard_normal(self.draws)
        return self.shared @ self._content([formula])[0] + own * self.model.independent_error(formula)


def _system(table: EntryTable, elements) -> tuple[np.ndarray, object]:
    key = tuple(sorted(set(elements)))
    rows = table.rows_within(key)
    return rows, table.chemsys_of_rows(rows, key)


def candidate_draws(table: EntryTable, draws: EnergyDraws, formula: str, hypothetical: bool,
                    penalty: float | None, partners: list[tuple[Composition, float | None]]) -> dict:
    """Drawn values of one candidate: {"e_above_hull", "reduction_potential", "oxidation_potential":
    arrays over draws (NaN where undefined), (partner reduced formula, potential): reaction energies}.

    partners: (composition, potential V or None for closed) of its stacks' reactions; reactions open to Li
    count the mutual reaction only, both reactants at their (drawn) hull energies, as in the screen."""
    comp = parse_formula(formula)
    n = draws.draws
    rows, cs = _system(table, {str(e) for e in comp.elements} | {"Li"})
    delta = draws.of_rows(rows)
    solver = HullSolver(cs)
    vector = solver.vector(comp)
    base = cs.energies.copy()
    own_row = cs.index_of(comp.reduced_formula)
    own_drawn = None
    if hypothetical or own_row is None:
        own_drawn = solver.solve(vector).energy + (penalty or 0.0) + draws.of_formula(comp.reduced_formula)
    only_li = {str(e) for e in comp.elements} == {"Li"}
    out = {key: np.full(n, np.nan) for key in ("e_above_hull", "reduction_potential", "oxidation_potential")}
    for k in range(n):
        solver.set_energies(base + delta[k])
        hull = solver.solve(vector).energy
        own = own_drawn[k] if own_drawn is not None else solver.chemsys.energies[own_row]
        out["e_above_hull"][k] = max(own - hull, 0.0)
        if not only_li:
            window = electrochemical_window(solver.chemsys, comp, solver=solver)
            out["reduction_potential"][k] = _nan(window.reduction_potential)
            out["oxidation_potential"][k] = _nan(window.oxidation_potential)
    for other, potential in partners:
        key = (other.reduced_formula, potential)
        if key not in out:
            out[key] = _reaction_draws(table, draws, comp, other, potential)
    return out


def _hull_draws(table: EntryTable, draws: EnergyDraws, comp: Composition, potential: float | None) -> np.ndarray:
    """A reactant's drawn hull energy (closed: eV/atom; open to Li: grand energy per non-Li atom) in each
    draw, from its own elements' entries only (the hull at a composition needs no others); cached per
    process, since every candidate meets the same electrodes and electrolytes."""
    key = (comp.reduced_formula, potential)
    if key not in draws.hull_cache:
        elements = {str(e) for e in comp.elements} | ({"Li"} if potential is not None else set())
        rows, cs = _system(table, elements)
        delta = draws.of_rows(rows)
        solver = HullSolver(cs) if potential is None else HullSolver(cs, "Li", -potential)
        vector = solver.vector(comp)
        values = np.empty(draws.draws)
        for k in range(draws.draws):
            solver.set_energies(cs.energies + delta[k])
            values[k] = solver.solve(vector).energy
        draws.hull_cache[key] = values
    return draws.hull_cache[key]


def _reaction_draws(table: EntryTable, draws: EnergyDraws, comp: Composition, other: Composition,
                    potential: float | None) -> np.ndarray:
    """The most negative mutual reaction energy in each draw (NaN where the screen leaves it undefined)."""
    n = draws.draws
    if comp.reduced_composition == other.reduced_composition or (
            potential is not None and {str(e) for e in other.elements} == {"Li"}):
        return np.full(n, np.nan)
    elements = {str(e) for e in comp.elements} | {str(e) for e in other.elements} | {"Li"}
    rows, cs = _system(table, elements)
    delta = draws.of_rows(rows)
    base = cs.energies.copy()
    solver = HullSolver(cs) if potential is None else HullSolver(cs, "Li", -potential)
    own, partner = _hull_draws(table, draws, comp, potential), _hull_draws(table, draws, other, potential)
    vec_a, vec_b = solver.vector(comp), solver.vector(other)
    same = np.allclose(vec_a, vec_b, atol=1e-12)  # e.g. X and Li3X open to Li: only their own reactions
    values = np.empty(n)
    if same:
        for k in range(n):
            solver.set_energies(base + delta[k])
            point = solver.solve(vec_a)
            values[k] = float(min(point.energy - partner[k], point.energy - own[k])) + 0.0
        return values
    with solver.holding_line(vec_b, vec_a):  # each draw's LP warm-starts from the last one's basis
        for k in range(n):
            solver.set_energies(base + delta[k])
            # interface_reaction(..., minimum_only=True)'s arithmetic, without writing out the reaction
            t, point = solver.most_negative_mixture(vec_b, vec_a, partner[k], own[k])
            values[k] = float(point.energy - t * own[k] - (1.0 - t) * partner[k]) + 0.0
    return values


def _nan(value: float | None) -> float:
    return math.nan if value is None else float(value)


def stack_partners(stack: Stack) -> dict[str, tuple[Composition, float | None]]:
    """{reaction label: (partner composition, potential or None)} of a stack, as the screen evaluates them."""
    return {"electrode": (stack.electrode.composition, None),
            "electrode_open": (stack.electrode_charged.composition, stack.potential),
            "electrolyte": (stack.electrolyte.composition, None),
            "electrolyte_open": (stack.electrolyte.composition, stack.potential)}


@dataclass(frozen=True)
class CandidateJob:
    """One candidate's Monte Carlo: its formula, whether hypothetical (and its penalty, eV/atom), and
    the reactions of the stacks where it is a top row."""

    key: tuple[str, str]  # (candidate name, formula)
    formula: str
    hypothetical: bool
    penalty: float | None
    partners: tuple[tuple[Composition, float | None], ...]


def jobs_for(frame: pd.DataFrame, stacks: list[Stack], top: int) -> list[CandidateJob]:
    """The candidates among the `top` rows of any stack, each with the reactions of those stacks."""
    by_name = {s.name: s for s in stacks}
    partners: dict[tuple, dict] = {}
    info: dict[tuple, pd.Series] = {}
    for row in frame[frame["rank"] <= top].itertuples(index=False):
        key = (row.candidate, row.formula)
        info.setdefault(key, row)
        for composition, potential in stack_partners(by_name[row.stack]).values():
            partners.setdefault(key, {})[(composition.reduced_formula, potential)] = (composition, potential)
    jobs = []
    for key in sorted(info):
        row = info[key]
        hypothetical = bool(row.hypothetical)
        penalty = float(row.e_above_hull) if hypothetical and not pd.isna(row.e_above_hull) else None
        jobs.append(CandidateJob(key, row.formula, hypothetical, penalty,
                                 tuple(v for _, v in sorted(partners[key].items(), key=lambda kv: str(kv[0])))))
    return jobs


def run_job(table: EntryTable, settings: MonteCarloSettings, job: CandidateJob) -> dict:
    draws = _draws_of(table, settings)
    return candidate_draws(table, draws, job.formula, job.hypothetical, job.penalty, list(job.partners))


_DRAWS: dict = {}


def _draws_of(table: EntryTable, settings: MonteCarloSettings) -> EnergyDraws:
    """The EnergyDraws of a table and settings, built once per process (a worker runs many jobs)."""
    key = (id(table), settings)
    if key not in _DRAWS:
        _DRAWS.clear()
        _DRAWS[key] = EnergyDraws(table, settings.model, settings.draws, settings.seed)
    return _DRAWS[key]


def monte_carlo_columns(frame: pd.DataFrame, table: EntryTable, stacks: list[Stack], thresholds: dict,
                        weights: dict, settings: MonteCarloSettings, run_jobs=None) -> pd.DataFrame:
    """The ranked frame with p_pass_<criterion>, p_pass_all and p_top10 for its top rows (NaN elsewhere).

    run_jobs(jobs) -> [result per job] runs the candidates' draws (default: here, one after another;
    screening.execution passes one that uses the dask workers)."""
    jobs = jobs_for(frame, stacks, settings.top)
    if run_jobs is None:
        results = [run_job(table, settings, job) for job in jobs]
    else:
        results = run_jobs(jobs)
    drawn = {job.key: result for job, result in zip(jobs, results)}
    enabled = [name for name in CRITERIA if thresholds.get(name) is not None]
    columns = {f"p_pass_{name}": np.full(len(frame), np.nan) for name in enabled}
    columns["p_pass_all"] = np.full(len(frame), np.nan)
    columns["p_top10"] = np.full(len(frame), np.nan)
    for stack in stacks:
        in_stack = np.flatnonzero((frame["stack"] == stack.name).to_numpy())
        if not len(in_stack):
            continue
        chosen = in_stack[frame["rank"].to_numpy()[in_stack] <= settings.top]
        probabilities = _stack_probabilities(frame, in_stack, chosen, drawn, stack, thresholds, weights,
                                             settings.draws)
        for name, values in probabilities.items():
            columns[name][chosen] = values
    out = frame.copy()
    for name, values in columns.items():
        out[name] = values
    return out


def _drawn_frame(frame: pd.DataFrame, chosen: np.ndarray, drawn: dict, stack: Stack, n: int) -> pd.DataFrame:
    """draws x chosen rows (draw-major) with the drawn numbers and the rows' other columns."""
    rows = frame.iloc[chosen]
    partners = stack_partners(stack)
    data: dict[str, np.ndarray] = {}
    for column in DRAWN_COLUMNS:
        blocks = []
        for row in rows.itertuples(index=False):
            values = drawn[(row.candidate, row.formula)]
            if column.startswith("rxn_"):
                composition, potential = partners[column[4:]]
                block = values[(composition.reduced_formula, potential)]
            else:
                block = values[column]
            if pd.isna(getattr(row, column)):  # undefined in the screen (e.g. no e_above_hull): stays so
                block = np.full(n, np.nan)
            blocks.append(block)
        data[column] = np.stack(blocks, axis=1).reshape(-1)  # [draw, row] flattened draw-major
    out = pd.DataFrame({c: np.tile(rows[c].to_numpy(), n) for c in rows.columns
                        if c not in DRAWN_COLUMNS})
    for column, values in data.items():
        out[column] = values
    v = stack.potential
    red, ox = out["reduction_potential"].to_numpy(), out["oxidation_potential"].to_numpy()
    shortfall = np.maximum.reduce([np.zeros(len(out)), red - v, np.where(np.isnan(ox), 0.0, v - ox)])
    out["window_shortfall"] = np.where(np.isnan(red), np.inf, shortfall)
    return out


def _stack_probabilities(frame, in_stack, chosen, drawn, stack, thresholds, weights, n) -> dict[str, np.ndarray]:
    drawn_frame = _drawn_frame(frame, chosen, drawn, stack, n)
    m = len(chosen)
    passes = thermodynamic_passes(drawn_frame, thresholds)
    failed = drawn_frame["property_criteria_failed"].to_numpy().astype(int)
    out = {}
    for name, ok in passes.items():
        if ok is None:
            continue
        out[f"p_pass_{name}"] = ok.reshape(n, m).mean(axis=0)
        failed = failed + (~ok).astype(int)
    drawn_frame["criteria_failed"] = failed
    out["p_pass_all"] = (failed == 0).reshape(n, m).mean(axis=0)
    drawn_frame["score"] = score(drawn_frame, weights)
    drawn_frame["window_margin"] = _window_margin(drawn_frame)
    drawn_frame["_margin_key"], drawn_frame["_gap_key"] = tie_keys(drawn_frame)
    kept_index = np.setdiff1d(in_stack, chosen)
    kept = frame.iloc[kept_index]
    kept_objectives = objective_matrix(kept)
    kept_pareto = kept["pareto_rank"].to_numpy()
    kept_keys = frame_keys(kept)
    objectives = objective_matrix(drawn_frame).reshape(n, m, -1)
    pareto = np.empty((n, m), dtype=int)
    for k in range(n):
        pareto[k] = _pareto_of_drawn(objectives[k], kept_objectives, kept_pareto)
    drawn_frame["pareto_rank"] = pareto.reshape(-1)
    keys = frame_keys(drawn_frame)
    top = np.zeros(m)
    for k in range(n):
        block = keys[k * m:(k + 1) * m]
        for i, key in enumerate(block):
            place = 1 + bisect.bisect_left(kept_keys, key) + sum(other < key for other in block)
            top[i] += place <= TOP_PLACES
    out["p_top10"] = top / n
    return out


def frame_keys(frame: pd.DataFrame) -> list[tuple]:
    """rank()'s sort key of each row (SORT_COLUMNS), as tuples."""
    if "_margin_key" not in frame.columns:
        frame = frame.assign(_margin_key=tie_keys(frame)[0], _gap_key=tie_keys(frame)[1])
    return list(zip(*(frame[c].tolist() for c in SORT_COLUMNS)))


def _pareto_of_drawn(objectives: np.ndarray, kept: np.ndarray, kept_rank: np.ndarray) -> np.ndarray:
    """Pareto ranks of drawn rows among kept rows of fixed ranks: 1 + the highest rank of a dominator."""
    if len(kept):
        base = 1 + np.where(dominance(kept, objectives), kept_rank[:, None], 0).max(axis=0)
    else:
        base = np.ones(len(objectives), dtype=int)
    dominates = dominance(objectives, objectives)  # [j, i]: drawn row j dominates drawn row i
    ranks = base.astype(int)
    for _ in range(len(objectives)):  # at most one pass per row (bounded even if a cycle closes)
        new = np.maximum(base, 1 + np.where(dominates, ranks[:, None], 0).max(axis=0))
        if np.array_equal(new, ranks):
            break
        ranks = new
    return ranks
