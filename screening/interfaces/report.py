"""One self-contained HTML page per run: provenance, the funnel, top candidates per stack, plots.

Plots are written to <run>/plots/ as PNG and SVG and embedded in report.html as PNG (base64), so the
page can be mailed or archived on its own.
"""

from __future__ import annotations

import base64
import html
import json
import re
from pathlib import Path

import pandas as pd

from screening.data.snapshot import atomic_write_bytes
from screening.data.sources import load_table
from screening.errors import DataError, InputError
from screening.screen.rank import CRITERIA

TOP = 10


def _slug(text: str) -> str:
    return re.sub(r"[^A-Za-z0-9._-]+", "_", text).strip("_") or "stack"


def funnel(frame: pd.DataFrame, stack: str, thresholds: dict) -> list[tuple[str, int]]:
    """Candidates left after each enabled criterion, in order, for one stack."""
    rows = frame[frame["stack"] == stack]
    steps = [("candidates", len(rows))]
    mask = pd.Series(True, index=rows.index)
    for name in CRITERIA:
        if thresholds.get(name) is None or f"pass_{name}" not in rows:
            continue
        mask &= rows[f"pass_{name}"].astype(bool)
        steps.append((f"{name} ({_limit_text(name, thresholds[name])})", int(mask.sum())))
    return steps


def _limit_text(name: str, value: float) -> str:
    column, direction = CRITERIA[name]
    unit = {"window_shortfall": "V", "rxn_electrolyte_open": "eV/non-Li atom",
            "rxn_electrode": "eV/atom closed, eV/non-Li atom open"}.get(name, "eV/atom")
    return f"{'<=' if direction == 'max' else '>='} {value:g} {unit}"


def _img(path: Path, alt: str) -> str:
    data = base64.b64encode(path.read_bytes()).decode("ascii")
    return f'<img alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def _plots_for_stack(frame, stack_rows, stack_info, table, plots_dir: Path) -> list[tuple[str, Path]]:
    from pymatgen.core import Composition

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
        window, _ = analyse_window(table, Composition(row["formula"]))
        windows.append(window)
        labels.append(row["candidate"])
    cathode = stack_info["potential"] if stack_info["side"] == "cathode" else None
    anode = stack_info["potential"] if stack_info["side"] == "anode" else 0.0
    windows_png = plots_dir / f"windows_{slug}.png"
    for suffix in (".png", ".svg"):
        plot_windows(windows, windows_png.with_suffix(suffix), cathode_potential=cathode,
                     anode_potential=anode, labels=labels)
    out.append((f"Electrochemical windows of the top {len(windows)}: {name}", windows_png))
    if len(top):
        best = top.iloc[0]
        coating = Composition(best["formula"])
        electrolyte = Composition(stack_info["electrolyte"]["composition"])
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


def write_report(run_dir: Path) -> Path:
    """Build <run_dir>/report.html (and <run_dir>/plots/) from rankings.parquet and provenance.json."""
    run_dir = Path(run_dir)
    try:
        frame = pd.read_parquet(run_dir / "rankings.parquet")
        prov = json.loads((run_dir / "provenance.json").read_text(encoding="utf-8"))
    except FileNotFoundError as exc:
        raise InputError(f"not a finished run folder: {exc.filename} is missing") from None
    except Exception as exc:
        raise DataError(f"cannot read the run folder {run_dir}: {exc}") from None
    table = load_table(prov["data_source"]["path"], tuple(prov.get("user_entry_files", [])),
                       prov.get("user_scheme"))
    plots_dir = run_dir / "plots"
    plots_dir.mkdir(parents=True, exist_ok=True)
    thresholds = prov.get("thresholds", {})
    parts = [_head(prov), _provenance_html(prov)]
    for stack_info in prov["stacks"]:
        name = stack_info["name"]
        stack_rows = frame[frame["stack"] == name].sort_values("rank")
        bare = prov.get("bare_pairs", {}).get(name, {})
        parts.append(f"<h2>{html.escape(name)} ({stack_info['side']} side, "
                     f"{stack_info['potential']:g} V vs Li/Li+)</h2>")
        parts.append(f"<p>Bare {html.escape(stack_info['electrode']['label'])} | "
                     f"{html.escape(stack_info['electrolyte']['label'])}: "
                     f"{_num(bare.get('bare_rxn'))} eV/atom closed "
                     f"({html.escape(bare.get('bare_rxn_products') or 'no reaction')}); "
                     f"{_num(bare.get('bare_rxn_open'))} eV per non-Li atom open to Li.</p>")
        parts.append(_funnel_html(funnel(frame, name, thresholds)))
        parts.append(_top_table(stack_rows.head(TOP)))
        for title, png in _plots_for_stack(frame, stack_rows, stack_info, table, plots_dir):
            parts.append(f"<figure>{_img(png, title)}<figcaption>{html.escape(title)}</figcaption></figure>")
    parts.append("</body></html>")
    out = run_dir / "report.html"
    atomic_write_bytes(out, "\n".join(parts).encode("utf-8"))
    return out


def _num(value, digits=3) -> str:
    return "n/a" if value is None or value != value else f"{value:.{digits}f}"


def _head(prov: dict) -> str:
    return (f"<!DOCTYPE html><html><head><meta charset='utf-8'><title>Screen {html.escape(prov['run'])}"
            "</title><style>body{font-family:sans-serif;max-width:1200px;margin:auto;padding:1em}"
            "table{border-collapse:collapse;font-size:90%}td,th{border:1px solid #ccc;padding:2px 6px}"
            "th{background:#eee}.pass{background:#d9f2d9}.fail{background:#f7d4d4}"
            "img{max-width:100%}figure{margin:1em 0}</style></head><body>"
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


def _top_table(rows: pd.DataFrame) -> str:
    columns = [("rank", "rank", None), ("candidate", "candidate", None), ("formula", "formula", None),
               ("E above hull (eV/atom)", "e_above_hull", "pass_e_above_hull"),
               ("reduction (V)", "reduction_potential", "pass_window_shortfall"),
               ("oxidation (V)", "oxidation_potential", "pass_window_shortfall"),
               ("E_rxn electrode, worst (eV/atom)", "rxn_electrode_worst", "pass_rxn_electrode"),
               ("E_rxn electrolyte (eV/atom)", "rxn_electrolyte", "pass_rxn_electrolyte"),
               ("E_rxn electrolyte open (eV/non-Li atom)", "rxn_electrolyte_open", "pass_rxn_electrolyte_open"),
               ("score", "score", None), ("notes", "proxy_for", None)]
    head = "".join(f"<th>{html.escape(c[0])}</th>" for c in columns)
    body = []
    for _, row in rows.iterrows():
        cells = []
        for _, column, flag in columns:
            value = row.get(column)
            text = _num(value) if isinstance(value, float) else html.escape(str(value if value is not None else ""))
            if column == "oxidation_potential" and (value is None or value != value):
                text = "none (no Li)"
            if column == "proxy_for" and value:
                text = f"proxy for {html.escape(str(value))}"
            if column == "candidate" and row.get("hypothetical"):
                text += " (hypothetical)"
            css = ""
            if flag and flag in row and row[flag] is not None and row[flag] == row[flag]:
                css = " class='pass'" if bool(row[flag]) else " class='fail'"
            cells.append(f"<td{css}>{text}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return f"<h3>Top {len(rows)}</h3><table><tr>{head}</tr>{''.join(body)}</table>"
