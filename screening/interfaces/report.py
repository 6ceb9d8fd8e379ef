"""One self-contained HTML page per run: provenance, the funnel, top candidates per stack, plots.

Per stack: the funnel, the top 10 and the reference coatings as static tables, then an interactive
table of every candidate (sort, filter, criteria toggles, details; report_tables.py, report_page.py)
and interactive plotly figures (report_plots.py). Plots for papers are written to <run>/plots/ as PNG
and SVG and embedded in report.html as PNG (base64). Every library is embedded: the page can be mailed
or archived on its own and opens offline.
"""

from __future__ import annotations

import base64
import html
import io
import json
import math
import re
from pathlib import Path

import pandas as pd

from screening.data.snapshot import atomic_write_bytes
from screening.data.sources import load_table, selection_of
from screening.errors import DataError, InputError
from screening.interfaces.report_page import app_script, assets_html, stack_section
from screening.interfaces.report_plots import (error_model_of, ranking_scatter, reaction_figure, stack_reactions,
                                               windows_figure)
from screening.interfaces.report_tables import UNCERTAIN_P_PASS, criteria_of, has_uncertainty, table_payload
from screening.safe_io import loads_json, quote, read_bytes, read_text
from screening.screen.rank import CRITERIA, PROPERTY_CRITERIA

TOP = 10
MAX_PROVENANCE_BYTES = 64 << 20
MAX_RANKING_ROWS = 10_000_000  # 100x the default screen's 45,000 rows
POTENTIAL_RANGE = (-5.0, 10.0)  # V vs Li/Li+, as stacks allow
RANKING_COLUMNS = ["stack", "rank", "candidate", "formula", "passes_all", "criteria_failed", "pareto_rank",
                   "score", "potential", "e_above_hull", "reduction_potential", "oxidation_potential",
                   "window_shortfall", "rxn_electrode", "rxn_electrode_open", "rxn_electrolyte", "rxn_electrolyte_open"]


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "stack"


def funnel(frame: pd.DataFrame, stack: str, thresholds: dict, order=None) -> list[tuple[str, int]]:
    """Candidates left after each enabled criterion, in order, for one stack."""
    rows = frame[frame["stack"] == stack]
    steps = [("candidates", len(rows))]
    mask = pd.Series(True, index=rows.index)
    known = list(CRITERIA) + list(PROPERTY_CRITERIA)
    if isinstance(order, list):  # from provenance.json: only names it may hold
        order = [n for n in order if isinstance(n, str) and n in known]
    for name in order or known:
        if thresholds.get(name) is None or f"pass_{name}" not in rows or rows[f"pass_{name}"].isna().all():
            continue
        mask &= rows[f"pass_{name}"].fillna(True).astype(bool)
        steps.append((f"{name} ({_limit_text(name, thresholds[name])})", int(mask.sum())))
    return steps


_PROPERTY_LIMITS = {"band_gap": lambda v: f">= {v:g} eV (PBE)",
                    "interphase": lambda v: "no mixed-conducting interphase",
                    "ald_evidence": lambda v: f"ALD evidence at least '{v}'",
                    "practicality": lambda v: "no practicality flag",
                    "polyanion_oxide": lambda v: "a polyanion oxide"}
# The seed stacks' classic coatings: shown per stack wherever they rank, to compare with the top.
REFERENCE_COATINGS = ("LiNbO3", "Li3PO4", "LiTaO3", "Li2ZrO3", "LiAlO2", "Al2O3")


