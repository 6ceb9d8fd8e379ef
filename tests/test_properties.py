"""Property data for the rankings (issue 13, part 1-3): band gaps by composition, Li-ion conductivities,
the ALD list's names, practicality flags, cost/HHI, and the interphase type from product gaps."""

from __future__ import annotations

import gzip

import pytest
from pymatgen.core import Composition

from screening.data.properties import (GapValue, load_band_gaps, load_conductivities, key_of)
from screening.data.snapshot import default_entries_path
from screening.errors import DataError, InputError
from screening.screen.ald import AldList, load_ald_list, parse_ald_name
from screening.screen.interphase import Interphase, classify, classify_reactions, worst
from screening.screen.practicality import (cost_per_kg, hhi_production, li_fraction, practicality_flags)

HAVE_DATA = (default_entries_path().parent / "mp_gap_2019.csv.gz").is_file()
needs_data = pytest.mark.skipif(not HAVE_DATA, reason="../shared/data property files absent")


def _write_gz(path, text):
    path.write_bytes(gzip.compress(text.encode()))
    return path


@pytest.fixture
def small_files(tmp_path):
    energies = tmp_path / "e.csv"
    energies.write_text("formula,target\nLi1,0.0\nO1,0.0\nNb1,0.0\n"
                        "Li2Nb2O6,-2.60\nLi4Nb4O12,-2.55\nLi6Nb6O18,-2.50\n"  # LiNbO3 polymorphs
                        "Li2O1,-2.07\nNb1O1,-2.0\nLi3Nb1O4,-2.7\n")
    gaps = _write_gz(tmp_path / "g.csv.gz",
                     "formula,target\nLi2Nb2O6,3.6\nLi4Nb4O12,3.2\nLi6Nb6O18,0.0\n"  # one structure per cell
                     "Li2O1,4.9\nLi4O2,5.1\n"  # Li2O: ground-state cell once, another cell too
                     "Nb2O2,0.0\nNb1O1,0.1\nNb3O3,0.2\n"  # NbO: ground-state cell Nb1O1 and others
                     "Li1,0.0\n")
    return energies, gaps


def test_gap_is_the_ground_state_structures_where_the_cell_formula_identifies_it(small_files):
    energies, gaps = small_files
    table = load_band_gaps(gaps, energies)
    assert table.lookup("LiNbO3") == GapValue(3.6, "ground_state", 3)  # not the metallic polymorph's 0.0
    assert table.lookup("Li2O").gap == pytest.approx(4.9) and table.lookup("Li2O").method == "ground_state"
    assert table.lookup("NbO").gap == pytest.approx(0.1)
    assert table.lookup("Li3NbO4") == GapValue(None, "none")  # no gap in the file
    assert table.lookup("Li").gap == 0.0


def test_gap_of_a_hypothetical_is_the_smallest_of_its_decomposition(small_files):
    table = load_band_gaps(small_files[1], small_files[0])
    mixed = table.of_phases(["LiNbO3", "Li2O"])
    assert mixed.gap == pytest.approx(3.6) and mixed.method == "decomposition"
    assert table.of_phases(["LiNbO3", "Li3NbO4"]).gap is None


def test_without_a_ground_state_cell_the_median_of_polymorphs_is_used(tmp_path):
    energies = tmp_path / "e.json"  # not a CSV: no ground-state cells known
    energies.write_text("[]")
    gaps = _write_gz(tmp_path / "g.csv.gz", "formula,target\nLi2Nb2O6,3.6\nLi4Nb4O12,3.2\nLi6Nb6O18,0.0\n")
    value = load_band_gaps(gaps, energies).lookup("LiNbO3")
    assert value.gap == pytest.approx(3.2) and value.method == "polymorph_median"


