"""Plots: PNG and SVG that parse, the right text in them, atomic writes, one-line errors."""

from __future__ import annotations

import math
import xml.etree.ElementTree as ET
from pathlib import Path

import matplotlib
import matplotlib.image
import pandas as pd
import pytest

from screening.chem import parse_formula
from screening.errors import InputError
from screening.interfaces import plots
from screening.interfaces.plots import plot_ranking, plot_reaction, plot_voltage_profile, plot_windows
from screening.thermo.analysis import analyse_pair, analyse_window
from screening.thermo.window import Window

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"
WINDOW_SET = ["Li3PO4", "LiNbO3", "Al2O3", "Li6PS5Cl", "Li3PS4", "LiCoO2", "Li7La3Zr2O12", "LiTaO3"]


@pytest.fixture(scope="module")
def profile_window(table):
    return analyse_window(table, parse_formula("Li6PS5Cl"))[0]


@pytest.fixture(scope="module")
def reactions(table):
    a, b = parse_formula("LiCoO2"), parse_formula("Li3PS4")
    return [analyse_pair(table, a, b), analyse_pair(table, a, b, potential=4.2)]


@pytest.fixture(scope="module")
def windows(table):
    return [analyse_window(table, parse_formula(name))[0] for name in WINDOW_SET]


@pytest.fixture()
def rankings():
    """A small rankings table like rank(): a disabled criterion (NA), no oxidation limit, no window."""
    rows = []
    for i, (name, formula, ox, shortfall) in enumerate([
            ("Al2O3", "Al2O3", math.nan, 0.0), ("alucone", "Al2O3", math.nan, 0.0),
            ("LiNbO3", "LiNbO3", 3.76, 0.54), ("Li3PO4", "Li3PO4", 4.21, 0.09),
            ("LiAl", "LiAl", 0.3, math.inf)]):
        rows.append({
            "stack": "LCO|LPSCl", "rank": i + 1, "candidate": name, "formula": formula,
            "passes_all": i < 2, "criteria_failed": 0 if i < 2 else 1, "pareto_rank": 1 + i // 2,
            "score": 0.1 * (i + 1), "side": "cathode", "potential": 4.3,
            "pass_e_above_hull": True, "pass_window_shortfall": shortfall == 0.0,
            "pass_rxn_electrode": True, "pass_rxn_electrolyte": i != 3, "pass_rxn_electrolyte_open": pd.NA,
            "e_above_hull": 0.0 if i != 4 else math.nan, "reduction_potential": 1.0 + 0.1 * i,
            "oxidation_potential": ox, "window_shortfall": shortfall, "rxn_electrode": -0.02 * i, "rxn_electrode_open": -0.01 * i,
            "rxn_electrolyte": -0.011 * (i + 1), "rxn_electrolyte_open": -0.07, "bare_rxn": -0.449,
            "bare_rxn_open": -0.896})
    other = dict(rows[0], stack="Li|LLZO", side="anode", potential=0.0, bare_rxn_open=math.nan)
    return pd.DataFrame(rows + [other])


def check_png(path: Path) -> None:
    data = path.read_bytes()
    assert data[:8] == PNG_SIGNATURE
    image = matplotlib.image.imread(path)
    assert image.ndim == 3 and image.shape[0] > 200 and image.shape[1] > 400 and image.shape[2] in (3, 4)
    assert image.std() > 0.01  # something is drawn


def check_svg(path: Path, *texts: str) -> None:
    root = ET.parse(path).getroot()
    assert root.tag.endswith("svg")
    content = " ".join(root.itertext())
    for text in texts:
        assert text in content, text


def only(folder: Path, *names: str) -> None:
    """Exactly these files: no temporary file left behind."""
    assert sorted(p.name for p in folder.iterdir()) == sorted(names)


def test_reaction_closed_and_open(tmp_path, reactions):
    png = plot_reaction(reactions, tmp_path / "rxn.png")
    svg = plot_reaction(reactions, str(tmp_path / "rxn.svg"))
    assert png == tmp_path / "rxn.png" and svg == tmp_path / "rxn.svg"
    check_png(png)
    check_svg(svg, "LiCoO2 | Li3PS4", "x in  x LiCoO2 + (1\u2212x) Li3PS4", "closed system",
              "open to Li at 4.2 V", "eV/atom", "eV per non-Li atom", "Co3S4 + Li2S + Li2SO4 + Li3PO4")
    only(tmp_path, "rxn.png", "rxn.svg")


