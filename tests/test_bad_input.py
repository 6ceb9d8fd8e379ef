"""Bad input never produces a traceback or partial output (issue 5, part 5).

Every case of the catalogue must fail with exit status 2, exactly one line on stderr starting with
"screening: error:", no "Traceback" anywhere, nothing at all on stdout (the runs use --json where the
command has it), and no output files left behind (`screen --out DIR`, `--plot FILE`). A few cases run
as a real subprocess to prove that nothing reaches a terminal. The config loader is fed bad YAML and
bad mappings directly. A bad cache is ignored and rebuilt. The formula / material-name parsers are
fuzzed with hypothesis.
"""

from __future__ import annotations

import gzip
import json
import math
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from hypothesis import assume, example, given, settings
from hypothesis import strategies as st
from pymatgen.core import Composition, Element

from screening.chem import parse_formula
from screening.cli import main
from screening.data.snapshot import CACHE_FORMAT, default_entries_path, file_sha256
from screening.errors import InputError, ScreeningError
from screening.screen.config import config_from_dict, load_config
from screening.screen.materials import Material, find_library_material, resolve_material

SNAPSHOT = default_entries_path()
REPO = Path(__file__).resolve().parents[1]

# A small screen: one grid point, one stack, no dask; a valid run of it takes about a second.
SMALL_CONFIG = {
    "run": "small",
    "candidates": {"data": False, "library": False,
                   "grids": [{"ends": ["Li2O", "Al2O3"], "step": 0.5}]},
    "stacks": [{"electrode": "LCO", "electrolyte": "LPSCl"}],
    "execution": {"workers": 0},
}

# A tiny, valid entry file (formation energies, eV/atom): parsed in milliseconds.
GOOD_CSV = ("formula,target\nLi1,0.0\nO1,0.0\nCo1,0.0\nLi2O1,-2.07\nLi2O2,-1.65\n"
            "Li1Co1O2,-1.79\nCo3O4,-1.60\n")


def _yaml(data) -> str:
    import yaml

    return yaml.safe_dump(data, sort_keys=False)


def _small(**changes) -> dict:
    config = json.loads(json.dumps(SMALL_CONFIG))
    config.update(changes)
    return config


