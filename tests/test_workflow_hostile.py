"""Hostile workflow configs and faults: nothing from a config reaches a shell unquoted, the whole config is
checked before any job, step commands fail in one line, and parts are trusted only when verified (a
killed Snakemake's orphan jobs cannot smuggle in a result)."""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest
import yaml

from screening.cli import main
from screening.errors import DataError, InputError

REPO = Path(__file__).resolve().parents[1]
BIN = Path(sys.executable).parent
# a few Li-Al-O compositions of the data against one stack: seconds per evaluation
TINY = {"run": "tiny", "candidates": {"data": {"require": ["Li", "O"], "allow": ["Al"], "max_elements": 3},
                                      "library": False},
        "stacks": [{"electrode": "Li", "electrolyte": "LLZO"}], "workflow": {"shards": 2, "workers_per_job": 0}}


def snakemake(workdir: Path, config: dict | Path, *args: str, timeout: int = 600) -> subprocess.CompletedProcess:
    if isinstance(config, dict):
        path = workdir / "config.yaml"
        workdir.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        config = path
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "1",
           "--configfile", str(config), *args]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)


def error_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.startswith("screening: error:")]


def cli(argv: list[str], capsys) -> tuple[int, str]:
    code = main(argv)
    return code, capsys.readouterr().err


# --- the Snakefile: quoting and validation before any job -------------------------------------

def test_every_interpolated_value_in_every_rule_is_quoted():
    """{SCREENING} is quoted when built (shlex.join); every other field of a shell command has :q."""
    rules = [REPO / "Snakefile", *sorted((REPO / "workflows" / "rules").glob("*.smk"))]
    shells = []
    for path in rules:
        text = path.read_text()
        for match in re.finditer(r"shell:\s*\n((?:\s+\".*\"\s*\n)+)", text):
            shells.append((path.name, match.group(1)))
    assert len(shells) == 5
    for name, shell in shells:
        fields = re.findall(r"(?<!\{)\{([^{}]+)\}(?!\})", shell)
        assert fields, name
        unquoted = [f for f in fields if f != "SCREENING" and not f.endswith(":q")]
        assert not unquoted, (name, unquoted)


@pytest.mark.parametrize("where", ["run", "entries", "user_entries", "stack", "threshold"])
def test_shell_metacharacters_in_config_values_run_nothing(tmp_path, where):
    pwned = tmp_path / "PWNED"
    payloads = [f"x$(touch {pwned})", f"x`touch {pwned}`", f"x;touch {pwned}", f"x|touch {pwned}",
                f"x&&touch {pwned}", f"x'\"$(touch {pwned})"]
    config = json.loads(json.dumps(TINY))
    if where == "run":
        config["run"] = payloads[0]
    elif where == "entries":
        config["entries"] = " ".join(payloads)
    elif where == "user_entries":
        config["user_entries"] = payloads
    elif where == "stack":
        config["stacks"] = [{"electrode": payloads[2], "electrolyte": "LLZO"}]
    else:
        config["thresholds"] = {"e_above_hull": payloads[1]}
    proc = snakemake(tmp_path / "work", config)
    assert proc.returncode != 0
    assert not pwned.exists(), proc.stderr[-2000:]
    assert not list((tmp_path / "work").glob("results/*/parts/*.parquet"))


def test_a_valid_config_with_shell_characters_in_paths_runs_quoted(tmp_path):
    """A value that passes validation (an entries path) goes to the job quoted: the job fails on the
    missing file, and nothing runs."""
    pwned = tmp_path / "PWNED"
    config = {**TINY, "entries": f"/nonexistent/x$(touch {pwned});`touch {pwned}`.csv"}
    proc = snakemake(tmp_path / "work", config)
    assert proc.returncode != 0
    assert "data file not found" in proc.stderr or "/nonexistent/" in proc.stderr, proc.stderr[-2000:]
    assert not pwned.exists()


@pytest.mark.parametrize("change, message", [
    ({"thresholds": {"rxn_electrod": -0.03}}, "unknown key 'rxn_electrod'"),
    ({"workflow": {"shards": 100000000}}, "workflow.shards = 100000000 is outside 1..1000"),
    ({"workflow": {"shards": "abc"}}, "workflow.shards must be a whole number"),
    ({"run": "../escape"}, "'run' = '../escape' must be"),
])
def test_bad_config_stops_the_workflow_before_any_job_in_one_line(tmp_path, change, message):
    started = time.perf_counter()
    proc = snakemake(tmp_path, {**TINY, **change}, "-n")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and message in lines[0], proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and "Job stats" not in proc.stdout + proc.stderr
    assert not (tmp_path / "results").exists()
    assert time.perf_counter() - started < 120  # 10^8 shards: refused, not planned


