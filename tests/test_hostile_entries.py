"""Hostile entry files and cache faults (issue 11 items 2, 8, 14, 15, 17, 19, 20; issue 12 items 8, 10).

Every bad file is one line on stderr and exit status 2 (screening.cli.main), never code run, never
memory eaten, never a wrong number used.
"""

from __future__ import annotations

import gzip
import importlib.util
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
from pymatgen.analysis.phase_diagram import PDEntry
from pymatgen.core import Composition

from screening.cli import main
from screening.data import snapshot
from screening.data.snapshot import atomic_write_bytes, clean_stale_temporaries, load_entries
from screening.data.sources import load_table
from screening.data.user_entries import merge_user_entries
from screening.errors import InputError
from screening.thermo.analysis import analyse_window

from test_user_entries import LEGACY_OXIDE, MU, li2o_run, li_run, references, write

PROBE = '''import pathlib
pathlib.Path(__file__).with_name("PWNED").write_text("imported")
class X:
    @classmethod
    def from_dict(cls, d):
        pathlib.Path(__file__).with_name("PWNED").write_text("decoded")
        return cls()
'''
PD = {"@module": "pymatgen.analysis.phase_diagram", "@class": "PDEntry"}
EVIL = {"@module": "evil_probe", "@class": "X"}


def fails(capsys, *argv) -> str:
    """Run the CLI, expect exit 2 and one line on stderr; return that line."""
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2, (code, out, err)
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("screening: error: "), err
    assert "Traceback" not in err and len(err) < 600, err
    return lines[0]


def small_csv(path: Path) -> Path:
    path.write_text("formula,target\nLi1,0.0\nO2,0.0\nLi2O1,-2.0\nLi2O2,-1.6\n")
    return path


@pytest.fixture()
def probe_dir(tmp_path, monkeypatch):
    """A working directory holding evil_probe.py, importable (as a module beside the cwd would be)."""
    (tmp_path / "evil_probe.py").write_text(PROBE)
    monkeypatch.chdir(tmp_path)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path / "cache"))
    assert importlib.util.find_spec("evil_probe") is not None  # the probe would run if imported
    yield tmp_path
    sys.modules.pop("evil_probe", None)
    assert not (tmp_path / "PWNED").exists(), "a module named by an entry file was imported"


# ---------------------------------------------------------------- item 2: no code from entry files


def _hiding_places() -> dict[str, object]:
    valid = {**PD, "composition": {"Li": 2.0, "O": 1.0}, "energy": -6.0}
    computed = {"@module": "pymatgen.entries.computed_entries", "@class": "ComputedEntry",
                "composition": {"Li": 2.0, "O": 1.0}, "energy": -14.3, "correction": 0.0,
                "parameters": {}, "data": {}, "entry_id": None}
    return {
        "top.json": [EVIL],
        "this.json": {"@module": "this", "@class": "X"},
        "os.json": [{"@module": "os", "@class": "system", "command": "touch PWNED"}],
        "in_name.json": [{**valid, "name": EVIL}],
        "in_data.json": [{**computed, "data": {"deep": [{"x": EVIL}]}}],
        "in_adjustments.json": [{**computed, "energy_adjustments": [EVIL]}],
        "in_parameters.json": [{**computed, "parameters": {"run_type": EVIL}}],
        "wrapped.json": {"entries": [valid, EVIL]},
        "class_only.json": [{**valid, "composition": {"@class": "Composition", "Li": 1}}],
    }


def test_entry_files_never_import_what_they_name(capsys, probe_dir):
    data = small_csv(probe_dir / "data.csv")
    for name, payload in _hiding_places().items():
        path = probe_dir / name
        path.write_text(json.dumps(payload))
        line = fails(capsys, "stability", "Li2O", "--user-entries", str(path), "--entries", str(data))
        assert "refused" in line and "nothing was imported" in line, (name, line)
        entries_json = probe_dir / f"base_{name}"
        entries_json.write_text(json.dumps(payload))
        line = fails(capsys, "stability", "Li2O", "--entries", str(entries_json))
        assert "refused" in line, (name, line)


