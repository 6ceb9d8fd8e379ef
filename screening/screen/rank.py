"""Ranking: pass/fail per criterion, Pareto rank and score, per stack; sorted deterministically.

Criteria (thresholds configurable, None disables one):
- e_above_hull <= threshold (eV/atom)
- window_shortfall <= threshold (V): the window contains the electrode potential
- reduction_limit <= threshold, oxidation_limit >= threshold (V): the window itself, whatever the stack
  (Xiao et al. 2019: at most 2.7 V and at least 4.0 V); no oxidation limit (nothing to oxidise) passes
- rxn_electrode >= threshold: closed reaction with the discharged electrode (eV/atom)
- rxn_electrode_open >= threshold: open to Li, with the charged electrode at its potential (eV per
  non-Li atom)
- rxn_electrolyte >= threshold: closed reaction with the electrolyte (eV/atom)
- rxn_electrolyte_open >= threshold: open to Li at the electrode potential (eV per non-Li atom)
Score (lower is better; eV/atom, can be negative), a continuous measure of how far inside each
criterion a candidate is:
    e_above_hull + |negative parts of the four reaction energies| + w_s * window_shortfall
    - w_m * (min(V - reduction limit, 5) + min(oxidation limit - V, 5))  [each term at least 0]
    - w_g * min(band_gap, 8)
with w_s = 0.1 eV/atom per V, w_m = 0.01 eV/atom per V, w_g = 0.005 eV/atom per eV (score_weights
window_shortfall, window_margin, band_gap). Pareto rank: non-dominated sorting on (e_above_hull,
window_shortfall, -rxn_electrode, -rxn_electrode_open, -rxn_electrolyte, -rxn_electrolyte_open),
1 = front; values within PARETO_TOL (1e-6 eV/atom or V) count as equal. Order within a stack:
property criteria failed (below), criteria failed, Pareto rank, score, then the tie-breaks below. The property criteria come first because a film that conducts electrons,
grows a conducting interphase, has no ALD route or carries a practicality flag is not one a group
would deposit, however stable: such rows rank below every row that meets them.
Column `elements`: the candidate's element symbols, sorted and joined by '-' ("Al-Li-O"), to filter on.

Property criteria (with a PropertySet; screening.screen.annotate adds the columns), each off when None:
- band_gap >= threshold (eV, PBE): the coating is an electronic insulator; no gap known fails;
- interphase: true = no mixed-conducting interphase with the electrode or the electrolyte (closed or
  open to Li; the most negative mixture's products, reactions below -0.025 eV/atom);
- ald_evidence: "components" (or "reported"): at least that ALD evidence;
- practicality: true = no practicality flag (hydrous, nitrate, toxic, scarce, ...);
- polyanion_oxide: true = an oxide with an oxyanion former (P, B, Si, S, ...: candidates.POLYANION_FORMERS;
  column `polyanion_oxide`, filled with or without property files).
`failed_criteria` names the failed criteria of each row. Ties left by the score (same criteria failed,
Pareto rank and score) are broken by the larger window margin on the nearer side of the electrode
potential (`window_margin`, V, capped at 5), then the larger band gap, then name.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from screening.chem import parse_formula
from screening.errors import DataError, InputError
from screening.screen.candidates import is_polyanion_oxide
from screening.safe_io import quote

CRITERIA = {  # name: (column, direction)
    "e_above_hull": ("e_above_hull", "max"),
    "window_shortfall": ("window_shortfall", "max"),
    "reduction_limit": ("reduction_potential", "max"),
    "oxidation_limit": ("oxidation_potential", "min"),
    "rxn_electrode": ("rxn_electrode", "min"),
    "rxn_electrode_open": ("rxn_electrode_open", "min"),
    "rxn_electrolyte": ("rxn_electrolyte", "min"),
    "rxn_electrolyte_open": ("rxn_electrolyte_open", "min"),
}
NUMERIC_COLUMNS = ["potential", "e_above_hull", "decomposition_energy", "reduction_potential",
                   "oxidation_potential", "window_shortfall", "rxn_electrode", "rxn_electrode_x",
                   "rxn_electrode_open", "rxn_electrode_open_x", "rxn_electrolyte", "rxn_electrolyte_x",
                   "rxn_electrolyte_open", "rxn_electrolyte_open_x"]
OBJECTIVES = ["e_above_hull", "window_shortfall", "rxn_electrode", "rxn_electrode_open", "rxn_electrolyte",
              "rxn_electrolyte_open"]
TEXT_COLUMNS = ["stack", "candidate", "formula"]
PROPERTY_CRITERIA = ("band_gap", "interphase", "ald_evidence", "practicality", "polyanion_oxide")
ALD_LEVELS = {"none": 0, "components": 1, "reported": 2}
MARGIN_CAP = 5.0  # V: a window wider than this beyond the electrode potential counts as this wide
GAP_CAP = 8.0  # eV: wider gaps insulate no better
# eV/atom per V of window shortfall; rewards in eV/atom per V of window margin and per eV of band gap
DEFAULT_WEIGHTS = {"window_shortfall": 0.1, "window_margin": 0.01, "band_gap": 0.005}
_SIGNS = np.array([1.0, 1.0, -1.0, -1.0, -1.0, -1.0])  # minimise each of sign * column


def rank(rows, bare: dict[str, dict], thresholds: dict, weights: dict,
         stack_order: list[str], properties=None) -> pd.DataFrame:
    """The rankings table: one row per (stack, candidate), sorted. `rows`: a list of row dicts, a
    {column: values} mapping or a DataFrame (used in place, not copied). `properties`: a PropertySet
    for the property columns and criteria (None: neither).

    Rows come from evaluated shards (files): DataError, one line, when they are not rows of this screen.
    """
    frame = rows if isinstance(rows, pd.DataFrame) else pd.DataFrame(rows)
    if frame.empty:
        return frame
    _check_rows(frame, stack_order)
    compositions = _compositions(frame["formula"])
    frame["elements"] = [compositions[f][0] for f in frame["formula"]]
    frame["polyanion_oxide"] = [compositions[f][1] for f in frame["formula"]]
    if properties is not None:
        from screening.screen.annotate import annotate_frame

        annotate_frame(frame, properties)
    for key in ("bare_rxn", "bare_rxn_products", "bare_rxn_open", "bare_rxn_open_products"):
        frame[key] = frame["stack"].map({name: values[key] for name, values in bare.items()})
    failed = np.zeros(len(frame), dtype=int)
    property_failed = np.zeros(len(frame), dtype=int)
    for name, ok in thermodynamic_passes(frame, thresholds).items():
        if ok is None:
            frame[f"pass_{name}"] = pd.NA
            continue
        frame[f"pass_{name}"] = ok
        failed += (~ok).astype(int)
    for name in PROPERTY_CRITERIA:
        setting = thresholds.get(name)
        ok = (_property_pass(frame, name, setting) if setting not in (None, False)
              and (name == "polyanion_oxide" or _available(properties, name)) else None)
        if ok is None:
            frame[f"pass_{name}"] = pd.NA
            continue
        frame[f"pass_{name}"] = ok
        failed += (~ok).astype(int)
        property_failed += (~ok).astype(int)
    names = [n for n in list(CRITERIA) + list(PROPERTY_CRITERIA) if f"pass_{n}" in frame.columns]
    passes = {n: frame[f"pass_{n}"].to_numpy() for n in names}
    frame["failed_criteria"] = [",".join(n for n in names if passes[n][i] is not pd.NA and not passes[n][i])
                                for i in range(len(frame))]
    frame["criteria_failed"] = failed
    frame["property_criteria_failed"] = property_failed
    frame["passes_all"] = failed == 0
    frame["score"] = score(frame, weights)
    frame["pareto_rank"] = 0
    for stack, index in frame.groupby("stack", sort=False).groups.items():
        frame.loc[index, "pareto_rank"] = pareto_ranks(objective_matrix(frame.loc[index]))
    frame["stack_order"] = frame["stack"].map({name: i for i, name in enumerate(stack_order)})
    frame["window_margin"] = _window_margin(frame)
    frame["_margin_key"], frame["_gap_key"] = tie_keys(frame)
    _sort_in_place(frame, ["stack_order"] + SORT_COLUMNS)
    frame = frame.drop(columns=["_margin_key", "_gap_key"])
    frame["rank"] = frame.groupby("stack", sort=False).cumcount() + 1
    frame = frame.drop(columns=["stack_order"])
    front = ["stack", "rank", "candidate", "formula", "elements", "passes_all", "criteria_failed",
             "pareto_rank", "score"]
    return frame[front + [c for c in frame.columns if c not in front]]


def _sort_in_place(frame: pd.DataFrame, keys: list[str]) -> None:
    """frame.sort_values(keys, kind="mergesort").reset_index(drop=True), one column at a time: a
    full-matrix screen's million rows are never held twice (sort_values copied them all at once)."""
    order = frame[keys].reset_index(drop=True).sort_values(keys, kind="mergesort").index.to_numpy()
    frame.index = pd.RangeIndex(len(frame))
    for column in list(frame.columns):
        frame[column] = frame[column].take(order).reset_index(drop=True)


