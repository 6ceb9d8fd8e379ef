"""The HTML report, the ranking step's input checks and the rankings' elements column (issues 11, 12)."""

from __future__ import annotations

import html
import json
import math
import re
import shutil
import xml.etree.ElementTree as ET
from html.parser import HTMLParser
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from pymatgen.core import Composition

from screening.cli import main
from screening.execution.parts import part_bytes, read_part
from screening.interfaces.report import _top_table, window_edge_passes

CONFIG = {
    "run": "small",
    "candidates": {"data": {"require": ["Li", "O"], "allow": ["Al", "B"], "max_elements": 3},
                   "library": False},
    "stacks": [{"electrode": "NMC811", "electrolyte": "LPSCl"}, {"electrode": "Li", "electrolyte": "LLZO"}],
}
THRESHOLDS = {"e_above_hull": 0.025, "window_shortfall": 0.0, "rxn_electrode": -0.05,
              "rxn_electrolyte": -0.05, "rxn_electrolyte_open": None}


class _Cells(HTMLParser):
    """The cells of every table row: [(class or None, text), ...]."""

    def __init__(self):
        super().__init__()
        self.rows, self._cell = [], None

    def handle_starttag(self, tag, attrs):
        if tag == "tr":
            self.rows.append([])
        elif tag in ("td", "th"):
            self._cell = [dict(attrs).get("class"), ""]

    def handle_data(self, data):
        if self._cell is not None:
            self._cell[1] += data

    def handle_endtag(self, tag):
        if tag in ("td", "th") and self._cell is not None:
            self.rows[-1].append(tuple(self._cell))
            self._cell = None


def top_tables(page: str) -> list[dict[str, dict[str, tuple]]]:
    """Each 'Top N' table as {candidate: {column header: (class, text)}}."""
    parser = _Cells()
    parser.feed(page)
    tables, header = [], None
    for row in parser.rows:
        texts = [text for _, text in row]
        if texts[:2] == ["rank", "candidate"]:
            header = texts
            tables.append({})
        elif header and len(row) == len(header):
            tables[-1][texts[1].replace(" (hypothetical)", "")] = dict(zip(header, row))
    return tables


def one_line_error(capsys, code: int, *words: str) -> str:
    out, err = capsys.readouterr()
    assert code == 2, err
    assert err.startswith("screening: error: ") and err.count("\n") == 1, err
    assert "Traceback" not in err and "internal error" not in err
    for word in words:
        assert word in err, (word, err)
    return err


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory):
    """A small real screen (26 candidates x 2 stacks) and its report."""
    folder = tmp_path_factory.mktemp("report")
    config = folder / "small.yaml"
    config.write_text(json.dumps(CONFIG), encoding="utf-8")  # JSON is YAML
    run = folder / "run"
    assert main(["screen", "--config", str(config), "--out", str(run), "--workers", "0",
                 "--no-progress"]) == 0
    assert main(["report", "--run-dir", str(run)]) == 0
    return run


def _row(**values):
    row = {"rank": 1, "candidate": "X", "formula": "X", "e_above_hull": 0.0, "potential": 4.3,
           "reduction_potential": 1.0, "oxidation_potential": 5.0, "rxn_electrode": 0.0, "rxn_electrode_open": 0.0,
           "rxn_electrolyte": 0.0, "rxn_electrolyte_open": 0.0, "score": 0.0, "proxy_for": "",
           "pass_e_above_hull": True, "pass_window_shortfall": True, "pass_rxn_electrode": True,
           "pass_rxn_electrolyte": True, "pass_rxn_electrolyte_open": pd.NA}
    row.update(values)
    return row