def test_reaction_single_object_and_stable_pair(tmp_path, table, reactions):
    check_png(plot_reaction(reactions[0], tmp_path / "closed.PNG"))
    stable = analyse_pair(table, parse_formula("Li2O"), parse_formula("Li"))
    assert not stable.reacts
    svg = plot_reaction(stable, tmp_path / "stable.svg")
    check_svg(svg, "Li2O | Li", "no reaction")
    only(tmp_path, "closed.PNG", "stable.svg")


def test_windows(tmp_path, windows):
    check_png(plot_windows(windows, tmp_path / "w.png", cathode_potential=4.3, anode_potential=0.0))
    check_svg(plot_windows(windows, tmp_path / "w.svg", cathode_potential=4.3, anode_potential=0.0),
              *WINDOW_SET, "Potential (V vs Li/Li\u207a)", "cathode 4.3 V", "anode 0 V", "no oxidation limit")
    labels = [f"coating {i}" for i in range(len(windows))]
    check_svg(plot_windows(windows, tmp_path / "labels.svg", anode_potential=None, labels=labels), *labels)
    cathode_only = plot_windows(windows, tmp_path / "cathode.svg", cathode_potential=4.3)
    assert "anode" not in " ".join(ET.parse(cathode_only).getroot().itertext())  # only the electrode given
    only(tmp_path, "w.png", "w.svg", "labels.svg", "cathode.svg")
    with pytest.raises(InputError):
        plot_windows(windows, tmp_path / "x.png", labels=["one"])
    with pytest.raises(InputError):
        plot_windows([], tmp_path / "x.png")


def drawn_windows(monkeypatch, tmp_path, windows, **kwargs):
    """plot_windows' figure as saved, and the pixel boxes of its texts (empty ones left out)."""
    figures = []
    save = plots._save
    monkeypatch.setattr(plots, "_save", lambda fig, *target: figures.append(fig) or save(fig, *target))
    path = plot_windows(windows, tmp_path / "w.png", **kwargs)
    check_png(path)
    fig, = figures
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    ax = fig.axes[0]
    boxes = [(t.get_text(), t.get_window_extent(renderer)) for t in ax.texts if t.get_text().strip()]
    return ax, ax.get_window_extent(renderer), boxes


def narrow(formula, red, ox):
    return Window(formula, "hull", red, ox, {}, {})


NARROW = [narrow("A", 0.0, 2.91), narrow("B", 0.05, 0.10), narrow("C", 0.06, 0.06), narrow("D", 0.0, 0.06),
          narrow("E", 1.2, None), narrow("F", 5.9, None), narrow("G", 4.25, 4.31), narrow("H", None, 1.0),
          narrow("I", 5.5, 6.0), narrow("J", 0.12, 0.16)]


@pytest.mark.parametrize("electrode", [{"anode_potential": 0.0}, {"cathode_potential": 4.3},
                                       {"anode_potential": 0.0, "cathode_potential": 0.1}])
def test_window_labels_do_not_overlap(monkeypatch, tmp_path, table, windows, electrode):
    """Narrow windows (0.05-0.10 V, 0.00-0.06 V, 4.25-4.31 V), windows near both axis edges and the real
    windows: no two labels overlap and every label stays inside the axes (matplotlib's own extents)."""
    real = [analyse_window(table, parse_formula(f))[0] for f in ("Li8ZrO6", "Li5AlO4", "Li2ZrO3")]
    ax, frame, boxes = drawn_windows(monkeypatch, tmp_path, NARROW + real + windows, **electrode)
    values = {text for text, _ in boxes}
    assert {"0.05", "0.10", "0.06", "4.25", "4.31", "no oxidation limit", "0.06 V (zero width)"} <= values
    for i, (text, box) in enumerate(boxes):
        assert frame.x0 <= box.x0 and box.x1 <= frame.x1, text
        for other, other_box in boxes[i + 1:]:
            assert not box.overlaps(other_box), (text, other)
    # a narrow bar's labels sit outside it, on either side (rows 1 and 9: 0.05-0.10 V, 0.12-0.16 V)
    for row, (red, ox) in ((1, (0.05, 0.10)), (9, (0.12, 0.16))):
        (x_red, y), (x_ox, _) = ax.transData.transform([(red, row), (ox, row)])
        labels = {text: box for text, box in boxes if box.y0 < y < box.y1}
        assert labels[f"{red:.2f}"].x1 <= x_red and labels[f"{ox:.2f}"].x0 >= x_ox


