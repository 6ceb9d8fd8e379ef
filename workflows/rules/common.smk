# Shared settings. The Snakemake config is the screen config (see screening/screen/config.py) plus a
# `workflow` section. Each rule's params hold only the config parts it reads, so editing a threshold
# reruns only the ranking and the report, and editing the stacks reruns everything.
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


def section(*keys):
    """A canonical JSON string of the config sections a rule reads: passed to the step as
    --config-json and kept in params, so the rule reruns exactly when they change."""
    return json.dumps({k: config[k] for k in ("run", *keys) if k in config}, sort_keys=True, default=str)