def test_failing_window_edge_is_marked_on_constructed_rows():
    rows = pd.DataFrame([
        _row(candidate="ox_low", reduction_potential=0.808, oxidation_potential=4.086,
             pass_window_shortfall=False),
        _row(candidate="red_high", potential=0.0, reduction_potential=0.168, oxidation_potential=3.7,
             pass_window_shortfall=False),
        _row(candidate="no_ox_limit", reduction_potential=1.2, oxidation_potential=math.nan),
        _row(candidate="no_window", reduction_potential=None, oxidation_potential=None,
             pass_window_shortfall=False),
        _row(candidate="fits", reduction_potential=1.0, oxidation_potential=4.3),
    ])
    cells = top_tables(_top_table(rows, THRESHOLDS))[0]
    classes = {name: (cells[name]["reduction (V)"][0], cells[name]["oxidation (V)"][0]) for name in cells}
    assert classes == {"ox_low": ("pass", "fail"), "red_high": ("fail", "pass"),
                       "no_ox_limit": ("pass", "pass"), "no_window": ("fail", "fail"),
                       "fits": ("pass", "pass")}
    assert cells["no_ox_limit"]["oxidation (V)"][1] == "none (no Li)"
    # a tolerated shortfall passes both edges; a disabled criterion colours neither
    short = _row(reduction_potential=1.0, oxidation_potential=4.25)
    assert window_edge_passes(short, 0.1) == {"reduction": True, "oxidation": True}
    assert window_edge_passes(short, 0.0) == {"reduction": True, "oxidation": False}
    off = top_tables(_top_table(pd.DataFrame([_row(pass_window_shortfall=pd.NA)]),
                                dict(THRESHOLDS, window_shortfall=None)))[0]["X"]
    assert off["reduction (V)"][0] is None and off["oxidation (V)"][0] is None


def test_failing_window_edge_is_marked_in_a_real_report(run_dir):
    frame = pd.read_parquet(run_dir / "rankings.parquet")
    cathode, _, anode, _ = top_tables((run_dir / "report.html").read_text(encoding="utf-8"))
    for name, oxidation in (("LiAl5O8", 4.086), ("LiB3O5", 4.207)):  # fail by their oxidation limits only
        row = frame[(frame["stack"] == "NMC811|LPSCl") & (frame["candidate"] == name)].iloc[0]
        assert row["oxidation_potential"] == pytest.approx(oxidation, abs=1e-3)
        assert not row["pass_window_shortfall"] and row["reduction_potential"] < 4.3
        assert cathode[name]["reduction (V)"][0] == "pass"
        assert cathode[name]["oxidation (V)"][0] == "fail"
    # on the anode side (0 V) the reduction limit is the one that misses
    row = frame[(frame["stack"] == "Li|LLZO") & (frame["candidate"] == "LiAlO2")].iloc[0]
    assert row["reduction_potential"] > 0.1 and not row["pass_window_shortfall"]
    assert anode["LiAlO2"]["reduction (V)"][0] == "fail" and anode["LiAlO2"]["oxidation (V)"][0] == "pass"


def test_window_plots_draw_only_the_stacks_own_electrode(run_dir):
    def texts(name):
        return " ".join(ET.parse(run_dir / "plots" / name).getroot().itertext())

    cathode, anode = texts("windows_NMC811_LPSCl.svg"), texts("windows_Li_LLZO.svg")
    assert "cathode 4.3 V" in cathode and "anode" not in cathode
    assert "anode 0 V" in anode and "cathode" not in anode


def test_rankings_have_an_elements_column(run_dir):
    frame = pd.read_parquet(run_dir / "rankings.parquet")
    expected = ["-".join(sorted(str(e) for e in Composition(f).elements)) for f in frame["formula"]]
    assert frame["elements"].tolist() == expected
    assert "Al-Li-O" in set(frame["elements"]) and "B-Li-O" in set(frame["elements"])
    assert list(frame.columns[:5]) == ["stack", "rank", "candidate", "formula", "elements"]
    header = (run_dir / "rankings.csv").read_text(encoding="utf-8").splitlines()[0].split(",")
    assert header[4] == "elements"


