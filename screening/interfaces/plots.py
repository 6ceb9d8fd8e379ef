"""Figures of a screening: reaction energy vs mixing ratio, stability windows, Li uptake/release
profile, and a pass/fail grid of a stack's ranking.

Units: potentials in V vs Li/Li+; closed reaction energies in eV/atom of the mixture; reactions open to
Li in eV per atom of the non-Li elements; Li amounts per formula unit of the compound.

Each function writes PNG or SVG (chosen by the file suffix) atomically and returns the path. Figures are
built on matplotlib.figure.Figure with the Agg canvas, so pyplot and the global backend are untouched.
"""

from __future__ import annotations

import io
import math
import re
import textwrap
from pathlib import Path

import matplotlib as mpl
import numpy as np
import pandas as pd
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.transforms import ScaledTranslation

from screening.data.snapshot import atomic_write_bytes
from screening.errors import InputError
from screening.interfaces.label_layout import Label, Option, place_labels
from screening.thermo.reaction import InterfaceReaction
from screening.thermo.window import Window

FORMATS = {".png": "png", ".svg": "svg"}
STYLE = {"font.size": 9, "axes.titlesize": 10, "axes.labelsize": 9, "xtick.labelsize": 8.5,
         "ytick.labelsize": 8.5, "legend.fontsize": 8.5, "svg.fonttype": "none", "svg.hashsalt": "screening"}
MONO = "DejaVu Sans Mono"
PASS, FAIL, OFF = "#b7e4b0", "#f7b2a6", "#d9d9d9"
LINE_COLORS = ["#1f77b4", "#ff7f0e", "#2ca02c", "#9467bd", "#8c564b"]


# ----------------------------------------------------------------------------------------- output

def _target(path) -> tuple[Path, str]:
    """The output path and its format; InputError for another suffix or a directory."""
    target = Path(path).expanduser()
    fmt = FORMATS.get(target.suffix.lower())
    if fmt is None:
        raise InputError(f"plot file must end in .png or .svg, got {str(path)!r}")
    if target.is_dir():
        raise InputError(f"plot path is a directory: {target}")
    return target, fmt


def _new_figure(width: float, height: float) -> Figure:
    return FigureCanvasAgg(Figure(figsize=(width, height), layout="constrained")).figure


def _save(fig: Figure, target: Path, fmt: str) -> Path:
    """Render to memory, then write in one atomic replace."""
    buffer = io.BytesIO()
    fig.savefig(buffer, format=fmt, dpi=150, bbox_inches="tight", pad_inches=0.08,
                metadata={"Date": None} if fmt == "svg" else None)
    try:
        atomic_write_bytes(target, buffer.getvalue())
    except OSError as exc:
        raise InputError(f"cannot write plot {target}: {exc.strerror or exc}") from None
    return target


def _phases(products: dict[str, float], width: int = 0) -> str:
    """'Li2S + P + LiCl' (formulas only), wrapped to `width` characters if given."""
    text = " + ".join(products) or "(none)"
    return "\n".join(textwrap.wrap(text, width, break_on_hyphens=False)) if width else text


def _key(ax, lines: list[tuple[str, str, str]], fontsize: float = 8.0) -> None:
    """A text key in an axes without frame: (text, colour, weight) rows from the top left."""
    ax.set_axis_off()
    fig, step = ax.figure, fontsize * 1.35 / 72
    rows = [(line, color, weight) for text, color, weight in lines for line in text.split("\n")]
    for row, (text, color, weight) in enumerate(rows):
        offset = ScaledTranslation(0, -row * step, fig.dpi_scale_trans)
        ax.text(0, 1, text, transform=ax.transAxes + offset, va="top", ha="left", family=MONO,
                fontsize=fontsize, color=color, weight=weight)