# the order within a stack (rank() sorts on these; screening.screen.monte_carlo compares drawn rows by them)
SORT_COLUMNS = ["property_criteria_failed", "criteria_failed", "pareto_rank", "score", "_margin_key", "_gap_key",
                "candidate", "formula"]


def tie_keys(frame: pd.DataFrame) -> tuple[pd.Series, pd.Series]:
    """The tie-break keys after the score: -window margin (rounded to 1e-6 V), -band gap (1e-4 eV)."""
    gaps = frame["band_gap"].astype(float) if "band_gap" in frame.columns else pd.Series(0.0, index=frame.index)
    return -frame["window_margin"].round(6), -gaps.fillna(-1.0).round(4)


def thermodynamic_passes(frame: pd.DataFrame, thresholds: dict) -> dict[str, np.ndarray | None]:
    """{criterion: pass (bool per row), or None when the criterion is off} of the CRITERIA."""
    out: dict[str, np.ndarray | None] = {}
    for name, (column, direction) in CRITERIA.items():
        limit = thresholds.get(name)
        if limit is None:
            out[name] = None
            continue
        values = frame[column].astype(float)
        if name in ("e_above_hull", "reduction_limit"):
            # e_above_hull: compositions not in data are hull points; reduction_limit: no window fails
            ok = (values.isna() & (name == "e_above_hull")) | (values <= limit + 1e-9)
        elif direction == "max":
            ok = values <= limit + 1e-9
        else:
            ok = values.isna() | (values >= limit - 1e-9)  # undefined reaction (same phase): no reaction
        out[name] = ok.to_numpy(dtype=bool)
    return out