def test_a_shards_user_entries_import_nothing(capsys, probe_dir):
    from screening.execution.steps import write_shards
    from screening.screen.config import config_from_dict

    mine = write(probe_dir / "mine.json", [PDEntry("LiAl7O11", -60.0)])
    config = config_from_dict({"user_entries": [str(mine)], "candidates": {"data": False, "library": True}})
    shard = probe_dir / "shard.json"
    write_shards(config, [shard])
    mine.write_text(json.dumps([EVIL]))  # the file a shard names is swapped after the split
    line = fails(capsys, "evaluate", str(shard), "--out", str(probe_dir / "part.parquet"))
    assert "evil_probe" in line and "refused" in line
    assert not (probe_dir / "part.parquet").exists()


def test_a_real_process_imports_nothing(tmp_path):
    """`python -m screening` puts the working directory on sys.path: the probe would run there."""
    (tmp_path / "evil_probe.py").write_text(PROBE)
    (tmp_path / "evil.json").write_text(json.dumps([EVIL]))
    env = {**os.environ, "SCREENING_CACHE_DIR": str(tmp_path / "cache")}
    proc = subprocess.run([sys.executable, "-m", "screening", "stability", "Li2O", "--user-entries",
                           "evil.json"], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1, proc.stderr
    assert not (tmp_path / "PWNED").exists()
    # the probe is live: decoding the same file the way the old code did runs it
    check = subprocess.run([sys.executable, "-c", "import json; from monty.json import MontyDecoder; "
                            "MontyDecoder().process_decoded(json.load(open('evil.json')))"],
                           cwd=tmp_path, capture_output=True, text=True, timeout=300)
    assert (tmp_path / "PWNED").exists(), check.stderr


# ---------------------------------------------------------------- items 8, 14: bombs and depth


def test_gzip_bombs_are_capped(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SCREENING_MAX_DECOMPRESSED_BYTES", str(1 << 20))
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path / "cache"))
    spaces = b"[" + b" " * (8 << 20) + b"]"
    bomb = tmp_path / "bomb.json.gz"
    bomb.write_bytes(gzip.compress(spaces, compresslevel=9))
    assert bomb.stat().st_size < 100_000
    line = fails(capsys, "stability", "Li2O", "--user-entries", str(bomb))
    assert "once decompressed" in line and "SCREENING_MAX_DECOMPRESSED_BYTES" in line
    assert "once decompressed" in fails(capsys, "stability", "Li2O", "--entries", str(bomb))
    csv_bomb = tmp_path / "data.csv.gz"
    csv_bomb.write_bytes(gzip.compress(b"formula,target\n" + b"Li1,0.0\n" * (2 << 20)))
    assert "once decompressed" in fails(capsys, "stability", "Li2O", "--entries", str(csv_bomb))
    # the same file under the limit is read
    monkeypatch.setenv("SCREENING_MAX_DECOMPRESSED_BYTES", str(64 << 20))
    assert load_entries(csv_bomb, use_cache=False).row_of("Li") is not None


def test_deep_nesting_and_huge_integers(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path / "cache"))
    cases = {
        "deep.json": "[" * 100_000 + "]" * 100_000,
        "deep_dict.json": '{"a":' * 5000 + "1" + "}" * 5000,
        "deep70.json": "[" * 70 + "]" * 70,
        "digits.json": json.dumps([{**PD, "composition": {"Li": 2, "O": 1}}])[:-2] + ', "energy": '
                       + "9" * 5000 + "}]",
        "digits_amount.json": '[{"@module": "pymatgen.analysis.phase_diagram", "@class": "PDEntry", '
                              '"composition": {"Li": ' + "1" * 5000 + ', "O": 1}, "energy": -6}]',
    }
    for name, text in cases.items():
        path = tmp_path / name
        path.write_text(text)
        line = fails(capsys, "stability", "Li2O", "--user-entries", str(path))
        assert ("nested" in line or "digits" in line) and name in line, line
        assert ("nested" in line or "digits" in line) and name in fails(
            capsys, "stability", "Li2O", "--entries", str(path))


# ---------------------------------------------------------------- item 15: energies in range