def _limit_text(name: str, value) -> str:
    if name in _PROPERTY_LIMITS:
        return _PROPERTY_LIMITS[name](value)
    column, direction = CRITERIA[name]
    unit = {"window_shortfall": "V", "reduction_limit": "V", "oxidation_limit": "V",
            "rxn_electrolyte_open": "eV/non-Li atom", "rxn_electrode_open": "eV/non-Li atom"}.get(name, "eV/atom")
    return f"{'<=' if direction == 'max' else '>='} {value:g} {unit}"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _plots_for_stack(frame, stack_rows, stack_info, table, plots_dir: Path) -> list[tuple[str, Path]]:
    from screening.interfaces.plots import plot_ranking, plot_reaction, plot_windows
    from screening.thermo.analysis import analyse_pair, analyse_window

    name = stack_info["name"]
    slug = _slug(name)
    out = []
    ranking_png = plots_dir / f"ranking_{slug}.png"
    for suffix in (".png", ".svg"):
        plot_ranking(frame, name, ranking_png.with_suffix(suffix), top=20)
    out.append((f"Ranking: {name}", ranking_png))
    top = stack_rows.head(TOP)
    windows, labels = [], []
    for _, row in top.iterrows():
        window, _ = analyse_window(table, _formula(row["formula"]))
        windows.append(window)
        labels.append(row["candidate"])
    # only this stack's own electrode: a cathode stack has no anode in it
    cathode = stack_info["potential"] if stack_info["side"] == "cathode" else None
    anode = stack_info["potential"] if stack_info["side"] == "anode" else None
    windows_png = plots_dir / f"windows_{slug}.png"
    for suffix in (".png", ".svg"):
        plot_windows(windows, windows_png.with_suffix(suffix), cathode_potential=cathode,
                     anode_potential=anode, labels=labels)
    out.append((f"Electrochemical windows of the top {len(windows)}: {name}", windows_png))
    if len(top):
        best = top.iloc[0]
        coating = _formula(best["formula"])
        electrolyte = _formula(stack_info["electrolyte"]["composition"])
        if coating.reduced_composition != electrolyte.reduced_composition:
            closed = analyse_pair(table, coating, electrolyte)
            opened = analyse_pair(table, coating, electrolyte, potential=stack_info["potential"],
                                  include_no_mixing_energy=False)
            reaction_png = plots_dir / f"reaction_{slug}.png"
            for suffix in (".png", ".svg"):
                plot_reaction([closed, opened], reaction_png.with_suffix(suffix))
            out.append((f"{best['candidate']} | {stack_info['electrolyte']['label']}: reaction energy",
                        reaction_png))
    return out


def _formula(text):
    from screening.chem import parse_formula

    try:
        return parse_formula(text)
    except InputError as exc:
        raise DataError(f"the run folder has a bad formula: {exc}") from None


def write_report(run_dir: Path) -> Path:
    """Build <run_dir>/report.html (and <run_dir>/plots/) from rankings.parquet and provenance.json."""
    run_dir = Path(run_dir)
    for name in ("rankings.parquet", "provenance.json"):
        if not (run_dir / name).is_file():
            raise InputError(f"not a finished run folder: {run_dir / name} is missing")
    text = read_text(run_dir / "provenance.json", "provenance", limit=MAX_PROVENANCE_BYTES)
    prov = check_provenance(loads_json(text, f"provenance {run_dir / 'provenance.json'}"))
    frame = read_rankings(run_dir / "rankings.parquet", [s["name"] for s in prov["stacks"]])
    table = load_table(prov["data_source"]["path"], tuple(prov["user_entry_files"]), prov["user_scheme"],
                       **selection_of(prov["data_source"]))  # the same user mode and exclusions
    recorded = prov["data_source"].get("sha256")
    if recorded and table.source.sha256 != recorded:
        raise DataError(f"the data {prov['data_source']['path']} changed since the run (sha256 "
                        f"{table.source.sha256[:12]}, the run used {str(recorded)[:12]}): re-run the screen")
    plots_dir = run_dir / "plots"
    try:
        plots_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the plots folder {plots_dir}: {exc.strerror or exc}") from None
    thresholds = prov["thresholds"]
    criteria = criteria_of(frame, thresholds, prov.get("funnel_order"))
    with_errors = has_uncertainty(frame)
    model = error_model_of(prov) if with_errors else None
    parts = [_head(prov), _provenance_html(prov)]
    for index, stack_info in enumerate(prov["stacks"]):
        name = stack_info["name"]
        stack_rows = frame[frame["stack"] == name].sort_values("rank")
        bare = prov["bare_pairs"].get(name, {})
        parts.append(f"<h2>{html.escape(name)} ({stack_info['side']} side, "
                     f"{stack_info['potential']:g} V vs Li/Li+)</h2>")
        parts.append(f"<p>Bare {html.escape(stack_info['electrode']['label'])} | "
                     f"{html.escape(stack_info['electrolyte']['label'])}: "
                     f"{_num(bare.get('bare_rxn'))} eV/atom closed "
                     f"({html.escape(bare.get('bare_rxn_products') or 'no reaction')}); "
                     f"{_num(bare.get('bare_rxn_open'))} eV per non-Li atom open to Li.</p>")
        parts.append(_funnel_html(funnel(frame, name, thresholds, prov.get("funnel_order"))))
        parts.append(_top_table(stack_rows.head(TOP), thresholds))
        references = stack_rows[stack_rows["formula"].isin(REFERENCE_COATINGS)]
        if len(references):
            parts.append(_top_table(references, thresholds, "Reference coatings, wherever they rank"))
        figures = {"scatter": ranking_scatter(stack_rows), "windows": windows_figure(stack_rows, stack_info),
                   "reaction": reaction_figure(stack_reactions(table, stack_rows, stack_info, with_errors, model),
                                               stack_info["electrolyte"]["label"], stack_info["potential"])}
        limits = {n: _limit_text(n, thresholds[n]) for n in criteria}
        parts.append(stack_section(index, table_payload(stack_rows, criteria), figures, limits))
        parts.append("<details class='papers'><summary>Figures for papers (PNG; SVG beside them in plots/)"
                     "</summary>")
        for title, png in _plots_for_stack(frame, stack_rows, stack_info, table, plots_dir):
            parts.append(f"<figure>{_img(png, title)}<figcaption>{html.escape(title)}</figcaption></figure>")
        parts.append("</details>")
    parts.append(app_script())
    parts.append("</body></html>")
    out = run_dir / "report.html"
    try:
        atomic_write_bytes(out, "\n".join(parts).encode("utf-8"))
    except OSError as exc:
        raise InputError(f"cannot write the report {out}: {exc.strerror or exc}") from None
    return out


