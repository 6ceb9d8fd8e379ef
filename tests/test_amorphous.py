"""`screening amorphous` (ML melt-quench), ALD grids with `amorphous:`, --device: tiny cells, short runs."""

from __future__ import annotations

import json

import pytest
import yaml

from screening.cli import main
from screening.errors import InputError

sevenn = pytest.importorskip("sevenn")

# A few seconds a quench: 6 atoms (2 SiO2), 10 + 10 MD steps, 20 relaxation steps.
TINY = ["--atoms", "6", "--melt-steps", "10", "--quench-steps", "10", "--relax-steps", "20",
        "--pre-relax-steps", "10"]
TINY_GRID = {"atoms": 6, "melt_steps": 10, "quench_steps": 10, "relax_steps": 20, "pre_relax_steps": 10,
             "quenches": 2, "seed": 4}
# A calibration set of four small cells: Li, Al and O only (seconds to build with SevenNet)
TINY_SET = {"seed": 1, "holdout_fraction": 0.0, "compounds": [
    {"formula": "Li", "builds": [{"bulk": "Li", "crystalstructure": "bcc", "a": 3.491}]},
    {"formula": "Al", "builds": [{"bulk": "Al", "crystalstructure": "fcc", "a": 4.05}]},
    {"formula": "Li2O", "builds": [{"bulk": "OLi2", "crystalstructure": "fluorite", "a": 4.619}]},
    {"formula": "Al2O3", "builds": [{"aflow": "A2B3_hR10_167_c_e"}]}]}


@pytest.fixture(scope="module")
def cache_folder(tmp_path_factory, table):
    """A fresh cache for this module (amorphous values, calibrations) holding the parsed data file of the
    session's cache; the data's stable set is made in the session's cache, as the screens' tests need it
    too (recomputing them here would cost ~10-20 s and ~1-2 min)."""
    import shutil

    from screening.data.snapshot import cache_dir

    from screening.screen.pruning import stable_table

    stable_table(table)  # in the session's cache (as test_screen's screens would) and memoised in-process
    folder = tmp_path_factory.mktemp("amorphous-cache")
    for parsed in cache_dir().glob("entries-*.npz"):
        shutil.copy(parsed, folder / parsed.name)
    return folder


@pytest.fixture
def cache_env(cache_folder, monkeypatch):
    monkeypatch.setenv("SCREENING_CACHE_DIR", str(cache_folder))
    return cache_folder


def run_cli(capsys, *argv):
    code = main(list(argv))
    out, err = capsys.readouterr()
    return code, out, err


def one_line_error(code, err, *fragments):
    assert code == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("screening: error:"), err
    for fragment in fragments:
        assert fragment in lines[0], lines[0]
    return lines[0]


def test_tiny_glass_above_its_crystal_reproducible_and_saved(cache_env, tmp_path, capsys, table):
    saved = tmp_path / "glass.json"
    code, out, err = run_cli(capsys, "amorphous", "SiO2", *TINY, "--quenches", "2", "--seed", "5", "--json",
                             "--save-entry", str(saved))
    assert code == 0, err
    first = json.loads(out)
    ref = first["reference"]
    assert ref["method"] == "crystal" and "calibration set" in ref["crystal"]
    assert ref["crystal_e_above_hull"] == pytest.approx(0.0, abs=1e-9)  # quartz: the data's ground state
    assert 2.0 < ref["crystal_density"] < 3.2  # quartz 2.65 g/cm^3
    assert first["n_atoms"] == 6 and first["formula_units"] == 2
    values = first["e_above_hull_per_quench"]
    assert len(values) == 2 and all(v > 0.02 for v in values), values  # a glass lies above its crystal
    stats = first["e_above_hull"]
    assert stats["min"] <= stats["mean"] <= stats["max"] and stats["std"] >= 0
    assert first["formation_energy"] == pytest.approx(first["hull_energy"] + stats["mean"], abs=1e-9)
    assert 0.5 < stats["density_mean"] < 6
    # the second quench of seed 5 is the first of seed 6: the same glass, the same energy
    code, out, err = run_cli(capsys, "amorphous", "SiO2", *TINY, "--quenches", "1", "--seed", "6", "--json")
    assert code == 0, err
    again = json.loads(out)
    assert again["e_above_hull_per_quench"][0] == pytest.approx(values[1], abs=1e-5)
    assert again["quenches"][0]["density"] == pytest.approx(first["quenches"][1]["density"], abs=1e-4)
    # the saved entry is read by the other commands as a formation energy
    code, out, err = run_cli(capsys, "stability", "SiO2", "--user-entries", str(saved), "--json")
    assert code == 0, err
    assert "1 user entry" in json.loads(out)["provenance"]["data_source"]["description"]


