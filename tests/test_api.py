"""The public Python API (issue 16 item 1): the same numbers as the CLI, pymatgen objects in and out."""

from __future__ import annotations

import json
import math
import re
import subprocess
import sys
import warnings
from pathlib import Path

import pytest
from monty.json import MontyDecoder, MontyEncoder
from pymatgen.analysis.phase_diagram import PDEntry, PhaseDiagram
from pymatgen.analysis.reaction_calculator import Reaction
from pymatgen.core import Composition

import screening as sc
from screening.cli import main
from screening.errors import DataError, InputError

ROOT = Path(__file__).resolve().parents[1]
TOL = 1e-9


def cli_json(capsys, *argv) -> dict:
    code = main([*argv, "--json"])
    out, err = capsys.readouterr()
    assert code == 0, err
    return json.loads(out)


def cli_error(capsys, *argv) -> str:
    code = main(list(argv))
    out, err = capsys.readouterr()
    assert code == 2 and out == "" and err.count("\n") == 1, (code, out, err)
    return err.removeprefix("screening: error: ").strip()


def as_json_keys(result) -> dict:
    """A result's dict with the CLI's key for a reaction's text."""
    def walk(node):
        if isinstance(node, dict):
            return {("reaction" if k == "reaction_text" else k): walk(v) for k, v in node.items()
                    if not k.startswith("@")}
        if isinstance(node, list):
            return [walk(v) for v in node]
        return node
    return walk(result.as_dict())


def assert_matches(api, cli, where="") -> None:
    """Every key and value of the CLI's JSON is in the API's result (floats within TOL)."""
    if isinstance(cli, dict):
        assert isinstance(api, dict), where
        for key, value in cli.items():
            assert key in api, f"{where}.{key} missing from the API result"
            assert_matches(api[key], value, f"{where}.{key}")
    elif isinstance(cli, list):
        assert isinstance(api, (list, tuple)) and len(api) == len(cli), where
        for i, (a, c) in enumerate(zip(api, cli)):
            assert_matches(a, c, f"{where}[{i}]")
    elif isinstance(cli, float) and not isinstance(api, bool):
        assert api is not None and abs(api - cli) <= TOL, (where, api, cli)
    else:
        assert api == cli, (where, api, cli)


# ---------------------------------------------------------------- the same numbers as the CLI

@pytest.mark.parametrize("argv,call", [
    (("stability", "LiNbO3"), lambda: sc.stability("LiNbO3")),
    (("stability", "LiNi0.8Co0.1Mn0.1O2"), lambda: sc.stability("LiNi0.8Co0.1Mn0.1O2")),
    (("stability", "Li3PS4@5V"), lambda: sc.stability("Li3PS4@5V")),
    (("window", "Li6PS5Cl"), lambda: sc.window("Li6PS5Cl")),
    (("window", "LPSCl", "--as-is"), lambda: sc.window("LPSCl", as_is=True)),
    (("window", "Al2O3"), lambda: sc.window("Al2O3")),
    (("pair", "LiCoO2", "Li3PS4"), lambda: sc.pair("LiCoO2", "Li3PS4")),
    (("pair", "NMC811@charged", "LPSCl"), lambda: sc.pair("NMC811@charged", "LPSCl")),
    (("pair", "LiNbO3", "Li6PS5Cl", "--potential", "3.0", "--mutual-only"),
     lambda: sc.pair("LiNbO3", "Li6PS5Cl", potential=3.0, mutual_only=True)),
    (("pair", "Li", "Li10GeP2S12", "--own-energies"), lambda: sc.pair("Li", "Li10GeP2S12", own_energies=True)),
    (("decompose", "Li3PS4", "--potential", "0", "--potential", "5"), lambda: sc.decompose("Li3PS4", [0, 5])),
    (("decompose", "NMC811@charged"), lambda: sc.decompose("NMC811@charged")),
])
def test_api_results_equal_the_cli_json(capsys, argv, call):
    cli = cli_json(capsys, *argv)
    assert_matches(as_json_keys(call()), cli, argv[0])


def test_a_composition_is_a_material():
    by_text, by_comp = sc.stability("LiNi0.8Co0.1Mn0.1O2"), sc.stability(Composition("LiNi0.8Co0.1Mn0.1O2"))
    assert by_comp.hull_energy == by_text.hull_energy and by_comp.decomposition == by_text.decomposition
    assert by_comp.formula == by_text.formula and by_comp.e_above_hull is None
    assert sc.window(Composition({"Li": 3, "P": 1, "S": 4})).oxidation_potential == \
        sc.window("Li3PS4").oxidation_potential


