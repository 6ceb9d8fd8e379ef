"""Where a screen's dask workers run: `execution: {cluster: local | slurm, slurm: {...}}` of a config.

Checked here, before anything starts: every Slurm value goes into an `#SBATCH` line of a job script,
so each must match a strict pattern (a newline or a `;` in a queue name would be a command).
"""

from __future__ import annotations

import re
from dataclasses import asdict, dataclass

from screening.errors import InputError
from screening.safe_io import quote

CLUSTERS = ("local", "slurm")
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.\-]{0,63}$")  # partition, account, job name
_WALLTIME = re.compile(r"^(?:\d{1,3}-)?\d{1,3}:\d{2}(?::\d{2})?$")  # [D-]HH:MM[:SS]
_MEMORY = re.compile(r"^\d{1,7}(?:\.\d{1,3})?\s?(?:[KMGT]i?B)$")  # per job, as dask writes it: 4GB, 500MiB
_INTERFACE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.:\-]{0,31}$")


@dataclass(frozen=True)
class SlurmSettings:
    """dask workers as Slurm jobs (dask-jobqueue's SLURMCluster): each job runs `cores` single-threaded
    worker processes sharing `memory`; the number of workers adapts between the minimum and maximum
    to the work queued. start_timeout: seconds to wait for the first worker before giving up."""

    queue: str | None = None
    account: str | None = None
    walltime: str = "01:00:00"
    cores: int = 1
    memory: str = "2GB"
    minimum_workers: int = 1
    maximum_workers: int = 2
    job_name: str = "screening-dask"
    interface: str | None = None
    start_timeout: int = 300

    def as_dict(self) -> dict:
        return asdict(self)


def parse_cluster(execution: dict, source: str, cluster: str | None = None) -> tuple[str, SlurmSettings | None]:
    """('local', None) or ('slurm', settings) from a config's `execution` mapping; `cluster` (the
    command line's --cluster) wins over the config's."""
    chosen = cluster if cluster is not None else execution.get("cluster", "local")
    if chosen not in CLUSTERS:
        raise InputError(f"{source}: execution 'cluster' must be one of {', '.join(CLUSTERS)}, got {quote(chosen)}")
    raw = execution.get("slurm", {}) or {}
    if not isinstance(raw, dict):
        raise InputError(f"{source}: execution 'slurm' must be a mapping")
    fields = SlurmSettings.__dataclass_fields__
    unknown = sorted(str(k) for k in raw if k not in fields)
    if unknown:
        raise InputError(f"{source}: execution slurm: unknown key {quote(unknown[0])} "
                         f"(allowed: {', '.join(fields)})")
    if chosen == "local":
        return "local", None
    values = {}
    for key in ("queue", "account", "job_name"):
        if raw.get(key) is not None:
            values[key] = _text(raw[key], key, _NAME, source, "letters, digits, _ . - (at most 64)")
    if raw.get("walltime") is not None:
        values["walltime"] = _text(raw["walltime"], "walltime", _WALLTIME, source, "[D-]HH:MM[:SS]")
    if raw.get("memory") is not None:
        values["memory"] = _text(raw["memory"], "memory", _MEMORY, source, "e.g. 4GB or 500MiB")
    if raw.get("interface") is not None:
        values["interface"] = _text(raw["interface"], "interface", _INTERFACE, source, "a network interface, e.g. ib0")
    for key, low, high in (("cores", 1, 256), ("minimum_workers", 1, 4096), ("maximum_workers", 1, 4096),
                           ("start_timeout", 10, 86400)):
        if raw.get(key) is not None:
            values[key] = _integer(raw[key], key, low, high, source)
    settings = SlurmSettings(**values)
    if settings.minimum_workers > settings.maximum_workers:
        raise InputError(f"{source}: execution slurm: minimum_workers ({settings.minimum_workers}) exceeds "
                         f"maximum_workers ({settings.maximum_workers})")
    return "slurm", settings


def _text(value, key: str, pattern: re.Pattern, source: str, expected: str) -> str:
    if isinstance(value, bool) or not isinstance(value, (str, int)) or \
            (isinstance(value, int) and value.bit_length() > 64) or not pattern.fullmatch(str(value)):
        raise InputError(f"{source}: execution slurm '{key}' = {quote(value)} is not valid ({expected})")
    return str(value)


def _integer(value, key: str, low: int, high: int, source: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise InputError(f"{source}: execution slurm '{key}' must be an integer in {low}..{high}, got {quote(value)}")
    return value
