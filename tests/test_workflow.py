"""The Snakemake workflow on the demo config: outputs, reruns, resumption, equality with the CLI and
with dask (local cluster and a real scheduler with two worker processes), and the notebook.
(Hostile configs, faults and a SIGKILLed Snakemake: tests/test_workflow_hostile.py.)"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "workflows" / "config" / "demo.yaml"
BIN = Path(sys.executable).parent


def snakemake(workdir: Path, *args: str, configfile: Path = DEMO, env: dict | None = None) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "2",
           "--configfile", str(configfile), *args]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}", **(env or {})}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=900, env=env)


def planned_jobs(workdir: Path, configfile: Path = DEMO, env: dict | None = None) -> dict[str, int]:
    """{rule: count} that a dry run would execute."""
    proc = snakemake(workdir, "-n", configfile=configfile, env=env)
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    if "Nothing to be done" in text:
        return {}
    stats = text.split("Job stats:")[1]
    return {m.group(1): int(m.group(2)) for m in re.finditer(r"^(\w+)\s+(\d+)\s*$", stats, re.M)
            if m.group(1) != "total"}


@pytest.fixture(scope="module")
def demo_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("workflow")
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-3000:]
    return workdir, workdir / "results" / "demo"


def test_outputs(demo_run):
    _, run = demo_run
    for name in ("rankings.parquet", "rankings.csv", "provenance.json", "report.html", "data_source.json"):
        assert (run / name).stat().st_size > 0, name
    pngs = sorted(p.name for p in (run / "plots").glob("*.png"))
    assert any(p.startswith("ranking_") for p in pngs) and any(p.startswith("windows_") for p in pngs)
    report = (run / "report.html").read_text()
    assert "Provenance" in report and "Funnel" in report and "data:image/png;base64" in report


def test_demo_screens_the_li_m_p_o_coatings_it_names(demo_run):
    """workflows/config/demo.yaml says Li-M-O, Li-P-O and Li-M-P-O coatings for M in Al, Nb, Ta, Zr, Ti."""
    import json

    from pymatgen.core import Composition

    _, run = demo_run
    systems = set()
    for shard in (run / "shards").glob("shard_*.json"):
        for candidate in json.loads(shard.read_text())["candidates"]:
            systems.add(frozenset(str(e) for e in Composition(candidate["composition"]).elements))
    metals = {"Al", "Nb", "Ta", "Zr", "Ti"}
    assert any(s - {"Li", "P", "O"} and s - {"Li", "P", "O"} <= metals and {"Li", "P", "O"} <= s for s in systems)
    assert frozenset({"Li", "P", "O"}) in systems
    assert any(len(s) == 3 and {"Li", "O"} < s and (s - {"Li", "O"}) <= metals for s in systems)


def test_parts_record_their_shard_and_code(demo_run):
    from screening.execution.parts import read_part, sha256_bytes
    from screening.provenance import code_digest

    _, run = demo_run
    for part in sorted((run / "parts").glob("part_*.parquet")):
        shard = run / "shards" / part.name.replace("part_", "shard_").replace(".parquet", ".json")
        _, meta = read_part(part, str(part))
        assert meta["shard_sha256"] == sha256_bytes(shard.read_bytes())
        assert meta["code_sha256"] == code_digest()


def test_rerun_does_nothing_and_a_lost_shard_reruns_alone(demo_run):
    workdir, run = demo_run
    assert planned_jobs(workdir) == {}
    kept = run / "parts" / "part_000.parquet"
    before = kept.stat().st_mtime_ns
    (run / "parts" / "part_001.parquet").unlink()
    assert planned_jobs(workdir) == {"evaluate": 1, "rank": 1, "report": 1, "all": 1}
    proc = snakemake(workdir)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert kept.stat().st_mtime_ns == before
    assert planned_jobs(workdir) == {}


def test_editing_a_threshold_reruns_only_the_ranking(demo_run, tmp_path):
    workdir, _ = demo_run
    edited = yaml.safe_load(DEMO.read_text())
    edited.setdefault("thresholds", {})["e_above_hull"] = 0.05
    config = tmp_path / "demo_edited.yaml"
    config.write_text(yaml.safe_dump(edited))
    assert planned_jobs(workdir, config) == {"rank": 1, "report": 1, "all": 1}


def test_new_package_code_reruns_everything(demo_run, tmp_path):
    """Results made by other code are not kept: every rule's params hold the package source's digest."""
    import json

    from screening.provenance import code_digest

    workdir, run = demo_run
    assert planned_jobs(workdir) == {}
    provenance = json.loads((run / "provenance.json").read_text())
    assert provenance["versions"]["screening_code_sha256"] == code_digest()
    edited = tmp_path / "edited"  # the package with one comment added, imported first
    shutil.copytree(REPO / "screening", edited / "screening", ignore=shutil.ignore_patterns("__pycache__"))
    with open(edited / "screening" / "screen" / "rank.py", "a", encoding="utf-8") as handle:
        handle.write("\n# an edit\n")
    jobs = planned_jobs(workdir, env={"PYTHONPATH": str(edited)})
    n_shards = len(list((run / "parts").glob("part_*.parquet")))
    assert jobs == {"prepare": 1, "shard": 1, "evaluate": n_shards, "rank": 1, "report": 1, "all": 1}
    assert planned_jobs(workdir) == {}  # the dry run changed nothing


def _screen(out: Path, *extra: str) -> bytes:
    from screening.cli import main

    assert main(["screen", "--config", str(DEMO), "--out", str(out), "--no-progress", *extra]) == 0
    return (out / "rankings.csv").read_bytes()


def test_cli_serial_local_cluster_and_workflow_agree(demo_run, tmp_path):
    _, run = demo_run
    serial = _screen(tmp_path / "serial", "--workers", "0")
    assert serial == (run / "rankings.csv").read_bytes()
    assert _screen(tmp_path / "local2", "--workers", "2") == serial
    assert (tmp_path / "serial" / "rankings.parquet").read_bytes() == \
        (tmp_path / "local2" / "rankings.parquet").read_bytes()


def test_shards_by_candidates_and_stacks_give_the_same_rankings(demo_run, tmp_path):
    """workflow: {shards: 4, stack_groups: 2}: each evaluate job holds half the candidates and one of the
    two stacks; the rankings are the 3-shard run's, byte for byte."""
    _, run = demo_run
    config = yaml.safe_load(DEMO.read_text())
    config["workflow"] = {"shards": 4, "stack_groups": 2, "workers_per_job": 0}
    configfile = tmp_path / "grouped.yaml"
    configfile.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path / "wd", "--until", "rank", configfile=configfile)
    assert proc.returncode == 0, proc.stderr[-3000:]
    grouped = tmp_path / "wd" / "results" / "demo"
    for name in ("rankings.csv", "rankings.parquet"):
        assert (grouped / name).read_bytes() == (run / name).read_bytes(), name
    import json

    stacks = [json.loads((grouped / "shards" / f"shard_{k:03d}.json").read_text())["stacks"] for k in range(4)]
    assert [len(s) for s in stacks] == [1, 1, 1, 1] and stacks[0] != stacks[1] and stacks[0] == stacks[2]
    config["workflow"] = {"shards": 3, "stack_groups": 2}
    configfile.write_text(yaml.safe_dump(config))
    proc = snakemake(tmp_path / "wd2", "-n", configfile=configfile)
    assert proc.returncode != 0 and "multiple of workflow.stack_groups" in proc.stderr, proc.stderr[-2000:]


