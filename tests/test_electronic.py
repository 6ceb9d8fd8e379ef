"""Band gaps and interphase types in the stability, window and pair commands (issue 13, part 2)."""

from __future__ import annotations

import json

import pytest

from screening.cli import main
from screening.data.snapshot import default_entries_path

HAVE_GAPS = (default_entries_path().parent / "mp_gap_2019.csv.gz").is_file()
pytestmark = pytest.mark.skipif(not HAVE_GAPS, reason="../shared/data/mp_gap_2019.csv.gz absent")


def _run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 0, err
    return out


def _json(capsys, *argv):
    return json.loads(_run(capsys, *argv, "--json"))


def test_li_against_lgps_is_mixed_conducting_and_names_the_alloys(capsys):
    result = _json(capsys, "pair", "Li", "Li10GeP2S12")
    interphase = result["interphase"]
    assert interphase["type"] == "mixed-conducting"
    assert {"Ge", "Li15Ge4"} <= set(interphase["conducting_phases"])
    assert interphase["product_band_gaps"]["Li2S"] > 3.0
    types = [k["interphase_type"] for k in result["kinks"]]
    assert types[0] == types[-1] == "stable" and "passivating" in types and "mixed-conducting" in types
    text = _run(capsys, "pair", "Li", "Li10GeP2S12")
    assert "interphase: mixed-conducting (Ge, Li15Ge4" in text


def test_li_against_argyrodite_and_li3ps4_passivates(capsys):
    for electrolyte in ("Li6PS5Cl", "Li3PS4"):
        result = _json(capsys, "pair", "Li", electrolyte)
        assert result["interphase"]["type"] == "passivating", electrolyte
        assert result["interphase"]["conducting_phases"] == []
    assert "interphase: passivating" in _run(capsys, "pair", "Li", "Li6PS5Cl")


def test_window_of_linbo3_shows_band_gap_and_both_interphases(capsys):
    result = _json(capsys, "window", "LiNbO3")
    assert result["band_gap"] > 3.0 and result["electronic_insulator"] is True
    assert result["reduction_interphase"]["type"] == "passivating"
    assert result["oxidation_interphase"]["type"] == "passivating"
    assert result["provenance"]["property_data"]["band_gaps"]["compositions"] == 78164
    text = _run(capsys, "window", "LiNbO3")
    assert "band gap: 3.396 eV" in text and "interphase beyond the reduction limit: passivating" in text


def test_a_composition_between_phases_takes_the_smallest_gap_of_its_hull_phases(capsys):
    result = _json(capsys, "stability", "NMC811")
    assert result["band_gap_method"] == "decomposition"
    assert result["electronic_insulator"] is False  # NiO/Li10CoNi9O20: small PBE gaps


def test_without_property_files_the_fields_are_null_with_one_note(capsys, monkeypatch, tmp_path):
    import screening.screen.electronic as electronic

    monkeypatch.setenv("SCREENING_DATA_DIR", str(tmp_path))
    monkeypatch.setattr(electronic, "_PROPERTIES", {})
    result = _json(capsys, "window", "LiNbO3")
    assert result["band_gap"] is None and result["reduction_interphase"] is None
    assert any("no band-gap file" in note for note in result["notes"])
    pair = _json(capsys, "pair", "Li", "Li3PS4")
    assert pair["interphase"] is None and pair["kinks"][0]["interphase_type"] is None


def test_a_tampered_gap_cache_is_rebuilt(monkeypatch, tmp_path):
    from screening.data import properties

    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path))
    properties._cached_band_gaps.cache_clear()
    first = properties.load_band_gaps().lookup("LiNbO3").gap
    (cache_file,) = tmp_path.glob("band_gaps_*.json")
    payload = json.loads(cache_file.read_text())
    for item in payload["gaps"]:
        if item[0] == [["Li", 0.2], ["Nb", 0.2], ["O", 0.6]]:
            item[1] = 0.0  # make LiNbO3 a metal
    cache_file.write_text(json.dumps(payload))
    properties._cached_band_gaps.cache_clear()
    assert properties.load_band_gaps().lookup("LiNbO3").gap == pytest.approx(first)
    properties._cached_band_gaps.cache_clear()