def _label_points(ax, xy, texts, directions, colors, fontsize: float = 8.0) -> None:
    """Write texts next to points (data coords), each moved along its direction (display, e.g. (1, -1)
    = down-right) until it overlaps no earlier label and no other point; a thin leader joins a label
    moved away from its point. Directions should point into empty space (away from the curve)."""
    if not texts:
        return
    points = ax.transData.transform(np.asarray(xy, dtype=float)) * 72.0 / ax.figure.dpi
    marks = [(x - 4, y - 4, x + 4, y + 4) for x, y in points]
    placed: list[tuple] = []
    for i, ((x, y), text, color, direction) in enumerate(zip(points, texts, colors, directions)):
        dx, dy = np.asarray(direction, dtype=float) / np.hypot(*direction)
        ha = "center" if abs(dx) < 1e-9 else ("left" if dx > 0 else "right")
        va = "center" if abs(dy) < 1e-9 else ("bottom" if dy > 0 else "top")
        w, h = 0.62 * fontsize * len(text) + 3, fontsize + 3
        others = placed + marks[:i] + marks[i + 1:]
        for step in range(60):
            ox, oy = dx * (5 + 5 * step), dy * (5 + 5 * step)
            x0 = x + ox - {"left": 0, "center": w / 2, "right": w}[ha]
            y0 = y + oy - {"bottom": 0, "center": h / 2, "top": h}[va]
            box = (x0, y0, x0 + w, y0 + h)
            if not any(box[0] < b[2] and b[0] < box[2] and box[1] < b[3] and b[1] < box[3] for b in others):
                break
        placed.append(box)
        leader = dict(arrowstyle="-", lw=0.6, color="0.45", shrinkA=0, shrinkB=3) if step > 1 else None
        ax.annotate(text, xy[i], xytext=(ox, oy), textcoords="offset points", ha=ha, va=va,
                    fontsize=fontsize, color=color, weight="bold", arrowprops=leader)


# ------------------------------------------------------------------------------ reaction energy

def _unit_label(unit: str) -> str:
    """'eV/atom of non-Li elements' -> 'eV per non-Li atom'."""
    return re.sub(r"eV/atom of non-(\w+) elements", r"eV per non-\1 atom", unit)


def plot_reaction(reactions: InterfaceReaction | list[InterfaceReaction], path) -> Path:
    """Reaction energy E(x) of x A + (1 - x) B against x (atom fraction of A), one line per reaction.

    Closed reactions are in eV/atom of the mixture, reactions open to Li at a potential in eV per
    non-Li atom: each unit gets its own panel. Kinks are numbered markers explained in a key beside the
    panel (x, E, product phases); the most negative kink is a red star annotated with its products.
    """
    target = _target(path)
    reactions = [reactions] if isinstance(reactions, InterfaceReaction) else list(reactions)
    if not reactions:
        raise InputError("no reaction to plot")
    units = list(dict.fromkeys(r.energy_unit for r in reactions))
    pairs = list(dict.fromkeys(r.reactants for r in reactions))
    name_a, name_b = pairs[0]
    with mpl.rc_context(STYLE):
        rows = [sum(3 + sum(_phases(k.products, 34).count("\n") + 1 for k in r.kinks)
                    for r in reactions if r.energy_unit == u) for u in units]  # lines of each key
        heights = [max(3.2, 0.15 * n + 0.9) for n in rows]
        fig = _new_figure(11.5, sum(heights) + 0.9)
        grid = fig.add_gridspec(len(units), 2, width_ratios=[1.45, 1], height_ratios=heights)
        axes = []
        for row, unit in enumerate(units):
            ax = fig.add_subplot(grid[row, 0], sharex=axes[0] if axes else None)
            group = [(i, r) for i, r in enumerate(reactions) if r.energy_unit == unit]
            _reaction_panel(ax, fig.add_subplot(grid[row, 1]), group, unit, len(pairs) > 1, heights[row])
            axes.append(ax)
        for ax in axes[:-1]:
            ax.tick_params(labelbottom=False)
        axes[-1].set_xlabel(f"x in  x {name_a} + (1\u2212x) {name_b}   (atom fraction of {name_a})"
                            if len(pairs) == 1 else "x (atom fraction of the first reactant)")
        title = " ; ".join(f"{a} | {b}" for a, b in pairs)
        fig.suptitle(f"Interface reaction energy: {title}", fontsize=11, weight="bold")
        return _save(fig, *target)


