"""The bounded readers every input goes through (screening/safe_io.py): each hostile case is refused
with one InputError line, quickly, and valid input reads as plain yaml/json/MontyDecoder would."""

from __future__ import annotations

import gzip
import json
import sys

import pytest
from pymatgen.analysis.phase_diagram import PDEntry
from pymatgen.core import Lattice, Structure
from pymatgen.entries.computed_entries import ComputedEntry, ComputedStructureEntry, ConstantEnergyAdjustment

from screening.errors import InputError
from screening.safe_io import (LIMITS, decode_monty, load_yaml, loads_json, quote, read_bytes, read_text,
                               redact, register_secret)


def _alias_bomb(levels: int = 7) -> str:
    lines = ["l0: &l0 [x, x, x, x, x, x, x, x, x, x]"]
    for k in range(1, levels):
        lines.append(f"l{k}: &l{k} [" + ", ".join([f"*l{k - 1}"] * 10) + "]")
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize("text, message", [
    (_alias_bomb(), "YAML nodes"),
    ("[" * 5000 + "]" * 5000, "nested"),
    ("x: " + "9" * 5000, "digits"),
    ("&a [*a]", "recursive"),
    ("a: 1\n---\nb: 2\n", "documents"),
    ("a: [1, 2", "not valid YAML"),
])
def test_hostile_yaml_is_one_line(text, message):
    with pytest.raises(InputError, match=message) as info:
        load_yaml(text, "config")
    assert "\n" not in str(info.value) and len(str(info.value)) < 300


@pytest.mark.parametrize("text", ["[" * 100000 + "]" * 100000,
                                  "a:\n" + "".join(" " * k + "b:\n" for k in range(1, 400))])
def test_deep_yaml_is_refused_before_it_is_composed(text, monkeypatch):
    """The composer recurses per level (seconds for thousands of levels): the depth is refused from the
    parser's events at the 65th level, so composing must never start."""
    import yaml

    def compose_all(*args, **kwargs):
        raise AssertionError("composed a document deeper than the limit")

    monkeypatch.setattr(yaml, "compose_all", compose_all)
    with pytest.raises(InputError, match=f"nested more than {LIMITS.max_yaml_depth} levels deep"):
        load_yaml(text, "config")


def test_yaml_aliases_within_bounds_read_as_safe_load():
    import yaml

    text = "a: 1\nb: [1, 2.5, x]\nc: &z {q: 1}\nd: *z\ne: 123456789012\n"
    assert load_yaml(text, "config") == yaml.safe_load(text)
    assert load_yaml("", "config") is None


@pytest.mark.parametrize("text, message", [
    ('{"a": 1, "a": 2}', "twice"),
    ("[" * 100000 + "]" * 100000, "nested"),
    ("[" * 100 + "]" * 100, "nested more than 64"),
    ("9" * 5000, "digits"),
    ("[NaN]", "NaN"),
    ("[1e999]", "range"),
    ("{", "not valid JSON"),
])
def test_hostile_json_is_one_line(text, message):
    with pytest.raises(InputError, match=message) as info:
        loads_json(text, "entries")
    assert "\n" not in str(info.value)


def test_json_reads_as_json_loads():
    text = '{"a": [1, -2.5e3, {"b": null, "c": "\u00e9"}], "d": true}'
    assert loads_json(text, "x") == json.loads(text)
    assert loads_json(b"\xef\xbb\xbf[1]", "x") == [1]
    assert loads_json("[1]".encode("utf-16"), "x") == [1]


def test_monty_classes_outside_the_allow_list_are_never_imported(tmp_path, monkeypatch):
    marker = tmp_path / "IMPORTED"
    (tmp_path / "evil_probe_module.py").write_text(
        f"open({str(marker)!r}, 'w').write('x')\nclass X:\n    pass\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    hostile = [
        [{"@module": "evil_probe_module", "@class": "X"}],
        [{"@module": "this", "@class": "X"}],
        [{"@module": "pymatgen.core.entries", "@class": "ComputedEntry", "composition": {"Li": 1},
          "energy": 0.0, "data": {"hidden": {"@module": "evil_probe_module", "@class": "X"}}}],
        [{"@module": "pymatgen.core.entries", "@class": "Evil"}],
        [{"@class": "X"}],
    ]
    for obj in hostile:
        with pytest.raises(InputError, match="refused"):
            decode_monty(obj, "user entries")
    assert not marker.exists() and "evil_probe_module" not in sys.modules