def test_bad_input_is_one_line(cache_env, tmp_path, capsys):
    small_set = tmp_path / "set.yaml"
    small_set.write_text(yaml.safe_dump({"compounds": TINY_SET["compounds"][:1] + TINY_SET["compounds"][2:3]}))
    # Si has no reference in this calibration set, and SiO2 no crystal in it
    one_line_error(*run_cli(capsys, "amorphous", "SiO2", "--calibration-set", str(small_set))[::2],
                   "no reference energy for Si")
    one_line_error(*run_cli(capsys, "amorphous", "SiO2", "--atoms", "0")[::2], "--atoms")
    one_line_error(*run_cli(capsys, "amorphous", "Si0O0")[::2])
    one_line_error(*run_cli(capsys, "amorphous", "SiO2", "--density", "1000")[::2], "density")
    one_line_error(*run_cli(capsys, "amorphous", "SiO2", "--quenches", "1000")[::2], "--quenches")
    one_line_error(*run_cli(capsys, "amorphous", "SiO2", "--melt-temperature", "1e6")[::2], "melt temperature")
    one_line_error(*run_cli(capsys, "amorphous", "SiO2", "--final-temperature", "900",
                            "--melt-temperature", "800")[::2], "below the melt")
    one_line_error(*run_cli(capsys, "amorphous", "SiO2", "--device", "tpu")[::2], "device")
    one_line_error(*run_cli(capsys, "amorphous", "nope.cif")[::2], "not found")
    from ase.build import bulk
    from ase.io import write

    write(tmp_path / "lif.cif", bulk("LiF", "rocksalt", a=4.03))
    one_line_error(*run_cli(capsys, "amorphous", "SiO2", "--crystal", str(tmp_path / "lif.cif"))[::2],
                   "is LiF, not SiO2")
    one_line_error(*run_cli(capsys, "amorphous", "SiO2", "--atoms", "200", "--melt-steps", "200000",
                            "--quench-steps", "200000", "--quenches", "20")[::2], "atom-steps")
    import torch

    if not torch.cuda.is_available():
        one_line_error(*run_cli(capsys, "amorphous", "SiO2", "--device", "cuda")[::2], "no GPU")
        from screening.calc.calculators import load_calculator

        with pytest.raises(InputError, match="no GPU"):
            load_calculator("sevennet", {"device": "cuda"})


def test_grid_config_is_validated():
    from screening.screen.config import config_from_dict

    def grid(amorphous, **extra):
        return {"candidates": {"data": False, "library": False,
                               "grids": [{"ends": ["LiAlO2", "Al2O3"], "step": 0.5, "amorphous": amorphous,
                                          **extra}]}}

    assert config_from_dict(grid(True)).grids[0]["amorphous"] is True
    assert config_from_dict(grid(False)).grids
    for bad, fragment in ((grid("yes"), "must be true, false or a mapping"),
                          (grid({"quenches": 0}), "quenches"), (grid({"atoms": 10_000}), "atoms"),
                          (grid({"melt_temperature": "hot"}), "melt temperature"),
                          (grid({"colour": 1}), "unknown key"), (grid({"device": "gpu7"}), "device"),
                          (grid(True, penalty=0.1), "not both"), (grid({"calibration_set": "/no/such.yaml"}),
                                                                  "not found"),
                          ({"candidates": {"grids": [{"ends": ["Li2O", "Al2O3"], "step": 0.01,
                                                      "amorphous": True}]}}, "at most 50 points")):
        with pytest.raises(InputError, match=fragment) as info:
            config_from_dict(bad)
        assert "\n" not in str(info.value)


def test_grid_with_amorphous_energies_in_a_small_screen(cache_env, tmp_path, table):
    cal_set = tmp_path / "set.yaml"
    cal_set.write_text(yaml.safe_dump(TINY_SET))
    config = {"run": "amorphous-grid",
              "candidates": {"data": False, "library": False,
                             "grids": [{"ends": ["LiAlO2", "Al2O3"], "step": 0.5,
                                        "amorphous": {**TINY_GRID, "calibration_set": str(cal_set)}}]},
              "stacks": [{"electrode": "NMC811", "electrolyte": "LPSCl"}],
              "uncertainty": {"first_order": False, "monte_carlo_top": 0}}
    from screening.execution.screen_run import provenance
    from screening.screen.config import config_from_dict
    from screening.screen.evaluate import evaluate_candidates

    cfg = config_from_dict(config)
    [cand] = cfg.candidates(table)
    [used] = provenance(cfg, table, 1, {})["amorphous_grids"]
    assert used["formula"] == cand.formula == "LiAl3O5" and not used["cached"]
    assert used["reference"]["method"] == "calibration"
    e = used["e_above_hull"]
    assert e["n"] == 2 and e["min"] <= e["mean"] <= e["max"] and e["std"] > 0
    assert cand.hypothetical and cand.energy_penalty == pytest.approx(max(0.0, e["mean"]), abs=1e-8)
    assert "amorphous" in cand.note
    [row] = evaluate_candidates(table, [cand], cfg.stacks)
    assert row["e_above_hull"] == pytest.approx(cand.energy_penalty, abs=1e-9)
    # the second time the value comes from the cache, verified by its key and digest
    from screening.screen.config import config_from_dict

    cfg = config_from_dict(config)
    [again] = cfg.candidates(table)
    assert cfg.amorphous_used[0]["cached"] and again.energy_penalty == cand.energy_penalty
    # through the workflow's steps (split -> evaluate -> rank): the record rides the shard file into the
    # ranked run's provenance, and the rows equal the screen's own
    from screening.execution.steps import evaluate_shard, rank_parts, write_shards

    shard, part = tmp_path / "shard-0.json", tmp_path / "part-0.parquet"
    assert write_shards(config_from_dict(config), [shard]) == 1
    evaluate_shard(shard, part)
    frame = rank_parts(config_from_dict(config), [part], tmp_path / "run", shard_paths=[shard])
    [recorded] = json.loads((tmp_path / "run" / "provenance.json").read_text())["amorphous_grids"]
    assert recorded["formula"] == "LiAl3O5" and recorded["cached"]
    assert recorded["e_above_hull"]["mean"] == pytest.approx(e["mean"], abs=1e-9)
    assert frame["e_above_hull"].tolist() == pytest.approx([cand.energy_penalty], abs=1e-6)
    cache = next((cache_env / "amorphous").glob("LiAl3O5-*.json"))
    raw = json.loads(cache.read_text())
    raw["summary"]["e_above_hull"]["mean"] += 0.5  # an edited value no longer matches its digest
    cache.write_text(json.dumps(raw))
    from screening.calc.amorphous import read_cache

    assert read_cache(raw["key"]) is None