def _reaction_panel(ax, key_ax, group, unit: str, show_pair: bool, height: float) -> None:
    """One panel (`height` inches) of E(x) for reactions sharing an energy unit, and its numbered key."""
    energies = [k.reaction_energy for _, r in group for k in r.kinks] + [0.0]
    low, high = min(energies), max(energies)
    span = max(high - low, 0.05)
    notes = min(0.8, (0.5 * len(group) + 0.2) / max(height - 0.5, 1.0))  # room for the notes on top
    ax.set_xlim(-0.06, 1.06)
    ax.set_ylim(low - 0.28 * span, high + max(0.3, notes * 1.28 / (1 - notes)) * span)
    ax.axhline(0.0, color="0.6", lw=0.8, zorder=0)
    ax.set_ylabel(f"Reaction energy ({_unit_label(unit)})")
    ax.grid(alpha=0.25)
    key = [(f"{'No.':>3}  {'x':>5} {'E':>7}  product phases", "black", "bold")]
    xy, texts, colors, directions = [], [], [], []
    for j, (i, reaction) in enumerate(group):
        color = LINE_COLORS[i % len(LINE_COLORS)]
        where = ax.transAxes + ScaledTranslation(0, -0.5 * j, ax.figure.dpi_scale_trans)
        kinks = sorted(reaction.kinks, key=lambda k: k.mixing_ratio)
        label = "closed system" if reaction.potential is None else f"open to Li at {reaction.potential:g} V"
        if show_pair:
            label = f"{reaction.reactants[0]} | {reaction.reactants[1]}, {label}"
        ax.plot([k.mixing_ratio for k in kinks], [k.reaction_energy for k in kinks], "-o", color=color,
                ms=4, lw=1.6)
        key.append((f"\u2500\u2500 {label}", color, "bold"))
        best = reaction.most_negative
        for kink in kinks:
            if abs(kink.reaction_energy) < 1e-9 and kink.mixing_ratio in (0.0, 1.0):
                continue  # a reactant alone, no reaction
            number = f"{len(texts) + 1}"
            is_best = kink is best and reaction.reacts
            xy.append((kink.mixing_ratio, kink.reaction_energy))
            texts.append(number)
            colors.append("#c00000" if is_best else color)
            # E(x) is convex: below-left of the falling branch and below-right of the rising one is empty
            side = np.sign(round(kink.mixing_ratio - best.mixing_ratio, 9))
            directions.append((side, -1.0) if side else (0.0, -1.0))
            lead = f"{number:>3}  {kink.mixing_ratio:5.3f} {kink.reaction_energy:7.3f}  "
            body = _phases(kink.products, 34).replace("\n", "\n" + " " * len(lead))
            key.append((lead + body, "#c00000" if is_best else "black", "bold" if is_best else "normal"))
        if reaction.reacts:
            ax.plot([best.mixing_ratio], [best.reaction_energy], "*", color="#c00000", ms=15, zorder=5,
                    markeredgecolor="white", markeredgewidth=0.6)
            note = (f"{label + ': ' if len(group) > 1 else ''}most negative "
                    f"{best.reaction_energy:.3f} {_unit_label(unit)} at x = {best.mixing_ratio:.3f}"
                    f"\n\u2192 {_phases(best.products, 60)}")
            ax.annotate(note, (best.mixing_ratio, best.reaction_energy), xytext=(0.5, 0.97),
                        textcoords=where, ha="center", va="top", fontsize=8.5, color="#c00000",
                        bbox=dict(boxstyle="round,pad=0.3", fc="white", ec="#c00000", lw=0.8),
                        arrowprops=dict(arrowstyle="->", color="#c00000", lw=0.9, shrinkB=8))
        else:
            ax.text(0.5, 0.97, f"{label + ': ' if len(group) > 1 else ''}no reaction (no mixture is "
                    "below its reactants)", ha="center", va="top", transform=where, fontsize=8.5, color="0.3")
    key.append(("(E in " + _unit_label(unit) + "; red: most negative)", "0.35", "normal"))
    _label_points(ax, xy, texts, directions, colors)
    _key(key_ax, key)


# ------------------------------------------------------------------------------------- windows