def test_rankings_are_byte_identical_between_runs(run_dir, tmp_path):
    config = tmp_path / "small.yaml"
    config.write_text(json.dumps(CONFIG), encoding="utf-8")
    assert main(["screen", "--config", str(config), "--out", str(tmp_path / "again"), "--workers", "0",
                 "--no-progress"]) == 0
    for name in ("rankings.csv", "rankings.parquet"):
        assert (tmp_path / "again" / name).read_bytes() == (run_dir / name).read_bytes(), name


# --------------------------------------------------------------------- report on a damaged run folder

def _copy_run(run_dir: Path, target: Path) -> Path:
    target.mkdir()
    for name in ("rankings.parquet", "provenance.json"):
        shutil.copy(run_dir / name, target / name)
    return target


def _edit(prov: dict, how: str) -> dict | str:
    if how == "no stacks":
        del prov["stacks"]
    elif how == "no data_source":
        del prov["data_source"]
    elif how == "text potential":
        prov["stacks"][0]["potential"] = "4.3V"
    elif how == "bool potential":
        prov["stacks"][0]["potential"] = True
    elif how == "potential out of range":
        prov["stacks"][0]["potential"] = 1e300
    elif how == "stack without electrolyte":
        del prov["stacks"][1]["electrolyte"]
    elif how == "bad side":
        prov["stacks"][0]["side"] = "middle"
    elif how == "text threshold":
        prov["thresholds"]["window_shortfall"] = "0"
    elif how == "bare pairs a list":
        prov["bare_pairs"] = []
    elif how == "user entries a string":
        prov["user_entry_files"] = "x.json"
    elif how == "not an object":
        return "[1, 2, 3]"
    elif how == "nested":
        return "[" * 100_000 + "]" * 100_000
    elif how == "duplicate key":
        return json.dumps(prov)[:-1] + ', "run": "other"}'
    elif how == "NaN":
        return json.dumps(prov).replace('"potential": 4.3', '"potential": NaN', 1)
    elif how == "huge integer":
        return json.dumps(prov).replace('"potential": 4.3', '"potential": ' + "9" * 5000, 1)
    elif how == "not JSON":
        return "{run: small"
    return prov


@pytest.mark.parametrize("how, mention", [
    ("no stacks", "stacks"), ("no data_source", "data_source"), ("text potential", "potential"),
    ("bool potential", "potential"), ("potential out of range", "potential"),
    ("stack without electrolyte", "electrolyte"), ("bad side", "side"), ("text threshold", "threshold"),
    ("bare pairs a list", "bare_pairs"), ("user entries a string", "user_entry_files"),
    ("not an object", "object"), ("nested", "nested"), ("duplicate key", "twice"), ("NaN", "NaN"),
    ("huge integer", "digits"), ("not JSON", "JSON")])
def test_report_on_a_bad_provenance_is_one_line(run_dir, tmp_path, capsys, how, mention):
    folder = _copy_run(run_dir, tmp_path / "run")
    edited = _edit(json.loads((folder / "provenance.json").read_text(encoding="utf-8")), how)
    text = edited if isinstance(edited, str) else json.dumps(edited)
    (folder / "provenance.json").write_text(text, encoding="utf-8")
    one_line_error(capsys, main(["report", "--run-dir", str(folder)]), mention)
    assert not (folder / "report.html").exists() and not (folder / "plots").exists()


@pytest.mark.parametrize("how, mention", [
    ("missing columns", "lack the columns"), ("text column", "not numeric"), ("unknown stack", "stack"),
    ("not parquet", "cannot read the rankings"), ("missing", "missing")])
def test_report_on_bad_rankings_is_one_line(run_dir, tmp_path, capsys, how, mention):
    folder = _copy_run(run_dir, tmp_path / "run")
    frame = pd.read_parquet(folder / "rankings.parquet")
    if how == "missing columns":
        frame.drop(columns=["oxidation_potential", "score"]).to_parquet(folder / "rankings.parquet")
    elif how == "text column":
        frame.assign(reduction_potential="low").to_parquet(folder / "rankings.parquet")
    elif how == "unknown stack":
        frame.assign(stack="LCO|LPSCl").to_parquet(folder / "rankings.parquet")
    elif how == "not parquet":
        (folder / "rankings.parquet").write_bytes(b"PAR1 not really")
    else:
        (folder / "rankings.parquet").unlink()
    one_line_error(capsys, main(["report", "--run-dir", str(folder)]), mention)
    assert not (folder / "report.html").exists()


