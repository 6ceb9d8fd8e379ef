"""The command line in text and JSON, in-process and as installed commands."""

from __future__ import annotations

import json
import subprocess
import sys

import pytest

from close_enough import assert_close
from screening.cli import main


def run(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def run_json(capsys, *argv):
    code, out, err = run(capsys, *argv, "--json")
    assert code == 0, err
    return json.loads(out)


def test_stability_json_contract(capsys):
    data = run_json(capsys, "stability", "LiNbO3")
    assert {"formula", "e_above_hull", "decomposition_energy", "decomposition"} <= set(data)
    assert data["formula"] == "LiNbO3" and data["e_above_hull"] == 0.0
    assert data["decomposition_energy"] == pytest.approx(-0.0165, abs=1e-3)
    assert data["decomposition"] == {"LiNbO3": 1.0}
    assert data["provenance"]["data_source"]["sha256"]


def test_stability_of_composition_not_in_data(capsys):
    data = run_json(capsys, "stability", "LiNi0.8Co0.1Mn0.1O2")
    assert data["e_above_hull"] is None and data["in_data"] is False
    assert sum(data["decomposition"].values()) == pytest.approx(1.0)
    assert data["hull_energy"] < -1.0


def test_window_json_contract(capsys):
    data = run_json(capsys, "window", "Li3PO4")
    keys = {"formula", "e_above_hull", "reduction_potential", "oxidation_potential",
            "reduction_products", "oxidation_products", "profile"}
    assert keys <= set(data)
    assert data["reduction_potential"] == pytest.approx(0.689, abs=5e-3)
    assert data["oxidation_potential"] == pytest.approx(4.210, abs=5e-3)
    for step in data["profile"]:
        assert set(step) == {"potential", "li_change", "products"}
    assert data["reduction_products"] == pytest.approx({"Li2O": 4.0, "Li3P": 1.0})


def test_window_without_li_has_no_oxidation_limit(capsys):
    data = run_json(capsys, "window", "Al2O3")
    assert data["oxidation_potential"] is None and data["oxidation_products"] == {}
    assert data["reduction_potential"] == pytest.approx(1.217, abs=5e-3)


def test_window_as_is_differs_for_metastable(capsys):
    hull = run_json(capsys, "window", "Li6PS5Cl")
    as_is = run_json(capsys, "window", "Li6PS5Cl", "--as-is")
    assert as_is["method"] == "as_is" and hull["method"] == "hull"
    # at its own energy, 83 meV/atom above the hull, Li6PS5Cl has no window at all
    assert as_is["decomposes_at_every_potential"] and not hull["decomposes_at_every_potential"]
    assert as_is["reduction_potential"] is None and as_is["oxidation_potential"] is None
    assert as_is["reduction_onset"] > hull["reduction_potential"]
    assert as_is["oxidation_onset"] < hull["oxidation_potential"]


def test_pair_json_contract_closed_and_open(capsys):
    closed = run_json(capsys, "pair", "LiCoO2", "Li3PS4")
    keys = {"reactants", "potential", "min_reaction_energy", "mixing_ratio", "reaction", "products", "kinks"}
    assert keys <= set(closed)
    assert closed["potential"] is None
    assert closed["min_reaction_energy"] == pytest.approx(-0.4023, abs=1e-4)
    assert closed["mixing_ratio"] == pytest.approx(0.5217, abs=1e-4)
    assert "Li3PO4" in closed["products"] and "->" in closed["reaction"]
    assert all(set(k) >= {"mixing_ratio", "reaction_energy", "reaction"} for k in closed["kinks"])
    opened = run_json(capsys, "pair", "LiCoO2", "Li3PS4", "--potential", "4.2")
    assert opened["potential"] == 4.2 and "non-Li" in opened["energy_unit"]
    assert opened["min_reaction_energy"] < closed["min_reaction_energy"]


def test_pair_with_library_names_and_charged_state(capsys):
    data = run_json(capsys, "pair", "NMC811@charged", "LPSCl")
    assert data["potential"] == 4.3
    assert data["materials"][0]["formula"] == "Li0.25Mn0.1Co0.1Ni0.8O2" or \
        data["materials"][0]["library_name"] == "NMC811"
    assert data["min_reaction_energy"] < -1.0


def test_proxy_is_flagged(capsys):
    data = run_json(capsys, "stability", "alucone")
    assert data["material"]["proxy_for"] == "alucone"
    assert any("proxy" in note for note in data["provenance"]["notes"])
    code, out, _ = run(capsys, "stability", "alucone")
    assert code == 0 and "proxy Al2O3" in out


def test_text_outputs(capsys):
    code, out, _ = run(capsys, "window", "Li3PO4")
    assert code == 0 and "0.689 V to 4.210 V" in out and "4 Li2O + Li3P" in out
    code, out, _ = run(capsys, "pair", "LiCoO2", "Li3PS4")
    assert code == 0 and "-0.4023 eV/atom" in out and "LiCoO2 + 0.4583 Li3PS4 ->" in out
    code, out, _ = run(capsys, "stability", "Li6PS5Cl")
    assert code == 0 and "0.0831 eV/atom" in out
    code, out, _ = run(capsys, "decompose", "Li3PS4", "--potential", "0", "--potential", "5")
    assert code == 0 and "Li2S" in out


def test_json_is_byte_identical_between_runs(capsys):
    first = run(capsys, "pair", "LiNbO3", "Li6PS5Cl", "--potential", "3", "--json")[1]
    second = run(capsys, "pair", "LiNbO3", "Li6PS5Cl", "--potential", "3", "--json")[1]
    assert first == second


@pytest.mark.parametrize("entry", [[sys.executable, "-m", "screening"], ["screening"]])
def test_installed_entry_points(entry):
    import shutil

    if entry == ["screening"]:
        exe = shutil.which("screening") or str(__import__("pathlib").Path(sys.executable).parent / "screening")
        entry = [exe]
    proc = subprocess.run([*entry, "window", "LiNbO3", "--json"], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    data = json.loads(proc.stdout)  # nothing else (no solver banner) on stdout
    assert data["oxidation_potential"] == pytest.approx(3.758, abs=5e-3)


def test_user_entries_join_the_hull_and_are_recorded(capsys, tmp_path, table):
    """A user's formation energy (PDEntry JSON) 20 meV/atom below the hull makes LiAl5O8 unstable."""
    from monty.serialization import dumpfn
    from pymatgen.analysis.phase_diagram import PDEntry
    from pymatgen.core import Composition

    from screening.thermo.analysis import analyse_stability

    comp = Composition("LiAl7O11")
    hull = analyse_stability(table, comp).hull_energy
    path = tmp_path / "mine.json"
    dumpfn([PDEntry(comp, (hull - 0.02) * comp.num_atoms)], path)
    base = run_json(capsys, "stability", "LiAl5O8")
    mine = run_json(capsys, "stability", "LiAl5O8", "--user-entries", str(path))
    assert base["e_above_hull"] == 0.0 and mine["e_above_hull"] > 0.005
    assert "LiAl7O11" in mine["decomposition"]
    assert mine["provenance"]["user_supplied_entries"] == ["LiAl7O11"]
    assert mine["provenance"]["data_source"]["user_entries"][0]["path"].endswith("mine.json")


def test_window_is_per_reduced_formula_whatever_is_typed(capsys):
    typed = run_json(capsys, "window", "Li6P2O8")
    reduced = run_json(capsys, "window", "Li3PO4")
    assert typed["formula"] == "Li3PO4"
    assert_close(typed["profile"], reduced["profile"])  # Li6P2O8 and Li3PO4: different round-off
    assert typed["reduction_products"] == reduced["reduction_products"] == pytest.approx({"Li2O": 4, "Li3P": 1})


def test_user_energy_for_a_new_composition_is_not_in_data(capsys):
    data = run_json(capsys, "stability", "Li7Al3O9", "--energy", "-3.5")
    assert data["in_data"] is False and data["e_above_hull"] == 0.0
    assert data["decomposition_energy"] < 0


def test_version_carries_the_source_digest():
    import subprocess
    import sys
    from pathlib import Path

    from screening import __version__
    from screening.provenance import code_digest

    proc = subprocess.run([str(Path(sys.executable).parent / "screening"), "--version"], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 0 and proc.stderr == ""
    assert proc.stdout.strip() == f"screening {__version__} (code sha256 {code_digest()})"
    assert len(code_digest()) == 64