def test_open_pair_gives_total_and_mutual_energies(capsys):
    total = cli_json(capsys, "pair", "NMC811@charged", "LPSCl")
    mutual = cli_json(capsys, "pair", "NMC811@charged", "LPSCl", "--mutual-only")
    for result in (sc.pair("NMC811@charged", "LPSCl"), sc.pair("NMC811@charged", "LPSCl", mutual_only=True)):
        assert abs(result.total_min_reaction_energy - total["min_reaction_energy"]) <= TOL
        assert abs(result.mutual_min_reaction_energy - mutual["min_reaction_energy"]) <= TOL
        for kink, t, m in zip(result.kinks, total["kinks"], mutual["kinks"]):
            assert abs(kink.total_reaction_energy - t["reaction_energy"]) <= TOL
            assert abs(kink.mutual_reaction_energy - m["reaction_energy"]) <= TOL
    assert total["min_reaction_energy"] < mutual["min_reaction_energy"] - 0.1  # they differ here
    closed = sc.pair("LiCoO2", "Li3PS4")
    assert closed.total_min_reaction_energy is None and closed.mutual_min_reaction_energy is None


# ---------------------------------------------------------------- reactions, kJ/mol

def test_reactions_are_balanced_pymatgen_reactions_normalised_as_the_text():
    for result in (sc.pair("LiCoO2", "Li3PS4"), sc.pair("NMC811@charged", "LPSCl"), sc.pair("Li", "Li3PS4"),
                   sc.pair("LiNbO3", "Li6PS5Cl", potential=3.0), sc.pair("LiNbO3", "Li6PS5Cl", potential=0.0)):
        assert isinstance(result.reaction, Reaction)
        for kink in result.kinks:
            rxn = kink.reaction
            if kink.reaction_text == "no reaction":
                assert rxn is None and kink.reaction_energy_kj_per_mol == 0.0
                continue
            left = sum((Composition(n) * c for n, c in kink.reactant_coefficients.items()), Composition())
            right = sum((Composition(n) * c for n, c in kink.products.items()), Composition())
            assert left.almost_equals(right, rtol=0, atol=1e-6), kink.reaction_text
            first = next(iter(kink.reactant_coefficients))
            assert abs(rxn.get_coeff(Composition(first)) + 1.0) < 1e-9  # first reactant at 1, as the text
            for name, amount in kink.products.items():
                assert abs(rxn.get_coeff(Composition(name)) - amount) < 1e-6
            # the text's coefficients (4 decimals) are the Reaction's
            for coeff, name in re.findall(r"(?:^|[>+] )([0-9.]+) ([A-Za-z0-9()]+)", kink.reaction_text):
                assert abs(abs(rxn.get_coeff(Composition(name))) - float(coeff)) < 6e-5, (name, coeff)


def test_a_reaction_keeps_its_coefficients_where_pymatgen_could_choose_others():
    from pymatgen.analysis.reaction_calculator import ReactionError

    from screening.api.reactions import make_reaction

    # Fe + O2 -> FeO + Fe2O3 has a family of balances: the kink's own must be kept
    rxn = make_reaction({"Fe": 1.0, "O2": 0.625}, {"FeO": 0.5, "Fe2O3": 0.25})
    assert isinstance(rxn, Reaction)
    for name, coeff in (("Fe", -1.0), ("O2", -0.625), ("FeO", 0.5), ("Fe2O3", 0.25)):
        assert abs(rxn.get_coeff(Composition(name)) - coeff) < 1e-9
    with pytest.raises(ReactionError):
        make_reaction({"Fe": 1.0, "O2": 0.7}, {"FeO": 0.5, "Fe2O3": 0.25})


def test_kj_per_mol_by_hand():
    entries = [PDEntry("Li", 0.0), PDEntry("Al", 0.0), PDEntry("O", 0.0),
               PDEntry("Li2O", -6.2), PDEntry("Al2O3", -17.2), PDEntry("LiAlO2", -12.3)]
    result = sc.Explorer(entries).pair("Li2O", "Al2O3")
    # Li2O + Al2O3 -> 2 LiAlO2: -1.2 eV for 8 atoms as written
    assert abs(result.min_reaction_energy - (-1.2 / 8)) < 1e-9
    assert abs(result.mixing_ratio - 3 / 8) < 1e-9
    assert result.most_negative.atoms_in_reaction == pytest.approx(8.0, abs=1e-9)
    assert result.min_reaction_energy_kj_per_mol == pytest.approx(-1.2 * 96.485, rel=1e-5)
    assert str(result.reaction) == "Li2O + Al2O3 -> 2 LiAlO2"
    # open to Li: the atoms counted are the non-Li atoms of the reaction as written
    open_ = sc.pair("NMC811@charged", "LPSCl")
    for kink in open_.kinks:
        non_li = sum(c * (Composition(n).num_atoms - Composition(n)["Li"])
                     for n, c in kink.reactant_coefficients.items())
        assert kink.reaction_energy_kj_per_mol == pytest.approx(kink.reaction_energy * non_li * 96.485,
                                                                rel=1e-5, abs=1e-9)