@pytest.mark.parametrize("content, message", [
    ("formula,gap\nLi1,0\n", "header"),
    ("formula,target\nLi1,abc\n", "band gap"),
    ("formula,target\nLi1,-1\n", "outside"),
    ("formula,target\nLi1,1e400\n", "outside"),
    ("formula,target\nLiQ,1\n", "formula"),
    ("formula,target\n", "no band gaps"),
])
def test_corrupt_gap_file_is_one_clear_error(tmp_path, small_files, content, message):
    path = _write_gz(tmp_path / "bad.csv.gz", content)
    with pytest.raises(DataError, match=message):
        load_band_gaps(path, small_files[0])


def test_absent_property_files(tmp_path, monkeypatch):
    monkeypatch.setenv("SCREENING_DATA_DIR", str(tmp_path))
    assert load_band_gaps() is None and load_conductivities() is None and load_ald_list() is None
    with pytest.raises(InputError, match="not found"):
        load_band_gaps(tmp_path / "missing.csv.gz")


@needs_data
def test_real_gaps_and_conductivities():
    gaps = load_band_gaps()
    assert len(gaps) == 78164
    assert gaps.provenance()["sha256"] == "4084e584467e6f81ec8bf12c438eeb2c049ae39e11401bae694ef6a9983b9d9f"
    assert gaps.lookup("LiNbO3").gap > 3.0  # 12 structures, 0.0-3.75 eV
    assert gaps.lookup(Composition("Li3PO4")).gap == pytest.approx(5.8181, abs=1e-3)
    assert gaps.lookup("Li15Ge4").gap == 0.0
    assert gaps.lookup("Li").gap == 0.0
    conductivities = load_conductivities()
    assert conductivities[key_of("Li10GeP2S12")].value == pytest.approx(0.012, rel=1e-6)
    assert conductivities[key_of("Li7La3Zr2O12")].n_measurements >= 1


@pytest.mark.parametrize("name, films", [
    ("LiNbxOy", [({"Li", "Nb", "O"}, "oxide", None)]),
    ("LiPxOyNz", [({"Li", "P", "O", "N"}, "oxide", None)]),
    ("W:Al2O3", [({"Al", "O", "W"}, "oxide", "Al2O3")]),
    ("In2O3:H", [({"In", "O", "H"}, "oxide", "In2O3")]),
    ("CoO/Co(OH)2", [({"Co", "O"}, "oxide", "CoO"), ({"Co", "O", "H"}, "oxide", "Co(HO)2")]),
    ("Ce-TPA", [({"Ce", "C", "H", "O"}, "hybrid", None)]),
    ("MoS-thiolate", [({"Mo", "S", "C", "H", "O"}, "hybrid", None)]),
    ("Dy2O3", [({"Dy", "O"}, "oxide", "Dy2O3")]),
    ("DyScxOy", [({"Dy", "Sc", "O"}, "oxide", None)]),
    ("CoCx", [({"Co", "C"}, "carbide", None)]),
    ("VInxS3y", [({"V", "In", "S"}, "sulfide", None)]),
    ("WO3-SiO2", [({"W", "O"}, "oxide", "WO3"), ({"Si", "O"}, "oxide", "SiO2")]),
])
def test_ald_names_parse(name, films):
    parsed = parse_ald_name(name)
    got = [(set(f.elements), f.anion_class, f.composition.reduced_formula if f.composition else None)
           for f in parsed]
    assert got == films


def test_ald_evidence_rule():
    ald = AldList([f for name in ("LiNbxOy", "Al2O3", "B2O3", "LiF", "Li2O") for f in parse_ald_name(name)],
                  None, None, [])
    assert ald.evidence(Composition("Li3NbO4"))[0] == "reported"  # its family
    assert ald.evidence(Composition("Al2O3"))[0] == "reported"  # its own formula
    assert ald.evidence(Composition("LiAlO2"))[0] == "components"  # Li and Al oxides
    assert ald.evidence(Composition("LiBO2"))[0] == "components"
    level, reason = ald.evidence(Composition("AlF3"))
    assert level == "none" and "Al" in reason  # Al only reported as an oxide


