"""The answers as a user reads them: potentials, names of energies, windows, reactions, noise, hints.

Issue 11 item 13 and issue 12 items 1, 2, 5, 7, 9, 12, 13.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from pymatgen.core import Composition as C

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


def one_line_error(capsys, *argv) -> str:
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == "", (code, out, err)
    assert err.count("\n") == 1 and err.startswith("screening: error: "), err
    return err


# ---------------------------------------------------------------- potentials (issue 11 item 13)

@pytest.mark.parametrize("argv,named", [
    (("pair", "LCO@4.2V", "LPSCl@2V"), ("LCO@4.2V", "LPSCl@2V", "4.2 V", "2 V")),
    (("pair", "LPSCl@2V", "LCO@4.2V"), ("LCO@4.2V", "LPSCl@2V", "4.2 V", "2 V")),
    (("pair", "NMC811@charged", "LPSCl", "--potential", "1.0"), ("NMC811@charged", "--potential", "4.3 V", "1 V")),
    (("decompose", "NMC811@charged", "--potential", "1.0"), ("NMC811@charged", "--potential")),
])
def test_conflicting_potentials_are_an_error_naming_both(capsys, argv, named):
    err = one_line_error(capsys, *argv)
    assert "conflicting potentials" in err
    for text in named:
        assert text in err


def test_agreeing_potentials_are_used_and_shown(capsys):
    data = run_json(capsys, "pair", "LCO@4.2V", "LPSCl", "--potential", "4.2")
    swapped = run_json(capsys, "pair", "LPSCl", "LCO@4.2V")
    assert data["potential"] == swapped["potential"] == pytest.approx(4.2, abs=1e-12)
    code, out, _ = run(capsys, "pair", "NMC811@charged", "LPSCl", "--potential", "4.3")
    assert code == 0 and "open to Li at 4.300 V" in out.splitlines()[0]


def test_a_state_at_another_potential_is_the_charged_composition_there(capsys):
    data = run_json(capsys, "pair", "NMC811@1V", "LPSCl")
    assert data["potential"] == pytest.approx(1.0, abs=1e-12)
    assert data["materials"][0]["formula"] == C("Li0.25Ni0.8Co0.1Mn0.1O2").reduced_formula


def test_window_reports_where_the_state_potential_lies(capsys):
    data = run_json(capsys, "window", "Li3PO4@4.3V")
    assert data["potential"] == pytest.approx(4.3, abs=1e-12) and data["potential_in_window"] is False
    code, out, _ = run(capsys, "window", "Li3PO4@4.3V")
    assert "at 4.300 V (Li3PO4@4.3V): outside: above the oxidation limit (4.210 V)" in out
    inside = run_json(capsys, "window", "Li3PO4@3V")
    assert inside["potential_in_window"] is True
    assert run_json(capsys, "window", "Li3PO4")["potential"] is None


def test_stability_and_decompose_use_the_state_potential(capsys):
    stab = run_json(capsys, "stability", "NMC811@charged")
    assert stab["at_potential"]["potential"] == pytest.approx(4.3, abs=1e-12)
    dec = run_json(capsys, "decompose", "NMC811@charged")
    assert [d["potential"] for d in dec["decomposition"]] == pytest.approx([4.3], abs=1e-12)
    assert_close(stab["at_potential"], dec["decomposition"][0])
    same = run_json(capsys, "decompose", "NMC811@charged", "--potential", "4.3")
    assert_close(same["decomposition"], dec["decomposition"])


def test_state_digits_are_ascii(capsys):
    one_line_error(capsys, "window", "Li3PO4@\u0663V")


# ---------------------------------------------------------------- names of energies (issue 12 item 1)

def test_decomposition_energy_and_decomposition_reaction_energy_are_named_apart(capsys):
    stab = run_json(capsys, "stability", "Li6PS5Cl")
    dec = run_json(capsys, "decompose", "Li6PS5Cl", "--potential", "1.9")
    assert stab["decomposition_energy"] == pytest.approx(0.0831, abs=1e-4)  # pymatgen: > 0 unstable
    step = dec["decomposition"][0]
    assert "decomposition_energy" not in step
    assert step["decomposition_reaction_energy"] == pytest.approx(-stab["e_above_hull"], abs=1e-9)
    conventions = dec["provenance"]["conventions"]
    assert "decomposition_energy" in conventions and "decomposition_reaction_energy" in conventions
    code, out, _ = run(capsys, "decompose", "Li6PS5Cl", "--potential", "1.9")
    assert "decomposition reaction energy" in out and "E_decomp" not in out
    code, out, _ = run(capsys, "stability", "Li6PS5Cl")
    assert "decomposition energy:  0.0831 eV/atom (unstable" in out


def test_decomposition_at_potential_object_has_a_reaction_energy(table):
    from screening.thermo.analysis import analyse_decomposition_at

    result = analyse_decomposition_at(table, C("Li6PS5Cl"), 0.0)
    assert result.reaction_energy < -0.5 and result.reacts and not hasattr(result, "energy")


# ---------------------------------------------------------------- windows (issue 12 items 2, 9)

def test_a_compound_unstable_at_every_potential_has_no_window(capsys):
    data = run_json(capsys, "window", "Li6PS5Cl", "--as-is")
    assert data["decomposes_at_every_potential"] is True
    assert any("decomposes at every Li potential" in n for n in data["notes"])
    assert data["reduction_potential"] is None and data["oxidation_potential"] is None
    assert data["reduction_onset"] == pytest.approx(1.937, abs=1e-3)
    assert data["oxidation_onset"] == pytest.approx(1.521, abs=1e-3)
    potentials = [s["potential"] for s in data["profile"]]
    changes = [s["li_change"] for s in data["profile"]]
    assert potentials == sorted(potentials, reverse=True) and changes == sorted(changes)
    code, out, _ = run(capsys, "window", "Li6PS5Cl", "--as-is")
    assert "decomposes at every Li potential" in out and "1.937 V to 1.521 V" not in out


def test_a_stable_compound_as_is_keeps_its_window(capsys):
    hull = run_json(capsys, "window", "LiNbO3")
    as_is = run_json(capsys, "window", "LiNbO3", "--as-is")
    assert as_is["decomposes_at_every_potential"] is False
    assert as_is["reduction_potential"] == pytest.approx(hull["reduction_potential"], abs=1e-9)
    assert as_is["oxidation_potential"] == pytest.approx(hull["oxidation_potential"], abs=1e-9)


def test_a_disordered_cathode_is_explained(capsys):
    code, out, _ = run(capsys, "stability", "NMC811")
    assert code == 0 and "between ordered phases" in out
    assert "none" not in out and "hull energy:           -1.5150 eV/atom" in out
    stab = run_json(capsys, "stability", "NMC811")
    assert stab["e_above_hull"] is None and any("between ordered phases" in n for n in stab["notes"])
    window = run_json(capsys, "window", "NMC811@charged")
    assert window["zero_width"] is True and any("zero-width window" in n for n in window["notes"])
    assert window["reduction_potential"] == pytest.approx(window["oxidation_potential"], abs=1e-9)
    code, out, _ = run(capsys, "window", "NMC811@charged")
    assert "zero width at 3.781 V" in out and "between ordered phases" in out
    assert "energy above hull: none" not in out


# ---------------------------------------------------------------- reactions (issue 12 items 5, 7, 13)

def test_no_reaction_is_not_shown_as_a_reaction(capsys, table):
    data = run_json(capsys, "pair", "NMC811@charged", "LiNbO3", "--mutual-only")
    assert data["reaction"] == "no reaction" and data["min_reaction_energy"] == 0.0
    assert data["products"] == {"LiNbO3": 1.0}  # the reactant at x = 0, unchanged
    assert all(k["reaction"] == "no reaction" for k in data["kinks"])
    code, out, _ = run(capsys, "pair", "NMC811@charged", "LiNbO3", "--mutual-only")
    assert "->" not in out
    from screening.thermo.analysis import analyse_pair

    result = analyse_pair(table, C("Li0.25Ni0.8Co0.1Mn0.1O2"), C("LiNbO3"), potential=4.3,
                          include_no_mixing_energy=False)
    assert not result.reacts and result.most_negative.reaction == "no reaction"
    assert {k.mixing_ratio: k.products for k in result.kinks} == {
        0.0: {"LiNbO3": 1.0}, 1.0: {C("Li0.25Ni0.8Co0.1Mn0.1O2").reduced_formula: 1.0}}


def test_trace_phases_from_round_off_are_dropped(capsys):
    data = run_json(capsys, "pair", "NMC811@charged", "Li6PS5Cl")
    amounts = [a for k in data["kinks"] for a in k["products"].values()]
    assert min(amounts) > 1e-3
    for kink in data["kinks"]:
        for name, amount in kink["products"].items():
            assert amount == float(f"{amount:.10g}"), (name, amount)
    code, out, _ = run(capsys, "pair", "NMC811@charged", "Li6PS5Cl")
    assert "e-0" not in out and "Co(PO3)2" in out  # the real Co(PO3)2 of other kinks stays


def test_a_kink_keeps_its_energy_and_balance_when_traces_are_dropped(table):
    from screening.thermo.analysis import system_for
    from screening.thermo.hull import HullSolver
    from screening.thermo.hull_line import line_vertices

    a, b = C("Li0.25Ni0.8Co0.1Mn0.1O2"), C("Li6PS5Cl")
    cs = system_for(table, a, b, extra=("Li",))
    solver = HullSolver(cs, "Li", -4.3)
    start, end = solver.vector(b), solver.vector(a)
    kinks = line_vertices(solver, start, end)
    # the walk lands on its vertices (a near miss is moved to where the trace vanishes) ...
    assert all(min(v.point.amounts) >= 1e-5 for v in kinks)
    # ... and a point just beside a vertex holds a trace of the next segment's phase
    traced = [point for v in kinks[1:-1]
              for point in [solver.solve(start + (v.t + 2e-7) * (end - start))] if min(point.amounts) < 1e-5]
    assert traced, "no point beside a kink holds a trace: find another example"
    for point in traced:
        clean = solver.drop_traces(point)
        assert min(clean.amounts) >= 1e-5 and len(clean.phases) == len(point.phases) - 1
        assert clean.energy == point.energy
        rows = np.searchsorted(solver.rows, clean.phases)
        assert np.abs(solver.coords[rows].T @ np.array(clean.amounts) - point.composition).max() < 1e-5


def test_a_phase_holding_a_trace_dopant_is_kept(table):
    from screening.thermo.analysis import system_for
    from screening.thermo.hull import HullSolver

    comp = C("LiNi0.9999995Co0.0000005O2")
    cs = system_for(table, comp)
    solver = HullSolver(cs)
    point = solver.solve(solver.vector(comp))
    with_co = [i for i, r in enumerate(point.phases) if "Co" in cs.names[r]]
    assert with_co and point.amounts[with_co[0]] < 1e-5
    assert solver.drop_traces(point).phases == point.phases


def test_minimum_at_one_reactant_alone_is_labelled(capsys):
    data = run_json(capsys, "pair", "Li6PS5Cl", "Li3PS4", "--own-energies")
    assert data["reactant_alone"] == "Li6PS5Cl" and data["mixing_ratio"] == 1.0
    code, out, _ = run(capsys, "pair", "Li6PS5Cl", "Li3PS4", "--own-energies")
    assert "Li6PS5Cl alone: it decomposes by itself at its own energy, without Li3PS4" in out
    mixture = run_json(capsys, "pair", "LiCoO2", "Li3PS4")
    assert mixture["reactant_alone"] is None


# ---------------------------------------------------------------- text (issue 12 items 12, 13)

@pytest.mark.parametrize("name,hint", [("NMC 811", "did you mean NMC811?"), ("nmc-811", "did you mean NMC811?"),
                                       ("argyrodyte", "did you mean LPSCl?")])
def test_a_wrong_name_gets_the_closest_library_names(capsys, name, hint):
    err = one_line_error(capsys, "window", name)
    assert hint in err and "see `screening library`" in err


def test_no_negative_zero_and_no_none_in_text(capsys):
    from screening.interfaces.answer_text import format_number

    assert format_number(-1e-7, 3) == "0.000" and format_number(-4e-5, 4) == "0.0000"
    assert format_number(-0.0, 3, sign=True) == "0.000" and format_number(-0.0012, 3) == "-0.001"
    code, out, _ = run(capsys, "window", "Al2O3")
    assert "no oxidation limit (no Li to remove)" in out and "none" not in out
    for argv in (("pair", "NMC811@charged", "LiNbO3", "--mutual-only"), ("pair", "Li", "Li7La3Zr2O12"),
                 ("decompose", "LiAlO2", "--potential", "3")):
        code, out, _ = run(capsys, *argv)
        assert code == 0 and "-0.000" not in out, argv
    assert "LiAlO2  (stable)" in out  # on the grand hull to round-off: no reaction
    assert run_json(capsys, "decompose", "LiAlO2", "--potential", "3")["decomposition"][0][
        "decomposition_reaction_energy"] == 0.0


def test_user_entries_are_listed_in_the_text(capsys, tmp_path, table):
    from monty.serialization import dumpfn
    from pymatgen.analysis.phase_diagram import PDEntry

    from screening.thermo.analysis import analyse_stability

    comp = C("LiAl7O11")
    hull = analyse_stability(table, comp).hull_energy
    path = tmp_path / "mine.json"
    dumpfn([PDEntry(comp, (hull - 0.02) * comp.num_atoms)], path)
    for command in ("stability", "window"):
        code, out, err = run(capsys, command, "LiAl5O8", "--user-entries", str(path))
        assert code == 0, err
        assert "+1 user entry: LiAl7O11 from mine.json" in out
    code, out, _ = run(capsys, "stability", "LiAl5O8")
    assert "user entr" not in out
    lialo2 = C("LiAlO2")
    data = analyse_stability(table, lialo2).energy
    higher = tmp_path / "higher.json"
    dumpfn([PDEntry(lialo2, (data + 0.004) * lialo2.num_atoms)], higher)
    code, out, err = run(capsys, "stability", "LiAlO2", "--user-entries", str(higher))
    assert code == 0, err
    assert "+1 user entry: LiAlO2 (not used: the data's polymorph is lower) from higher.json" in out