# ---------------------------------------------------------------- in-memory entries vs pymatgen

@pytest.fixture(scope="module")
def li_al_s_o(table):
    system = table.chemsys(("Al", "Li", "O", "S"))
    mu = {"Li": -1.9, "Al": -3.7, "O": -4.9, "S": -4.1}  # arbitrary elemental energies: totals, not formation
    entries = []
    for name, energy in zip(system.names, system.energies):
        comp = Composition(name)
        shift = sum(mu[str(el)] * amt for el, amt in comp.items())
        entries.append(PDEntry(comp, float(energy) * comp.num_atoms + shift))
    li2s = float(system.energies[system.index_of("Li2S")])
    entries.append(PDEntry(Composition("Li2S"), (li2s + 0.3) * 3 + 2 * mu["Li"] + mu["S"]))  # metastable
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return entries, PhaseDiagram(entries)


def test_explorer_from_pdentries_agrees_with_pymatgen(li_al_s_o):
    from pymatgen.analysis.interface_reactions import InterfacialReactivity

    entries, pd = li_al_s_o
    explorer = sc.Explorer(entries)
    for formula in ("LiAlO2", "Li2SO4", "Al2S3", "LiAlS2", "Li5AlO4"):
        entry = min((e for e in entries if e.composition.reduced_formula == formula), key=lambda e: e.energy_per_atom)
        result = explorer.stability(formula)
        assert result.e_above_hull == pytest.approx(pd.get_e_above_hull(entry), abs=1e-7), formula
        assert result.energy == pytest.approx(pd.get_form_energy_per_atom(entry), abs=1e-7), formula
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reactivity = InterfacialReactivity(Composition("Al2O3"), Composition("Li2S"), pd, norm=True,
                                           use_hull_energy=True)
        kinks = reactivity.get_kinks()
    ours = explorer.pair("Al2O3", "Li2S")
    assert ours.min_reaction_energy == pytest.approx(min(k[2] for k in kinks), abs=1e-7)
    assert len(ours.kinks) == len(kinks)
    # the same entries as a PhaseDiagram give the same answers
    from_pd = sc.Explorer(entries=pd).pair("Al2O3", "Li2S")
    assert from_pd.min_reaction_energy == pytest.approx(ours.min_reaction_energy, abs=1e-12)


def test_computed_entries_are_read_as_pymatgen_reads_them():
    from pymatgen.entries.computed_entries import ComputedEntry

    entries = [ComputedEntry("Li", -1.9), ComputedEntry("Li", -1.5), ComputedEntry("O2", -9.8),
               ComputedEntry("Li2O", -14.5), ComputedEntry("Li2O2", -19.8)]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        pd = PhaseDiagram(entries)
    result = sc.Explorer(entries).stability("Li2O2")
    assert result.e_above_hull == pytest.approx(pd.get_e_above_hull(entries[-1]), abs=1e-9)
    assert result.energy == pytest.approx(pd.get_form_energy_per_atom(entries[-1]), abs=1e-9)


# ---------------------------------------------------------------- serialisation, tables, plots

def test_results_round_trip_through_monty(tmp_path):
    results = [sc.stability("LiNbO3"), sc.window("Li3PS4"), sc.pair("LiCoO2", "Li3PS4"),
               sc.pair("NMC811@charged", "LPSCl"), sc.decompose("Li3PS4", 5.0)]
    for result in results:
        text = json.dumps(result, cls=MontyEncoder)
        again = json.loads(text, cls=MontyDecoder)
        assert type(again) is type(result) and again == result
        assert type(result).from_dict(result.as_dict()) == result
    pair = json.loads(json.dumps(results[3], cls=MontyEncoder), cls=MontyDecoder)
    assert str(pair.reaction) == str(results[3].reaction) and pair.kinks[0].mutual_reaction_energy is not None