def test_user_energies_are_bounded(capsys, table, tmp_path):
    li2o = {**PD, "composition": {"Li": 2.0, "O": 1.0}}
    duplicate = tmp_path / "dup.json"
    duplicate.write_text('[{"@module": "pymatgen.analysis.phase_diagram", "@class": "PDEntry", '
                         '"composition": {"Li": 2.0, "O": 1.0}, "energy": -6.0, "energy": 600}]')
    line = fails(capsys, "stability", "Li2O", "--user-entries", str(duplicate))
    assert "'energy' appears twice" in line
    for energy, words in ((-1e300, "outside -20..10 eV/atom"), (600.0, "outside -20..10 eV/atom"),
                          (-61.0, "outside -20..10 eV/atom")):
        path = write(tmp_path / "e.json", [PDEntry("Li2O", energy)])
        assert words in fails(capsys, "stability", "Li2O", "--user-entries", str(path))
    inf = tmp_path / "inf.json"
    inf.write_text(json.dumps([{**li2o, "energy": 1}]).replace(": 1}", ": 1e999}"))
    assert "floating-point range" in fails(capsys, "stability", "Li2O", "--user-entries", str(inf))
    text = tmp_path / "text.json"
    text.write_text(json.dumps([{**li2o, "energy": "-6"}]))
    assert "must be a number" in fails(capsys, "stability", "Li2O", "--user-entries", str(text))
    # absolute energies: before corrections, and once converted to a formation energy
    refs = write(tmp_path / "refs.json", references(("Li", "O")))
    from test_user_entries import entry

    huge = write(tmp_path / "huge.json", [entry("Li2O", -1e300)])
    with pytest.raises(InputError) as exc:
        merge_user_entries(table, [refs, huge])
    assert "total energy" in str(exc.value) and "outside -100..10 eV/atom" in str(exc.value)
    # -90 eV/atom passes the absolute bound but is -85 eV/atom of formation energy
    deep = write(tmp_path / "deep.json", [entry("Li2O", -90.0 * 3)])
    with pytest.raises(InputError) as exc:
        merge_user_entries(table, [refs, deep])
    assert "formation energy" in str(exc.value) and "outside -20..10" in str(exc.value)
    # a plausible one still passes
    ok = merge_user_entries(table, [refs, write(tmp_path / "ok.json", [entry("Li2O", -14.3)])])
    expected = (-14.3 + LEGACY_OXIDE - 2 * MU["Li"] - MU["O"]) / 3
    assert ok.energies[ok.row_of("Li2O")] == pytest.approx(expected, abs=1e-12)


def test_base_entries_json_energies_are_bounded(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path / "cache"))
    path = write(tmp_path / "base.json", [PDEntry("Li", 0.0), PDEntry("O2", 0.0), PDEntry("Li2O", -1e300)])
    assert "outside -20..10 eV/atom" in fails(capsys, "stability", "Li2O", "--entries", str(path))


# ---------------------------------------------------------------- item 19: say what happened


def test_nan_amounts_are_named_as_such(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path / "cache"))
    rows = [{**PD, "composition": {"Li": "NAN", "O": 1.0}, "energy": -6.0},
            {**PD, "composition": {"Li": 1.0}, "energy": 0.0}, {**PD, "composition": {"O": 2.0}, "energy": 0.0}]
    literal = tmp_path / "nan.json"
    literal.write_text(json.dumps(rows).replace('"NAN"', "NaN"))
    string = tmp_path / "nanstr.json"
    string.write_text(json.dumps(rows).replace('"NAN"', '"NaN"'))
    for option in ("--user-entries", "--entries"):
        line = fails(capsys, "stability", "Li2O", option, str(literal))
        assert "NaN" in line and "'Li'" in line and "O2" not in line, line
        line = fails(capsys, "stability", "Li2O", option, str(string))
        assert "amount of 'Li'" in line and "must be a number" in line, line
    # pymatgen writes NaN uncertainties itself: those are read
    from test_user_entries import legacy_entry

    mine = tmp_path / "unc.json"
    payload = [e.as_dict() for e in references(("Li", "O")) + [legacy_entry("Li2O", -2.1)]]
    payload[-1]["energy_adjustments"] = [{"@module": "pymatgen.entries.computed_entries",
                                          "@class": "ConstantEnergyAdjustment", "value": 0.0,
                                          "uncertainty": "NAN", "name": "Manual", "cls": None,
                                          "description": ""}]
    mine.write_text(json.dumps(payload).replace('"NAN"', "NaN"))
    line = fails(capsys, "stability", "Li2O", "--user-entries", str(mine))
    assert "NaN" not in line and "unknown origin" in line  # read, then refused for its correction