@needs_data
def test_real_ald_list():
    ald = load_ald_list()
    assert len(ald.films) >= 629 and ald.skipped == []
    for formula in ("LiNbO3", "Li3NbO4", "Li3PO4", "LiTaO3", "Li2ZrO3", "LiAlO2", "Al2O3"):
        assert ald.evidence(Composition(formula))[0] == "reported", formula
    assert ald.evidence(Composition("NaLiTm2F8"))[0] == "none"


@pytest.mark.parametrize("formula, flags", [
    ("LiNO3", {"nitrate"}), ("Li2O2", {"peroxide"}), ("LiO2", {"peroxide"}), ("LiClO4", {"oxyhalide"}),
    ("LiIO3", {"oxyhalide"}), ("LiOH", {"hydrous"}), ("LiH2ClO5", {"hydrous"}),
    ("Li3Hg", {"toxic", "intermetallic"}), ("Li15Ge4", {"intermetallic"}), ("Rb2LiAsO4", {"toxic"}),
    ("Ba3LiIr2O9", {"precious_or_scarce"}), ("NaLiTm2F8", {"precious_or_scarce"}),
    ("Li3PO4", set()), ("Li2.88PO3.73N0.14", set()), ("Li3OCl", set()), ("LiNbO3", set()),
    ("Li0.5CoO2", set()), ("Li3N", set()), ("Li2SO4", set()), ("Li6PS5Cl", set()), ("Li", set()),
])
def test_practicality_flags(formula, flags):
    assert set(practicality_flags(formula)) == flags


def test_cost_hhi_li_fraction():
    assert 5 < cost_per_kg("LiNbO3") < 100
    assert cost_per_kg("LiIrO3") > 1000 * cost_per_kg("Li2O") / 100
    assert 0 < hhi_production("LiNbO3") <= 10000
    assert li_fraction("Li3PO4") == pytest.approx(3 / 8)


def test_cost_and_hhi_equal_pymatgens_analyzers_on_real_compositions():
    """practicality.py sums pymatgen's element prices and HHI values instead of calling CostAnalyzer
    (a PhaseDiagram per composition) and HHIModel: the same numbers on the data's Li compositions,
    the library's and ones without a price (Pm) or an HHI value (Tc, H)."""
    import warnings

    from pymatgen.analysis.cost import CostAnalyzer, CostDBElements
    from pymatgen.analysis.hhi import HHIModel

    from screening.data.snapshot import load_entries
    from screening.screen.materials import library

    warnings.simplefilter("ignore")
    analyzer, model = CostAnalyzer(CostDBElements()), HHIModel()
    table = load_entries() if default_entries_path().is_file() else None
    formulas = [m.formula for m in library().values()] + ["Li3PO4", "LiTcO4", "Li3PmO3", "LiOH", "Li", "Li0.25Ni0.8Co0.1Mn0.1O2"]
    if table is not None:
        rows = [i for i in range(len(table)) if "Li" in table.element_set(i)]
        formulas += [table.composition(i).formula for i in rows[::7]]
    checked = 0
    for formula in formulas:
        comp = Composition(formula)
        try:
            expected_cost = float(analyzer.get_cost_per_kg(comp))
        except (KeyError, ValueError, ZeroDivisionError):
            expected_cost = None
        expected_hhi = model.get_hhi_production(comp)
        assert (cost_per_kg(comp) is None) == (expected_cost is None), formula
        assert (hhi_production(comp) is None) == (expected_hhi is None), formula
        if expected_cost is not None:
            assert cost_per_kg(comp) == pytest.approx(expected_cost, rel=1e-12, abs=0), formula
        if expected_hhi is not None:
            assert hhi_production(comp) == pytest.approx(expected_hhi, rel=1e-12, abs=0), formula
        checked += 1
    assert cost_per_kg("Li3PmO3") is None and hhi_production("LiTcO4") is None and hhi_production("LiOH") is None
    assert checked > (1000 if table is not None else 20)