def check_provenance(prov) -> dict:
    """The provenance of a run with the keys and types the report uses; DataError (one line) otherwise.

    Returns a copy with the optional keys filled in (thresholds, bare_pairs, user entries).
    """
    where = "provenance.json"
    if not isinstance(prov, dict):
        raise DataError(f"{where} is not an object")
    out = dict(prov)
    for key, kind in (("run", str), ("data_source", dict), ("stacks", list)):
        if key not in prov:
            raise DataError(f"{where} lacks the key {key!r}: not written by a screen")
        if not isinstance(prov[key], kind):
            raise DataError(f"{where}: {key} must be {_KIND_NAMES[kind]}, not {quote(prov[key])}")
    if not isinstance(prov["data_source"].get("path"), str):
        raise DataError(f"{where}: data_source.path must be a file path, "
                        f"not {quote(prov['data_source'].get('path'))}")
    if not prov["stacks"]:
        raise DataError(f"{where}: stacks is empty")
    names = [_check_stack(stack, f"{where}: stacks[{i}]") for i, stack in enumerate(prov["stacks"])]
    if len(set(names)) != len(names):
        raise DataError(f"{where}: a stack name appears twice")
    defaults = {"thresholds": {}, "bare_pairs": {}, "user_entry_files": [], "user_scheme": None,
                "user_supplied_entries": [], "conventions": {}, "versions": {}, "score_weights": {}}
    for key, default in defaults.items():
        value = prov.get(key, default)
        kind = type(default) if default is not None else (str, type(None))
        if not isinstance(value, kind):
            raise DataError(f"{where}: {key} must be {_KIND_NAMES.get(kind, 'text or null')}, "
                            f"not {quote(value)}")
        out[key] = value
    for name, limit in out["thresholds"].items():
        if name in ("interphase", "practicality") and limit in (None, True):
            continue
        if name == "ald_evidence" and limit in (None, "components", "reported"):
            continue
        if limit is not None and not _is_real(limit):
            raise DataError(f"{where}: threshold {quote(name)} must be a number or null, not {quote(limit)}")
    for key in ("user_entry_files", "user_supplied_entries"):
        if not all(isinstance(v, str) for v in out[key]):
            raise DataError(f"{where}: {key} must list file names or formulas")
    for name, bare in out["bare_pairs"].items():
        if not isinstance(bare, dict):
            raise DataError(f"{where}: bare_pairs[{quote(name)}] must be an object")
        for key in ("bare_rxn", "bare_rxn_open"):
            if bare.get(key) is not None and not _is_real(bare[key]):
                raise DataError(f"{where}: bare_pairs[{quote(name)}].{key} must be a number, "
                                f"not {quote(bare[key])}")
        for key in ("bare_rxn_products", "bare_rxn_open_products"):
            if bare.get(key) is not None and not isinstance(bare[key], str):
                raise DataError(f"{where}: bare_pairs[{quote(name)}].{key} must be text")
    return out