def test_broken_gzip_says_so(capsys, tmp_path, monkeypatch):
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path / "cache"))
    good = gzip.compress(json.dumps([{**PD, "composition": {"Li": 2.0, "O": 1.0}, "energy": -6.0}]).encode())
    for name, blob in (("cut.json.gz", good[: len(good) // 2]), ("garbage.json.gz", b"\x1f\x8b" + b"x" * 50)):
        path = tmp_path / name
        path.write_bytes(blob)
        line = fails(capsys, "stability", "Li2O", "--user-entries", str(path))
        assert "not valid gzip data" in line and "network" not in line, line
        assert "not valid gzip data" in fails(capsys, "stability", "Li2O", "--entries", str(path))
    csv_gz = tmp_path / "data.csv.gz"
    csv_gz.write_bytes(gzip.compress(b"formula,target\nLi1,0\nO2,0\nLi2O1,-2\n")[:30])
    assert "not valid gzip data" in fails(capsys, "stability", "Li2O", "--entries", str(csv_gz))


def test_vasprun_with_leading_whitespace_or_utf16_is_read(table, tmp_path):
    o_ref = write(tmp_path / "o.json", references(("O",)))
    li = li_run(tmp_path / "Li")
    plain = li2o_run(tmp_path / "plain")
    expected = merge_user_entries(table, [o_ref, li, plain])
    want = expected.energies[expected.row_of("Li2O")]
    text = plain.read_text()
    variants = {
        "spaces.xml": (" \n\t" * 1700 + text).encode(),
        "utf16.xml": text.replace('encoding="ISO-8859-1"', 'encoding="UTF-16"').encode("utf-16"),
        "utf16le.xml": text.encode("utf-16-le"),
        "bom_spaces.xml": b"\xef\xbb\xbf" + b"\n" * 5000 + text.encode(),
        "spaces.xml.gz": gzip.compress((" " * 5000 + text).encode()),
    }
    for name, blob in variants.items():
        path = tmp_path / name
        path.write_bytes(blob)
        merged = merge_user_entries(table, [o_ref, li, path])
        assert merged.energies[merged.row_of("Li2O")] == pytest.approx(want, abs=1e-12), name
        assert merged.source.extra["user_entries"][-1]["format"] == "vasprun"
    # an entity declaration (which could read other files) is refused
    xxe = tmp_path / "xxe.xml"
    xxe.write_text(text.replace("<modeling>", '<!DOCTYPE m [<!ENTITY x SYSTEM "file:///etc/passwd">]>\n'
                                               "<modeling>", 1))
    with pytest.raises(InputError) as exc:
        merge_user_entries(table, [o_ref, li, xxe])
    assert "DOCTYPE or ENTITY" in str(exc.value)


# ---------------------------------------------------------------- item 17: killed writes


def test_a_killed_cache_write_is_cleaned_on_the_next(tmp_path, monkeypatch):
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path))
    target = tmp_path / "entries-x.npz"
    child = ("import os, signal, sys; from screening.data import snapshot\n"
             "os.replace = lambda *a: os.kill(os.getpid(), signal.SIGKILL)\n"
             "snapshot.atomic_write_bytes(sys.argv[1], b'x' * (10 << 20))\n")
    proc = subprocess.run([sys.executable, "-c", child, str(target)], timeout=300)
    assert proc.returncode == -signal.SIGKILL
    left = [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]
    assert len(left) == 1 and left[0].stat().st_size == 10 << 20 and not target.exists()
    # files that are not ours, or of a live writer, or recent old-style ones, are kept
    keep = [tmp_path / "notes.tmp", tmp_path / f".other.{snapshot._HOST}-{os.getpid()}.abcdefgh.tmp",
            tmp_path / ".entries-y.npz.abcd1234.tmp", tmp_path / "data.csv"]
    for path in keep:
        path.write_bytes(b"keep")
    old = tmp_path / ".entries-z.npz.zzzz9999.tmp"  # an old-style temporary from a day ago
    old.write_bytes(b"old")
    os.utime(old, (time.time() - 86400, time.time() - 86400))
    atomic_write_bytes(target, b"new")
    assert target.read_bytes() == b"new"
    assert not left[0].exists() and not old.exists()
    assert all(path.exists() for path in keep)
    assert clean_stale_temporaries(tmp_path) == []
    # outside the cache folder an old-style name may be another program's: kept however old
    elsewhere = tmp_path / "results"
    elsewhere.mkdir()
    foreign = elsewhere / ".notes.txt.abcd1234.tmp"
    foreign.write_bytes(b"theirs")
    os.utime(foreign, (time.time() - 86400, time.time() - 86400))
    atomic_write_bytes(elsewhere / "rankings.csv", b"x")
    assert foreign.exists()


def test_a_temporary_of_another_live_process_is_kept(tmp_path):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        live = tmp_path / f".entries-x.npz.{snapshot._HOST}-{sleeper.pid}.abcdefgh.tmp"
        other_host = tmp_path / ".entries-x.npz.otherhost-1.abcdefgh.tmp"
        for path in (live, other_host):
            path.write_bytes(b"busy")
        assert clean_stale_temporaries(tmp_path) == []
        assert clean_stale_temporaries(tmp_path, now=time.time() + 7 * 3600) != []  # unless very old
        assert not live.exists() and not other_host.exists()
    finally:
        sleeper.kill()
        sleeper.wait()


# ---------------------------------------------------------------- item 20: tampered cache


def test_a_tampered_cache_is_detected_and_rebuilt(tmp_path, monkeypatch):
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path / "cache"))
    data = small_csv(tmp_path / "data.csv")
    first = load_entries(data)
    (cache_file,) = (tmp_path / "cache").glob("entries-*.npz")
    with np.load(cache_file, allow_pickle=False) as npz:
        arrays = {name: npz[name] for name in npz.files}
    i = int(np.flatnonzero(arrays["names"] == "Li2O")[0])
    arrays["energies"] = arrays["energies"].copy()
    arrays["energies"][i] += 1.0  # a well-formed file, one energy raised by 1 eV/atom
    np.savez(cache_file, **arrays)
    again = load_entries(data)
    assert again.energies[again.row_of("Li2O")] == pytest.approx(-2.0, abs=1e-12)
    assert np.array_equal(again.energies, first.energies)
    with np.load(cache_file, allow_pickle=False) as npz:  # rebuilt: the cache holds the true value again
        assert npz["energies"][i] == pytest.approx(-2.0, abs=1e-12)
        assert str(npz["digest"]) == snapshot.arrays_digest({n: npz[n] for n in npz.files})


