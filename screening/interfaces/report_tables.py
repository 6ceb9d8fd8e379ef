"""The data of the interactive report: every candidate row of a stack as compact JSON columns.

The page ships rows as {column: [values]} (numbers rounded for display, NaN as null), not as HTML
rows: the default screen (9,032 candidates x 5 stacks, about 45,000 rows) stays a few MB and the table
library renders only the rows on screen. Failed criteria travel as one integer per row (a bit per
criterion, in `criteria` order) rather than as text.
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd

from screening.screen.rank import CRITERIA, PROPERTY_CRITERIA

TOP = 10
UNCERTAIN_P_PASS = 0.5  # a top candidate passing every criterion in fewer draws than this is flagged
EV_TO_KJ_PER_MOL = 96.485332  # 1 eV/atom = 96.485 kJ per mol of atoms

# (column, header, kind, decimals): kind text (searchable), int, num, prob, fail (the failed bits)
TABLE_COLUMNS = [
    ("rank", "rank", "int", 0), ("candidate", "candidate", "text", 0), ("formula", "formula", "text", 0),
    ("elements", "elements", "text", 0), ("anion_class", "anion class", "text", 0),
    ("failed", "failed criteria", "fail", 0), ("score", "score (eV/atom)", "num", 3),
    ("e_above_hull", "E above hull (eV/atom)", "num", 3),
    ("decomposition_energy", "decomposition energy (eV/atom)", "num", 3),
    ("reduction_potential", "reduction limit (V)", "num", 3),
    ("oxidation_potential", "oxidation limit (V)", "num", 3),
    ("window_margin", "window margin (V)", "num", 3), ("window_shortfall", "window shortfall (V)", "num", 3),
    ("rxn_electrode", "E_rxn electrode (eV/atom)", "num", 3),
    ("rxn_electrode_open", "E_rxn charged electrode open (eV/non-Li atom)", "num", 3),
    ("rxn_electrolyte", "E_rxn electrolyte (eV/atom)", "num", 3),
    ("rxn_electrolyte_open", "E_rxn electrolyte open (eV/non-Li atom)", "num", 3),
    ("band_gap", "band gap (eV)", "num", 2), ("ald_evidence", "ALD", "text", 0),
    ("interphase_worst", "interphase (worst)", "text", 0), ("practicality_flags", "flags", "text", 0),
    ("p_pass_all", "P(pass all)", "prob", 2), ("p_top10", "P(top 10)", "prob", 2),
]


def criteria_of(frame: pd.DataFrame, thresholds: dict, order=None) -> list[str]:
    """The enabled criteria with a pass column, in funnel order."""
    known = list(CRITERIA) + list(PROPERTY_CRITERIA)
    if isinstance(order, list):
        order = [n for n in order if isinstance(n, str) and n in known]
    return [n for n in (order or known) if thresholds.get(n) is not None and f"pass_{n}" in frame
            and not frame[f"pass_{n}"].isna().all()]


def failed_bits(rows: pd.DataFrame, criteria: list[str]) -> np.ndarray:
    """One integer per row: bit i set when criterion i failed (a missing pass value is no failure)."""
    bits = np.zeros(len(rows), dtype=np.int64)
    for i, name in enumerate(criteria):
        passed = rows[f"pass_{name}"].astype("boolean").fillna(True).to_numpy(dtype=bool)
        bits |= np.where(passed, 0, 1 << i)
    return bits


def _scaled(values: pd.Series, decimals: int) -> list:
    """Integers of 10**-decimals (the page divides by `scale`): -0.123 eV travels as -123; NaN as null."""
    numbers = np.round(pd.to_numeric(values, errors="coerce").astype(float).to_numpy() * 10.0 ** decimals)
    return [None if math.isnan(v) else int(v) for v in numbers.tolist()]


def _text(values: pd.Series) -> list:
    return ["" if v is None or v is pd.NA or (isinstance(v, float) and math.isnan(v)) else str(v)
            for v in values]


def _coded(texts: list[str]) -> tuple[list[str], list[int]] | None:
    """(levels, codes) for a text column with few distinct values (anion class, ALD, interphase), else None."""
    levels = sorted(set(texts))
    if len(levels) > len(texts) // 2:
        return None
    code = {level: i for i, level in enumerate(levels)}
    return levels, [code[t] for t in texts]


def has_uncertainty(frame: pd.DataFrame) -> bool:
    return any(c.endswith("_std") for c in frame.columns)


def table_payload(stack_rows: pd.DataFrame, criteria: list[str]) -> dict:
    """{'columns': [{key, title, kind, decimals, std, scale, levels}], 'data': {key: [...]}, 'criteria':
    [...]}: every row of one stack, in rank order. Columns the rankings lack (older runs) are left out;
    a column's first-order standard deviation `<key>_std`, when present, travels beside it. Numbers are
    integers of 1/scale, text columns with few values are codes into `levels` (see decode_column)."""
    rows = stack_rows.sort_values("rank", kind="mergesort")
    columns, data = [], {}
    for key, title, kind, decimals in TABLE_COLUMNS:
        if kind == "fail":
            data[key] = failed_bits(rows, criteria).tolist()
        elif key not in rows:
            continue
        spec = {"key": key, "title": title, "kind": kind, "decimals": decimals}
        if kind == "text":
            data[key] = _text(rows[key])
            coded = _coded(data[key])
            if coded is not None:
                spec["levels"], data[key] = coded
        elif kind != "fail":
            data[key], spec["scale"] = _scaled(rows[key], decimals), 10 ** decimals
            if kind == "num" and f"{key}_std" in rows:
                data[f"{key}_std"] = _scaled(rows[f"{key}_std"], decimals)
                spec["std"] = f"{key}_std"
        columns.append(spec)
    if "hypothetical" in rows:
        data["hypothetical"] = [int(bool(v)) for v in rows["hypothetical"].fillna(False)]
    return {"columns": columns, "data": data, "criteria": criteria, "n_rows": len(rows), "top": TOP,
            "uncertain_top": uncertain_top(rows)}


def uncertain_top(rows: pd.DataFrame) -> list[dict]:
    """The top-10 rows whose Monte Carlo P(pass all) is below 0.5: their place is within the errors."""
    if "p_pass_all" not in rows:
        return []
    top = rows.sort_values("rank", kind="mergesort").head(TOP)
    p = pd.to_numeric(top["p_pass_all"], errors="coerce")
    flagged = top[p < UNCERTAIN_P_PASS]
    return [{"rank": int(r["rank"]), "candidate": str(r["candidate"]), "p_pass_all": float(r["p_pass_all"])}
            for _, r in flagged.iterrows()]


def worst_closed_reaction(rows: pd.DataFrame) -> pd.Series:
    """The more negative of the closed reaction energies with the electrode and the electrolyte."""
    columns = [c for c in ("rxn_electrode", "rxn_electrolyte") if c in rows]
    return rows[columns].min(axis=1, skipna=True)


def margin_of(rows: pd.DataFrame) -> pd.Series:
    """Window margin (V): the rankings' column, or from the limits for runs written before it."""
    if "window_margin" in rows:
        return pd.to_numeric(rows["window_margin"], errors="coerce")
    below = rows["potential"] - rows["reduction_potential"]
    above = (rows["oxidation_potential"] - rows["potential"]).fillna(np.inf)
    return np.minimum(below, above).clip(upper=5.0)


def decode_column(payload: dict, key: str) -> list:
    """A column of table_payload as values (what the page shows before formatting), for tests and tools."""
    spec = next((c for c in payload["columns"] if c["key"] == key or c.get("std") == key), None)
    values = payload["data"][key]
    if spec is None or spec["kind"] == "fail":
        return list(values)
    if "levels" in spec:
        return [spec["levels"][v] for v in values]
    if "scale" in spec:
        return [None if v is None else v / spec["scale"] for v in values]
    return list(values)