def make_fixtures(fx: Path) -> None:
    """Every bad data / config file of the catalogue, written into fx (cheap: a few ms)."""
    fx.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(5)
    noise = rng.integers(0, 256, 4096, dtype=np.uint8).tobytes()
    text = {
        "good.csv": GOOD_CSV,
        "bad_header.csv": "formula,energy\nLi1,0.0\nO1,0.0\n",
        "bad_energy.csv": "formula,target\nLi1,0.0\nO1,0.0\nLi2O1,minus two\n",
        "nan_energy.csv": "formula,target\nLi1,0.0\nO1,nan\nLi2O1,-2.07\n",
        "bad_formula.csv": "formula,target\nLi1,0.0\nO1,0.0\nLi2O1.2.3,-2.07\n",
        "unknown_element.csv": "formula,target\nLi1,0.0\nO1,0.0\nLi2O1,-2.07\nXx1,0.0\n",
        "zero_atoms.csv": "formula,target\nLi1,0.0\nO1,0.0\nLi2O1,-2.07\nLi0O0,-1.0\n",
        "too_few_fields.csv": "formula,target\nLi1,0.0\nO1\n",
        "empty.csv": "",
        "header_only.csv": "formula,target\n",
        "not_list.json": '{"formula": "Li2O", "energy": -6.2}',
        "non_entries.json": '[{"formula": "Li2O"}, 3, "Li"]',
        "invalid.json": '[{"@module": "pymatgen.analysis.phase_diagram", "@class": "PDEntry",',
        "empty_list.json": "[]",
        "nan_entry.json": ('[{"@module": "pymatgen.analysis.phase_diagram", "@class": "PDEntry", '
                           '"composition": {"Li": 1}, "energy": NaN}]'),
        "malformed.yaml": "run: [unclosed\nstacks: {\n",
        "tab.yaml": "run: x\n\tstacks: 1\n",
        "list.yaml": "- electrode: LCO\n- electrolyte: LPSCl\n",
        "scalar.yaml": "just a sentence\n",
        "unknown_key.yaml": _yaml(_small(colour="red")),
        "threshold_str.yaml": _yaml(_small(thresholds={"e_above_hull": "small"})),
        "threshold_nan.yaml": _yaml(_small(thresholds={"rxn_electrode": float("nan")})),
        "unknown_stack_material.yaml": _yaml(_small(stacks=[{"electrode": "NMC999", "electrolyte": "LPSCl"}])),
        "empty_candidates.yaml": _yaml(_small(candidates={
            "data": {"require": ["Li"], "allow": ["Li"], "min_elements": 2}, "library": False})),
        "noble_gas_grid.yaml": _yaml(_small(candidates={
            "data": False, "library": False, "grids": [{"ends": ["XeF2", "LiF"], "step": 0.5}]})),
        "small.yaml": _yaml(SMALL_CONFIG),
        # hostile configs (issue 11, items 7, 10, 14)
        "alias_bomb.yaml": "run: [&a0 [x, x, x, x, x, x, x, x, x, x], " + ", ".join(
            f"&a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 7)) + "]\n",
        "deep.yaml": "run: " + "[" * 3000 + "]" * 3000 + "\n",
        "huge_int.yaml": "execution: {workers: " + "9" * 5000 + "}\n",
        "huge_enumeration.yaml": _yaml(_small(candidates={"data": False, "library": False, "charge_balanced": [
            {"base": ["Li", "O", "B", "Si", "P", "Al", "Ti", "Zr"], "metals": ["Nb"], "max_stoichiometry": 12}]})),
        "user_scheme_alone.yaml": _yaml(_small(user_scheme="MP2020")),
    }
    for name, content in text.items():
        (fx / name).write_text(content, encoding="utf-8")
    (fx / "not_utf8.csv").write_bytes(b"formula,target\n\xff\xfeLi1,0.0\n")
    (fx / "binary.yaml").write_bytes(noise[:300])
    (fx / "corrupt.csv.gz").write_bytes(noise)  # random bytes, not gzip
    (fx / "corrupt.json.gz").write_bytes(noise[::-1])
    (fx / "empty.csv.gz").write_bytes(gzip.compress(b""))
    data = SNAPSHOT.read_bytes()
    (fx / "truncated.csv.gz").write_bytes(data[:len(data) // 2])
    (fx / "a_file").write_text("a regular file, not a folder\n")


def assert_one_line_error(code, out: str, err: str, expect_code: int = 2) -> None:
    """The bad-input contract: exit 2, one 'screening: error:' line, no traceback, empty stdout."""
    assert "Traceback" not in err and "Traceback" not in out, err
    assert code == expect_code, f"exit status {code}, stderr: {err!r}, stdout[:300]: {out[:300]!r}"
    lines = err.splitlines()
    assert len(lines) == 1, f"expected exactly one stderr line, got {len(lines)}: {err!r}"
    assert lines[0].startswith("screening: error:"), lines[0]
    assert out == "", f"stdout must be empty on failure, got {out[:300]!r}"


def files_under(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file()) if folder.exists() else []


# --------------------------------------------------------------------------------------------------
# The catalogue: (id, argv, env). In argv and env, {fx} is the fixture folder, {out} the folder where
# outputs go (it must stay free of files), {snapshot} the embedded data file.
# --------------------------------------------------------------------------------------------------

LONG_FORMULA = "Li" * 5000  # 10,000 characters

CATALOGUE = [
    # formulas and material names
    ("empty-formula", ["stability", "", "--json"], {}),
    ("whitespace-only-formula", ["stability", "  \t ", "--json"], {}),
    ("unicode-subscript-LiCoO2", ["stability", "LiCoO₂", "--json"], {}),
    ("unicode-subscript-Li3PO4", ["window", "Li₃PO₄", "--json"], {}),
    ("emoji-formula", ["stability", "🔋", "--json"], {}),
    ("formula-10000-chars", ["stability", LONG_FORMULA, "--json"], {}),
    ("pair-formula-10000-chars", ["pair", "LiCoO2", LONG_FORMULA, "--json"], {}),
    ("negative-amount", ["stability", "Li-1O", "--json"], {}),
    ("inf-amount", ["stability", "Li1e999O", "--json"], {}),
    ("nan-amount", ["decompose", "Li1nanO", "--json"], {}),
    ("overflowing-total-amount", ["stability", "Li1e308O1e308", "--json"], {}),
    ("unknown-element-Xx", ["stability", "Xx2O", "--json"], {}),
    ("unknown-element-Q", ["pair", "Q", "LiCoO2", "--json"], {}),
    ("lower-case-symbols", ["stability", "lico2", "--json"], {}),
    ("unbalanced-open-paren", ["stability", "Li3(PO4", "--json"], {}),
    ("unbalanced-close-paren", ["decompose", "Li3PO4)2", "--json"], {}),
    ("empty-parens", ["window", "Li()", "--json"], {}),
    ("noble-gas-He", ["stability", "He", "--json"], {}),
    ("noble-gas-XeF2", ["window", "XeF2", "--json"], {}),
    ("noble-gas-in-pair", ["pair", "LiCoO2", "KrF2", "--json"], {}),
    # pair
    ("pair-A-equals-B", ["pair", "LiCoO2", "LiCoO2", "--json"], {}),
    ("pair-formula-vs-alias", ["pair", "LiCoO2", "LCO", "--json"], {}),
    ("pair-li-metal-open", ["pair", "Li", "LPSCl", "--potential", "0", "--json"], {}),
    ("pair-li-alias-open", ["pair", "LPSCl", "lithium", "--potential", "3", "--json"], {}),
    ("pair-missing-b", ["pair", "LiCoO2", "--json"], {}),
    # potentials and states
    ("potential-not-a-number", ["pair", "LCO", "LPSCl", "--potential", "abc", "--json"], {}),
    ("potential-nan", ["pair", "LCO", "LPSCl", "--potential", "nan", "--json"], {}),
    ("potential-inf", ["pair", "LCO", "LPSCl", "--potential", "inf", "--json"], {}),
    ("potential-overflow", ["decompose", "LiCoO2", "--potential", "1e400", "--json"], {}),
    ("potential-above-range", ["pair", "LCO", "LPSCl", "--potential", "11", "--json"], {}),
    ("potential-below-range", ["decompose", "LiCoO2", "--potential", "-6", "--json"], {}),
    ("state-potential-out-of-range", ["stability", "NMC811@99V", "--json"], {}),
    ("state-empty", ["stability", "NMC811@", "--json"], {}),
    ("state-word", ["window", "NMC811@fast", "--json"], {}),
    ("state-charged-without-charged-state", ["window", "LPSCl@charged", "--json"], {}),
    ("state-charged-on-formula", ["stability", "Li2O@charged", "--json"], {}),
    ("state-nan-volts", ["pair", "LCO@nanV", "LPSCl", "--json"], {}),
    ("state-double-at", ["stability", "NMC811@charged@4V", "--json"], {}),
    # window / energies
    ("window-of-li-metal", ["window", "Li", "--json"], {}),
    ("window-of-li-metal-alias", ["window", "Li metal", "--json"], {}),
    ("energy-nan", ["stability", "LiCoO2", "--energy", "NaN", "--json"], {}),
    ("energy-inf", ["window", "LiCoO2", "--energy", "inf", "--json"], {}),
    ("energy-not-a-number", ["decompose", "LiCoO2", "--energy", "abc", "--json"], {}),
    ("energy-absurd-as-is", ["window", "Li2O", "--energy", "1e300", "--as-is", "--json"], {}),
    # command line
    ("unknown-subcommand", ["bogus", "LiCoO2"], {}),
    ("no-subcommand", [], {}),
    ("unknown-option", ["stability", "LiCoO2", "--bogus", "--json"], {}),
    ("library-bad-role", ["library", "--role", "catalyst", "--json"], {}),
    # data files
    ("entries-missing-file", ["stability", "LiCoO2", "--entries", "{fx}/nope.csv.gz", "--json"], {}),
    ("env-entries-missing-file", ["stability", "LiCoO2", "--json"],
     {"SCREENING_ENTRIES": "{fx}/nope.csv.gz"}),
    ("env-entries-corrupt-gz", ["window", "Li3PO4", "--json"], {"SCREENING_ENTRIES": "{fx}/corrupt.csv.gz"}),
    ("entries-is-a-directory", ["stability", "LiCoO2", "--entries", "{fx}", "--json"], {}),
    ("entries-corrupt-gz", ["stability", "LiCoO2", "--entries", "{fx}/corrupt.csv.gz", "--json"], {}),
    ("entries-truncated-gz", ["stability", "LiCoO2", "--entries", "{fx}/truncated.csv.gz", "--json"], {}),
    ("entries-empty-gz", ["stability", "LiCoO2", "--entries", "{fx}/empty.csv.gz", "--json"], {}),
    ("entries-bad-header", ["stability", "Li2O", "--entries", "{fx}/bad_header.csv", "--json"], {}),
    ("entries-bad-energy", ["stability", "Li2O", "--entries", "{fx}/bad_energy.csv", "--json"], {}),
    ("entries-nan-energy", ["stability", "Li2O", "--entries", "{fx}/nan_energy.csv", "--json"], {}),
    ("entries-bad-formula", ["stability", "Li2O", "--entries", "{fx}/bad_formula.csv", "--json"], {}),
    ("entries-unknown-element", ["stability", "Li2O", "--entries", "{fx}/unknown_element.csv", "--json"], {}),
    ("entries-zero-atom-formula", ["stability", "Li2O", "--entries", "{fx}/zero_atoms.csv", "--json"], {}),
    ("entries-too-few-fields", ["stability", "Li2O", "--entries", "{fx}/too_few_fields.csv", "--json"], {}),
    ("entries-empty-file", ["stability", "Li2O", "--entries", "{fx}/empty.csv", "--json"], {}),
    ("entries-header-only", ["stability", "Li2O", "--entries", "{fx}/header_only.csv", "--json"], {}),
    ("entries-not-utf8", ["stability", "Li2O", "--entries", "{fx}/not_utf8.csv", "--json"], {}),
    ("entries-json-not-a-list", ["stability", "Li2O", "--entries", "{fx}/not_list.json", "--json"], {}),
    ("entries-json-non-entries", ["stability", "Li2O", "--entries", "{fx}/non_entries.json", "--json"], {}),
    ("entries-json-invalid", ["stability", "Li2O", "--entries", "{fx}/invalid.json", "--json"], {}),
    ("entries-json-empty-list", ["stability", "Li2O", "--entries", "{fx}/empty_list.json", "--json"], {}),
    ("entries-json-nan-energy", ["stability", "Li", "--entries", "{fx}/nan_entry.json", "--json"], {}),
    ("entries-json-gz-corrupt", ["stability", "Li2O", "--entries", "{fx}/corrupt.json.gz", "--json"], {}),
    # plots: nothing may be written
    ("plot-bad-material", ["window", "", "--plot", "{out}/w.png", "--json"], {}),
    ("plot-pair-same", ["pair", "LiCoO2", "LCO", "--plot", "{out}/p.png", "--json"], {}),
    ("plot-window-under-a-file", ["window", "Li3PO4", "--plot", "{fx}/a_file/w.png", "--json"], {}),
    ("plot-window-unsupported-format", ["window", "Li3PO4", "--plot", "{out}/w.txt", "--json"], {}),
    ("plot-pair-is-a-directory", ["pair", "LiCoO2", "LPSCl", "--plot", "{out}", "--json"], {}),
    ("plot-window-is-a-directory", ["window", "Li3PO4", "--plot", "{out}/dir.png", "--json"], {}),
    # the Materials Project source: bad credentials fail before any network access
    ("mp-source-no-key", ["stability", "LiCoO2", "--source", "mp", "--json"],
     {"MP_API_KEY": "", "SCREENING_CACHE_DIR": "{out}/../cache"}),
    ("mp-source-malformed-key", ["window", "Li3PO4", "--source", "mp", "--json"],
     {"MP_API_KEY": "not-a-key", "SCREENING_CACHE_DIR": "{out}/../cache"}),
    ("mp-source-bad-endpoint", ["stability", "LiCoO2", "--source", "mp", "--json"],
     {"MP_API_KEY": "0123456789abcdef0123456789abcdef", "MP_API_ENDPOINT": "ftp://example.org",
      "SCREENING_CACHE_DIR": "{out}/../cache"}),
    ("unknown-source", ["stability", "LiCoO2", "--source", "nowhere", "--json"], {}),
    ("unknown-thermo-type", ["stability", "LiCoO2", "--source", "mp", "--thermo-type", "PBE", "--json"], {}),
    # screen
    ("screen-config-malformed-yaml", ["screen", "--config", "{fx}/malformed.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-tab-yaml", ["screen", "--config", "{fx}/tab.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-binary", ["screen", "--config", "{fx}/binary.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-list", ["screen", "--config", "{fx}/list.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-scalar", ["screen", "--config", "{fx}/scalar.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-unknown-key", ["screen", "--config", "{fx}/unknown_key.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-threshold-string",
     ["screen", "--config", "{fx}/threshold_str.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-threshold-nan",
     ["screen", "--config", "{fx}/threshold_nan.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-unknown-stack-material",
     ["screen", "--config", "{fx}/unknown_stack_material.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-empty-candidate-set",
     ["screen", "--config", "{fx}/empty_candidates.yaml", "--out", "{out}/run", "--workers", "0", "--json"], {}),
    ("screen-config-noble-gas-grid",
     ["screen", "--config", "{fx}/noble_gas_grid.yaml", "--out", "{out}/run", "--workers", "0", "--json"], {}),
    ("screen-config-missing", ["screen", "--config", "{fx}/nope.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-is-a-directory", ["screen", "--config", "{fx}", "--out", "{out}/run", "--json"], {}),
    ("screen-out-under-a-file", ["screen", "--config", "{fx}/small.yaml", "--out", "{fx}/a_file/run", "--json"], {}),
    ("screen-out-is-a-file", ["screen", "--config", "{fx}/small.yaml", "--out", "{fx}/a_file", "--json"], {}),
    ("screen-out-in-proc", ["screen", "--config", "{fx}/small.yaml", "--out", "/proc/screening-bad-input/run",
                            "--json"], {}),
    ("screen-corrupt-entries",
     ["screen", "--config", "{fx}/small.yaml", "--entries", "{fx}/corrupt.csv.gz", "--out", "{out}/run", "--json"], {}),
    ("screen-workers-negative", ["screen", "--config", "{fx}/small.yaml", "--workers", "-1", "--out", "{out}/run",
                                 "--json"], {}),
    ("screen-workers-abc", ["screen", "--config", "{fx}/small.yaml", "--workers", "abc", "--out", "{out}/run",
                            "--json"], {}),
    ("screen-limit-zero",
     ["screen", "--config", "{fx}/small.yaml", "--limit", "0", "--out", "{out}/run", "--json"], {}),
    ("screen-scheduler-garbage",
     ["screen", "--config", "{fx}/small.yaml", "--scheduler", "not-an-address", "--out", "{out}/run", "--json"], {}),
    # hostile configs, formulas and numbers (issue 11 items 7, 10, 12, 14, 19; issue 12 item 11)
    ("screen-config-alias-bomb", ["screen", "--config", "{fx}/alias_bomb.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-deep-nesting", ["screen", "--config", "{fx}/deep.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-5000-digit-int", ["screen", "--config", "{fx}/huge_int.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-huge-enumeration",
     ["screen", "--config", "{fx}/huge_enumeration.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-config-user-scheme-without-entries",
     ["screen", "--config", "{fx}/user_scheme_alone.yaml", "--out", "{out}/run", "--json"], {}),
    ("screen-enumeration-limit-not-a-number", ["screen", "--config", "{fx}/small.yaml", "--out", "{out}/run", "--json"],
     {"SCREENING_MAX_ENUMERATION": "lots"}),
    ("hydrate-ambiguous-dot", ["stability", "CuSO4.5H2O", "--json"], {}),
    ("hydrate-ambiguous-dot-decahydrate", ["window", "Na2CO3.10H2O", "--json"], {}),
    ("hydrate-two-dots", ["stability", "CaSO4.0.5H2O", "--json"], {}),
    ("adduct-zero-multiplier", ["stability", "Li2O*0H2O", "--json"], {}),
    ("adduct-empty-part", ["pair", "Li2O*", "LPSCl", "--json"], {}),
    ("adduct-trailing-number", ["stability", "Li3PO4 2", "--json"], {}),
    ("potential-underscore-digits", ["pair", "LCO", "LPSCl", "--potential", "1_0", "--json"], {}),
    ("potential-arabic-indic-digit", ["pair", "LCO", "LPSCl", "--potential", "\u0663", "--json"], {}),
    ("potential-fullwidth-digit", ["decompose", "LiCoO2", "--potential", "\uff14", "--json"], {}),
    ("potential-wrong-unit", ["pair", "LCO", "LPSCl", "--potential", "4.3eV", "--json"], {}),
    ("energy-wrong-unit", ["stability", "LiCoO2", "--energy", "-1.4V", "--json"], {}),
    ("energy-underscore-digits", ["stability", "LiCoO2", "--energy=-1_4", "--json"], {}),
    ("energy-negative-word", ["stability", "LiCoO2", "--energy", "-x", "--json"], {}),
    ("screen-workers-arabic-indic-digit",
     ["screen", "--config", "{fx}/small.yaml", "--workers", "\u0662", "--out", "{out}/run", "--json"], {}),
    ("screen-limit-underscore", ["screen", "--config", "{fx}/small.yaml", "--limit", "1_0", "--out", "{out}/run",
                                 "--json"], {}),
    ("thermo-type-without-source-mp", ["stability", "LiCoO2", "--thermo-type", "GGA_GGA+U_R2SCAN", "--json"], {}),
    ("screen-thermo-type", ["screen", "--config", "{fx}/small.yaml", "--thermo-type", "GGA_GGA+U", "--out",
                            "{out}/run", "--json"], {}),
    ("user-scheme-without-user-entries", ["window", "Li3PO4", "--user-scheme", "MP2020", "--json"], {}),
]


def _fill(text: str, fx: Path, out: Path) -> str:
    return text.replace("{fx}", str(fx)).replace("{out}", str(out)).replace("{snapshot}", str(SNAPSHOT))


@pytest.fixture
def places(tmp_path, monkeypatch):
    """(fx, out): fixture files, and an existing empty folder for outputs; cwd is tmp_path."""
    fx, out = tmp_path / "fx", tmp_path / "out"
    make_fixtures(fx)
    out.mkdir()
    monkeypatch.chdir(tmp_path)
    for name in ("SCREENING_DEBUG", "SCREENING_ENTRIES", "MP_API_KEY", "MP_API_ENDPOINT"):
        monkeypatch.delenv(name, raising=False)
    return fx, out


def test_catalogue_is_large_and_ids_are_unique():
    ids = [case[0] for case in CATALOGUE]
    assert len(ids) == len(set(ids))
    assert len(ids) >= 45
    assert set(MENTIONS) <= set(ids)


# The one error line must name what is wrong: the data file, the config file, the output path, ...
MENTIONS = {
    "entries-missing-file": "nope.csv.gz", "env-entries-missing-file": "nope.csv.gz",
    "env-entries-corrupt-gz": "corrupt.csv.gz", "entries-is-a-directory": "{fx}",
    "entries-corrupt-gz": "corrupt.csv.gz", "entries-truncated-gz": "truncated.csv.gz",
    "entries-empty-gz": "empty.csv.gz", "entries-bad-header": "bad_header.csv",
    "entries-bad-energy": "bad_energy.csv", "entries-nan-energy": "nan_energy.csv",
    "entries-bad-formula": "bad_formula.csv", "entries-unknown-element": "unknown_element.csv",
    "entries-zero-atom-formula": "zero_atoms.csv", "entries-too-few-fields": "too_few_fields.csv",
    "entries-empty-file": "empty.csv", "entries-header-only": "header_only.csv",
    "entries-not-utf8": "not_utf8.csv", "entries-json-not-a-list": "not_list.json",
    "entries-json-non-entries": "non_entries.json", "entries-json-invalid": "invalid.json",
    "entries-json-empty-list": "empty_list.json", "entries-json-nan-energy": "nan_entry.json",
    "entries-json-gz-corrupt": "corrupt.json.gz", "screen-corrupt-entries": "corrupt.csv.gz",
    "screen-config-malformed-yaml": "malformed.yaml", "screen-config-tab-yaml": "tab.yaml",
    "screen-config-binary": "binary.yaml", "screen-config-list": "list.yaml",
    "screen-config-scalar": "scalar.yaml", "screen-config-unknown-key": "colour",
    "screen-config-threshold-string": "e_above_hull", "screen-config-threshold-nan": "rxn_electrode",
    "screen-config-unknown-stack-material": "NMC999", "screen-config-noble-gas-grid": "Xe",
    "screen-config-missing": "nope.yaml", "screen-out-under-a-file": "a_file",
    "screen-out-is-a-file": "a_file", "screen-out-in-proc": "/proc/screening-bad-input",
    "screen-scheduler-garbage": "not-an-address", "noble-gas-He": "He", "noble-gas-XeF2": "Xe",
    "noble-gas-in-pair": "Kr", "unknown-element-Xx": "Xx", "unknown-element-Q": "Q",
    "plot-window-under-a-file": "a_file", "plot-window-unsupported-format": "w.txt",
    "plot-window-is-a-directory": "dir.png", "mp-source-no-key": "MP_API_KEY",
    "mp-source-malformed-key": "MP_API_KEY", "mp-source-bad-endpoint": "ftp://",
    "screen-config-alias-bomb": "YAML nodes", "screen-config-deep-nesting": "nested",
    "screen-config-5000-digit-int": "5000 digits", "screen-config-huge-enumeration": "2.5e+14 stoichiometries",
    "screen-config-user-scheme-without-entries": "user entries",
    "screen-enumeration-limit-not-a-number": "SCREENING_MAX_ENUMERATION",
    "hydrate-ambiguous-dot": "CuSO4*5H2O", "hydrate-ambiguous-dot-decahydrate": "Na2CO3*10H2O",
    "hydrate-two-dots": "CaSO4*0.5H2O", "adduct-zero-multiplier": "multiplier", "adduct-empty-part": "A*nB",
    "potential-underscore-digits": "1_0", "potential-wrong-unit": "4.3eV", "energy-wrong-unit": "-1.4V",
    "energy-negative-word": "--energy=-1.4", "thermo-type-without-source-mp": "--source mp",
    "screen-thermo-type": "--source mp", "user-scheme-without-user-entries": "--user-entries",
}


@pytest.mark.parametrize("argv, env, mention",
                         [pytest.param(a, e, MENTIONS.get(i), id=i) for i, a, e in CATALOGUE])
def test_bad_input_cli(argv, env, mention, places, monkeypatch, capsys):
    fx, out = places
    (out / "dir.png").mkdir()  # a folder with a plot's name
    for key, value in env.items():
        monkeypatch.setenv(key, _fill(value, fx, out))
    before = files_under(fx)
    code = main([_fill(a, fx, out) for a in argv])
    stdout, stderr = capsys.readouterr()
    assert_one_line_error(code, stdout, stderr)
    if mention:
        assert _fill(mention, fx, out) in stderr, f"the error does not name {mention!r}: {stderr!r}"
    assert files_under(out) == [], "partial output left behind"
    assert files_under(fx) == before, "something was written beside the inputs"


# --------------------------------------------------------------------------------------------------
# Real subprocesses: nothing but one line reaches a terminal.
# --------------------------------------------------------------------------------------------------

SUBPROCESS_CASES = [
    ("empty-formula", ["stability", ""], {}),
    ("emoji-formula", ["stability", "LiCoO₂🔋"], {}),
    ("emoji-formula-ascii-terminal", ["stability", "LiCoO₂🔋", "--json"], {"PYTHONIOENCODING": "ascii"}),
    ("undecodable-argv-bytes", ["stability", b"Li\xff\xfeO"], {}),
    ("unknown-subcommand", ["frobnicate"], {}),
    ("env-entries-missing", ["window", "Li3PO4", "--json"], {"SCREENING_ENTRIES": "{fx}/nope.csv.gz"}),
    ("corrupt-gz", ["stability", "LiCoO2", "--entries", "{fx}/corrupt.csv.gz"], {}),
    ("malformed-config", ["screen", "--config", "{fx}/malformed.yaml", "--out", "{out}/run"], {}),
    ("screen-out-under-a-file", ["screen", "--config", "{fx}/small.yaml", "--out", "{fx}/a_file/run"], {}),
    ("energy-absurd-as-is", ["window", "Li2O", "--energy", "1e300", "--as-is", "--json"], {}),
]


def _run_process(args, env_extra, cwd, timeout=60):
    env = {k: v for k, v in os.environ.items() if k != "SCREENING_DEBUG"}
    env.update(env_extra)
    return subprocess.run([sys.executable, "-m", "screening", *args], capture_output=True, cwd=cwd,
                          env=env, timeout=timeout)


@pytest.mark.parametrize("argv, env", [pytest.param(a, e, id=i) for i, a, e in SUBPROCESS_CASES])
def test_bad_input_subprocess(argv, env, places):
    fx, out = places
    args = [a if isinstance(a, bytes) else _fill(a, fx, out) for a in argv]
    proc = _run_process(args, {k: _fill(v, fx, out) for k, v in env.items()}, cwd=fx.parent)
    stdout = proc.stdout.decode("utf-8", "replace")
    stderr = proc.stderr.decode("utf-8", "replace")
    assert_one_line_error(proc.returncode, stdout, stderr)
    assert files_under(out) == []


def test_overflowing_amounts_do_not_hang_window(places):
    """Li1e308O1e308: amounts are finite but their sum is not. The window must fail fast (exit 2)."""
    fx, _ = places
    try:
        proc = _run_process(["window", "Li1e308O1e308", "--json"], {}, cwd=fx.parent, timeout=10)
    except subprocess.TimeoutExpired:
        pytest.fail("`screening window Li1e308O1e308` did not finish within 10 s (expected exit 2 at once)")
    assert_one_line_error(proc.returncode, proc.stdout.decode(), proc.stderr.decode())


# --------------------------------------------------------------------------------------------------
# The config loader directly.
# --------------------------------------------------------------------------------------------------

def _stack(**extra) -> list[dict]:
    return [{"electrode": "LCO", "electrolyte": "LPSCl", **extra}]


BAD_CONFIG_DICTS = [
    ("top-level-list", [SMALL_CONFIG]),
    ("top-level-string", "run: small"),
    ("top-level-none", None),
    ("unknown-top-key", _small(colour="red")),
    ("non-string-top-key", {1: 2}),
    ("candidates-not-mapping", _small(candidates=["data"])),
    ("unknown-candidates-key", _small(candidates={"data": False, "sources": 1})),
    ("data-filter-true", _small(candidates={"data": True})),
    ("data-unknown-element", _small(candidates={"data": {"require": ["Xx"]}})),
    ("data-require-not-strings", _small(candidates={"data": {"require": [3]}})),
    ("data-max-elements-float", _small(candidates={"data": {"max_elements": 2.5}})),
    ("data-max-elements-huge", _small(candidates={"data": {"max_elements": 10 ** 30}})),
    ("data-bool-as-string", _small(candidates={"data": {"exclude_radioactive": "yes"}})),
    ("grid-one-end", _small(candidates={"data": False, "grids": [{"ends": ["Li2O"]}]})),
    ("grid-step-zero", _small(candidates={"data": False, "grids": [{"ends": ["Li2O", "Al2O3"], "step": 0}]})),
    ("grid-step-string", _small(candidates={"data": False, "grids": [{"ends": ["Li2O", "Al2O3"], "step": "0.1"}]})),
    ("grids-not-list", _small(candidates={"data": False, "grids": {"ends": ["Li2O", "Al2O3"]}})),
    ("charge-balanced-unknown-element",
     _small(candidates={"data": False, "charge_balanced": [{"base": ["Li", "Xx"], "metals": ["Al"]}]})),
    ("max-e-above-hull-negative", _small(candidates={"data": False, "max_e_above_hull": -1})),
    ("penalty-inf", _small(candidates={"data": False, "amorphisation_penalty": float("inf")})),
    ("threshold-string", _small(thresholds={"e_above_hull": "small"})),
    ("threshold-nan", _small(thresholds={"e_above_hull": float("nan")})),
    ("threshold-bool", _small(thresholds={"rxn_electrode": True})),
    ("threshold-out-of-range", _small(thresholds={"e_above_hull": 1e9})),
    ("threshold-unknown", _small(thresholds={"band_gap_eV": 1.0})),
    ("thresholds-not-mapping", _small(thresholds=[0.025])),
    ("score-weights-not-mapping", _small(score_weights=[1])),
    ("score-weight-negative", _small(score_weights={"window_shortfall": -1})),
    ("execution-workers-negative", _small(execution={"workers": -1})),
    ("execution-workers-string", _small(execution={"workers": "4"})),
    ("execution-unknown-key", _small(execution={"threads": 4})),
    ("stacks-empty", _small(stacks=[])),
    ("stacks-not-list", _small(stacks={"electrode": "LCO", "electrolyte": "LPSCl"})),
    ("stack-not-mapping", _small(stacks=["LCO|LPSCl"])),
    ("stack-missing-electrolyte", _small(stacks=[{"electrode": "LCO"}])),
    ("stack-unknown-material", _small(stacks=[{"electrode": "NMC999", "electrolyte": "LPSCl"}])),
    ("stack-unknown-element", _small(stacks=[{"electrode": "LCO", "electrolyte": "Xx3PS4"}])),
    ("stack-unknown-key", _small(stacks=_stack(temperature=300))),
    ("stack-same-composition", _small(stacks=[{"electrode": "LCO", "electrolyte": "LiCoO2"}])),
    ("stack-charged-without-charged-state", _small(stacks=[{"electrode": "LPSCl@charged", "electrolyte": "LLZO"}])),
    ("stack-potential-string", _small(stacks=_stack(potential="high"))),
    ("stack-potential-nan", _small(stacks=_stack(potential=float("nan")))),
    ("stack-potential-out-of-range", _small(stacks=_stack(potential=42))),
    ("stack-potential-bool", _small(stacks=_stack(potential=True))),
    ("stack-bad-side", _small(stacks=_stack(side="middle"))),
    ("stack-duplicate-names", _small(stacks=_stack() + _stack())),
    ("run-name-path-traversal", _small(run="../../etc")),
    ("run-name-empty", _small(run="")),
    ("run-name-5000-digit-int", _small(run=10 ** 5000)),
    ("workers-5000-digit-int", _small(execution={"workers": 10 ** 5000})),
    ("threshold-5000-digit-int", _small(thresholds={"e_above_hull": 10 ** 5000})),
    ("unknown-key-5000-digit-int", {10 ** 5000: 1}),
    ("stack-potential-5000-digit-int", _small(stacks=_stack(potential=10 ** 5000))),
    ("stack-electrode-a-list", _small(stacks=[{"electrode": ["LCO"] * 1000, "electrolyte": "LPSCl"}])),
    ("data-anion-class-unknown", _small(candidates={"data": {"anions": ["plasma"]}})),
    ("charge-balanced-huge", _small(candidates={"data": False, "charge_balanced": [
        {"base": ["Li", "O", "B", "Si", "P", "Al", "Ti", "Zr"], "metals": ["Nb"], "max_stoichiometry": 12}]})),
    ("charge-balanced-many-spaces", _small(candidates={"data": False, "charge_balanced": [
        {"base": ["Li", "O", "B", "Si"], "metals": ["Nb", "Ta", "Ti", "Zr", "Al", "P", "V", "W"],
         "max_stoichiometry": 12}]})),
    ("grid-end-5000-digit-int", _small(candidates={"data": False, "grids": [{"ends": [10 ** 5000, "Al2O3"]}]})),
]


@pytest.mark.parametrize("raw", [pytest.param(r, id=i) for i, r in BAD_CONFIG_DICTS])
def test_config_from_dict_rejects(raw):
    with pytest.raises(InputError) as info:
        config_from_dict(raw)
    message = str(info.value)
    assert message and "\n" not in message and "Traceback" not in message
    assert len(message) < 400, f"a {len(message)}-character message: values must be quoted short"


BAD_CONFIG_FILES = ["malformed.yaml", "tab.yaml", "binary.yaml", "list.yaml", "scalar.yaml", "unknown_key.yaml",
                    "threshold_str.yaml", "threshold_nan.yaml", "unknown_stack_material.yaml", "nope.yaml", ".",
                    "alias_bomb.yaml", "deep.yaml", "huge_int.yaml", "huge_enumeration.yaml"]


@pytest.mark.parametrize("name", BAD_CONFIG_FILES)
def test_load_config_rejects(name, tmp_path):
    fx = tmp_path / "fx"
    make_fixtures(fx)
    with pytest.raises(InputError) as info:
        load_config(fx / name)
    message = str(info.value)
    assert message and "\n" not in message


def test_load_config_accepts_the_small_config(tmp_path):
    fx = tmp_path / "fx"
    make_fixtures(fx)
    config = load_config(fx / "small.yaml")
    assert config.run == "small" and len(config.stacks) == 1


# --------------------------------------------------------------------------------------------------
# A bad cache is ignored and rebuilt.
# --------------------------------------------------------------------------------------------------

def _cache_file(cache: Path, data: Path) -> Path:
    return cache / f"entries-{file_sha256(data)[:32]}-v{CACHE_FORMAT}.npz"


def _real_cache_bytes(data: Path, cache: Path, monkeypatch) -> bytes:
    """The cache file the loader writes for `data` (built in a scratch folder)."""
    from screening.data.snapshot import load_entries

    monkeypatch.setenv("SCREENING_CACHE_DIR", str(cache))
    load_entries(data)
    return _cache_file(cache, data).read_bytes()


def _bad_caches(real: bytes, sha: str, good_arrays: dict) -> dict:
    import io

    def npz_bytes(**arrays) -> bytes:
        buffer = io.BytesIO()
        np.savez(buffer, **arrays)
        return buffer.getvalue()

    inconsistent = dict(good_arrays)
    inconsistent["energies"] = inconsistent["energies"][:2]
    pickled = dict(good_arrays)
    pickled["names"] = np.array(list(good_arrays["names"]), dtype=object)
    return {
        "garbage-bytes": b"this is not an npz file\x00\x01" * 20,
        "empty-file": b"",
        "truncated-npz": real[:len(real) // 2],
        "older-format-number": npz_bytes(**{**good_arrays, "format": np.array(CACHE_FORMAT - 1)}),
        "newer-format-number": npz_bytes(**{**good_arrays, "format": np.array(CACHE_FORMAT + 1)}),
        "other-sha": npz_bytes(**{**good_arrays, "sha256": np.array("0" * 64)}),
        "missing-arrays": npz_bytes(sha256=np.array(sha), format=np.array(CACHE_FORMAT)),
        "object-arrays-need-pickle": npz_bytes(**pickled),
        "same-format-inconsistent-arrays": npz_bytes(**inconsistent),
    }


BAD_CACHE_IDS = ["garbage-bytes", "empty-file", "truncated-npz", "older-format-number", "newer-format-number",
                 "other-sha", "missing-arrays", "object-arrays-need-pickle", "same-format-inconsistent-arrays"]


@pytest.mark.parametrize("kind", BAD_CACHE_IDS)
def test_bad_cache_is_ignored_and_rebuilt(kind, tmp_path, monkeypatch, capsys):
    fx = tmp_path / "fx"
    make_fixtures(fx)
    data = fx / "good.csv"
    monkeypatch.chdir(tmp_path)
    # the right answer, without any cache
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path / "unused"))
    assert main(["stability", "LiCoO2", "--entries", str(data), "--no-cache", "--json"]) == 0
    expected = json.loads(capsys.readouterr().out)

    real = _real_cache_bytes(data, tmp_path / "scratch", monkeypatch)
    with np.load(_cache_file(tmp_path / "scratch", data)) as arrays:
        good_arrays = {k: arrays[k] for k in arrays.files}
    cache = tmp_path / "cache"
    cache.mkdir()
    target = _cache_file(cache, data)
    target.write_bytes(_bad_caches(real, file_sha256(data), good_arrays)[kind])
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(cache))

    code = main(["stability", "LiCoO2", "--entries", str(data), "--json"])
    out, err = capsys.readouterr()
    assert "Traceback" not in out + err
    assert code == 0, err
    assert err == ""
    got = json.loads(out)
    for key in ("e_above_hull", "decomposition_energy", "hull_energy", "decomposition"):
        assert got[key] == expected[key]
    # rebuilt: a valid cache of this file, in the current format
    with np.load(target, allow_pickle=False) as arrays:
        assert int(arrays["format"]) == CACHE_FORMAT
        assert str(arrays["sha256"]) == file_sha256(data)
        assert len(arrays["energies"]) == len(arrays["names"]) == len(good_arrays["names"])
    assert sorted(p.name for p in cache.iterdir()) == [target.name], "temporary files left in the cache"


def test_unwritable_cache_folder_only_costs_speed(tmp_path, monkeypatch, capsys):
    fx = tmp_path / "fx"
    make_fixtures(fx)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(fx / "a_file" / "cache"))  # under a regular file
    code = main(["stability", "LiCoO2", "--entries", str(fx / "good.csv"), "--json"])
    out, err = capsys.readouterr()
    assert code == 0 and err == "", err
    assert json.loads(out)["e_above_hull"] == 0.0


# --------------------------------------------------------------------------------------------------
# Fuzzing the formula and material-name parsers.
# --------------------------------------------------------------------------------------------------

SYMBOLS = sorted(el.symbol for el in Element)
COMMON = ["Li", "O", "Co", "Ni", "Mn", "P", "S", "Cl", "La", "Zr", "Nb", "Al", "Ti", "V", "N", "F", "C", "B"]
_symbol = st.sampled_from(COMMON) | st.sampled_from(SYMBOLS)
_piece = st.one_of(_symbol, st.sampled_from(list("0123456789")), st.text("0123456789", min_size=1, max_size=4),
                   st.sampled_from(["(", ")", ".", "@", "V", "@4.3V", "@charged", "e", "-", " ", "[", "]", "*",
                                    "1e308", "1e400", "nan", "inf", "x", "Xx", "Q", "NMC811", "LPSCl", "₂", "\x00"]))
near_formulas = st.lists(_piece, min_size=0, max_size=14).map("".join)
any_text = st.text(max_size=60) | near_formulas


def _check_composition(comp: Composition) -> None:
    assert isinstance(comp, Composition)
    amounts = list(comp.values())
    assert amounts and all(math.isfinite(a) and a > 0 for a in amounts), comp
    assert math.isfinite(comp.num_atoms) and comp.num_atoms > 0, f"unusable composition {comp!r}"
    assert all(isinstance(el, Element) for el in comp.elements)


@settings(max_examples=300, deadline=None, database=None)
@given(any_text)
@example("Li1e308O1e308")
@example("Li" * 5000)
@example("LiCoO₂")
def test_fuzz_parse_formula(text):
    try:
        comp = parse_formula(text)
    except ScreeningError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    _check_composition(comp)


@settings(max_examples=300, deadline=None, database=None)
@given(any_text)
@example("Li1e308O1e308@4V")
@example("NMC811@charged@4V")
@example("LPSCl@charged")
def test_fuzz_resolve_material(text):
    try:
        material = resolve_material(text)
    except ScreeningError as exc:
        assert str(exc) and "\n" not in str(exc)
        return
    assert isinstance(material, Material)
    _check_composition(material.composition)
    if material.potential is not None:
        assert math.isfinite(material.potential) and -5.0 <= material.potential <= 10.0


_amount = st.integers(1, 2000).map(lambda n: n / 100)  # 0.01 .. 20


def _render(amount: float) -> str:
    if amount == 1:
        return ""
    return f"{amount:.2f}".rstrip("0").rstrip(".")


@st.composite
def formulas(draw):
    """(text, composition): a valid formula, optionally with one parenthesised group and a multiplier."""
    elements = draw(st.lists(_symbol, min_size=1, max_size=5, unique=True))
    amounts = [draw(_amount) for _ in elements]
    totals: dict[str, float] = {}
    parts = []
    split = draw(st.integers(0, len(elements)))
    for el, amt in zip(elements[:split], amounts[:split]):
        parts.append(el + _render(amt))
        totals[el] = totals.get(el, 0.0) + amt
    group = list(zip(elements[split:], amounts[split:]))
    if group:
        mult = draw(st.integers(1, 4))
        inner = "".join(el + _render(amt) for el, amt in group)
        parts.append(f"({inner}){mult}" if mult > 1 or draw(st.booleans()) else inner)
        for el, amt in group:
            totals[el] = totals.get(el, 0.0) + amt * mult
    return "".join(parts), Composition(totals)


@pytest.mark.filterwarnings("ignore:No Pauling electronegativity")
@settings(max_examples=300, deadline=None, database=None)
@given(formulas(), st.sampled_from([None, 0.0, 1.5, 4.3, -0.5, 9.99]))
def test_fuzz_valid_formula_round_trips(case, volts):
    text, built = case
    parsed = parse_formula(text)
    assert parsed.reduced_composition.almost_equals(built.reduced_composition, rtol=1e-9, atol=1e-9), \
        (text, parsed, built)
    assert parsed.reduced_formula == built.reduced_formula
    if volts is not None:
        assume(find_library_material(text) is None)  # a library cathode@V means its charged composition
    material = resolve_material(text if volts is None else f"{text}@{volts:g}V")
    assert material.composition.reduced_composition.almost_equals(built.reduced_composition, rtol=1e-9, atol=1e-9)
    if volts is not None:
        assert material.potential == pytest.approx(volts)