# ---------------------------------------------------------------- issue 12 items 8 and 10


def test_excluded_entries_leave_the_table_and_are_recorded(table):
    """LiS4 (a Li2S8 cell) lies 0.284 eV/atom below Li2S + S and sets sulfide oxidation limits."""
    plain = load_table()
    without = load_table(exclude_entries=["Li2S8"])
    assert plain.row_of("LiS4") is not None and without.row_of("LiS4") is None
    assert len(without) == len(plain) - 1
    record = without.excluded_entries()
    assert [r["formula"] for r in record] == ["LiS4"] and not record[0]["user_supplied"]
    assert record[0]["energy"] == pytest.approx(float(plain.energies[plain.row_of("LiS4")]), abs=1e-12)
    assert without.source.sha256 != plain.source.sha256 and "LiS4" in without.source.description
    with_lis4 = analyse_window(plain, Composition("Li2S"))[0].oxidation_potential
    without_lis4 = analyse_window(without, Composition("Li2S"))[0].oxidation_potential
    assert with_lis4 == pytest.approx(2.1385, abs=1e-3) and without_lis4 == pytest.approx(2.3411, abs=1e-3)
    li3ps4 = analyse_window(without, Composition("Li3PS4"))[0]
    assert "LiS4" not in li3ps4.oxidation_products
    assert li3ps4.oxidation_potential == pytest.approx(2.4214, abs=1e-3)
    for bad, words in ((["Li"], "reference"), (["O2"], "reference"), (["LiS5"], "no entry"),
                       (["Li2S8 x"], "formula")):
        with pytest.raises(InputError) as exc:
            load_table(exclude_entries=bad)
        assert words in str(exc.value), (bad, str(exc.value))