def plot_windows(windows: list[Window], path, cathode_potential: float | None = None,
                 anode_potential: float | None = None, labels: list[str] | None = None) -> Path:
    """Horizontal bars of each material's stable window (V vs Li/Li+), as in Zhu, He & Mo 2015, Fig. 2.

    A missing oxidation limit runs to the right edge with an arrow; a zero-width window is a tick.
    A dashed vertical line marks each electrode potential given (V vs Li/Li+): a stack's own electrode
    only. Value labels never overlap: outside the bar ends, inside a wide bar near an axis edge.
    """
    target = _target(path)
    with mpl.rc_context(STYLE):
        fig = windows_figure(windows, cathode_potential, anode_potential, labels)
        return _save(fig, *target)


def windows_figure(windows: list[Window], cathode_potential: float | None = None,
                   anode_potential: float | None = None, labels: list[str] | None = None) -> Figure:
    """The figure of `plot_windows`, laid out (its labels placed), not saved."""
    windows = [windows] if isinstance(windows, Window) else list(windows)
    if not windows or (labels is not None and len(labels) != len(windows)):
        raise InputError(f"need one label per window: {len(labels or [])} labels, {len(windows)} windows"
                         if windows else "no window to plot")
    names = list(labels) if labels is not None else [
        w.formula + (" (as is)" if w.method == "as_is" else "") for w in windows]
    limits = [v for w in windows for v in (w.reduction_potential, w.oxidation_potential) if v is not None]
    limits += [v for v in (cathode_potential, anode_potential) if v is not None]
    right = max(6.0, math.ceil(max(limits, default=0.0) + 0.5))
    left = min(0.0, min(limits, default=0.0)) - 0.2
    beyond = 1e3 * (right - left)  # a bar without a limit runs past the axes, whatever the final limits
    with mpl.rc_context(STYLE):
        fig = _new_figure(8.5, 0.42 * len(windows) + 1.9)
        ax = fig.add_subplot()
        rows: list[list[Label]] = []
        for row, window in enumerate(windows):
            red, ox = window.reduction_potential, window.oxidation_potential
            if red is not None and ox is not None and ox - red < 1e-3:
                ax.plot([red, red], [row - 0.32, row + 0.32], color="#08519c", lw=3, solid_capstyle="butt")
                rows.append([Label(_value_text(ax, red, row, f"{red:.2f} V (zero width)"),
                                   [Option(red, "right"), Option(red, "left")])])
                continue
            start = red if red is not None else left - beyond
            ax.barh(row, (ox if ox is not None else right + beyond) - start, left=start, height=0.62,
                    color="#6baed6", edgecolor="#08519c", lw=0.8)
            texts = []
            if ox is None:
                edge = ("axes fraction", "data")
                ax.annotate("", (1.0, row), xycoords=edge, xytext=(-30, 0), textcoords="offset points",
                            arrowprops=dict(arrowstyle="-|>", color="#08519c", lw=1.5, mutation_scale=14))
                note = ax.annotate("no oxidation limit", (1.0, row), xycoords=edge, xytext=(-34, 0),
                                   textcoords="offset points", ha="right", va="center", fontsize=7.5,
                                   style="italic", color="#08306b", zorder=4)
                texts.append(Label(note, [Option(None, "left", lo=red, offset=34.0)]))
            if red is not None:  # outside the bar's left end, else inside it
                texts.append(Label(_value_text(ax, red, row, f"{red:.2f}"),
                                   [Option(red, "left"), Option(red, "right", lo=red, hi=ox)]))
            if ox is not None:
                texts.append(Label(_value_text(ax, ox, row, f"{ox:.2f}"),
                                   [Option(ox, "right"), Option(ox, "left", lo=red, hi=ox)]))
            rows.append(texts)
        ax.set_ylim(len(windows) - 0.4, -1.25)
        ax.set_yticks(range(len(windows)), names)
        ax.set_xlabel("Potential (V vs Li/Li\u207a)")
        ax.xaxis.set_major_locator(mpl.ticker.MultipleLocator(1.0))
        ax.grid(axis="x", alpha=0.3)
        ax.set_axisbelow(True)
        electrodes = []
        lines = [(anode_potential, "anode", "#7b3294"), (cathode_potential, "cathode", "#d7301f")]
        # the higher potential first, so its label takes the right of its line
        for value, name, color in sorted((line for line in lines if line[0] is not None), reverse=True):
            ax.axvline(value, ls="--", color=color, lw=1.3)
            text = ax.annotate(f"{name} {value:g} V", (value, -0.85), xytext=(3, 0),
                               textcoords="offset points", color=color, fontsize=8.5, va="center",
                               ha="left", weight="bold", bbox=dict(fc="white", ec="none", pad=0.5))
            electrodes.append(Label(text, [Option(value, "right", offset=3.0),
                                           Option(value, "left", offset=3.0)]))
        ax.set_title("Electrochemical stability windows (bars: potentials where each material is stable)")
        place_labels(fig, ax, rows + [electrodes], (left, right))
        return fig