def test_report_into_an_unwritable_place_is_one_line(run_dir, tmp_path, capsys):
    folder = _copy_run(run_dir, tmp_path / "run")
    (folder / "plots").write_text("a file where the plots folder goes", encoding="utf-8")
    one_line_error(capsys, main(["report", "--run-dir", str(folder)]), "plots folder")
    assert not (folder / "report.html").exists()
    (folder / "plots").unlink()
    (folder / "report.html").mkdir()
    one_line_error(capsys, main(["report", "--run-dir", str(folder)]), "cannot write the report")


# ------------------------------------------------------------------------ rank on bad evaluated parts

@pytest.fixture(scope="module")
def part(run_dir, tmp_path_factory):
    """One real evaluated shard of the small screen."""
    folder = tmp_path_factory.mktemp("part")
    shard, out = folder / "shard.json", folder / "part.parquet"
    config = json.dumps(CONFIG)
    assert main(["shard", "--config-json", config, "--out", str(shard)]) == 0
    assert main(["evaluate", str(shard), "--out", str(out)]) == 0
    return out


def test_rank_of_a_real_part_matches_the_screen(part, run_dir, tmp_path):
    assert main(["rank", "--config-json", json.dumps(CONFIG), "--parts", str(part),
                 "--out", str(tmp_path / "ranked")]) == 0
    ranked = pd.read_parquet(tmp_path / "ranked" / "rankings.parquet")
    screened = pd.read_parquet(run_dir / "rankings.parquet")
    pd.testing.assert_frame_equal(ranked, screened)


@pytest.mark.parametrize("how, mention", [
    ("no columns of a screen", "lack the columns"), ("one column missing", "rxn_electrolyte_open_x"),
    ("text energy", "non-numeric e_above_hull"), ("bool energy", "non-numeric rxn_electrode"),
    ("infinite energy", "infinite rxn_electrolyte"), ("number as candidate", "candidate"),
    ("empty formula", "formula"), ("bad formula", "formula"), ("unknown stack", "NMC811|LLZO"),
    ("part given twice", "twice")])
def test_rank_on_a_bad_part_is_one_line(part, tmp_path, capsys, how, mention):
    frame = pd.read_parquet(part)
    parts = [tmp_path / "bad.parquet"]
    if how == "no columns of a screen":
        frame = pd.DataFrame({"a": [1, 2], "b": ["x", "y"]})
    elif how == "one column missing":
        frame = frame.drop(columns=["rxn_electrolyte_open_x"])
    elif how == "text energy":
        frame["e_above_hull"] = "0.0 eV"
    elif how == "bool energy":
        frame["rxn_electrode"] = True
    elif how == "infinite energy":
        frame.loc[0, "rxn_electrolyte"] = -math.inf
    elif how == "number as candidate":
        frame["candidate"] = range(len(frame))
    elif how == "empty formula":
        frame.loc[0, "formula"] = ""
    elif how == "bad formula":
        frame.loc[0, "formula"] = "Xx2O"
    elif how == "unknown stack":
        frame.loc[0, "stack"] = "NMC811|LLZO"
    elif how == "part given twice":
        parts = parts * 2
    _, meta = read_part(part, "part")  # a damaged part that still carries its provenance, as a bad job writes
    parts[0].write_bytes(part_bytes(frame, meta["shard_sha256"], meta["code_sha256"], meta["shard"],
                                    meta["n_shards"]))
    out = tmp_path / "ranked"
    code = main(["rank", "--config-json", json.dumps(CONFIG), "--parts", *map(str, parts), "--out", str(out)])
    one_line_error(capsys, code, mention)
    assert not (out / "rankings.parquet").exists() and not (out / "provenance.json").exists()


