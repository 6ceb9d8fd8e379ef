"""The shipped CHGNet calibration (the whole calibration set, like SevenNet-0's): found without a
rebuild, holding the energies a relaxation on this machine gives, and placing LiCoO2, where SevenNet-0
misses (69 meV/atom against an error of 59), within its printed error of the data."""

from __future__ import annotations

import json

import pytest
from pymatgen.core import Composition

from conftest import shipped_calibration
from test_energy import needs_chgnet, run_cli


@pytest.fixture(scope="module")
def shipped_chgnet():
    return shipped_calibration("chgnet")


def test_the_shipped_chgnet_calibration_covers_the_whole_set(shipped_chgnet):
    from screening.calc.calibration import load_calibration_set

    cal, _ = shipped_chgnet
    cset = load_calibration_set()
    assert {p.formula for p in cal.points} == {Composition(c["formula"]).reduced_formula for c in cset.compounds}
    assert cal.calibration_set["sha256"] == cset.sha256
    families = cal.summary()["families"]
    assert set(families) == {"oxides", "phosphates/borates", "sulfides", "halides", "nitrides", "intermetallics"}
    assert all(0 < f["error"] < 0.1 for f in families.values()), families


@needs_chgnet
def test_the_shipped_chgnet_energies_are_what_a_relaxation_gives(shipped_chgnet):
    from screening.calc.calculators import load_calculator
    from screening.calc.calibration import CALIBRATION_FMAX, CALIBRATION_STEPS, load_calibration_set
    from screening.calc.relax import relax
    from screening.calc.structures import build

    cal, _ = shipped_chgnet
    points = {p.formula: p for p in cal.points}
    cset = load_calibration_set()
    calc, _ = load_calculator("chgnet")
    for formula in ("Li2O", "CoO", "NaCoO2"):
        spec = cset.example(formula)
        result = relax(build(spec["builds"][points[formula].build]), calc, fmax=CALIBRATION_FMAX,
                       steps=CALIBRATION_STEPS, optimizer=cal.relaxation["optimizer"])
        assert result.energy_per_atom == pytest.approx(points[formula].energy_per_atom, abs=2e-4), formula


@needs_chgnet
def test_licoo2_with_chgnet_lands_within_its_error(shipped_chgnet, table, tmp_path, monkeypatch, capsys):
    import ase.io

    from screening.calc.calibration import load_calibration_set
    from screening.calc.structures import build

    monkeypatch.setenv("SCREENING_CACHE_DIR", str(tmp_path / "cache"))  # empty: only the shipped file
    path = tmp_path / "LiCoO2.cif"
    ase.io.write(str(path), build(load_calibration_set().example("LiCoO2")["builds"][0]))
    code, out, err = run_cli(capsys, "energy", str(path), "--calculator", "chgnet", "--json")
    assert code == 0, err
    result = json.loads(out)
    assert result["calibration"]["cache_file"] == str(shipped_chgnet[1])
    assert result["calibration_warning"] is None and result["relaxation"]["converged"]
    data = float(table.energies[table.row_of("LiCoO2")])
    assert abs(result["formation_energy"] - data) <= result["formation_energy_error"], (
        result["formation_energy"], data, result["formation_energy_error"])