def _value_text(ax, x: float, row: int, text: str):
    """A potential written beside a bar end (moved by place_labels)."""
    return ax.annotate(text, (x, row), xytext=(4, 0), textcoords="offset points", ha="left", va="center",
                       fontsize=7.5, color="#08306b", zorder=4,
                       bbox=dict(fc="white", ec="none", pad=0.3, alpha=0.9))


# ------------------------------------------------------------------------------- voltage profile

def plot_voltage_profile(window: Window, path) -> Path:
    """Equilibrium potential (V vs Li/Li+) against Li gained (+) or lost (-) per formula unit.

    Each plateau ends at a numbered point (R: reduction, Li uptake; O: oxidation, Li release) whose
    phases are listed in the key beside the plot; the stable window is shaded.
    """
    target = _target(path)
    red_steps = sorted((s for s in window.profile if s.li_change > 0), key=lambda s: s.li_change)
    ox_steps = sorted((s for s in window.profile if s.li_change <= 0), key=lambda s: -s.li_change)
    red, ox = window.reduction_potential, window.oxidation_potential
    # the step curve: each plateau runs from the previous step (or the compound, x = 0) to its own step
    plateaus = []
    for steps in (ox_steps, red_steps):  # each ordered outward from the compound
        edges = [0.0] + [s.li_change for s in steps]
        plateaus += sorted((min(a, b), max(a, b), s.potential) for a, b, s in zip(edges, edges[1:], steps))
    plateaus.sort()
    xs = [x for lo, hi, _ in plateaus for x in (lo, hi)]
    ys = [v for _, _, v in plateaus for _ in (0, 1)]
    potentials = [s.potential for s in window.profile] + [v for v in (red, ox) if v is not None]
    top = max(potentials, default=1.0) + 0.6 if ox is not None else max(potentials, default=1.0) + 1.5
    n_rows = len(window.profile) + 7
    with mpl.rc_context(STYLE):
        fig = _new_figure(10.5, max(4.2, 0.16 * n_rows + 1.6))
        grid = fig.add_gridspec(1, 2, width_ratios=[1.6, 1])
        ax, key_ax = fig.add_subplot(grid[0, 0]), fig.add_subplot(grid[0, 1])
        key = [("\u2500\u2500 equilibrium potential (V vs Li/Li\u207a)", "#08519c", "bold")]
        everywhere = bool(getattr(window, "decomposes_at_every_potential", False))
        if everywhere:
            key.append(("no stable window: decomposes at every Li potential", "#a50f15", "bold"))
        elif red is not None and ox is not None and ox - red < 1e-3:
            ax.axhline(red, color="#31a354", lw=2.5, alpha=0.6)
            key.append((f"\u2500\u2500 zero-width window at {red:.2f} V", "#31a354", "bold"))
        elif red is not None:
            ax.axhspan(red, top if ox is None else ox, color="#74c476", alpha=0.25, lw=0)
            key.append(("\u2588\u2588 stable window " + (f"{red:.2f}\u2013{ox:.2f} V" if ox is not None
                        else f"above {red:.2f} V (no oxidation limit)"), "#31a354", "bold"))
        if xs:
            ax.plot(xs, ys, color="#08519c", lw=1.8)
        if ox is None and red is not None:
            ax.annotate("", (0, top), xytext=(0, red), arrowprops=dict(arrowstyle="-|>", color="#08519c",
                                                                        ls="--", lw=1.2))
        span = [s.li_change for s in window.profile] + [0.0]
        width = max(max(span) - min(span), 1.0)
        ax.set_xlim(min(span) - 0.12 * width, max(span) + 0.12 * width)
        ax.set_ylim(0.0, top)
        ax.axvline(0.0, color="0.35", lw=0.8, ls=":")
        right = max(span) < 0.3 * width  # x = 0 close to the right edge
        ax.annotate(f"{window.formula} (x = 0)", (0.0, top), xytext=(-4 if right else 4, -4),
                    textcoords="offset points", ha="right" if right else "left", va="top", fontsize=8.5,
                    weight="bold", color="0.25")
        ax.set_xlabel(f"Li per formula unit of {window.formula}:  \u2190 released (oxidation)   |   "
                      "gained (reduction) \u2192")
        ax.set_ylabel("Potential (V vs Li/Li\u207a)")
        ax.grid(alpha=0.25)
        key.append(("", "black", "normal"))
        key.append((f"{'No.':>3}  {'ΔLi/fu':>6}  {'V':>5}  phases formed", "black", "bold"))
        for prefix, steps, title, direction in (
                ("R", red_steps, "Reduction (Li uptake):", (1, 1)),
                ("O", ox_steps, "Oxidation (Li release):", (-1, -1))):
            if not steps:
                continue
            key.append((title, "#08519c", "bold"))
            names = [f"{prefix}{i + 1}" for i in range(len(steps))]
            for name, step in zip(names, steps):
                lead = f"{name:>3}  {step.li_change:+6.2f}  {step.potential:5.2f}  "
                key.append((lead + _phases(step.products, 34).replace("\n", "\n" + " " * len(lead)),
                            "black", "normal"))
            points = [(s.li_change, s.potential) for s in steps]
            ax.plot(*zip(*points), "o", color="#08519c", ms=4)
            _label_points(ax, points, names, [direction] * len(names), ["#08306b"] * len(names))
        _key(key_ax, key)
        fig.suptitle(f"Li uptake/release profile of {window.formula} (method: {window.method})"
                     + (": decomposes at every potential" if everywhere else ""),
                     fontsize=11, weight="bold")
        return _save(fig, *target)


