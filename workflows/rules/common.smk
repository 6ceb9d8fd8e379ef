# Shared settings. The Snakemake config is the screen config (see screening/screen/config.py) plus a
# `workflow` section. It is checked whole when the Snakefile loads, before any job, by the same
# validation as `screening screen` (`screening workflow-config`): a bad value stops the workflow with
# one line. Each rule's params hold only the config parts it reads, so editing a threshold reruns only
# the ranking and the report, and editing the stacks reruns everything. Each rule's params also hold
# the digest of the package's source (CODE): after an upgrade or an edit of the package, everything
# reruns instead of keeping results that older code made. Every value in a shell command is quoted.
import json
import shlex
import shutil
import subprocess
import sys

# the package's own command, from the environment Snakemake runs in (a shell-quoted word list)
SCREENING_ARGV = [shutil.which("screening")] if shutil.which("screening") else [sys.executable, "-m", "screening"]
SCREENING = shlex.join(SCREENING_ARGV)
MAX_CONFIG_VALUES = 100_000  # what `screening workflow-config` accepts too (SCREENING_MAX_YAML_NODES)


def _fail(message):
    """One line on stderr and exit status 2, as every screening command does for bad input."""
    print(f"screening: error: {message}", file=sys.stderr, flush=True)
    sys.exit(2)


def _small_copy(value, budget=None):
    """A plain copy of the config, refused when it holds more than MAX_CONFIG_VALUES values once YAML
    aliases are expanded (an alias bomb must not reach json.dumps)."""
    budget = budget if budget is not None else [MAX_CONFIG_VALUES]
    budget[0] -= 1
    if budget[0] < 0:
        _fail(f"the workflow config holds more than {MAX_CONFIG_VALUES} values (YAML aliases expanded)")
    if isinstance(value, dict):
        return {k: _small_copy(v, budget) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_small_copy(v, budget) for v in value]
    return value


def _settings():
    """The checked settings of this config (run, run_dir, shards, workers_per_job) and the code's
    version with its source digest, asked of the command itself: this process may import another
    copy of the package (Snakemake puts the Snakefile's folder first on sys.path)."""
    try:
        text = json.dumps(_small_copy(config), sort_keys=True, default=str)
    except (RecursionError, ValueError):
        _fail("the workflow config is nested too deeply")
    try:
        proc = subprocess.run([*SCREENING_ARGV, "workflow-config", "--config-json", "-"], input=text,
                              capture_output=True, text=True, timeout=300)
    except (OSError, subprocess.TimeoutExpired) as exc:
        _fail(f"cannot run '{SCREENING} workflow-config': {exc}")
    if proc.returncode != 0:
        lines = (proc.stderr or proc.stdout).strip().splitlines() or ["(no message)"]
        message = lines[-1].removeprefix("screening: error: ")
        _fail(message if proc.returncode == 2 else f"'{SCREENING} workflow-config' failed: {message[-300:]}")
    return json.loads(proc.stdout)


SETTINGS = _settings()
if workflow.overwrite_configfiles:
    print(f"config: {' + '.join(map(str, workflow.overwrite_configfiles))} replaces the default config "
          f"({DEFAULT_CONFIG}); nothing of the default is used", file=sys.stderr)
RUN = SETTINGS["run"]
RUN_DIR = SETTINGS["run_dir"]
N_SHARDS = SETTINGS["shards"]
JOB_WORKERS = SETTINGS["workers_per_job"]
STACK_GROUPS = int(SETTINGS["stack_groups"])  # shards split the stacks too (a whole number, checked)
CODE = SETTINGS["code"]
SHARDS = [f"{k:03d}" for k in range(N_SHARDS)]


def section(*keys):
    """A canonical JSON string of the config sections a rule reads: passed to the step as
    --config-json and kept in params, so the rule reruns exactly when they change."""
    return json.dumps({k: config[k] for k in ("run", *keys) if k in config}, sort_keys=True, default=str)
