"""Interactive figures of the report (plotly figure specs, drawn in the page by the embedded plotly.js).

- reaction energy against mixing ratio of the top candidates with the stack's electrolyte, closed and
  open to Li at the stack's potential (the same pairs as the PNG reaction plot: screening.thermo
  .reaction.interface_reaction through analyse_pair's system), one hover target per kink with its
  balanced reaction and energy (eV/atom and kJ/mol of atoms), first-order error bars when the run
  carries uncertainties;
- the windows of the top candidates against the stack's electrode potential (error bars from the
  rankings' `_std` columns when present);
- the ranking as a scatter of every candidate (window margin against the worst closed reaction energy);
  each point's customdata is its row in the table payload, so a click shows the row's details.
"""

from __future__ import annotations

import html
import json
import math

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots
from plotly.utils import PlotlyJSONEncoder

from screening.errors import InputError
from screening.interfaces.report_tables import EV_TO_KJ_PER_MOL, TOP, margin_of, worst_closed_reaction

REACTION_TOP = 5  # candidates drawn in the interactive reaction plot of a stack
COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]
LAYOUT = dict(template="plotly_white", margin=dict(l=60, r=20, t=80, b=50), hovermode="closest")


def figure_json(fig: go.Figure) -> dict:
    """The figure as plain JSON data (lists, not plotly's base64 arrays), for Plotly.newPlot."""
    return json.loads(json.dumps(fig.to_plotly_json(), cls=PlotlyJSONEncoder))


def _num(value) -> float | None:
    return None if value is None or value is pd.NA or value != value else float(value)


# --------------------------------------------------------------------------------- reaction energy

def error_model_of(prov: dict):
    """The run's first-order error model (provenance `uncertainty.first_order`), else the default."""
    from screening.thermo.error_model import ErrorModel

    settings = (prov.get("uncertainty") or {}).get("first_order") if isinstance(prov.get("uncertainty"), dict) else None
    if not isinstance(settings, dict):
        return ErrorModel()
    try:
        entry_errors = tuple((str(f), float(v)) for f, v in (settings.get("entry_errors_eV_per_atom") or {}).items())
        return ErrorModel(float(settings.get("independent_error_eV_per_atom", 0.024)),
                          str(settings.get("correction_errors", "mp2020")), entry_errors)
    except (TypeError, ValueError, InputError):
        return ErrorModel()


def stack_reactions(table, top_rows: pd.DataFrame, stack_info: dict, with_errors: bool, model=None) -> list:
    """[(candidate, [(InterfaceReaction, kink sds or None), closed then open])] for the top rows."""
    from screening.chem import parse_formula
    from screening.thermo.analysis import system_for
    from screening.thermo.propagation import Settings, std_of
    from screening.thermo.reaction import interface_reaction

    settings = (Settings(model=model) if model is not None else Settings()) if with_errors else None
    electrolyte = parse_formula(stack_info["electrolyte"]["composition"])
    out = []
    for _, row in top_rows.head(REACTION_TOP).iterrows():
        coating = parse_formula(row["formula"])
        if coating.reduced_composition == electrolyte.reduced_composition:
            continue
        pairs = []
        for potential in (None, stack_info["potential"]):
            extra = ("Li",) if potential is not None else ()
            chemsys = system_for(table, coating, electrolyte, extra=extra)
            reaction = interface_reaction(chemsys, coating, electrolyte, potential=potential,
                                          include_no_mixing_energy=potential is None)
            sds = None
            if settings is not None:
                sds = [std_of(settings, chemsys, "", k.gradient) for k in reaction.kinks]
            pairs.append((reaction, sds))
        out.append((str(row["candidate"]), pairs))
    return out


def _kink_text(candidate: str, reaction, kink, sd, unit: str) -> str:
    energy = f"{kink.reaction_energy:.4f}"
    if sd is not None:
        energy += f" \u00b1 {sd:.4f}"
    side = "closed" if reaction.potential is None else f"open to Li at {reaction.potential:g} V"
    kj = f" ({kink.reaction_energy * EV_TO_KJ_PER_MOL:.2f} kJ/mol of atoms)" if reaction.potential is None else ""
    return (f"<b>{html.escape(candidate)}</b> | {html.escape(reaction.reactants[1])} ({side})<br>"
            f"x = {kink.mixing_ratio:.4f}, E = {energy} {unit}{kj}<br>{html.escape(kink.reaction)}")


def reaction_figure(reactions: list, electrolyte_label: str, potential: float) -> dict | None:
    """Closed (eV/atom) and open (eV per non-Li atom) panels, one line per candidate, a marker per kink;
    the most negative kink of each line is a star."""
    if not reactions:
        return None
    fig = make_subplots(rows=1, cols=2, horizontal_spacing=0.1, subplot_titles=(
        f"closed: x coating + (1\u2212x) {electrolyte_label}",
        f"open to Li at {potential:g} V"))
    for i, (candidate, pairs) in enumerate(reactions):
        color = COLORS[i % len(COLORS)]
        for col, (reaction, sds) in enumerate(pairs, start=1):
            unit = "eV/atom" if reaction.potential is None else "eV per non-Li atom"
            best = reaction.most_negative
            kinks = reaction.kinks
            errors = None
            if sds is not None:
                errors = dict(type="data", array=[0.0 if s is None else s for s in sds], visible=True,
                              thickness=1, width=3)
            fig.add_trace(go.Scatter(
                x=[k.mixing_ratio for k in kinks], y=[k.reaction_energy for k in kinks], mode="lines+markers",
                name=candidate, legendgroup=candidate, showlegend=col == 1, line=dict(color=color),
                marker=dict(size=[13 if k is best else 8 for k in kinks],
                            symbol=["star" if k is best else "circle" for k in kinks]),
                error_y=errors, meta=["kinks"],
                text=[_kink_text(candidate, reaction, k, None if sds is None else sds[j], unit)
                      for j, k in enumerate(kinks)],
                hovertemplate="%{text}<extra></extra>"), row=1, col=col)
    fig.update_xaxes(title_text="x (atom fraction of the coating)", range=[-0.03, 1.03])
    fig.update_yaxes(title_text="reaction energy (eV/atom)", row=1, col=1)
    fig.update_yaxes(title_text="reaction energy (eV per non-Li atom)", row=1, col=2)
    fig.update_layout(**LAYOUT, height=430, title=dict(text=f"Reaction energy with {electrolyte_label} (hover a kink)", y=0.97))
    return figure_json(fig)