# -------------------------------------------------------------------------------------- ranking

COLUMNS = [  # (metric column, pass column or None, header, formatter)
    ("e_above_hull", "pass_e_above_hull", "E above hull\n(eV/atom)", "energy"),
    ("window_shortfall", "pass_window_shortfall", "window shortfall\n(V)", "shortfall"),
    ("rxn_electrode", "pass_rxn_electrode", "rxn electrode\n(eV/atom)", "energy"),
    ("rxn_electrode_open", "pass_rxn_electrode_open", "rxn electrode open\n(eV/non-Li atom)", "energy"),
    ("rxn_electrolyte", "pass_rxn_electrolyte", "rxn electrolyte\n(eV/atom)", "energy"),
    ("rxn_electrolyte_open", "pass_rxn_electrolyte_open", "rxn electrolyte open\n(eV/non-Li atom)",
     "energy"),
    ("window", None, "window\n(V vs Li/Li\u207a)", "window"),
    ("score", None, "score\n(eV/atom)", "energy"),
    ("pareto_rank", None, "Pareto\nfront", "int"),
]


def _cell(row, column: str, kind: str) -> str:
    if kind == "window":
        red, ox = row.get("reduction_potential"), row.get("oxidation_potential")
        if red is None or _missing(red):
            return "none"
        return f"{red:.2f}\u2013{ox:.2f}" if not _missing(ox) else f"{red:.2f}\u2013\u221e"
    value = row.get(column)
    if _missing(value):
        return "n/a"
    if kind == "int":
        return f"{int(value)}"
    if kind == "shortfall":
        return "no window" if math.isinf(value) else ("0" if value == 0 else f"{value:.2f}")
    return f"{value:.3f}"


def _missing(value) -> bool:
    """None, NaN or pd.NA (a disabled criterion, an undefined metric)."""
    return value is None or (np.ndim(value) == 0 and bool(pd.isna(value)))