def score(frame: pd.DataFrame, weights: dict) -> pd.Series:
    """The continuous score of each row (module docstring; eV/atom, lower is better), rounded to 1e-9
    like the output, so round-off (1e-16) never decides the order of ties."""
    w = {**DEFAULT_WEIGHTS, **(weights or {})}
    reaction_sum = sum(frame[c].astype(float).fillna(0.0).clip(upper=0.0).abs()
                       for c in ("rxn_electrode", "rxn_electrode_open", "rxn_electrolyte",
                                 "rxn_electrolyte_open"))
    shortfall = frame["window_shortfall"].astype(float).replace(np.inf, 10.0).fillna(10.0)
    v = frame["potential"].astype(float)
    red = frame["reduction_potential"].astype(float)
    ox = frame["oxidation_potential"].astype(float)
    below = (v - red).clip(lower=0.0, upper=MARGIN_CAP).fillna(0.0)  # no window: no margin
    above = (ox - v).clip(lower=0.0, upper=MARGIN_CAP)
    above = above.where(ox.notna(), np.where(red.notna(), MARGIN_CAP, 0.0))  # nothing to oxidise
    gaps = (frame["band_gap"].astype(float) if "band_gap" in frame.columns
            else pd.Series(np.nan, index=frame.index)).clip(lower=0.0, upper=GAP_CAP).fillna(0.0)
    total = (frame["e_above_hull"].astype(float).fillna(0.0) + reaction_sum
             + w["window_shortfall"] * shortfall - w["window_margin"] * (below + above)
             - w["band_gap"] * gaps)
    return total.round(9) + 0.0


def _window_margin(frame: pd.DataFrame) -> pd.Series:
    """V by which the window extends beyond the electrode potential on its nearer side (negative when it
    misses; capped at MARGIN_CAP; no oxidation limit counts as the cap)."""
    v = frame["potential"].astype(float)
    red = frame["reduction_potential"].astype(float)
    ox = frame["oxidation_potential"].astype(float).fillna(v + MARGIN_CAP)
    margin = np.minimum(v - red, ox - v).clip(upper=MARGIN_CAP)
    return margin.fillna(-MARGIN_CAP)  # no window at all