def test_reference_coatings_appear_per_stack_wherever_they_rank(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    frame = pd.read_parquet(run_dir / "rankings.parquet")
    tables = top_tables(page)
    assert page.count("<h3>Reference coatings, wherever they rank</h3>") == 2  # one per stack
    references = tables[1::2]  # each stack: its top table, then its reference table
    for stack, table in zip(["NMC811|LPSCl", "Li|LLZO"], references):
        rows = frame[(frame["stack"] == stack) & frame["formula"].isin(["LiAlO2", "Al2O3", "LiNbO3"])]
        assert set(table) == set(rows["candidate"]) and "LiAlO2" in table
        for _, row in rows.iterrows():
            assert table[row["candidate"]]["rank"][1] == str(row["rank"])
            assert table[row["candidate"]]["failed"][1] == row["failed_criteria"]


# ------------------------------------------------------------------------ the interactive parts (issue 16)

def _stack_rows(run_dir, stack="NMC811|LPSCl"):
    frame = pd.read_parquet(run_dir / "rankings.parquet")
    return frame, frame[frame["stack"] == stack].sort_values("rank")


def test_table_payload_holds_every_row_and_its_failed_criteria(run_dir):
    from screening.interfaces.report_tables import criteria_of, decode_column, table_payload

    frame, rows = _stack_rows(run_dir)
    criteria = criteria_of(frame, THRESHOLDS | {"rxn_electrode_open": -0.05}, None)
    assert criteria == ["e_above_hull", "window_shortfall", "rxn_electrode", "rxn_electrode_open", "rxn_electrolyte"]
    payload = table_payload(rows, criteria)
    assert payload["n_rows"] == len(rows) == len(payload["data"]["rank"]) > 10
    assert decode_column(payload, "candidate") == rows["candidate"].tolist()
    assert decode_column(payload, "anion_class") == rows["anion_class"].tolist()
    for key in ("e_above_hull", "reduction_potential", "rxn_electrolyte", "score", "band_gap"):
        shown = np.array([np.nan if v is None else v for v in decode_column(payload, key)])
        np.testing.assert_allclose(shown, rows[key].to_numpy(dtype=float), atol=0.0051, equal_nan=True)
    for bits, expected in zip(payload["data"]["failed"], rows["failed_criteria"]):
        names = {name for i, name in enumerate(criteria) if bits >> i & 1}
        assert names == set(filter(None, expected.split(","))) - {"band_gap", "interphase", "ald_evidence",
                                                                   "practicality", "polyanion_oxide"}


def test_report_page_is_self_contained(run_dir):
    page = (run_dir / "report.html").read_text(encoding="utf-8")
    # no element loads anything from a network (the libraries' own code is checked in a browser:
    # tests/test_report_browser.py sees no request but file:, data: and blob:)
    markup = re.sub(r"<(script|style)\b[^>]*>.*?</\1>", "", page, flags=re.S)
    assert "<img" in markup and not re.search(r"""(src|href)\s*=\s*["']?(https?:)?//""", markup)
    islands = re.findall(r"<script type='application/json' id='stack-data-(\d+)'>(.*?)</script>", page, re.S)
    assert [int(i) for i, _ in islands] == [0, 1]
    frame = pd.read_parquet(run_dir / "rankings.parquet")
    for (index, text), stack in zip(islands, ["NMC811|LPSCl", "Li|LLZO"]):
        data = json.loads(text)
        assert data["table"]["n_rows"] == int((frame["stack"] == stack).sum())
        assert {"scatter", "windows", "reaction"} <= set(data["figures"])
        scatter = data["figures"]["scatter"]["data"]
        assert sorted(i for trace in scatter for i in trace["customdata"]) == list(range(data["table"]["n_rows"]))
    assert "id='dt-src'" in page and "window.screeningReport" in page
    assert page.count("<table id='table-") == 2


def test_reaction_figure_has_a_labelled_point_per_kink_with_error_bars(run_dir, table):
    from screening.interfaces.report_plots import reaction_figure, stack_reactions

    prov = json.loads((run_dir / "provenance.json").read_text(encoding="utf-8"))
    stack = prov["stacks"][0]
    _, rows = _stack_rows(run_dir)
    reactions = stack_reactions(table, rows, stack, with_errors=True)
    assert 0 < len(reactions) <= 5
    figure = reaction_figure(reactions, "LPSCl", 4.3)
    traces = figure["data"]
    assert len(traces) == 2 * len(reactions)
    for trace, (name, reaction, sds) in zip(traces, [(n, r, s) for n, pairs in reactions for r, s in pairs]):
        assert trace["name"] == name and len(trace["x"]) == len(reaction.kinks) == len(trace["text"])
        for text, kink in zip(trace["text"], reaction.kinks):
            assert html.escape(kink.reaction) in text and f"E = {kink.reaction_energy:.4f} \u00b1" in text
        assert len(trace["error_y"]["array"]) == len(reaction.kinks) and all(s >= 0 for s in trace["error_y"]["array"])
    closed = [s for _, pairs in reactions for (r, sds) in pairs[:1] for s in sds]
    assert max(closed) > 0.001  # a kink between two compounds carries their energy errors
    plain = reaction_figure(stack_reactions(table, rows, stack, with_errors=False), "LPSCl", 4.3)
    assert all(trace.get("error_y") in (None, {}) for trace in plain["data"])


def test_uncertain_top_candidates_are_flagged(run_dir):
    from screening.interfaces.report_page import stack_section
    from screening.interfaces.report_tables import table_payload

    _, rows = _stack_rows(run_dir)
    rows = rows.assign(p_pass_all=np.nan, p_top10=np.nan)
    rows.iloc[:10, rows.columns.get_loc("p_pass_all")] = 0.9
    rows.iloc[2, rows.columns.get_loc("p_pass_all")] = 0.31
    rows.iloc[12, rows.columns.get_loc("p_pass_all")] = 0.1  # below the top 10: not flagged
    payload = table_payload(rows, ["e_above_hull"])
    third = rows.iloc[2]["candidate"]
    assert payload["uncertain_top"] == [{"rank": int(rows.iloc[2]["rank"]), "candidate": third, "p_pass_all": 0.31}]
    section = stack_section(0, payload, {}, {"e_above_hull": "<= 0.025 eV/atom"})
    assert "id='uncertain-0'" in section and f"{third} (rank 3, P = 0.31)" in section
    cells = top_tables(_top_table(rows.head(10), THRESHOLDS))[0]
    assert cells[third]["P(pass all)"][1] == "0.310 (uncertain)"
    assert cells[rows.iloc[0]["candidate"]]["P(pass all)"][1] == "0.900"
    assert "badge" not in stack_section(0, table_payload(rows.drop(columns=["p_pass_all"]), []), {}, {})


def test_report_of_an_older_run_without_error_columns(run_dir, tmp_path):
    from screening.interfaces.report import write_report

    folder = _copy_run(run_dir, tmp_path / "old")
    frame = pd.read_parquet(folder / "rankings.parquet")
    old = [c for c in frame.columns if c.endswith("_std") or c.startswith("p_") or c == "window_margin"]
    frame.drop(columns=old).to_parquet(folder / "rankings.parquet")
    page = write_report(folder).read_text(encoding="utf-8")
    data = json.loads(re.search(r"id='stack-data-0'>(.*?)</script>", page, re.S).group(1))
    assert not any("std" in c for c in data["table"]["columns"]) and "p_pass_all" not in data["table"]["data"]
    assert all(not trace.get("error_y") for trace in data["figures"]["reaction"]["data"])
    margins = [x for trace in data["figures"]["scatter"]["data"] for x in trace["x"]]
    assert len(margins) > 10 and max(margins) > 0 > min(margins)  # computed from the limits instead