def test_yaml_alias_bomb_config_is_refused_in_one_line(tmp_path):
    levels = ["a: &a [x, x, x, x, x, x, x, x, x, x]"]
    for k in range(1, 8):
        prev = chr(ord("a") + k - 1)
        levels.append(f"{chr(ord('a') + k)}: &{chr(ord('a') + k)} [{', '.join([f'*{prev}'] * 10)}]")
    bomb = tmp_path / "bomb.yaml"
    bomb.write_text("run: bomb\n" + "\n".join(levels) + "\nstacks: *h\n")
    proc = snakemake(tmp_path, bomb, "-n")
    assert proc.returncode == 2, proc.stderr[-2000:]
    lines = error_lines(proc.stderr)
    assert len(lines) == 1 and len(lines[0]) < 300 and "values" in lines[0], proc.stderr[-2000:]


def test_configfile_replaces_the_default_config_and_says_so(tmp_path):
    proc = snakemake(tmp_path, TINY, "-n")
    assert proc.returncode == 0, proc.stderr[-2000:]
    text = proc.stdout + proc.stderr
    assert "is extended by" not in text
    assert re.search(r"^config: \S+config\.yaml replaces the default config \(workflows/config/default\.yaml\)",
                     text, re.M)
    assert "results/tiny/shards/shard_001.json" in text and "results/default" not in text


@pytest.mark.parametrize("raw, message", [
    ({"workflow": {"shards": 0}}, "outside 1..1000"),
    ({"workflow": {"shards": -3}}, "outside 1..1000"),
    ({"workflow": {"shards": 2.5}}, "must be a whole number"),
    ({"workflow": {"shards": True}}, "must be a whole number"),
    ({"workflow": {"shards": "8"}}, "must be a whole number"),
    ({"workflow": {"shards": 1001}}, "outside 1..1000"),
    ({"workflow": {"workers_per_job": -1}}, "outside 0..1024"),
    ({"workflow": {"workers_per_job": 1.0}}, "must be a whole number"),
    ({"workflow": [1, 2]}, "'workflow' must be a mapping"),
    ({"workflow": {"shards": 2, "stack_groups": 2}}, "more than the 1 stacks"),
    ({"workflow": {"shards": 3, "stack_groups": 2}, "stacks": {"electrodes": ["Li"], "electrolytes": ["LLZO", "LPS"]}},
     "must be a multiple of workflow.stack_groups"),
    ({"workflow": {"stack_groups": 10**5000}}, "an integer of about 5001 digits"),
    ({"workflow": {"stack_groups": "2; rm -rf ~"}}, "must be a whole number"),
    ({"stacks": {"electrodes": ["Li"] * 3000, "electrolytes": ["LLZO"]}}, "1..2000 materials"),
    ({"execution": {"cluster": "slurm", "slurm": {"queue": "debug\n#SBATCH --wrap=id"}}}, "queue"),
    ({"run": "a/b"}, "must be 1-100 characters"),
    ({"run": "a..b"}, "must be 1-100 characters"),
    ({"run": ".hidden"}, "must be 1-100 characters"),
    ({"run": ""}, "must be 1-100 characters"),
    ({"run": "r\u00e9sultats"}, "must be 1-100 characters"),
    ({"run": "a b"}, "must be 1-100 characters"),
    ({"run": "x" * 101}, "must be 1-100 characters"),
    ({"run": ["x"]}, "'run' must be a name"),
    ({"thresholds": {"rxn_electrode": "low"}}, "must be a finite number"),
    ({"stacks": [{"electrode": "NMC811"}]}, "electrolyte"),
])
def test_workflow_config_refuses_bad_values(raw, message):
    from screening.execution.workflow_config import workflow_settings

    with pytest.raises(InputError, match=re.escape(message)):
        workflow_settings({**TINY, **raw})


def test_workflow_config_accepts_and_reports_settings(capsys):
    code = main(["workflow-config", "--config-json", json.dumps({**TINY, "run": "v1.2_a-b"})])
    assert code == 0
    settings = json.loads(capsys.readouterr().out)
    assert settings["run"] == "v1.2_a-b" and settings["run_dir"] == "results/v1.2_a-b"
    assert settings["shards"] == 2 and settings["workers_per_job"] == 0
    assert re.fullmatch(r"screening \S+ \(code sha256 [0-9a-f]{64}\)", settings["code"])


