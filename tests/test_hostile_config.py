"""Hostile screen configs, formulas and command-line numbers (issue 11 items 7, 10, 12, 14, 17, 19;
issue 12 item 11): bounded, one line, exit 2, nothing left behind; adducts and units read as documented."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml
from pymatgen.core import Composition as C

from screening.chem import parse_decimal, parse_formula
from screening.cli import main
from screening.errors import InputError
from screening.screen.candidates import charge_balanced, charge_balanced_work, grid
from screening.screen.config import config_from_dict, load_config

REPO = Path(__file__).resolve().parents[1]
ONE_STACK = [{"electrode": "LCO", "electrolyte": "LPSCl"}]


def alias_bomb(levels: int = 7) -> str:
    """A ~380-byte YAML document whose `run` expands to 10**levels leaves."""
    parts = ["&a0 [x, x, x, x, x, x, x, x, x, x]"]
    parts += [f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, levels)]
    return "run: [" + ", ".join(parts) + "]\n"


def run_cli(argv, capsys):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


def assert_one_line(code, out, err, mention=None, max_len=600):
    assert code == 2, (code, err[:500])
    assert out == "" and len(err.splitlines()) == 1 and err.startswith("screening: error:"), err[:500]
    assert len(err) < max_len, f"{len(err)}-character error line"
    if mention:
        assert mention in err, err


# --- item 7: alias bombs; item 14: depth and digits ---------------------------------------------

@pytest.mark.parametrize("name, text, mention", [
    ("bomb", alias_bomb(), "YAML nodes"),
    ("deep", "run: " + "[" * 5000 + "]" * 5000 + "\n", "nested"),
    ("deep-mapping", "".join("  " * i + f"k{i}:\n" for i in range(200)) + "  " * 200 + "x: 1\n", "nested"),
    ("digits", "execution: {workers: " + "9" * 5000 + "}\n", "digits"),
    ("digits-key", "9" * 5000 + ": 1\n", "digits"),
    ("float-overflow", "thresholds: {e_above_hull: 1e5000}\n", "e_above_hull"),
])
def test_hostile_yaml_config_is_one_short_line(name, text, mention, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / f"{name}.yaml"
    config.write_text(text)
    started = time.perf_counter()
    code, out, err = run_cli(["screen", "--config", config, "--out", tmp_path / "run", "--json"], capsys)
    assert time.perf_counter() - started < 10
    assert_one_line(code, out, err, mention)
    assert sorted(p.name for p in tmp_path.iterdir()) == [config.name]


def test_alias_bomb_is_small_on_disk():
    assert len(alias_bomb()) < 400


@pytest.mark.parametrize("raw", [
    {"run": ["x"] * 1_000_000},
    {"run": 10 ** 5000},
    {10 ** 5000: 1},
    {"execution": {"workers": 10 ** 5000}},
    {"execution": {"chunk_size": [10 ** 5000]}},
    {"thresholds": {"e_above_hull": "x" * 1_000_000}},
    {"entries": {"a": ["b" * 100_000] * 10}},
    {"candidates": {"data": {"require": ["Xx" * 100_000]}}},
    {"candidates": {"data": {"anions": ["plasma"]}}},
    {"candidates": {"data": False, "grids": [{"ends": [["Li2O"] * 100_000, "Al2O3"]}]}},
    {"stacks": [{"electrode": ["LCO"] * 100_000, "electrolyte": "LPSCl"}]},
    {"stacks": [{"electrode": 10 ** 5000, "electrolyte": "LPSCl"}]},
    {"stacks": [{"electrode": "LCO", "electrolyte": "LPSCl", "potential": 10 ** 5000}]},
    {"stacks": ["x" * 1_000_000]},
], ids=["huge-list", "huge-int-run", "huge-int-key", "huge-int-workers", "huge-int-in-list", "huge-string",
        "nested-entries", "long-element", "unknown-anion-class", "grid-end-list", "stack-electrode-list",
        "stack-electrode-huge-int", "stack-potential-huge-int", "stack-huge-string"])
def test_config_errors_quote_values_short(raw):
    with pytest.raises(InputError) as info:
        config_from_dict(raw)
    message = str(info.value)
    assert "\n" not in message and len(message) < 400, message[:500]


def test_empty_config_file_is_the_default_screen(tmp_path):
    (tmp_path / "empty.yaml").write_text("# nothing\n")
    assert load_config(tmp_path / "empty.yaml").run == "default"


# --- item 10: enumeration bounded, estimated, with progress -------------------------------------

ISSUE_SPACE = {"base": ["Li", "O", "B", "Si", "P", "Al", "Ti", "Zr"], "metals": ["Nb"], "max_stoichiometry": 12}


def test_huge_charge_balanced_space_is_refused_at_once_with_the_estimate(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    config = tmp_path / "enum.yaml"
    config.write_text(yaml.safe_dump({"candidates": {"data": False, "library": False,
                                                     "charge_balanced": [ISSUE_SPACE]}, "stacks": ONE_STACK}))
    expected = charge_balanced_work(("Li", "O", "B", "Si", "P", "Al", "Ti", "Zr", "Nb"), 12)
    started = time.perf_counter()
    code, out, err = run_cli(["screen", "--config", config, "--out", tmp_path / "run", "--json"], capsys)
    assert time.perf_counter() - started < 10
    assert_one_line(code, out, err, f"{expected:.3g} stoichiometries")
    assert "SCREENING_MAX_ENUMERATION" in err and not (tmp_path / "run").exists()
    with pytest.raises(InputError, match="stoichiometries"):
        charge_balanced(("Li", "O", "B", "Si", "P", "Al", "Ti", "Zr", "Nb"), 12)


def test_enumeration_estimate_is_exact_and_progress_adds_up():
    told = []
    found = charge_balanced(("Li", "Nb", "O"), 4, progress=told.append)
    assert sum(told) == charge_balanced_work(("Li", "Nb", "O"), 4) == 1 * 6 * 2 * 4 ** 3
    assert {"LiNbO3", "Li3NbO4"} <= {c.formula for c in found}


def test_charge_balanced_equals_smact_filter():
    from smact import Element
    from smact.screening import smact_filter

    for elements, top in [(("Li", "Nb", "O"), 4), (("Li", "O", "Ta"), 3), (("Li", "B", "O", "Al"), 5)]:
        ours = {c.formula for c in charge_balanced(elements, top)}
        theirs = {C(dict(zip(s, r))).reduced_formula
                  for s, r in smact_filter([Element(e) for e in elements], threshold=top, species_unique=False)}
        assert ours == theirs


def test_enumeration_limit_is_configurable(monkeypatch):
    monkeypatch.setenv("SCREENING_MAX_ENUMERATION", "100")
    with pytest.raises(InputError, match="768 stoichiometries"):
        charge_balanced(("Li", "Nb", "O"), 4)
    with pytest.raises(InputError, match="SCREENING_MAX_ENUMERATION"):
        config_from_dict({"candidates": {"charge_balanced": [{"base": ["Li", "O"], "metals": ["Nb"]}]},
                          "stacks": ONE_STACK})
    monkeypatch.setenv("SCREENING_MAX_ENUMERATION", "1000")
    assert charge_balanced(("Li", "Nb", "O"), 4)
    monkeypatch.setenv("SCREENING_MAX_ENUMERATION", "lots")
    with pytest.raises(InputError, match="SCREENING_MAX_ENUMERATION"):
        charge_balanced(("Li", "Nb", "O"), 4)


def test_grids_are_bounded(monkeypatch):
    with pytest.raises(InputError, match="points"):
        grid(("Li2O", "Al2O3"), 1e-9)
    with pytest.raises(InputError, match="grid step"):
        config_from_dict({"candidates": {"grids": [{"ends": ["Li2O", "Al2O3"], "step": 1e-9}]}})
    monkeypatch.setenv("SCREENING_MAX_CANDIDATES", "100")
    with pytest.raises(InputError, match="SCREENING_MAX_CANDIDATES"):
        config_from_dict({"candidates": {"grids": [{"ends": ["Li2O", "Al2O3"], "step": 0.005}]},
                          "stacks": ONE_STACK})


# --- item 12: hydrates and adducts --------------------------------------------------------------

@pytest.mark.parametrize("text, formula", [
    ("CuSO4*5H2O", "CuSO9H10"), ("CuSO4\u00b75H2O", "CuSO9H10"), ("CuSO4 \u2022 5H2O", "CuSO9H10"),
    ("Li2O.5Al2O3", "Li2Al10O16"), ("Li2O*5Al2O3", "Li2Al10O16"), ("Li2O 5H2O", "Li2H10O6"),
    ("Li2SO4.H2O", "Li2SO5H2"), ("LiOH.H2O", "LiO2H3"), ("CaSO4*0.5H2O", "CaSO4.5H"),
    ("Li2O*Al2O3*2SiO2", "Li2Al2Si2O8"),
    # decimals keep working
    ("LiNi0.8Co0.1Mn0.1O2", "LiNi0.8Co0.1Mn0.1O2"), ("Li0.5CoO2", "Li0.5CoO2"),
    ("Li6.4La3Zr1.4Ta0.6O12", "Li6.4La3Zr1.4Ta0.6O12"), ("Li1.3Al0.3Ti1.7(PO4)3", "Li1.3Al0.3Ti1.7P3O12"),
    ("Li9.54Si1.74P1.44S11.7Cl0.3", "Li9.54Si1.74P1.44S11.7Cl0.3"), ("Li4.4Si", "Li4.4Si"),
    ("Li10.5GeP2S12", "Li10.5GeP2S12"), ("Li Co O2", "LiCoO2"),
])
def test_adducts_and_decimals(text, formula):
    assert parse_formula(text).almost_equals(C(formula), rtol=1e-12, atol=1e-12), parse_formula(text)


@pytest.mark.parametrize("text, hint", [
    ("CuSO4.5H2O", "CuSO4*5H2O"), ("Na2CO3.10H2O", "Na2CO3*10H2O"), ("CuCl2.2H2O", "CuCl2*2H2O"),
    ("CaSO4.0.5H2O", "CaSO4*0.5H2O"), ("Li2O*0H2O", "multiplier"), ("Li2O*", "A*nB"), ("Li2O.", "A*nB"),
    ("Li3PO4 2", "A*nB"),
])
def test_ambiguous_or_broken_adducts_are_refused_with_a_hint(text, hint):
    with pytest.raises(InputError) as info:
        parse_formula(text)
    assert hint in str(info.value), str(info.value)


def test_the_decimal_reading_suggested_for_an_ambiguous_formula_is_itself_unambiguous():
    with pytest.raises(InputError) as info:
        parse_formula("CuSO4.5H2O")
    import re

    suggestion = re.search(r"or (\S+) for the decimal", str(info.value)).group(1)
    assert parse_formula(suggestion).almost_equals(C({"Cu": 1, "S": 1, "O": 5.5, "H": 2}))


def test_hydrate_on_the_command_line(capsys):
    code, out, err = run_cli(["stability", "CuSO4.5H2O", "--json"], capsys)
    assert_one_line(code, out, err, "CuSO4*5H2O")
    code, out, _ = run_cli(["stability", "Li2O.5Al2O3", "--json"], capsys)
    assert code == 0 and '"formula": "LiAl5O8"' in out


# --- item 19 and issue 12 item 11: numbers on the command line ----------------------------------

def test_parse_decimal_takes_plain_ascii_only():
    assert parse_decimal("4.3") == 4.3 and parse_decimal("-1e-3") == -0.001 and parse_decimal(".5") == 0.5
    for text in ["1_0", "\u0663", "\uff14", "0x10", "4,3", "", "nan", "inf", "1e", "--1"]:
        with pytest.raises(ValueError):
            parse_decimal(text)


@pytest.mark.parametrize("argv, mention", [
    (["pair", "LCO", "LPSCl", "--potential", "1_0"], "1_0"),
    (["pair", "LCO", "LPSCl", "--potential", "\u0663"], "--potential"),
    (["decompose", "LiCoO2", "--potential", "\u0664.3V"], "--potential"),
    (["pair", "LCO", "LPSCl", "--potential", "4.3eV"], "--potential"),
    (["stability", "LiCoO2", "--energy", "-1.4V"], "--energy"),
    (["stability", "LiCoO2", "--energy", "-1_4"], "--energy"),
    (["stability", "LiCoO2", "--energy", "-x"], "--energy=-1.4"),
    (["screen", "--workers", "\u0662", "--out", "{out}"], "--workers"),
    (["screen", "--limit", "1_0", "--out", "{out}"], "--limit"),
    (["stability", "LiCoO2", "--thermo-type", "GGA_GGA+U_R2SCAN"], "--source mp"),
    (["stability", "LiCoO2", "--user-scheme", "MP2020"], "--user-entries"),
    (["screen", "--user-scheme", "legacy", "--out", "{out}"], "user entries"),
    (["screen", "--thermo-type", "GGA_GGA+U", "--out", "{out}"], "--source mp"),
])
def test_bad_numbers_and_options_that_would_be_ignored(argv, mention, tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    out = tmp_path / "run"
    code, stdout, err = run_cli([a.replace("{out}", str(out)) for a in argv] + ["--json"], capsys)
    assert_one_line(code, stdout, err, mention)
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("values", [["4.3", "4.3V", "4.3 V", "4.3v"], ["-0.5", "-0.5V", "-.5 V", "-5e-1V"]])
def test_potential_with_its_unit(values, capsys):
    import json

    results = []
    for value in values:
        code, out, err = run_cli(["pair", "LiNbO3", "Li3PS4", "--potential", value, "--json"], capsys)
        assert code == 0, err
        results.append(json.loads(out)["potential"])
    assert all(r == pytest.approx(float(values[0]), abs=1e-12) for r in results)


def test_negative_energy_with_its_unit(capsys):
    import json

    energies = []
    for argv in (["--energy=-1.4"], ["--energy", "-1.4"], ["--energy", "-1.4eV"], ["--energy", "-1.4eV/atom"],
                 ["--energy", "-1.4 eV/atom"], ["--energy=-1.4eV"], ["--energy", "-14e-1"]):
        code, out, err = run_cli(["stability", "LiCoO2", *argv, "--json"], capsys)
        assert code == 0, (argv, err)
        energies.append(json.loads(out)["e_above_hull"])
    assert all(e == pytest.approx(energies[0], abs=1e-12) for e in energies)
    code, out, _ = run_cli(["stability", "LiCoO2", "--energy=-2.5", "--json"], capsys)
    assert code == 0 and json.loads(out)["e_above_hull"] != pytest.approx(energies[0], abs=1e-6)


# --- item 17: the run folder appears only with results; signals clean up ------------------------

SMALL = {"run": "small", "candidates": {"data": False, "library": False,
                                        "grids": [{"ends": ["Li2O", "Al2O3"], "step": 0.5}]},
         "stacks": ONE_STACK, "execution": {"workers": 0}}


def test_no_run_folder_when_the_screen_fails_after_enumeration(tmp_path, capsys, monkeypatch):
    from screening.errors import ScreeningError
    from screening.execution import screen_run

    def unreachable(*args, **kwargs):
        raise ScreeningError("cannot reach the dask scheduler at tcp://127.0.0.1:9: refused")

    monkeypatch.setattr(screen_run, "evaluate_rows", unreachable)
    monkeypatch.chdir(tmp_path)
    (tmp_path / "small.yaml").write_text(yaml.safe_dump(SMALL))
    code, out, err = run_cli(["screen", "--config", "small.yaml", "--out", "deep/er/run", "--json"], capsys)
    assert_one_line(code, out, err, "scheduler")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["small.yaml"]


def test_a_failed_write_leaves_nothing(tmp_path, monkeypatch):
    import pandas as pd

    from screening.execution import screen_run

    def broken(path, payload):
        raise OSError(28, "No space left on device")

    monkeypatch.setattr(screen_run, "write_json", broken)
    with pytest.raises(InputError, match="No space left"):
        screen_run.write_run_folder(tmp_path / "a" / "b" / "run", pd.DataFrame({"x": [1.0]}), {})
    assert list(tmp_path.iterdir()) == []


def test_a_run_folder_appears_whole(tmp_path):
    import pandas as pd

    from screening.execution.screen_run import _HOST, write_run_folder

    stale = tmp_path / f".run.{_HOST}-999999999.ab.tmp"  # left by a killed screen (no such process)
    stale.mkdir()
    write_run_folder(tmp_path / "run", pd.DataFrame({"x": [1.0]}), {"run": "run"})
    assert sorted(p.name for p in (tmp_path / "run").iterdir()) == ["provenance.json", "rankings.csv",
                                                                  "rankings.parquet"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]  # the staging folder, and the stale one, gone


def _children(pid: int) -> list:
    import psutil

    try:
        return psutil.Process(pid).children(recursive=True)
    except psutil.NoSuchProcess:
        return []


@pytest.mark.parametrize("signum, code, delay", [(signal.SIGTERM, 143, 0.0), (signal.SIGTERM, 143, 2.0),
                                                 (signal.SIGINT, 130, 2.0)],
                         ids=["SIGTERM-while-the-cluster-starts", "SIGTERM", "SIGINT"])
def test_a_signalled_screen_with_dask_workers_cleans_up(signum, code, delay, tmp_path):
    """Killed while dask workers start or run: one line, no resource_tracker warning or traceback, no run
    folder, no orphaned worker processes."""
    allow = ["Al", "Nb", "Ti", "B", "Si", "P", "Zr", "Ta", "La", "W", "Ga", "Ge", "Mg", "Zn", "Sc", "Y", "Hf", "Mo", "V"]
    config = {"run": "sig", "candidates": {"data": {"require": ["Li", "O"], "allow": allow, "max_elements": 5},
                                           "library": False}}  # 847 candidates: about 14 s, well past the signal
    (tmp_path / "sig.yaml").write_text(yaml.safe_dump(config))
    env = {k: v for k, v in os.environ.items() if k != "SCREENING_DEBUG"}
    proc = subprocess.Popen([sys.executable, "-m", "screening", "screen", "--config", "sig.yaml", "--workers", "2",
                             "--no-progress"], cwd=tmp_path, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))  # as in a terminal
    try:
        deadline = time.monotonic() + 120
        while len(_children(proc.pid)) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.2)  # the resource tracker, and a nanny and a worker per worker
        assert proc.poll() is None, "the screen ended before it could be signalled"
        time.sleep(delay)
        workers = _children(proc.pid)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    err = stderr.decode()
    assert proc.returncode == code, err
    assert "resource_tracker" not in err and "leaked" not in err and "Traceback" not in err, err
    assert err.strip().splitlines()[-1].startswith("screening: "), err
    assert stdout == b""
    assert not (tmp_path / "results").exists()
    time.sleep(1)
    assert not [p for p in workers if _alive(p)], "orphaned dask processes"


def _alive(process) -> bool:
    import psutil

    try:
        return process.is_running() and process.status() != psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return False