_KIND_NAMES = {str: "text", dict: "an object", list: "a list"}


def _is_real(value) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _check_stack(stack, where: str) -> str:
    """The stack's name, after checking the fields the report reads."""
    if not isinstance(stack, dict):
        raise DataError(f"{where} is not an object")
    for key in ("name", "side", "potential", "electrode", "electrolyte"):
        if key not in stack:
            raise DataError(f"{where} lacks the key {key!r}")
    if not isinstance(stack["name"], str) or not stack["name"]:
        raise DataError(f"{where}: name must be text, not {quote(stack['name'])}")
    if stack["side"] not in ("cathode", "anode"):
        raise DataError(f"{where}: side must be cathode or anode, not {quote(stack['side'])}")
    low, high = POTENTIAL_RANGE
    if not _is_real(stack["potential"]) or not low <= stack["potential"] <= high:
        raise DataError(f"{where}: potential must be a number of V vs Li/Li+ in {low:g}..{high:g}, "
                        f"not {quote(stack['potential'])}")
    for part in ("electrode", "electrolyte"):
        material = stack[part]
        if not isinstance(material, dict) or not isinstance(material.get("label"), str):
            raise DataError(f"{where}: {part} must be an object with a label")
    if not isinstance(stack["electrolyte"].get("composition"), str):
        raise DataError(f"{where}: electrolyte.composition must be a formula")
    return stack["name"]


def read_rankings(path: Path, stacks: list[str]) -> pd.DataFrame:
    """rankings.parquet, bounded in bytes and rows, with the columns the report uses (DataError else)."""
    import pyarrow.parquet as pq

    data = read_bytes(path, "rankings")
    try:
        rows = pq.ParquetFile(io.BytesIO(data)).metadata.num_rows
        if rows > MAX_RANKING_ROWS:
            raise DataError(f"rankings {path} has {rows} rows, more than {MAX_RANKING_ROWS}")
        frame = pd.read_parquet(io.BytesIO(data))
    except DataError:
        raise
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"cannot read the rankings {path}: {' '.join(str(exc).split())[:160]}") from None
    missing = [c for c in RANKING_COLUMNS if c not in frame.columns]
    if missing:
        raise DataError(f"rankings {path} lack the columns {', '.join(missing[:6])}: not written by a screen")
    for column in (c for c in RANKING_COLUMNS if c not in ("stack", "candidate", "formula")):
        if not (pd.api.types.is_numeric_dtype(frame[column]) or pd.api.types.is_bool_dtype(frame[column])):
            raise DataError(f"rankings {path}: column {column} is not numeric")
    unknown = sorted(set(map(str, frame["stack"])) - set(stacks))
    if unknown:
        raise DataError(f"rankings {path} have rows of the stack {quote(unknown[0])}, which the provenance "
                        "does not list")
    return frame


def _num(value, digits=3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def _head(prov: dict) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Screen {html.escape(prov['run'])}"
            "</title><style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
            "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px}"
            "th{background:#eee}.pass{background:#d9f2d9}.fail{background:#f7d4d4}"
            f"img{{max-width:100%}}figure{{margin:1em 0}}</style>{assets_html()}</head><body>"
            f"<h1>Coating screen: {html.escape(prov['run'])}</h1>")


def _provenance_html(prov: dict) -> str:
    src = prov["data_source"]
    rows = [("data", f"{src.get('path')} ({src.get('kind')})"), ("sha256", src.get("sha256")),
            ("description", src.get("description", "")), ("created", prov.get("created")),
            ("candidates", prov.get("n_candidates")),
            ("thresholds", json.dumps(prov.get("thresholds"))),
            ("score weights", json.dumps(prov.get("score_weights"))),
            ("user-supplied entries", ", ".join(prov.get("user_supplied_entries", [])) or "none"),
            ("versions", ", ".join(f"{k} {v}" for k, v in prov.get("versions", {}).items()))]
    rows += [(f"convention: {k}", v) for k, v in prov.get("conventions", {}).items()]
    body = "".join(f"<tr><th>{html.escape(str(k))}</th><td>{html.escape(str(v))}</td></tr>" for k, v in rows)
    return f"<h2>Provenance</h2><table>{body}</table>"