def plot_ranking(rankings, stack: str, path, top: int = 20) -> Path:
    """The `top` best-ranked candidates of one stack against the criteria: green pass, red fail, grey
    criterion disabled; cells show the metric (units in the column headers)."""
    target = _target(path)
    if top < 1:
        raise InputError(f"top must be at least 1, got {top}")
    needed = {"stack", "rank", "candidate", "formula"} | {c for c, _, _, k in COLUMNS if k != "window"}
    if rankings is None or len(rankings) == 0 or needed - set(rankings.columns):
        raise InputError("the rankings table is empty or lacks columns: "
                         f"{', '.join(sorted(needed - set(getattr(rankings, 'columns', []))))}")
    stacks = list(dict.fromkeys(rankings["stack"]))
    if stack not in stacks:
        raise InputError(f"no stack {stack!r} in the rankings (have: {', '.join(map(str, stacks))})")
    frame = rankings[rankings["stack"] == stack].sort_values("rank", kind="mergesort")
    rows = [r for _, r in frame.head(top).iterrows()]
    colors = np.ones((len(rows), len(COLUMNS), 3))
    for i, row in enumerate(rows):
        for j, (_, check, _, _) in enumerate(COLUMNS):
            if check is not None:
                state = row.get(check)
                color = OFF if _missing(state) else (PASS if bool(state) else FAIL)
                colors[i, j] = mpl.colors.to_rgb(color)
    with mpl.rc_context(STYLE):
        fig = _new_figure(11.5, 0.3 * len(rows) + 2.4)
        ax = fig.add_subplot()
        ax.imshow(colors, aspect="auto", interpolation="nearest")
        for i, row in enumerate(rows):
            for j, (column, _, _, kind) in enumerate(COLUMNS):
                ax.text(j, i, _cell(row, column, kind), ha="center", va="center", fontsize=8)
        ax.set_xticks(np.arange(len(COLUMNS) + 1) - 0.5, minor=True)
        ax.set_yticks(np.arange(len(rows) + 1) - 0.5, minor=True)
        ax.grid(which="minor", color="white", lw=1.5)
        ax.tick_params(which="both", length=0)
        ax.axvline(sum(c[1] is not None for c in COLUMNS) - 0.5, color="0.2", lw=1.2)  # criteria | info
        ax.set_xticks(range(len(COLUMNS)), [c[2] for c in COLUMNS], fontsize=8)
        ax.xaxis.tick_top()
        labels = [f"{int(r['rank'])}. {r['candidate']}" + ("" if r["candidate"] == r["formula"]
                                                             else f" ({r['formula']})") for r in rows]
        ax.set_yticks(range(len(rows)), labels, fontsize=8.5)
        for tick, row in zip(ax.get_yticklabels(), rows):
            tick.set_weight("bold" if bool(row.get("passes_all", False)) else "normal")
        first, where, at, bare = rows[0], "", "", []
        if not _missing(first.get("potential")):
            where = f" ({first.get('side', 'electrode')} at {first['potential']:g} V vs Li/Li\u207a)"
            at = f" at {first['potential']:g} V"
        if not _missing(first.get("bare_rxn")):
            bare.append(f"closed: {first['bare_rxn']:.3f} eV/atom")
        if not _missing(first.get("bare_rxn_open")):
            bare.append(f"open to Li{at}: {first['bare_rxn_open']:.3f} eV per non-Li atom")
        title = f"Stack {stack}{where}: top {len(rows)} of {len(frame)} candidates by rank"
        if bare:
            title += f"\nbare electrode | electrolyte reaction (no coating) \u2014 {'; '.join(bare)}"
        ax.set_title(title, fontsize=10, pad=8)
        handles = [Patch(fc=PASS, label="passes"), Patch(fc=FAIL, label="fails"),
                   Patch(fc=OFF, label="criterion disabled")]
        ax.legend(handles=handles, loc="upper left", bbox_to_anchor=(0.0, -0.01), ncol=3, frameon=False)
        ax.text(1.0, -0.01, "bold: passes every criterion", transform=ax.transAxes, ha="right", va="top",
                fontsize=7.5, color="0.3")
        return _save(fig, *target)