def _available(properties, name: str) -> bool:
    """Is the data a property criterion needs loaded? (Without a file, its criterion is off: the
    PropertySet's notes say so.)"""
    if properties is None:
        return False
    if name in ("band_gap", "interphase"):
        return properties.gaps is not None
    if name == "ald_evidence":
        return properties.ald is not None
    return True


def _property_pass(frame: pd.DataFrame, name: str, setting) -> np.ndarray:
    """Pass (bool per row) of a property criterion at its setting."""
    if name == "band_gap":
        gaps = frame["band_gap"].astype(float)
        return (gaps >= float(setting) - 1e-9).fillna(False).to_numpy(dtype=bool)
    if name == "interphase":
        conducting = np.zeros(len(frame), dtype=bool)
        for label in ("electrode", "electrode_open", "electrolyte", "electrolyte_open"):
            conducting |= (frame[f"interphase_{label}"] == "mixed-conducting").to_numpy()
        return ~conducting
    if name == "ald_evidence":
        need = ALD_LEVELS[setting]
        levels = frame["ald_evidence"].map(lambda e: ALD_LEVELS.get(e, -1) if isinstance(e, str) else -1)
        return (levels >= need).to_numpy(dtype=bool)
    if name == "polyanion_oxide":
        return frame["polyanion_oxide"].to_numpy(dtype=bool)
    return (frame["practicality_flags"].fillna("") == "").to_numpy(dtype=bool)


def funnel(frame: pd.DataFrame, order: list[str]) -> dict[str, list[dict]]:
    """Per stack, the candidates left after each enabled criterion, applied in `order`:
    {stack: [{"criterion": "candidates", "remaining": n}, {"criterion": name, "remaining": m}, ...]}."""
    out = {}
    for stack, rows in frame.groupby("stack", sort=False):
        alive = np.ones(len(rows), dtype=bool)
        steps = [{"criterion": "candidates", "remaining": int(len(rows))}]
        for name in order:
            column = f"pass_{name}"
            if column not in rows.columns or rows[column].isna().all():
                continue
            alive &= rows[column].fillna(True).to_numpy(dtype=bool)
            steps.append({"criterion": name, "remaining": int(alive.sum())})
        out[stack] = steps
    return out


def _check_rows(frame: pd.DataFrame, stack_order: list[str]) -> None:
    """Columns, types and stacks of evaluated rows; numeric columns are converted to float in place."""
    missing = [c for c in TEXT_COLUMNS + NUMERIC_COLUMNS if c not in frame.columns]
    if missing:
        shown = ", ".join(missing[:6]) + (f" and {len(missing) - 6} more" if len(missing) > 6 else "")
        raise DataError(f"the evaluated rows lack the columns {shown}: not rows of a screen's evaluate "
                        "step (re-run it)")
    for column in TEXT_COLUMNS:
        bad = frame[column].map(lambda v: not isinstance(v, str) or not v)
        if bad.any():
            raise DataError(f"the evaluated rows have a {column} that is not a name: "
                            f"{quote(frame[column][bad].iloc[0])}")
    for column in NUMERIC_COLUMNS:  # fixed dtypes whatever the row source (dicts or parquet)
        values = frame[column]
        if values.dtype == object:
            bad = values.map(lambda v: not _is_number(v))
            if bad.any():
                raise DataError(f"the evaluated rows have a non-numeric {column}: "
                                f"{quote(values[bad].iloc[0])}")
        elif not (pd.api.types.is_float_dtype(values) or pd.api.types.is_integer_dtype(values)):
            raise DataError(f"the evaluated rows have a non-numeric {column} (type {values.dtype})")
        try:
            values = pd.to_numeric(values, errors="raise").astype(float)
        except (TypeError, ValueError):
            raise DataError(f"the evaluated rows have a non-numeric {column}") from None
        infinite = np.isinf(values) & ~((column == "window_shortfall") & (values > 0))
        if infinite.any():  # only a missing window has an infinite shortfall
            raise DataError(f"the evaluated rows have an infinite {column}")
        frame[column] = values
    unknown = sorted(set(frame["stack"]) - set(stack_order))
    if unknown:
        raise DataError(f"the evaluated rows are for the stack {quote(unknown[0])}, which the config does "
                        f"not define (stacks: {', '.join(stack_order)})")
    twice = frame.duplicated(["stack", "candidate", "formula"])
    if twice.any():
        row = frame[twice].iloc[0]
        raise DataError(f"the candidate {quote(row['candidate'])} appears twice in the stack "
                        f"{quote(row['stack'])}: was an evaluated shard given twice?")


