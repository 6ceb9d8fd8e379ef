# Shared settings. The Snakemake config is the screen config (see screening/screen/config.py) plus a
# `workflow` section. Each rule's params hold only the config parts it reads, so editing a threshold
# reruns only the ranking and the report, and editing the stacks reruns everything. Each rule's params
# also hold the digest of the package's source (CODE): after an upgrade or an edit of the package,
# everything reruns instead of keeping results that older code made.
import json
import shutil
import sys
from pathlib import Path

import copy

if workflow.overwrite_configfiles:
    # --configfile replaces the default config instead of merging into it (a demo config must not
    # inherit the default screen's candidates)
    config.clear()
    config.update(copy.deepcopy(workflow.config_settings.overwrite_config))

RUN = str(config.get("run", "default"))
RUN_DIR = f"results/{RUN}"
WORKFLOW = config.get("workflow", {}) or {}
N_SHARDS = int(WORKFLOW.get("shards", 8))
JOB_WORKERS = int(WORKFLOW.get("workers_per_job", 0))
SHARDS = [f"{k:03d}" for k in range(N_SHARDS)]
# the package's own command, from the environment Snakemake runs in
SCREENING = shutil.which("screening") or f"{sys.executable} -m screening"


def _code_version():
    """Version and source digest of the `screening` the rules run. Asked of the command itself: this
    process may import another copy (Snakemake puts the Snakefile's folder first on sys.path)."""
    import shlex
    import subprocess

    from snakemake.exceptions import WorkflowError

    proc = subprocess.run([*shlex.split(SCREENING), "--version"], capture_output=True, text=True)
    if proc.returncode != 0 or "code sha256" not in proc.stdout:
        raise WorkflowError(f"cannot run '{SCREENING} --version': {(proc.stderr or proc.stdout).strip()[-300:]}")
    return proc.stdout.strip()


CODE = _code_version()


def section(*keys):
    """A canonical JSON string of the config sections a rule reads: passed to the step as
    --config-json and kept in params, so the rule reruns exactly when they change."""
    return json.dumps({k: config[k] for k in ("run", *keys) if k in config}, sort_keys=True, default=str)