def test_interphase_types_on_hand_made_gaps():
    known = {"Li2S": 3.4, "Li3P": 0.7, "LiGe": 0.0, "LiCl": 6.0}

    def gaps(comp):
        return known.get(Composition(comp).reduced_formula)

    assert classify([], gaps).type == "stable"
    assert classify(["Li2S", "Li3P"], gaps).type == "passivating"
    mixed = classify(["Li2S", "LiGe"], gaps)
    assert mixed.type == "mixed-conducting" and mixed.conducting_phases == ("LiGe",)
    assert classify(["Li2S", "Li2Se"], lambda c: None if "Se" in str(c) else 3.0).type == "unknown"
    assert classify(["Li2S", "Li3Ge"], gaps).conducting_phases == ("Li3Ge",)  # intermetallic, no gap
    assert classify(["Li2S", "Li3P"], gaps, threshold=1.0).type == "mixed-conducting"
    # a Li-rich kink forming a metal counts; a kink above the magnitude does not
    reactions = [(-0.5, ["Li2S", "Li3P"]), (-0.1, ["Li2S", "LiGe"]), (-0.01, ["LiGe"])]
    assert classify_reactions(reactions, gaps).type == "mixed-conducting"
    assert classify_reactions(reactions[:1] + reactions[2:], gaps).type == "passivating"
    assert worst([Interphase("passivating"), Interphase("unknown")]).type == "unknown"


@needs_data
def test_interphase_on_the_real_data():
    from screening.data.sources import load_table
    from screening.thermo.analysis import analyse_pair

    table, gaps = load_table(), load_band_gaps()

    def interphase(a, b):
        reaction = analyse_pair(table, Composition(a), Composition(b))
        return classify_reactions([(k.reaction_energy, list(k.products)) for k in reaction.kinks], gaps.lookup)

    lgps = interphase("Li", "Li10GeP2S12")
    assert lgps.type == "mixed-conducting" and "Li15Ge4" in lgps.conducting_phases
    lps = interphase("Li", "Li3PS4")
    assert lps.type == "passivating" and {"Li2S", "Li3P"} <= set(lps.product_band_gaps)
    assert interphase("Li", "Li7La3Zr2O12").type in ("stable", "passivating")


def test_candidate_properties_without_property_files(tmp_path, monkeypatch):
    from screening.screen.annotate import PROPERTY_COLUMNS, PropertySet, candidate_properties

    monkeypatch.setenv("SCREENING_DATA_DIR", str(tmp_path))
    properties = PropertySet.load()
    assert len(properties.notes) == 3 and all("\n" not in note for note in properties.notes)
    row = candidate_properties("LiNbO3", properties)
    assert set(row) == set(PROPERTY_COLUMNS)
    assert row["band_gap"] is None and row["electronic_insulator"] is None and row["ald_evidence"] is None
    assert row["li_fraction"] == pytest.approx(0.2) and row["practicality_flags"] == ""


@needs_data
def test_candidate_properties_on_the_real_data():
    from screening.screen.annotate import PropertySet, candidate_properties

    properties = PropertySet.load()
    assert properties.notes == []
    row = candidate_properties("LiNbO3", properties)
    assert row["electronic_insulator"] is True and row["ald_evidence"] == "reported"
    # a grid point between Li2O and Al2O3 the data lacks: the smallest gap of its decomposition
    hypothetical = candidate_properties("Li2.2Al1.6O3.5", properties,
                                        decomposition={"LiAlO2": 0.5, "Li5AlO4": 0.5})
    assert hypothetical["band_gap_method"] == "decomposition"
    assert hypothetical["band_gap"] == pytest.approx(min(properties.gaps.lookup("LiAlO2").gap,
                                                         properties.gaps.lookup("Li5AlO4").gap))
    tm = candidate_properties("NaLiTm2F8", properties)
    assert tm["practicality_flags"] == "precious_or_scarce" and tm["ald_evidence"] == "none"
    assert candidate_properties("Li10GeP2S12", properties)["li_conductivity"] == pytest.approx(0.012)