def _is_number(value) -> bool:
    return value is None or value is pd.NA or (isinstance(value, (int, float, np.integer, np.floating))
                             and not isinstance(value, (bool, np.bool_)))


def _compositions(formulas: pd.Series) -> dict[str, tuple[str, bool]]:
    """{formula: ('Al-Li-O', polyanion oxide?)} for each distinct formula, parsed once: its element
    symbols sorted and joined by '-', and whether it is an oxide with an oxyanion former."""
    found: dict[str, tuple[str, bool]] = {}
    for formula in formulas.unique():
        try:
            comp = parse_formula(formula)
        except InputError as exc:
            raise DataError(f"the evaluated rows have a bad formula: {exc}") from None
        found[formula] = (comp.chemical_system, is_polyanion_oxide(comp))
    return found


def objective_matrix(frame: pd.DataFrame) -> np.ndarray:
    values = frame[OBJECTIVES].astype(float).to_numpy(copy=True)
    values[:, 2:] = np.nan_to_num(values[:, 2:], nan=0.0)  # no reaction defined: nothing reacts
    values[:, 0] = np.nan_to_num(values[:, 0], nan=0.0)
    values[:, 1] = np.nan_to_num(values[:, 1], nan=10.0, posinf=10.0)
    return np.round(values * _SIGNS, 9)


# Values within this (eV/atom, V) are equal for Pareto dominance: far below the data's meaning, far
# above round-off. The data's energies have few decimals, so results often sit exactly on a decimal
# boundary, and their last digit then depends on the floating-point path (another BLAS, another order
# of LP solves): compared exactly, those ninth digits moved 883 of 175,500 Pareto ranks of 1,500 matrix
# candidates between two engines with equal answers (and rounding to 1e-6 still moved 24).
PARETO_TOL = 1e-6


def dominance(better: np.ndarray, worse: np.ndarray) -> np.ndarray:
    """[j, i]: row j of `better` dominates row i of `worse` (objectives minimised): worse by at most
    PARETO_TOL in every objective and better by more than PARETO_TOL in one."""
    # one objective at a time into preallocated 2-D booleans: six times faster than broadcasting to
    # (j, i, objective) and reducing over the last axis
    upper, lower = worse + PARETO_TOL, worse - PARETO_TOL
    no_worse = better[:, 0, None] <= upper[None, :, 0]
    better_in_one = better[:, 0, None] < lower[None, :, 0]
    scratch = np.empty_like(no_worse)
    for c in range(1, better.shape[1]):
        no_worse &= np.less_equal(better[:, c, None], upper[None, :, c], out=scratch)
        better_in_one |= np.less(better[:, c, None], lower[None, :, c], out=scratch)
    no_worse &= better_in_one
    return no_worse


def pareto_ranks(objectives: np.ndarray, block: int = 1024) -> np.ndarray:
    """Non-dominated sorting (all objectives minimised): 1 for the front, 2 for the next, ...

    The dominance matrix (n x n booleans, 83 MB for 9,100 candidates) is built in blocks of dominating
    rows; fronts are then peeled by updating each candidate's count of dominators.
    """
    n = len(objectives)
    dominates = np.empty((n, n), dtype=bool)  # [j, i]: j dominates i
    for start in range(0, n, block):
        dominates[start:start + block] = dominance(objectives[start:start + block], objectives)
    counts = dominates.sum(axis=0)
    ranks = np.zeros(n, dtype=int)
    level = 1
    current = np.flatnonzero(counts == 0)
    while current.size:
        ranks[current] = level
        counts[current] = -1
        counts -= dominates[current].sum(axis=0)
        current = np.flatnonzero(counts == 0)
        level += 1
    # dominance within a tolerance can, in principle, close a cycle (rows 1-2e-6 apart): its rows
    # share the next front rather than stay unranked
    ranks[ranks == 0] = level
    return ranks