def test_workflow_config_counts_aliased_values():
    from screening.execution.workflow_config import workflow_settings

    leaf = ["Li"] * 10
    for _ in range(6):  # 10^6 values through shared lists, as YAML aliases build them
        leaf = [leaf] * 10
    with pytest.raises(InputError, match="more than 100000 values"):
        workflow_settings({**TINY, "candidates": {"data": {"require": leaf}}})


# --- step commands: one line, exit 2 ----------------------------------------------------------

@pytest.mark.parametrize("text, message", [
    ("[" * 5000 + "]" * 5000, "nested"),
    ('{"run": ' + "9" * 5000 + "}", "digits"),
    ('{"run": "a", "run": "b"}', "appears twice"),
    ('{"thresholds": {"e_above_hull": NaN}}', "NaN"),
    ("{", "not valid JSON"),
])
@pytest.mark.parametrize("command", ["data-info", "shard", "rank", "workflow-config"])
def test_config_json_is_parsed_with_bounds(tmp_path, capsys, command, text, message):
    argv = {"data-info": ["data-info", "--out", str(tmp_path / "d.json")],
            "shard": ["shard", "--out", str(tmp_path / "s.json")],
            "rank": ["rank", "--parts", str(tmp_path / "p.parquet"), "--out", str(tmp_path)],
            "workflow-config": ["workflow-config"]}[command]
    code, err = cli([*argv, "--config-json", text], capsys)
    assert code == 2
    assert len(err.strip().splitlines()) == 1 and err.startswith("screening: error: --config-json")
    assert message in err and len(err) < 300
    assert not list(tmp_path.iterdir())


def test_data_info_into_an_unwritable_place_is_one_line(capsys):
    code, err = cli(["data-info", "--config-json", json.dumps(TINY), "--out", "/proc/nope/x.json"], capsys)
    assert code == 2
    assert err.startswith("screening: error: cannot write data summary /proc/nope/x.json")
    assert len(err.strip().splitlines()) == 1


def test_shard_refuses_the_same_file_twice_and_counts_what_it_writes(tmp_path, capsys):
    same = tmp_path / "s.json"
    code, err = cli(["shard", "--config-json", json.dumps(TINY), "--out", str(same), str(same)], capsys)
    assert code == 2 and "is given twice" in err and not same.exists()
    code, err = cli(["shard", "--config-json", json.dumps(TINY), "--out", str(same),
                     f"{tmp_path}/../{tmp_path.name}/s.json"], capsys)
    assert code == 2 and "is given twice" in err
    outs = [tmp_path / f"s{k}.json" for k in range(3)]
    assert main(["shard", "--config-json", json.dumps(TINY), "--json", "--out", *map(str, outs)]) == 0
    reported = json.loads(capsys.readouterr().out)
    written = sum(len(json.loads(p.read_text())["candidates"]) for p in outs)
    assert reported == {"candidates": written, "shards": 3} and written > 3


@pytest.fixture(scope="module")
def tiny_shards(tmp_path_factory):
    folder = tmp_path_factory.mktemp("shards")
    paths = [folder / "shard_000.json", folder / "shard_001.json"]
    assert main(["shard", "--config-json", json.dumps(TINY), "--out", *map(str, paths)]) == 0
    return paths


def test_evaluate_on_a_damaged_shard_is_one_line(tmp_path, capsys, tiny_shards):
    good = json.loads(tiny_shards[0].read_text())
    cases = {"missing": {k: v for k, v in good.items() if k != "stacks"},
             "bad_candidate": {**good, "candidates": [{"name": "x"}]},
             "bad_stack": {**good, "stacks": [{"electrode": "Li"}]},
             "bad_count": {**good, "chunk_size": 10**9},
             "amorphous_not_a_list": {**good, "amorphous_grids": "x" * 100},
             "amorphous_too_many": {**good, "amorphous_grids": [{}] * 10001},
             "not_a_dict": [1, 2]}
    for name, payload in cases.items():
        shard = tmp_path / f"{name}.json"
        shard.write_text(json.dumps(payload))
        code, err = cli(["evaluate", str(shard), "--out", str(tmp_path / f"{name}.parquet")], capsys)
        assert code == 2, (name, err)
        assert len(err.strip().splitlines()) == 1 and err.startswith("screening: error:"), (name, err)
        assert not (tmp_path / f"{name}.parquet").exists()
    code, err = cli(["evaluate", str(tmp_path / "none.json"), "--out", str(tmp_path / "x.parquet")], capsys)
    assert code == 2 and "shard file" in err