def test_voltage_profile(tmp_path, profile_window):
    check_png(plot_voltage_profile(profile_window, tmp_path / "p.png"))
    check_svg(plot_voltage_profile(profile_window, tmp_path / "p.svg"), "Li6PS5Cl",
              "Potential (V vs Li/Li\u207a)", "stable window 1.72\u20132.14 V", "Li2S + LiCl + P",
              "Reduction (Li uptake)")
    only(tmp_path, "p.png", "p.svg")


def test_voltage_profile_no_oxidation_limit_and_zero_width(tmp_path, table, windows):
    alumina = windows[WINDOW_SET.index("Al2O3")]
    assert alumina.oxidation_potential is None
    check_svg(plot_voltage_profile(alumina, tmp_path / "a.svg"), "Al2O3", "no oxidation limit")
    as_is = analyse_window(table, parse_formula("Li6PS5Cl"), as_is=True)[0]
    check_png(plot_voltage_profile(as_is, tmp_path / "as_is.png"))


def test_ranking(tmp_path, rankings):
    check_png(plot_ranking(rankings, "LCO|LPSCl", tmp_path / "r.png"))
    check_svg(plot_ranking(rankings, "LCO|LPSCl", tmp_path / "r.svg", top=3), "LCO|LPSCl", "Al2O3",
              "alucone (Al2O3)", "LiNbO3", "closed: -0.449 eV/atom", "E above hull", "criterion disabled")
    assert "LiAl" not in " ".join(ET.parse(tmp_path / "r.svg").getroot().itertext())  # only the top 3
    check_png(plot_ranking(rankings, "Li|LLZO", tmp_path / "anode.png"))
    only(tmp_path, "r.png", "r.svg", "anode.png")
    with pytest.raises(InputError, match="no stack"):
        plot_ranking(rankings, "NMC|LLZO", tmp_path / "x.png")
    with pytest.raises(InputError):
        plot_ranking(rankings.iloc[0:0], "LCO|LPSCl", tmp_path / "x.png")


@pytest.mark.parametrize("name", ["plot.pdf", "plot", "plot.png.txt"])
def test_bad_suffix(tmp_path, name, reactions, windows, profile_window, rankings):
    calls = [lambda p: plot_reaction(reactions, p), lambda p: plot_windows(windows, p),
             lambda p: plot_voltage_profile(profile_window, p),
             lambda p: plot_ranking(rankings, "LCO|LPSCl", p)]
    for call in calls:
        with pytest.raises(InputError) as info:
            call(tmp_path / name)
        assert "\n" not in str(info.value) and ".png or .svg" in str(info.value)
    only(tmp_path)


def test_unwritable_path(tmp_path, profile_window):
    blocker = tmp_path / "file"
    blocker.write_text("not a folder")
    with pytest.raises(InputError) as info:
        plot_voltage_profile(profile_window, blocker / "p.png")
    assert "\n" not in str(info.value) and "cannot write plot" in str(info.value)
    with pytest.raises(InputError):
        plot_voltage_profile(profile_window, tmp_path)  # a directory
    only(tmp_path, "file")


def test_overwrite_and_creates_folder(tmp_path, profile_window):
    target = tmp_path / "new" / "p.svg"
    plot_voltage_profile(profile_window, target)
    first = target.read_bytes()
    plot_voltage_profile(profile_window, target)
    assert target.read_bytes() == first  # deterministic SVG (no date, fixed ids)
    only(target.parent, "p.svg")


def test_global_matplotlib_state_untouched(tmp_path, profile_window):
    backend, rc = matplotlib.get_backend(), dict(matplotlib.rcParams)
    plot_voltage_profile(profile_window, tmp_path / "p.svg")
    assert matplotlib.get_backend() == backend
    assert dict(matplotlib.rcParams) == rc


def test_profile_of_a_compound_unstable_everywhere_says_so(table, tmp_path):
    """Li6PS5Cl at its own (above-hull) energy has no window: the plot says so instead of a window band."""
    window, _ = analyse_window(table, parse_formula("Li6PS5Cl"), as_is=True)
    assert window.decomposes_at_every_potential
    svg = plot_voltage_profile(window, str(tmp_path / "profile.svg"))
    check_svg(svg, "decomposes at every potential", "decomposes at every Li potential")
    assert "\u2588\u2588 stable window" not in " ".join(ET.parse(svg).getroot().itertext())  # no band
