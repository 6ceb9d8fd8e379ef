"""dask clients for a screen: a local cluster, an existing scheduler, or workers as Slurm jobs.

Slurm: dask-jobqueue's SLURMCluster submits jobs that each start `cores` single-threaded worker
processes (as the local cluster does, so a task's LPs and BLAS calls run the same way everywhere),
scaled adaptively between the configured minimum and maximum; the jobs are cancelled when the
screen ends, fails or is interrupted. Job logs go to <cache>/slurm-logs/<job name>/ (the home
folder is shared on a cluster; the working folder is left clean).
"""

from __future__ import annotations

import contextlib
import logging
import re
import shlex
import shutil
import signal
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from screening.data.snapshot import cache_dir
from screening.errors import InputError, ScreeningError
from screening.screen.cluster_settings import SlurmSettings

_ADDRESS = re.compile(r"^(?:(?:tcp|tls|ucx|ws|wss)://)?[A-Za-z0-9_.\-\[\]:]+:\d{1,5}$")


def check_scheduler_address(address: str) -> None:
    """One clear error for an address dask cannot use (before any work starts)."""
    if not _ADDRESS.fullmatch(address):
        raise InputError(f"not a dask scheduler address: {address!r} (expected tcp://host:port)")


@dataclass
class Session:
    """A connected client, how many tasks to keep queued, and the Slurm jobs seen (ids, in order)."""

    client: object
    in_flight: int
    cluster: object = None
    slurm_jobs: list[str] = field(default_factory=list)

    def note_jobs(self) -> None:
        """Record the Slurm job ids of the cluster's current workers (adaptive scaling changes them)."""
        workers = getattr(self.cluster, "workers", None) or {}
        for job in list(workers.values()):
            job_id = getattr(job, "job_id", None)
            if job_id and str(job_id) not in self.slurm_jobs:
                self.slurm_jobs.append(str(job_id))


def slurm_log_dir(settings: SlurmSettings) -> Path:
    return cache_dir() / "slurm-logs" / settings.job_name


@contextlib.contextmanager
def dask_session(workers: int | None, scheduler: str | None, slurm: SlurmSettings | None):
    """Yield a Session; close the client and any cluster this started."""
    import dask
    from distributed import Client, LocalCluster

    dask.config.set({"distributed.worker.daemon": False, "logging.distributed": "error"})
    cluster = client = None
    background = _Captured()
    loggers = [logging.getLogger(name) for name in ("tornado.application", "asyncio", "distributed.deploy.adaptive",
                                                    "distributed.deploy.spec")]
    saved = [(log, log.propagate, list(log.handlers)) for log in loggers]
    for log in loggers:  # a failed job submission is reported once, in the error below, not as a traceback
        log.handlers, log.propagate = [background], False
    try:
        if scheduler:
            check_scheduler_address(scheduler)
            try:
                client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError, ValueError) as exc:
                raise ScreeningError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
            n = max(1, len(client.scheduler_info().get("workers", {})))
            session = Session(client, 4 * n)
        elif slurm is not None:
            with _signals_held():
                cluster = _slurm_cluster(slurm)
                client = Client(cluster)
            session = Session(client, 4 * slurm.maximum_workers, cluster)
            _wait_for_first_worker(session, slurm, background)
        else:
            n = workers or 1
            with _signals_held():
                cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                       dashboard_address=None, silence_logs=50)
                client = Client(cluster)
            session = Session(client, 4 * n, cluster)
        yield session
    finally:
        with _signals_held():
            if client is not None:
                client.close()
            if cluster is not None:
                cluster.close()
        for log, propagate, handlers in saved:
            log.handlers, log.propagate = handlers, propagate


class _Captured(logging.Handler):
    """Keeps the last error of dask's background tasks (e.g. a failed sbatch) as one line."""

    def __init__(self):
        super().__init__(logging.ERROR)
        self.last = ""

    def emit(self, record: logging.LogRecord) -> None:
        error = record.exc_info[1] if record.exc_info else None
        lines = [line.strip() for line in (str(error) if error is not None else record.getMessage()).splitlines()
                 if line.strip()]
        said = [line for line in lines if line.startswith(("sbatch", "error"))]
        self.last = "; ".join(said[-2:]) if said else (lines[0][:300] if lines else "")