def _funnel_html(steps) -> str:
    body = "".join(f"<tr><td>{html.escape(label)}</td><td>{count}</td></tr>" for label, count in steps)
    return f"<h3>Funnel</h3><table><tr><th>criterion (cumulative)</th><th>left</th></tr>{body}</table>"


def _top_table(rows: pd.DataFrame, thresholds: dict, title: str | None = None) -> str:
    columns = [("rank", "rank", None), ("candidate", "candidate", None), ("formula", "formula", None),
               ("E above hull (eV/atom)", "e_above_hull", "pass_e_above_hull"),
               ("reduction (V)", "reduction_potential", "reduction"),
               ("oxidation (V)", "oxidation_potential", "oxidation"),
               ("E_rxn electrode (eV/atom)", "rxn_electrode", "pass_rxn_electrode"),
               ("E_rxn charged electrode open (eV/non-Li atom)", "rxn_electrode_open", "pass_rxn_electrode_open"),
               ("E_rxn electrolyte (eV/atom)", "rxn_electrolyte", "pass_rxn_electrolyte"),
               ("E_rxn electrolyte open (eV/non-Li atom)", "rxn_electrolyte_open", "pass_rxn_electrolyte_open"),
               ("band gap (eV)", "band_gap", "pass_band_gap"), ("ALD", "ald_evidence", "pass_ald_evidence"),
               ("interphase (worst)", "interphase_worst", "pass_interphase"),
               ("flags", "practicality_flags", "pass_practicality"),
               ("score", "score", None), ("failed", "failed_criteria", None), ("notes", "proxy_for", None)]
    if "p_pass_all" in rows:  # Monte Carlo probabilities of the run's top candidates (NaN elsewhere)
        columns.insert(-2, ("P(pass all)", "p_pass_all", None))
    head = "".join(f"<th>{html.escape(c[0])}</th>" for c in columns)
    body = []
    for _, row in rows.iterrows():
        edges = window_edge_passes(row, thresholds.get("window_shortfall"))
        cells = []
        for _, column, flag in columns:
            value = row.get(column)
            text = _num(value) if isinstance(value, float) else html.escape(str(value if value is not None else ""))
            if column == "oxidation_potential" and (value is None or value != value):
                text = "none (no Li)"
            if column == "p_pass_all" and _present(value) and value < UNCERTAIN_P_PASS:
                text += " (uncertain)"
            if column == "proxy_for" and value:
                text = f"proxy for {html.escape(str(value))}"
            if column == "candidate" and row.get("hypothetical"):
                text += " (hypothetical)"
            state = edges.get(flag) if flag in edges else (row.get(flag) if flag else None)
            css = ""
            if state is not None and state is not pd.NA and state == state:
                css = " class='pass'" if bool(state) else " class='fail'"
            cells.append(f"<td{css}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    title = title or f"Top {len(rows)}"
    return f"<h3>{html.escape(title)}</h3><table><tr>{head}</tr>{''.join(body)}</table>"


def window_edge_passes(row, max_shortfall) -> dict[str, bool | None]:
    """{'reduction': ok, 'oxidation': ok}: which edge of the window misses the electrode potential.

    An edge fails when it alone falls short by more than the threshold (V), as the window criterion
    does: the reduction limit above the potential, the oxidation limit below it. No window at all fails
    both; a disabled criterion (threshold None) colours neither.
    """
    if max_shortfall is None:
        return {"reduction": None, "oxidation": None}
    potential, red, ox = (row.get(c) for c in ("potential", "reduction_potential", "oxidation_potential"))
    if not _present(potential) or not _present(red):
        return {"reduction": False, "oxidation": False}
    limit = max_shortfall + 1e-9
    return {"reduction": red - potential <= limit,
            "oxidation": (not _present(ox)) or potential - ox <= limit}


def _present(value) -> bool:
    return value is not None and value is not pd.NA and value == value