def test_remote_scheduler_with_two_worker_processes(demo_run, tmp_path):
    _, run = demo_run
    scheduler_file = tmp_path / "scheduler.json"
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    scheduler = subprocess.Popen([str(BIN / "dask"), "scheduler", "--host", "127.0.0.1", "--port", "0",
                                  "--no-dashboard", "--scheduler-file", str(scheduler_file)],
                                 stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
    workers = None
    try:
        for _ in range(120):
            if scheduler_file.exists() and scheduler_file.stat().st_size:
                break
            time.sleep(0.5)
        import json

        address = json.loads(scheduler_file.read_text())["address"]
        workers = subprocess.Popen([str(BIN / "dask"), "worker", address, "--nworkers", "2", "--nthreads", "1",
                                    "--no-dashboard", "--host", "127.0.0.1"],
                                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env)
        from distributed import Client

        with Client(address, timeout="30s") as client:
            client.wait_for_workers(2, timeout=120)
        remote = _screen(tmp_path / "remote", "--scheduler", address)
        assert remote == (run / "rankings.csv").read_bytes()
    finally:
        for proc in (workers, scheduler):
            if proc is not None:
                proc.terminate()
                try:
                    proc.wait(timeout=30)
                except subprocess.TimeoutExpired:
                    proc.kill()


def test_slurm_profile_dry_run(demo_run):
    workdir, _ = demo_run
    proc = snakemake(workdir, "-n", "--forceall", "--profile", str(REPO / "workflows" / "profiles" / "slurm"))
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "evaluate" in proc.stdout + proc.stderr


def test_notebook_finds_the_repositorys_demo_run_from_anywhere(tmp_path, monkeypatch):
    """Without SCREENING_RUN_DIR the default is <repository>/results/demo, whatever the working folder."""
    import nbformat

    notebook = nbformat.read(REPO / "workflows" / "notebooks" / "rankings.ipynb", as_version=4)
    cell = next(c.source for c in notebook.cells if c.cell_type == "code" and "RUN_DIR =" in c.source)
    monkeypatch.delenv("SCREENING_RUN_DIR", raising=False)
    for where in (tmp_path, REPO / "workflows" / "notebooks", REPO):
        monkeypatch.chdir(where)
        namespace: dict = {}
        exec(compile(cell, "rankings.ipynb", "exec"), namespace)
        assert namespace["RUN_DIR"].resolve() == (REPO / "results" / "demo").resolve(), where
    monkeypatch.setenv("SCREENING_RUN_DIR", str(tmp_path))
    namespace = {}
    exec(compile(cell, "rankings.ipynb", "exec"), namespace)
    assert namespace["RUN_DIR"] == tmp_path


# Appended to the notebook in the tests: what its API-based cells left behind, as one JSON line
NOTEBOOK_CHECK = """
import json
from pymatgen.analysis.reaction_calculator import Reaction
print("API-CHECK " + json.dumps({
    "explorer": isinstance(explorer, sc.Explorer),
    "pairs": sorted(pair_results),
    "reactions": sum(isinstance(k.reaction, Reaction) for r in pair_results.values() for k in r.kinks),
    "kj_per_mol": [r.min_reaction_energy_kj_per_mol for r in pair_results.values()],
    "agree": {label: abs(r.min_reaction_energy - float(row[f"rxn_{label}"])) < 1e-6
              for label, r in pair_results.items()},
    "std": STD_COLUMNS, "mc": MC_COLUMNS, "selected": len(selected), "candidate": CANDIDATE}))
"""


def _execute_notebook(run: Path):
    """The notebook executed headless on the run folder `run`, with NOTEBOOK_CHECK appended:
    (its code cells, the check's dict)."""
    import json

    import nbformat
    from nbclient import NotebookClient

    notebook = nbformat.read(REPO / "workflows" / "notebooks" / "rankings.ipynb", as_version=4)
    notebook.cells.append(nbformat.v4.new_code_cell(NOTEBOOK_CHECK))
    os.environ["SCREENING_RUN_DIR"] = str(run)
    try:
        NotebookClient(notebook, timeout=600, kernel_name="python3",
                       resources={"metadata": {"path": str(REPO / "workflows" / "notebooks")}}).execute()
    finally:
        os.environ.pop("SCREENING_RUN_DIR", None)
    cells = [c for c in notebook.cells if c.cell_type == "code"]
    errors = [o for c in cells for o in c.get("outputs", []) if o.get("output_type") == "error"]
    assert not errors, "\n".join(f"{o['ename']}: {o['evalue']}" for o in errors)
    text = cells[-1].outputs[0]["text"]
    assert text.startswith("API-CHECK "), text
    return cells[:-1], json.loads(text[len("API-CHECK "):])


def _text(cell) -> str:
    """A cell's printed text and its outputs' text/plain and text/html."""
    return "\n".join(o.get("text", "") + o.get("data", {}).get("text/plain", "")
                     + o.get("data", {}).get("text/html", "") for o in cell.get("outputs", []))


def test_notebook_is_on_the_public_api_with_outputs_cleared():
    import nbformat

    notebook = nbformat.read(REPO / "workflows" / "notebooks" / "rankings.ipynb", as_version=4)
    code = "\n".join(c.source for c in notebook.cells if c.cell_type == "code")
    assert "import screening as sc" in code and "sc.load_run(" in code and "sc.Explorer(" in code
    assert "explorer.pair(" in code and ".to_frame()" in code and ".plot(" in code
    assert not re.search(r"^\s*(from|import) screening\.", code, re.M), "internals imported"
    for cell in notebook.cells:
        if cell.cell_type == "code":
            assert not cell.outputs and cell.execution_count is None, "commit the notebook with outputs cleared"


def test_notebook_executes(demo_run):
    _, run = demo_run
    cells, check = _execute_notebook(run)
    outputs = [o for cell in cells for o in cell.get("outputs", [])]
    assert sum("image/png" in o.get("data", {}) for o in outputs) >= 4  # scatter and windows per stack, pairs
    # load_run: the demo run carries first-order error bars and Monte Carlo probabilities, shown in the tables
    assert {"e_above_hull", "rxn_electrolyte", "reduction_potential"} <= {c[:-4] for c in check["std"]}
    assert check["mc"] == ["p_pass_all", "p_top10"]
    top = next(c for c in cells if "with_error_bars(" in c.source and "funnel" in c.source)
    assert "rxn_electrolyte_std" in _text(top) and "p_pass_all" in _text(top)
    # the filter (stack, criteria, element) leaves candidates, the best of which is drilled into
    assert check["selected"] > 0 and check["candidate"]
    # explorer.pair with the stack's electrode and electrolyte, closed and open: pymatgen Reactions, kJ/mol,
    # and the same most negative energies as the rankings
    assert check["explorer"]
    assert check["pairs"] == ["electrode", "electrode_open", "electrolyte", "electrolyte_open"]
    assert check["reactions"] > 0 and any(v < 0 for v in check["kj_per_mol"])
    assert all(check["agree"].values()), check["agree"]
    drill = next(c for c in cells if "explorer.pair(" in c.source)
    shown = _text(drill)
    assert "Reaction" in shown and "reaction_energy_kj_per_mol" in shown and "kJ/mol of" in shown
    assert " -> " in shown  # a balanced reaction in the kinks table


def test_notebook_executes_on_a_run_without_error_bars(demo_run, tmp_path):
    """Runs written before the uncertainty columns (or with them off) lack `_std`, `p_pass_all`, `p_top10`."""
    import json

    import pandas as pd

    _, run = demo_run
    frame = pd.read_parquet(run / "rankings.parquet")
    frame = frame.drop(columns=[c for c in frame.columns if c.endswith("_std") or c.startswith("p_")
                                or c in ("window_margin", "elements", "bare_rxn")])
    frame.to_parquet(tmp_path / "rankings.parquet")
    provenance = json.loads((run / "provenance.json").read_text())
    for key in ("uncertainty", "monte_carlo", "funnel"):
        provenance.pop(key, None)
    (tmp_path / "provenance.json").write_text(json.dumps(provenance))
    cells, check = _execute_notebook(tmp_path)
    assert check["std"] == [] and check["mc"] == []
    assert "none in this run" in _text(cells[1])
    assert check["reactions"] > 0 and all(check["agree"].values())