def test_frames_and_plots(tmp_path):
    window = sc.window("Li3PS4")
    frame = window.to_frame()
    assert list(frame.columns) == ["potential", "li_change", "products"] and len(frame) == len(window.profile)
    pair = sc.pair("LiCoO2", "Li3PS4")
    kinks = pair.to_frame()
    assert len(kinks) == len(pair.kinks) and kinks["reaction_energy"].min() == pytest.approx(pair.min_reaction_energy)
    for result, name in ((window, "window.svg"), (pair, "pair.png")):
        out = result.plot(tmp_path / name)
        assert Path(out).is_file() and Path(out).stat().st_size > 1000
    decomposition = sc.decompose("Li3PS4", [0, 5]).to_frame()
    assert decomposition["decomposition_reaction_energy"].tolist() == pytest.approx([-1.4242, -0.9670], abs=1e-4)


def test_screen_and_load_run(tmp_path):
    out = tmp_path / "run"
    explorer = sc.Explorer()
    assert explorer.stability("LiNbO3").e_above_hull == 0.0  # its data loaded first: still a file
    frame = explorer.screen(ROOT / "workflows" / "config" / "demo.yaml", out, workers=0, limit=3)
    rankings, provenance = sc.load_run(out)
    assert len(rankings) == len(frame) > 0 and provenance["run"] == "demo"
    assert set(rankings["stack"]) == {s["name"] for s in provenance["stacks"]}
    # an Explorer on the run's own entries gives the run's numbers back
    again = sc.Explorer.from_run(out)
    row = rankings.iloc[0]
    stack = next(s for s in provenance["stacks"] if s["name"] == row["stack"])
    pair = again.pair(row["formula"], stack["electrolyte"]["formula"])
    assert pair.min_reaction_energy == pytest.approx(row["rxn_electrolyte"], abs=1e-6)
    (out / "provenance.json").write_text((out / "provenance.json").read_text().replace(
        provenance["data_source"]["sha256"], "0" * 64))
    with pytest.raises(DataError, match="changed since the run"):
        sc.Explorer.from_run(out)


def test_load_run_refuses_what_is_not_a_run(tmp_path):
    with pytest.raises(InputError, match="not a run folder"):
        sc.load_run(tmp_path / "missing")
    (tmp_path / "rankings.parquet").write_bytes(b"PAR1 not parquet")
    (tmp_path / "provenance.json").write_text('{"run": "x", "data_source": {"path": "d"}, "stacks": [')
    with pytest.raises(InputError, match="not valid JSON"):
        sc.load_run(tmp_path)
    (tmp_path / "provenance.json").write_text('{"run": "x"}')
    with pytest.raises(DataError, match="lacks the key"):
        sc.load_run(tmp_path)


# ---------------------------------------------------------------- errors

@pytest.mark.parametrize("argv,call", [
    (("stability", "Xx2O"), lambda: sc.stability("Xx2O")),
    (("window", "NMC 811"), lambda: sc.window("NMC 811")),
    (("pair", "LiCoO2", "LiCoO2"), lambda: sc.pair("LiCoO2", "LiCoO2")),
    (("pair", "LCO@4.2V", "LPSCl@2V"), lambda: sc.pair("LCO@4.2V", "LPSCl@2V")),
    (("decompose", "Li3PS4@charged"), lambda: sc.decompose("Li3PS4@charged")),
])
def test_bad_input_raises_the_cli_one_line_error(capsys, argv, call):
    expected = cli_error(capsys, *argv)
    with pytest.raises(InputError) as info:
        call()
    assert str(info.value) == expected and "\n" not in str(info.value)


@pytest.mark.parametrize("call,match", [
    (lambda: sc.Explorer(source="web"), "source must be"),
    (lambda: sc.Explorer(entries=[1, 2]), "entry 0 is a int"),
    (lambda: sc.Explorer(entries="Li2O"), "not str"),
    (lambda: sc.Explorer(entries=[]), "no entries"),
    (lambda: sc.Explorer([PDEntry("Li", 0.0), PDEntry("Li2O", -6.2)]), "no elemental entry for O"),
    (lambda: sc.Explorer([PDEntry("Li", 0.0), PDEntry("O", 0.0), PDEntry("Li2O", float("nan"))]), "non-finite"),
    (lambda: sc.Explorer([PDEntry("Li", 0.0), PDEntry("O", 0.0), PDEntry("Li2O", -300.0)]), "outside -20..10"),
    (lambda: sc.Explorer(thermo_type="GGA_GGA+U"), "only with source='mp'"),
    (lambda: sc.Explorer([PDEntry("Li", 0.0)]).screen(), "screens use a data file"),
    (lambda: sc.pair("LiCoO2", "Li3PS4", potential=math.nan), "finite number"),
    (lambda: sc.pair("LiCoO2", "Li3PS4", potential=50), "outside -5..10"),
    (lambda: sc.stability(42), "not int"),
    (lambda: sc.stability("LiNbO3", energy="low"), "finite number"),
])
def test_bad_api_arguments_raise_input_error(call, match):
    with pytest.raises(InputError, match=re.escape(match)) as info:
        call()
    assert "\n" not in str(info.value)


