"""Running a screen: candidates x stacks in parallel with dask, grouped by chemical system.

Tasks are fixed chunks of candidates (sorted by element set, so a chemical system's LP models are built
once per chunk); every task is computed from scratch by a fresh evaluator, so the rows do not depend on
which worker ran it or on the number of workers. Tasks are submitted a few per worker at a time, which
bounds memory whatever the size of the screen.
"""

from __future__ import annotations

import functools
import os
from dataclasses import dataclass
from typing import Callable, Iterable

from screening.data.snapshot import load_entries
from screening.errors import ScreeningError
from screening.screen.candidates import Candidate
from screening.screen.evaluate import evaluate_candidates
from screening.screen.stacks import make_stack


@dataclass(frozen=True)
class Task:
    """One unit of work: candidates (as dicts, cheap to ship) against the stacks."""

    index: int
    candidates: tuple[dict, ...]
    stack_specs: tuple[dict, ...]
    entries_path: str
    max_e_above_hull: float | None


@functools.lru_cache(maxsize=4)
def _table(path: str):
    return load_entries(path)


def run_task(task: Task) -> tuple[int, list[dict]]:
    """Evaluate one task (runs on a dask worker or in-process)."""
    table = _table(task.entries_path)
    stacks = [make_stack(spec) for spec in task.stack_specs]
    candidates = [Candidate.from_dict(c) for c in task.candidates]
    return task.index, evaluate_candidates(table, candidates, stacks, task.max_e_above_hull)


def make_tasks(candidates: list[Candidate], stack_specs: list[dict], entries_path: str,
               max_e_above_hull: float | None, chunk_size: int) -> list[Task]:
    """Chunks of candidates sorted by element set (ties by formula): deterministic for given inputs."""
    ordered = sorted(candidates, key=lambda c: (c.elements, c.formula, c.proxy_for or "", c.name))
    tasks = []
    for k, start in enumerate(range(0, len(ordered), chunk_size)):
        chunk = tuple(c.as_dict() for c in ordered[start:start + chunk_size])
        tasks.append(Task(k, chunk, tuple(stack_specs), entries_path, max_e_above_hull))
    return tasks


def default_workers() -> int:
    """Worker processes for a local cluster: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def execute(tasks: list[Task], workers: int | None = None, scheduler: str | None = None,
            progress: Callable[[int], None] | None = None) -> list[dict]:
    """Run the tasks and return all rows in task order.

    workers=0 runs in this process without dask; otherwise a LocalCluster of `workers` single-threaded
    processes (default: one per core), or the existing cluster at `scheduler`.
    """
    results: dict[int, list[dict]] = {}
    if workers == 0 and scheduler is None:
        for task in tasks:
            index, rows = run_task(task)
            results[index] = rows
            if progress:
                progress(len(task.candidates))
    else:
        for index, rows in _execute_dask(tasks, workers, scheduler, progress):
            results[index] = rows
    return [row for task in tasks for row in results[task.index]]


def _execute_dask(tasks, workers, scheduler, progress) -> Iterable[tuple[int, list[dict]]]:
    import dask
    from distributed import Client, LocalCluster, as_completed

    dask.config.set({"distributed.worker.daemon": False, "logging.distributed": "error"})
    cluster = None
    try:
        if scheduler:
            try:
                client = Client(scheduler, timeout="20s")
            except (OSError, TimeoutError) as exc:
                raise ScreeningError(f"cannot reach the dask scheduler at {scheduler}: {exc}") from None
        else:
            n = workers or default_workers()
            cluster = LocalCluster(n_workers=n, threads_per_worker=1, processes=True,
                                   dashboard_address=None, silence_logs=50)
            client = Client(cluster)
        with client:
            n_workers = max(1, len(client.scheduler_info().get("workers", {})) or (workers or 1))
            in_flight = 4 * n_workers
            queue = list(tasks)
            futures = as_completed()
            for task in queue[:in_flight]:
                futures.add(client.submit(run_task, task, pure=False))
            next_task = min(in_flight, len(queue))
            for future in futures:
                index, rows = future.result()
                task_size = len(tasks[index].candidates)
                future.release()
                if next_task < len(queue):
                    futures.add(client.submit(run_task, queue[next_task], pure=False))
                    next_task += 1
                if progress:
                    progress(task_size)
                yield index, rows
    finally:
        if cluster is not None:
            cluster.close()