# ------------------------------------------------------------------------------------------ windows

def windows_figure(top_rows: pd.DataFrame, stack_info: dict) -> dict:
    """The top candidates' windows (V vs Li/Li+) as bars, the stack's electrode potential dashed."""
    rows = top_rows.head(TOP).iloc[::-1]  # rank 1 on top
    labels = [f"{int(r['rank'])}. {r['candidate']}" for _, r in rows.iterrows()]
    red = [_num(v) for v in rows["reduction_potential"]]
    ox = [_num(v) for v in rows["oxidation_potential"]]
    potential = float(stack_info["potential"])
    known = [v for v in red + ox + [potential] if v is not None]
    right = max(6.0, math.ceil(max(known) + 0.5))
    xs, ys = [], []
    for label, low, high in zip(labels, red, ox):
        if low is not None:
            xs += [low, high if high is not None else right, None]
            ys += [label, label, None]
    fig = go.Figure(go.Scatter(x=xs, y=ys, mode="lines", line=dict(width=14, color="#9ecae1"),
                               name="stable window", hoverinfo="skip"))
    for column, name, symbol in (("reduction_potential", "reduction limit", "line-ns"),
                                 ("oxidation_potential", "oxidation limit", "line-ns")):
        values = [_num(v) for v in rows[column]]
        sds = [_num(v) for v in rows[f"{column}_std"]] if f"{column}_std" in rows else None
        keep = [i for i, v in enumerate(values) if v is not None]
        errors = None
        if sds is not None:
            errors = dict(type="data", array=[sds[i] or 0.0 for i in keep], visible=True, thickness=1.5)
        text = [f"{labels[i]}: {name} {values[i]:.3f}" + (f" \u00b1 {sds[i]:.3f}" if sds and sds[i] is not None
                                                           else "") + " V" for i in keep]
        fig.add_trace(go.Scatter(x=[values[i] for i in keep], y=[labels[i] for i in keep], mode="markers",
                                 name=name, marker=dict(symbol=symbol, size=16, line=dict(width=2, color="#08519c")),
                                 error_x=errors, text=text, hovertemplate="%{text}<extra></extra>"))
    missing = [i for i, (low, high) in enumerate(zip(red, ox)) if low is not None and high is None]
    if missing:
        fig.add_trace(go.Scatter(x=[right] * len(missing), y=[labels[i] for i in missing], mode="markers",
                                 name="no oxidation limit (no Li to remove)",
                                 marker=dict(symbol="triangle-right", size=12, color="#08519c"),
                                 hovertemplate="%{y}: no oxidation limit<extra></extra>"))
    side = "cathode" if stack_info["side"] == "cathode" else "anode"
    fig.add_vline(x=potential, line_dash="dash", line_color="#d62728",
                  annotation_text=f"{side} {potential:g} V", annotation_position="top")
    fig.update_xaxes(title_text="potential (V vs Li/Li+)", range=[min(0.0, min(known)) - 0.2, right + 0.3])
    fig.update_layout(**LAYOUT, height=120 + 34 * len(labels), title=f"Windows of the top {len(labels)}")
    return figure_json(fig)


# ------------------------------------------------------------------------------------- ranking scatter

def ranking_scatter(rows: pd.DataFrame) -> dict:
    """Every candidate of a stack (rows in table order): window margin against the worst closed
    reaction energy, passing rows green; customdata = the row's index in the table payload."""
    margin = margin_of(rows).to_numpy(dtype=float)
    worst = worst_closed_reaction(rows).to_numpy(dtype=float)
    passes = rows["passes_all"].fillna(False).to_numpy(dtype=bool)
    fig = go.Figure()
    for name, chosen, color in (("fails a criterion", ~passes, "#f4a582"), ("passes all", passes, "#1a9850")):
        index = np.flatnonzero(chosen & np.isfinite(margin) & np.isfinite(worst))
        fig.add_trace(go.Scatter(
            x=np.round(margin[index], 3).tolist(), y=np.round(worst[index], 4).tolist(), mode="markers",
            name=name, customdata=index.tolist(),  # the page sets text (names) from the table's column
            marker=dict(color=color, size=6, opacity=0.75, line=dict(width=0.4, color="#333")),
            hovertemplate="%{text}<br>window margin %{x:.3f} V<br>worst E_rxn %{y:.4f} eV/atom"
                          "<extra>click for details</extra>"))
    fig.update_xaxes(title_text="window margin on the nearer side (V; < 0: the window misses the electrode)")
    fig.update_yaxes(title_text="worst closed reaction energy (eV/atom)")
    fig.update_layout(**LAYOUT, height=460, title="Ranking: every candidate (click a point)")
    return figure_json(fig)