def test_a_missing_data_file_is_a_data_error(tmp_path):
    with pytest.raises(DataError, match="data file not found"):
        sc.Explorer(tmp_path / "none.csv").stability("LiNbO3")


# ---------------------------------------------------------------- the package, the README

def test_import_is_cheap_and_the_cli_still_works():
    code = ("import sys, screening; heavy = [m for m in ('pymatgen', 'pandas', 'numpy') if m in sys.modules]; "
            "print(heavy, 'Explorer' in dir(screening))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[] True"
    version = subprocess.run([sys.executable, "-m", "screening", "--version"], capture_output=True, text=True)
    assert version.returncode == 0 and version.stdout.startswith("screening ")


def test_readme_python_example_runs_as_written(capsys):
    text = (ROOT / "README.md").read_text(encoding="utf-8")
    section = text[text.index("\n## Python\n"):]
    code = re.search(r"```python\n(.*?)```", section, re.S).group(1)
    assert "PDEntry" in code and ".reaction" in code
    namespace: dict = {}
    exec(compile(code, "README.md (Python)", "exec"), namespace)
    out = capsys.readouterr().out
    assert "Li2O + Al2O3 -> 2 LiAlO2" in out
    assert isinstance(namespace["rxn"].reaction, Reaction)


# ---------------------------------------------------------------- text polish (item 5)

def test_pair_top_limits_the_kinks_printed(capsys):
    assert main(["pair", "NMC811@charged", "LPSCl", "--top", "3"]) == 0
    out = capsys.readouterr().out
    rows = [line for line in out.splitlines() if re.match(r"^\s+[01]\.\d{4}\s+-?\d", line)]
    assert len(rows) == 3 and "the 3 most negative of" in out and "E_rxn eV/non-Li atom" in out
    best = sc.pair("NMC811@charged", "LPSCl")
    energies = sorted(k.reaction_energy for k in best.kinks)[:3]
    assert sorted(float(r.split()[1]) for r in rows) == pytest.approx(energies, abs=1e-4)
    assert "--top must be 1..10000" in cli_error(capsys, "pair", "LiCoO2", "Li3PS4", "--top", "0")
    assert main(["pair", "LiCoO2", "Li3PS4"]) == 0
    assert "E_rxn eV/atom" in capsys.readouterr().out


def test_text_says_in_words_what_is_missing(capsys):
    assert main(["window", "Li6PS5Cl", "--as-is"]) == 0
    out = capsys.readouterr().out
    assert "window: no stable potential range" in out and "none" not in out
    assert main(["window", "Al2O3"]) == 0
    out = capsys.readouterr().out
    assert "above the oxidation limit:  no oxidation limit (no Li to remove)" in out and " - " not in out


# ---------------------------------------------------------------- the Materials Project source

def test_materials_project_source_through_the_fake_server(table, monkeypatch, capsys):
    from fake_mp_server import FakeMPServer

    monkeypatch.setenv("SCREENING_MP_BACKOFF", "0")
    with FakeMPServer(table) as server:  # serves the snapshot's Li-O-P and Cl-Li-P-S entries
        monkeypatch.setenv("MP_API_KEY", "0123456789abcdef0123456789abcdef")
        monkeypatch.setenv("MP_API_ENDPOINT", server.url)
        mp = sc.Explorer(source="mp", use_cache=False)  # nothing written to the cache folder
        window = mp.window("Li3PO4")
        assert_matches(as_json_keys(window), {k: v for k, v in cli_json(
            capsys, "window", "Li3PO4", "--source", "mp", "--no-cache").items() if k != "provenance"}, "window")
        assert window.provenance["data_source"]["kind"] == "materials-project"
        snapshot = sc.window("Li3PO4")
        assert window.reduction_potential == pytest.approx(snapshot.reduction_potential, abs=1e-6)
        assert window.oxidation_potential == pytest.approx(snapshot.oxidation_potential, abs=1e-6)
        with pytest.raises(InputError, match="give no data or entries"):
            sc.Explorer([PDEntry("Li", 0.0)], source="mp")