# --- parts: verified, reused, refused ------------------------------------------------------------

def test_a_part_records_its_shard_and_code_and_a_rerun_reuses_it(tmp_path, tiny_shards, monkeypatch):
    from screening.execution import parts, steps
    from screening.provenance import code_digest

    out = tmp_path / "parts" / "part_000.parquet"
    rows, reused = steps.evaluate_shard(tiny_shards[0], out)
    assert rows > 0 and not reused
    frame, meta = parts.read_part(out, "part")
    assert meta["shard_sha256"] == parts.sha256_bytes(tiny_shards[0].read_bytes())
    assert meta["code_sha256"] == code_digest() and meta["rows"] == rows == len(frame)
    first = out.read_bytes()
    out.unlink()  # Snakemake deletes an incomplete output before rerunning its job

    def no_compute(*args, **kwargs):
        raise AssertionError("recomputed a verified result")

    monkeypatch.setattr(steps, "_evaluate", no_compute)
    assert steps.evaluate_shard(tiny_shards[0], out) == (rows, True)
    assert out.read_bytes() == first


def test_a_damaged_or_foreign_kept_result_is_recomputed(tmp_path, tiny_shards):
    from screening.execution import parts, steps
    from screening.provenance import code_digest

    out = tmp_path / "part_001.parquet"
    rows, _ = steps.evaluate_shard(tiny_shards[1], out)
    kept = parts.reuse_path(out, parts.sha256_bytes(tiny_shards[1].read_bytes()), code_digest())
    good = kept.read_bytes()
    kept.write_bytes(good[: len(good) // 2])  # truncated
    assert steps.evaluate_shard(tiny_shards[1], out) == (rows, False)
    frame, _ = parts.read_part(out, "part")
    # a well-formed file under the right name whose metadata names another shard
    kept.write_bytes(parts.part_bytes(frame, "0" * 64, code_digest(), 1, 2))
    assert steps.evaluate_shard(tiny_shards[1], out) == (rows, False)
    assert parts.read_part(kept.read_bytes(), "kept")[1]["shard_sha256"] != "0" * 64


def test_a_result_is_not_installed_when_its_shard_changed_meanwhile(tmp_path, tiny_shards, monkeypatch):
    from screening.execution import steps

    shard = tmp_path / "shard_000.json"
    shard.write_bytes(tiny_shards[0].read_bytes())
    real = steps._evaluate

    def evaluate_then_rewrite(shard_payload, *args):
        result = real(shard_payload, *args)
        payload = json.loads(shard.read_text())
        payload["candidates"] = payload["candidates"][:1]
        shard.write_text(json.dumps(payload))  # the new run's shard step, while the orphan computes
        return result

    monkeypatch.setattr(steps, "_evaluate", evaluate_then_rewrite)
    out = tmp_path / "part_000.parquet"
    with pytest.raises(DataError, match="changed while this shard was evaluated"):
        steps.evaluate_shard(shard, out)
    assert not out.exists()


def test_a_second_evaluation_waits_for_the_first_and_reuses_it(tmp_path, tiny_shards, capsys):
    from screening.execution import parts, steps

    out = tmp_path / "part_000.parquet"
    reference = tmp_path / "reference" / "part_000.parquet"
    rows, _ = steps.evaluate_shard(tiny_shards[0], reference)
    data = reference.read_bytes()
    holding, release = threading.Event(), threading.Event()

    def first_job():  # holds the shard's lock, then leaves its result
        with parts.shard_lock(out):
            holding.set()
            release.wait(30)
            meta = parts.read_part(data, "part")[1]
            parts.keep_reusable(out, data, meta["shard_sha256"], meta["code_sha256"])

    thread = threading.Thread(target=first_job)
    thread.start()
    assert holding.wait(30)
    threading.Timer(1.0, release.set).start()
    try:
        assert steps.evaluate_shard(tiny_shards[0], out) == (rows, True)
    finally:
        release.set()
        thread.join(30)
    assert "waiting for another evaluation of part_000.parquet" in capsys.readouterr().err
    assert out.read_bytes() == data


def test_rank_refuses_a_part_of_another_shard_or_code(tmp_path, tiny_shards, capsys):
    from screening.execution import parts, steps
    from screening.provenance import code_digest

    outs = [tmp_path / "part_000.parquet", tmp_path / "part_001.parquet"]
    for shard, out in zip(tiny_shards, outs):
        steps.evaluate_shard(shard, out)
    base = ["rank", "--config-json", json.dumps(TINY), "--parts", *map(str, outs), "--out", str(tmp_path / "run")]
    assert main([*base, "--shards", *map(str, tiny_shards)]) == 0
    capsys.readouterr()
    # the shards in the wrong order: each part's shard digest names the other file
    code, err = cli([*base, "--shards", *map(str, reversed(tiny_shards))], capsys)
    assert code == 2 and "computed from another version of its shard file" in err
    frame, meta = parts.read_part(outs[1], "part")
    outs[1].write_bytes(parts.part_bytes(frame, meta["shard_sha256"], "f" * 64, 1, 2))
    code, err = cli([*base, "--shards", *map(str, tiny_shards)], capsys)
    assert code == 2 and "computed by other code" in err and "delete it and rerun" in err
    outs[1].write_bytes(parts.part_bytes(frame, meta["shard_sha256"], code_digest(), 0, 2))
    code, err = cli(base, capsys)
    assert code == 2 and "is the same shard" in err
    frame.to_parquet(outs[1])  # no metadata: not written by evaluate
    code, err = cli(base, capsys)
    assert code == 2 and "not written by this version's evaluate step" in err
    for err_line in [err]:
        assert len(err_line.strip().splitlines()) == 1


# --- a SIGKILLed Snakemake: resume after --unlock without recomputing finished work -------------

def test_resume_after_sigkill_reuses_the_orphans_results(tmp_path):
    config = {**TINY, "workflow": {"shards": 2, "workers_per_job": 0}}
    work = tmp_path / "work"
    work.mkdir()
    (work / "config.yaml").write_text(yaml.safe_dump(config))
    cmd = [str(BIN / "snakemake"), "-s", str(REPO / "Snakefile"), "-d", str(work), "--cores", "2",
           "--configfile", str(work / "config.yaml"), "--rerun-incomplete"]
    env = {**os.environ, "PATH": f"{BIN}:{os.environ.get('PATH', '')}"}
    first = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, env=env,
                             start_new_session=True)
    locks = work / "results" / "tiny" / "parts" / ".reuse"
    try:
        deadline = time.monotonic() + 300
        while not list(locks.glob("*.lock")) and first.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        assert first.poll() is None, "the workflow ended before an evaluate job started"
        os.kill(first.pid, signal.SIGKILL)  # Snakemake only: its evaluate jobs live on as orphans
        first.wait(30)
    finally:
        if first.poll() is None:
            first.kill()
    locked = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert locked.returncode != 0 and "--unlock" in locked.stderr
    assert subprocess.run([*cmd, "--unlock"], capture_output=True, timeout=600, env=env).returncode == 0
    resumed = subprocess.run(cmd, capture_output=True, text=True, timeout=600, env=env)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    reused = re.findall(r"rows -> \S+ \(reused", resumed.stdout + resumed.stderr)
    assert reused, resumed.stderr[-3000:]  # an orphan's finished shard is not computed again
    dry = subprocess.run([*cmd, "-n"], capture_output=True, text=True, timeout=600, env=env)
    assert "Nothing to be done" in dry.stdout + dry.stderr
    assert (work / "results" / "tiny" / "rankings.parquet").stat().st_size > 0


def test_shards_carry_the_entry_selection_to_evaluate_and_rank(tmp_path, capsys):
    """exclude_entries and user_mode reach every step: a shard evaluated with the exclusion gives the
    same rows as a screen of the same config."""
    import pandas as pd

    from screening.execution import parts, steps

    config = {**TINY, "exclude_entries": ["LiAl5O8"], "user_mode": "add"}
    shards = [tmp_path / "shard_000.json", tmp_path / "shard_001.json"]
    assert main(["shard", "--config-json", json.dumps(config), "--out", *map(str, shards)]) == 0
    payload = json.loads(shards[0].read_text())
    assert payload["exclude_entries"] == ["LiAl5O8"] and payload["user_mode"] == "add"
    outs = [tmp_path / "part_000.parquet", tmp_path / "part_001.parquet"]
    for shard, out in zip(shards, outs):
        steps.evaluate_shard(shard, out)  # before: "the data file changed since the shards were written"
    rows = pd.concat([parts.read_part(out, "part")[0] for out in outs])
    assert "LiAl5O8" not in set(rows["formula"])
    capsys.readouterr()
    assert main(["rank", "--config-json", json.dumps(config), "--parts", *map(str, outs),
                 "--shards", *map(str, shards), "--out", str(tmp_path / "run")]) == 0
    provenance = json.loads((tmp_path / "run" / "provenance.json").read_text())
    assert "LiAl5O8" in json.dumps(provenance["data_source"])