def test_exclusion_applies_to_user_entries_too(table, tmp_path):
    mine = write(tmp_path / "mine.json", [PDEntry("LiAl7O11", -60.0)])
    merged = load_table(user_entries=[str(mine)], exclude_entries=["LiAl7O11"])
    assert merged.row_of("LiAl7O11") is None
    assert merged.excluded_entries()[0]["user_supplied"]
    with pytest.raises(InputError):
        load_table(user_mode="sometimes")


def test_a_user_entry_within_the_data_range_is_one_more_polymorph(table, tmp_path):
    data = float(table.energies[table.row_of("LiAlO2")])
    mine = write(tmp_path / "mine.json", [PDEntry("LiAlO2", (data + 0.004) * 4)])
    added = load_table(user_entries=[str(mine)])
    assert added.energies[added.row_of("LiAlO2")] == data and not added.is_user_entry("LiAlO2")
    replaced = load_table(user_entries=[str(mine)], user_mode="replace")
    assert replaced.energies[replaced.row_of("LiAlO2")] == pytest.approx(data + 0.004, abs=1e-12)
    assert replaced.is_user_entry("LiAlO2") and replaced.source.extra["user_mode"] == "replace"


def test_cli_options_exclude_and_user_mode(capsys, table, tmp_path):
    code = main(["window", "Li2S", "--exclude-entries", "Li2S8", "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    data = json.loads(out)
    assert data["oxidation_potential"] == pytest.approx(2.3411, abs=1e-3)
    assert [r["formula"] for r in data["provenance"]["data_source"]["excluded_entries"]] == ["LiS4"]
    assert "formula" in fails(capsys, "window", "Li2S", "--exclude-entries", "Xx2S")
    assert "reference" in fails(capsys, "window", "Li2S", "--exclude-entries", "LiS4", "S")
    value = float(table.energies[table.row_of("LiAlO2")])
    mine = write(tmp_path / "mine.json", [PDEntry("LiAlO2", (value + 0.004) * 4)])
    results = {}
    for mode in ("add", "replace"):
        code = main(["stability", "LiAlO2", "--user-entries", str(mine), "--user-mode", mode, "--json"])
        out, err = capsys.readouterr()
        assert code == 0, err
        results[mode] = json.loads(out)
        assert results[mode]["provenance"]["data_source"]["user_mode"] == mode
    assert results["add"]["provenance"]["user_supplied_entries"] == []
    assert results["replace"]["provenance"]["user_supplied_entries"] == ["LiAlO2"]
    assert "invalid choice" in fails(capsys, "stability", "LiAlO2", "--user-mode", "merge")


def test_screen_configs_and_workers_apply_the_selection(tmp_path):
    from screening.data.sources import selection_of
    from screening.execution import runner
    from screening.screen.config import config_from_dict

    config = config_from_dict({"exclude_entries": ["Li2S8"], "user_mode": "replace"})
    assert config.exclude_entries == ("Li2S8",) and config.user_mode == "replace"
    table = config.table()
    assert table.row_of("LiS4") is None
    for raw, words in (({"user_mode": "merge"}, "user_mode"), ({"exclude_entries": ["O2"]}, "reference"),
                       ({"exclude_entries": [3]}, "exclude_entries")):
        with pytest.raises(InputError) as exc:
            config_from_dict(raw)
        assert words in str(exc.value)
    from screening.screen.candidates import from_library

    (task,) = runner.make_tasks(from_library()[:1], [], table.source.path, None, 48, (), None,
                                config.user_mode, config.exclude_entries)
    assert task.user_mode == "replace" and task.exclude_entries == ("Li2S8",)
    worker_table = runner._table(task.entries_path, task.user_entries, task.user_scheme, task.user_mode,
                                 task.exclude_entries)
    assert worker_table.row_of("LiS4") is None and worker_table.source.sha256 == table.source.sha256
    # a recorded source reloads to the same table (the report step)
    again = load_table(table.source.path, (), None, **selection_of(table.source.as_dict()))
    assert again.source.sha256 == table.source.sha256