def test_allowed_pymatgen_objects_round_trip():
    structure = Structure(Lattice.cubic(3.5), ["Li"], [[0, 0, 0]])
    objects = [ComputedEntry("LiCoO2", -10.0, energy_adjustments=[ConstantEnergyAdjustment(-0.1)]),
               ComputedStructureEntry(structure, -1.9), PDEntry("Li2O", -6.0)]
    for obj in objects:
        decoded = decode_monty(json.loads(json.dumps(obj.as_dict())), "entries")
        assert type(decoded) is type(obj)
    entry = decode_monty(json.loads(json.dumps(objects[0].as_dict())), "entries")
    assert entry.energy == pytest.approx(-10.1)


def test_gzip_bomb_is_refused_without_reading_it_all(tmp_path, monkeypatch):
    path = tmp_path / "bomb.json.gz"
    path.write_bytes(gzip.compress(b" " * (20 << 20)))
    monkeypatch.setenv("SCREENING_MAX_DECOMPRESSED_BYTES", str(1 << 20))
    with pytest.raises(InputError, match="once decompressed"):
        read_bytes(path, "user entries")
    (tmp_path / "bad.gz").write_bytes(b"\x1f\x8b" + b"\x00" * 40)
    with pytest.raises(InputError, match="not valid gzip"):
        read_bytes(tmp_path / "bad.gz", "user entries")
    (tmp_path / "ok.gz").write_bytes(gzip.compress("[1, 2]".encode("utf-16")))
    assert loads_json(read_text(tmp_path / "ok.gz", "x"), "x") == [1, 2]


def test_bad_limit_setting_is_one_line(monkeypatch):
    monkeypatch.setenv("SCREENING_MAX_JSON_DEPTH", "ten")
    with pytest.raises(InputError, match="SCREENING_MAX_JSON_DEPTH"):
        LIMITS.max_json_depth
    monkeypatch.setenv("SCREENING_MAX_JSON_DEPTH", "3")
    with pytest.raises(InputError):
        loads_json("[[[[1]]]]", "x")


def test_secrets_and_url_credentials_are_redacted():
    register_secret("k3y-line-one\nk3y-line-two")
    text = redact("key k3y-line-one\nk3y-line-two at http://alice:s3cret@127.0.0.1:9/x, "
                  "'k3y-line-one\\nk3y-line-two', k3y-line-two")
    for secret in ("k3y-line", "s3cret", "alice"):
        assert secret not in text
    assert "http://***@127.0.0.1:9/x" in text


def test_quote_is_short_for_huge_values():
    assert len(quote("x" * 10**6)) < 100
    assert len(quote(list(range(10**6)))) < 100
    assert "\n" not in quote("a\nb")


@pytest.mark.parametrize("error", [RuntimeError, "screening"])
def test_the_last_resort_error_line_redacts_secrets(monkeypatch, capsys, error):
    """A bug's message (or an error's) that quotes a registered key or a URL's password never prints it."""
    from screening import cli
    from screening.errors import DataError
    from screening.safe_io import register_secret

    secret = "k3y" + "Q" * 29
    register_secret(secret)

    def broken(args):
        text = f"boom with {secret} at http://alice:hunter2@127.0.0.1:9/x\nand a second line"
        raise (RuntimeError(text) if error is RuntimeError else DataError(text))

    monkeypatch.setattr(cli, "_dispatch", broken)
    code = cli.main(["library"])
    err = capsys.readouterr().err
    assert code == (1 if error is RuntimeError else 2)
    assert secret not in err and "hunter2" not in err and "boom" in err
