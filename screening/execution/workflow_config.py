"""The Snakemake workflow's config, checked whole before any job runs.

The workflow's config is a screen config (screening/screen/config.py) plus a `workflow` section. The
Snakefile asks `screening workflow-config` for these settings when it loads, so a bad value (a typo in
a threshold, a run name with shell characters, a shard count of 10^8) stops the workflow with one line
before the first job, exactly as `screening screen` would.
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from screening.errors import InputError
from screening.safe_io import LIMITS, quote
from screening.screen.config import MAX_SHARDS, config_from_dict

MAX_WORKERS_PER_JOB = 1024  # dask processes inside one evaluate job
DEFAULT_SHARDS = 8
# a run name becomes the folder results/<run>/ and appears in every job's command line
_RUN_NAME = re.compile(r"[A-Za-z0-9_-][A-Za-z0-9._-]{0,99}")


@dataclass(frozen=True)
class WorkflowSettings:
    run: str
    run_dir: str  # relative to the Snakemake working directory
    shards: int
    workers_per_job: int
    stack_groups: int = 1

    def as_dict(self) -> dict:
        return asdict(self)


def check_size(obj, what: str) -> None:
    """Refuse a config deeper than LIMITS.max_json_depth or with more than LIMITS.max_yaml_nodes values
    once YAML aliases are expanded (iterative; a shared list is counted each time it is used)."""
    max_nodes, max_depth = LIMITS.max_yaml_nodes, LIMITS.max_json_depth
    stack, count = [(obj, 1)], 0
    while stack:
        node, depth = stack.pop()
        count += 1
        if count > max_nodes:
            raise InputError(f"{what} holds more than {max_nodes} values (YAML aliases expanded; "
                             "SCREENING_MAX_YAML_NODES)")
        if isinstance(node, dict):
            children = list(node.keys()) + list(node.values())
        elif isinstance(node, (list, tuple)):
            children = list(node)
        else:
            continue
        if depth > max_depth:
            raise InputError(f"{what} is nested more than {max_depth} levels deep")
        stack.extend((child, depth + 1) for child in children)


def run_name(value) -> str:
    """The run name: 1-100 of A-Z a-z 0-9 . _ - , not starting with '.', no '..' (it names a folder)."""
    if isinstance(value, bool) or not isinstance(value, (str, int)) or \
            (isinstance(value, int) and not -10**30 < value < 10**30):
        raise InputError(f"'run' must be a name (A-Z, a-z, 0-9, '.', '_', '-'), got {quote(value)}")
    text = str(value)
    if not _RUN_NAME.fullmatch(text) or ".." in text:
        raise InputError(f"'run' = {quote(text)} must be 1-100 characters of A-Z, a-z, 0-9, '.', '_', '-', "
                         "not starting with '.' and without '..' (it names the folder results/<run>/)")
    return text


def _bounded(section: dict, key: str, default: int, low: int, high: int) -> int:
    value = section.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int):
        raise InputError(f"workflow.{key} must be a whole number {low}..{high}, got {quote(value)}")
    if not low <= value <= high:
        raise InputError(f"workflow.{key} = {quote(value)} is outside {low}..{high}")
    return value


def check_stack_groups(groups: int, n_stacks: int, n_shards: int) -> None:
    """workflow.stack_groups: at most one group per stack, and the shards a multiple of the groups."""
    if groups > n_stacks:
        raise InputError(f"workflow.stack_groups = {groups} is more than the {n_stacks} stacks")
    if n_shards % groups:
        raise InputError(f"workflow.shards = {n_shards} must be a multiple of workflow.stack_groups = {groups}")


def workflow_settings(raw, source: str = "workflow config") -> WorkflowSettings:
    """Validate the whole workflow config (every screen key as `screening screen` does, and the
    workflow section); return the settings the Snakefile needs. InputError (one line) otherwise."""
    check_size(raw, source)
    if not isinstance(raw, dict):
        raise InputError(f"{source}: the top level must be a mapping of keys to values")
    try:
        run = run_name(raw.get("run", "default"))
        section = raw.get("workflow") or {}
        if not isinstance(section, dict):
            raise InputError(f"'workflow' must be a mapping (shards, workers_per_job), got {quote(section)}")
        shards = _bounded(section, "shards", DEFAULT_SHARDS, 1, MAX_SHARDS)
        workers = _bounded(section, "workers_per_job", 0, 0, MAX_WORKERS_PER_JOB)
        groups = _bounded(section, "stack_groups", 1, 1, MAX_SHARDS)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    screen = config_from_dict(raw, source=source)
    try:
        check_stack_groups(groups, len(screen.stacks), shards)
    except InputError as exc:
        raise InputError(f"{source}: {exc}") from None
    return WorkflowSettings(run=run, run_dir=f"results/{run}", shards=shards, workers_per_job=workers,
                            stack_groups=groups)
