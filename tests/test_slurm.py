"""The demo workflow on a real single-node Slurm cluster (tests/slurm/start_slurm.sh: Debian's
slurm-wlm and munge on loopback) through workflows/profiles/slurm, against the local run.

The cluster has no slurmdbd, so `sacct` cannot list jobs: the runs add `--slurm-status-command
squeue` (the cluster keeps finished jobs visible to squeue for 20 minutes) and a short first status
check to the profile. Starting the cluster needs root; as another user, start it beforehand with
`sudo tests/slurm/start_slurm.sh`. Without either the module is skipped, unless
SCREENING_REQUIRE_SLURM=1 (CI), which turns every reason to skip into a failure."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[1]
DEMO = REPO / "workflows" / "config" / "demo.yaml"
PROFILE = REPO / "workflows" / "profiles" / "slurm"
SCRIPTS = REPO / "tests" / "slurm"
BIN = Path(sys.executable).parent
REQUIRED = os.environ.get("SCREENING_REQUIRE_SLURM") == "1"
# what this cluster needs on top of the profile (see the module docstring)
SLURM_ARGS = ("--profile", str(PROFILE), "--slurm-status-command", "squeue",
              "--slurm-init-seconds-before-status-checks", "2", "--slurm-keep-successful-logs")
SLURM_RULES = {"prepare": 1, "shard": 1, "evaluate": 3, "rank": 1, "report": 1}

pytestmark = pytest.mark.slow


def _env() -> dict[str, str]:
    env = {**os.environ, "PATH": f"{BIN}:/usr/sbin:/sbin:{os.environ.get('PATH', '')}"}
    if os.environ.get("SLURM_CONF_FILE"):
        env["SLURM_CONF"] = os.environ["SLURM_CONF_FILE"]
    return env


def _unavailable(reason: str):
    if REQUIRED:
        pytest.fail(f"SCREENING_REQUIRE_SLURM=1 but Slurm is unavailable: {reason}", pytrace=False)
    pytest.skip(f"no Slurm cluster: {reason} (set SCREENING_REQUIRE_SLURM=1 to make this a failure)")


def _run(cmd, timeout=60, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=_env(), **kwargs)


def _cluster_up() -> bool:
    """slurmctld answers and a node is idle (or busy)."""
    if not shutil.which("scontrol", path=_env()["PATH"]):
        return False
    try:
        # `scontrol ping` answers at once; sinfo would retry a stopped controller for ~30 s
        if "is UP" not in _run(["scontrol", "ping"], timeout=20).stdout:
            return False
        proc = _run(["sinfo", "-h", "-o", "%T"], timeout=20)
    except subprocess.TimeoutExpired:
        return False
    return proc.returncode == 0 and any(s.startswith(("idle", "mixed", "allocated", "completing"))
                                        for s in proc.stdout.split())


@pytest.fixture(scope="module")
def slurm():
    """A working Slurm cluster: the one already up, else one started here (and stopped after)."""
    was_up = _cluster_up()
    started = False
    if os.geteuid() == 0:
        # as root, always (re)check with the idempotent start script
        try:
            proc = _run(["bash", str(SCRIPTS / "start_slurm.sh")], timeout=900)
        except subprocess.TimeoutExpired as exc:
            pytest.fail(f"start_slurm.sh timed out:\n{exc.stderr}", pytrace=False)
        if proc.returncode in (3, 4):  # packages cannot be installed / a foreign slurm.conf
            _unavailable(f"start_slurm.sh exited {proc.returncode}: {proc.stderr.strip()[-1500:]}")
        assert proc.returncode == 0, f"start_slurm.sh failed ({proc.returncode}):\n{proc.stderr[-4000:]}"
        started = not was_up
    elif not was_up:
        _unavailable("not root, and no cluster is running: start one with `sudo tests/slurm/start_slurm.sh`")
    assert _cluster_up(), _run(["sinfo"]).stdout
    yield
    if started and os.environ.get("SCREENING_KEEP_SLURM") != "1":
        _run(["bash", str(SCRIPTS / "stop_slurm.sh")], timeout=120)


def _snakemake(workdir: Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir),
           "--configfile", str(DEMO), *args]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=_env())
    try:
        out, _ = proc.communicate(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        out, _ = proc.communicate()
        run_id = re.search(r"SLURM run ID: (\S+)", out)
        if run_id:  # its jobs are named after the run id
            _run(["scancel", "--name", run_id.group(1)])
        pytest.fail(f"snakemake timed out after {timeout} s:\n{out[-4000:]}", pytrace=False)
    return subprocess.CompletedProcess(cmd, proc.returncode, out, "")


@pytest.fixture(scope="module")
def slurm_run(slurm, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("slurm_run")
    start = time.monotonic()
    proc = _snakemake(workdir, *SLURM_ARGS)
    elapsed = time.monotonic() - start
    assert proc.returncode == 0, proc.stdout[-6000:]
    run_id = re.search(r"SLURM run ID: (\S+)", proc.stdout)
    assert run_id, proc.stdout[-3000:]
    print(f"slurm run: {elapsed:.0f} s")
    return workdir, run_id.group(1), proc.stdout


@pytest.fixture(scope="module")
def local_run(tmp_path_factory):
    workdir = tmp_path_factory.mktemp("local_run")
    proc = _snakemake(workdir, "--cores", "2")
    assert proc.returncode == 0, proc.stdout[-4000:]
    return workdir


def test_sbatch_runs_a_job(slurm, tmp_path):
    out = tmp_path / "out.txt"
    proc = _run(["sbatch", "--parsable", "-t", "1", "--mem", "100", "-o", str(out),
                 "--wrap", "echo hello from $SLURM_JOB_ID"])
    assert proc.returncode == 0, proc.stderr
    job_id = proc.stdout.strip().split(";")[0]
    for _ in range(240):
        state = _run(["squeue", "--states=all", "--noheader", "-j", job_id, "-o", "%T"]).stdout.strip()
        if state not in ("PENDING", "CONFIGURING", "RUNNING", "COMPLETING"):
            break
        time.sleep(0.5)
    assert state == "COMPLETED", _run(["scontrol", "show", "job", job_id]).stdout
    assert out.read_text().strip() == f"hello from {job_id}"


def test_slurm_run_equals_local_run(slurm_run, local_run):
    slurm_dir, _, _ = slurm_run
    for name in ("rankings.csv", "rankings.parquet"):
        on_slurm = (slurm_dir / "results" / "demo" / name).read_bytes()
        assert on_slurm == (local_run / "results" / "demo" / name).read_bytes(), name
    assert (slurm_dir / "results" / "demo" / "report.html").stat().st_size > 0


def test_every_step_ran_as_a_slurm_job(slurm_run):
    workdir, run_id, log = slurm_run
    # the jobs of this run, by name (the plugin names them after the run id; the comment is the rule)
    proc = _run(["squeue", "--states=all", "--noheader", "--name", run_id, "--format=%i|%T|%k"])
    assert proc.returncode == 0, proc.stderr
    jobs = [line.split("|") for line in proc.stdout.split()]
    assert jobs and all(state == "COMPLETED" for _, state, _ in jobs), proc.stdout
    rules = [re.sub(r"^rule_|_wildcards_.*$", "", comment) for _, _, comment in jobs]
    assert {rule: rules.count(rule) for rule in set(rules)} == SLURM_RULES, proc.stdout
    shards = sorted(c.rsplit("_", 1)[1] for _, _, c in jobs if c.startswith("rule_evaluate_"))
    assert shards == ["000", "001", "002"]
    # the plugin's log of each evaluate job, named after its Slurm job id
    logs = sorted((workdir / ".snakemake" / "slurm_logs" / "rule_evaluate").glob("*/*.log"))
    assert [p.parent.name for p in logs] == ["000", "001", "002"]
    evaluate_ids = {i for i, _, c in jobs if c.startswith("rule_evaluate_")}
    assert {p.stem for p in logs} == evaluate_ids
    assert len(re.findall(r"has been submitted with SLURM jobid", log)) == sum(SLURM_RULES.values())


def test_slurm_rerun_does_nothing(slurm_run):
    workdir, _, _ = slurm_run
    proc = _snakemake(workdir, *SLURM_ARGS, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
    assert "Nothing to be done" in proc.stdout
    assert "submitted with SLURM jobid" not in proc.stdout


# --- dask on Slurm (issue 14 item 3): `screening screen --cluster slurm` -------------------------

def _screen(out: Path, *args: str) -> subprocess.CompletedProcess:
    return _run([str(BIN / "screening"), "screen", "--config", str(DEMO), "--out", str(out), "--no-progress",
                 *args], timeout=600)


@pytest.fixture(scope="module")
def dask_slurm_run(slurm, tmp_path_factory):
    out = tmp_path_factory.mktemp("dask_slurm") / "run"
    proc = _screen(out, "--cluster", "slurm")
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


def test_dask_workers_ran_as_slurm_jobs(dask_slurm_run):
    import json

    execution = json.loads((dask_slurm_run / "provenance.json").read_text())["execution"]
    assert execution["cluster"] == "slurm" and execution["slurm"]["job_name"] == "screening-dask"
    jobs = execution["slurm_jobs"]
    assert jobs, execution
    proc = _run(["squeue", "--states=all", "--noheader", "-j", ",".join(jobs), "--format=%i|%j|%T"])
    assert proc.returncode == 0, proc.stderr
    seen = {i: (name, state) for i, name, state in (line.split("|") for line in proc.stdout.split())}
    assert set(seen) == set(jobs), proc.stdout
    # the screen closes its workers: every job ended (the cluster cancels them at the end)
    assert all(name == "screening-dask" and state in ("COMPLETED", "CANCELLED") for name, state in seen.values()), seen


@pytest.mark.parametrize("workers", ["0", "1", "2"])
def test_dask_slurm_rankings_equal_local_runs(dask_slurm_run, workers, tmp_path):
    proc = _screen(tmp_path / "run", "--workers", workers)
    assert proc.returncode == 0, proc.stderr[-3000:]
    for name in ("rankings.csv", "rankings.parquet"):
        assert (tmp_path / "run" / name).read_bytes() == (dask_slurm_run / name).read_bytes(), (name, workers)


def test_a_partition_slurm_refuses_is_one_line(slurm, tmp_path):
    config = tmp_path / "bad.yaml"
    config.write_text(DEMO.read_text() + "execution:\n  cluster: slurm\n  slurm: {queue: no-such-partition}\n")
    proc = _run([str(BIN / "screening"), "screen", "--config", str(config), "--out", str(tmp_path / "out"),
                 "--no-progress"], timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert proc.stderr.startswith("screening: error: Slurm refuses") and len(proc.stderr.strip().splitlines()) == 1, \
        proc.stderr
    assert "partition" in proc.stderr and not (tmp_path / "out").exists()