def slurm_cluster_options(settings: SlurmSettings) -> dict:
    """Keyword arguments of dask-jobqueue's SLURMCluster for these settings."""
    options = dict(cores=settings.cores, processes=settings.cores, memory=settings.memory,
                   walltime=settings.walltime, job_name=settings.job_name, python=sys.executable,
                   log_directory=str(slurm_log_dir(settings)), scheduler_options={"dashboard_address": None},
                   # one thread per worker process, as on the local cluster
                   job_script_prologue=["export OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1"])
    if settings.queue:
        options["queue"] = settings.queue
    if settings.account:
        options["account"] = settings.account
    if settings.interface:
        options["interface"] = settings.interface
    return options


def _slurm_cluster(settings: SlurmSettings):
    try:
        from dask_jobqueue import SLURMCluster
    except ImportError:
        raise ScreeningError("--cluster slurm needs dask-jobqueue (pip install dask-jobqueue)") from None
    options = slurm_cluster_options(settings)
    Path(options["log_directory"]).mkdir(parents=True, exist_ok=True)
    if shutil.which("sbatch") is None:
        raise ScreeningError("--cluster slurm: Slurm's sbatch is not on PATH (run on a cluster's login node)")
    try:
        cluster = SLURMCluster(**options)
    except (OSError, ValueError, RuntimeError) as exc:
        raise ScreeningError(f"cannot start dask on Slurm: {exc}") from None
    try:
        _preflight(cluster.job_script())
    except BaseException:
        cluster.close()
        raise
    cluster.adapt(minimum=settings.minimum_workers, maximum=settings.maximum_workers)
    return cluster


def _preflight(script: str) -> None:
    """`sbatch --test-only` with the worker job's own #SBATCH options: a wrong partition, account or
    an impossible memory request fails here in one line, before any job or worker exists."""
    options = [arg for line in script.splitlines() if line.startswith("#SBATCH ")
               for arg in shlex.split(line[len("#SBATCH "):])]
    try:
        proc = subprocess.run(["sbatch", "--test-only", *options, "--wrap", "true"], capture_output=True,
                              text=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise ScreeningError(f"--cluster slurm: sbatch --test-only failed: {exc}") from None
    if proc.returncode != 0:
        lines = [line.strip() for line in proc.stderr.splitlines() if line.strip()]
        raise ScreeningError("Slurm refuses the dask worker jobs: " + ("; ".join(lines[-2:]) or f"sbatch exit {proc.returncode}"))


def _wait_for_first_worker(session: Session, settings: SlurmSettings, background: _Captured) -> None:
    """Wait for one worker, or fail with what Slurm says of the jobs (pending reason, logs)."""
    deadline = time.monotonic() + settings.start_timeout
    while time.monotonic() < deadline:
        session.note_jobs()
        if session.client.scheduler_info().get("workers"):
            return
        time.sleep(0.5)
    said = f"; last error: {background.last}" if background.last else ""
    raise ScreeningError(f"no dask worker started on Slurm within {settings.start_timeout} s{said} "
                         f"(jobs {', '.join(session.slurm_jobs) or 'none'}; see `squeue -n {settings.job_name}` "
                         f"and the logs in {slurm_log_dir(settings)}); check queue, account, memory and walltime")


@contextlib.contextmanager
def _signals_held():
    """Hold SIGINT and SIGTERM while a local cluster starts or stops, then deliver them: a start cut
    short leaves worker processes that dask's exit hook fails to close (a traceback and leaked
    semaphores), a stop cut short leaves them running."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    pending: list[int] = []
    previous = {signum: signal.signal(signum, lambda number, frame: pending.append(number))
                for signum in (signal.SIGINT, signal.SIGTERM)}
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)
        for signum in dict.fromkeys(pending):
            signal.raise_signal(signum)  # the restored handler raises KeyboardInterrupt (or the CLI's)
