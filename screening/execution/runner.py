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

from screening.data.sources import load_table
from screening.execution.clusters import check_scheduler_address, dask_session  # noqa: F401 (re-exported)
from screening.screen.candidates import Candidate
from screening.screen.cluster_settings import SlurmSettings
from screening.screen.evaluate import evaluate_candidates
from screening.screen.stacks import make_stack
from screening.thermo.error_model import ErrorModel


@dataclass(frozen=True)
class Task:
    """One unit of work: candidates (as dicts, cheap to ship) against the stacks."""

    index: int
    candidates: tuple[dict, ...]
    stack_specs: tuple[dict, ...]
    entries_path: str
    max_e_above_hull: float | None
    user_entries: tuple[str, ...] = ()
    user_scheme: str | None = None
    user_mode: str = "add"
    exclude_entries: tuple[str, ...] = ()
    error_model: tuple | None = None  # ScreenConfig.error_spec(): first-order errors, or None


@functools.lru_cache(maxsize=4)
def _table(path: str, user_entries: tuple[str, ...], user_scheme: str | None, user_mode: str = "add",
           exclude_entries: tuple[str, ...] = ()):
    return load_table(path, user_entries, user_scheme, user_mode=user_mode, exclude_entries=exclude_entries)


def run_task(task: Task) -> tuple[int, list[dict]]:
    """Evaluate one task (runs on a dask worker or in-process)."""
    table = _table(task.entries_path, task.user_entries, task.user_scheme, task.user_mode,
                   tuple(task.exclude_entries))
    stacks = [make_stack(spec) for spec in task.stack_specs]
    candidates = [Candidate.from_dict(c) for c in task.candidates]
    model = None if task.error_model is None else ErrorModel(task.error_model[0], task.error_model[1],
                                                            tuple(tuple(e) for e in task.error_model[2]))
    return task.index, evaluate_candidates(table, candidates, stacks, task.max_e_above_hull, error_model=model)


def make_tasks(candidates: list[Candidate], stack_specs: list[dict], entries_path: str,
               max_e_above_hull: float | None, chunk_size: int, user_entries: tuple[str, ...] = (),
               user_scheme: str | None = None, user_mode: str = "add",
               exclude_entries: tuple[str, ...] = (), error_model: tuple | None = None) -> list[Task]:
    """Chunks of about chunk_size candidates, cut only between chemical systems.

    A chemical system's candidates always share one chunk and are evaluated in the same order, so
    each number is computed with the same LP history (warm starts) however the screen is split into
    chunks, shards or workers: the results are byte-identical.
    """
    tasks = []
    for k, chunk in enumerate(group_chunks(candidates, chunk_size)):
        tasks.append(Task(k, tuple(c.as_dict() for c in chunk), tuple(stack_specs), entries_path,
                          max_e_above_hull, tuple(user_entries), user_scheme, user_mode,
                          tuple(exclude_entries), error_model))
    return tasks


def sort_key(candidate: Candidate):
    return (candidate.elements, candidate.formula, candidate.proxy_for or "", candidate.name)


def group_chunks(candidates: list[Candidate], size: int) -> list[list[Candidate]]:
    """Sorted candidates in chunks of at least `size` (the last may be smaller), whole systems only."""
    ordered = sorted(candidates, key=sort_key)
    chunks: list[list[Candidate]] = []
    current: list[Candidate] = []
    for candidate in ordered:
        if len(current) >= size and candidate.elements != current[-1].elements:
            chunks.append(current)
            current = []
        current.append(candidate)
    if current:
        chunks.append(current)
    return chunks


def default_workers() -> int:
    """Worker processes for a local cluster: the cores this process may use."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except AttributeError:
        return max(1, os.cpu_count() or 1)


def execute(tasks: list[Task], workers: int | None = None, scheduler: str | None = None,
            progress: Callable[[int], None] | None = None, slurm: SlurmSettings | None = None,
            jobs: list[str] | None = None) -> dict[str, list]:
    """Run the tasks and return all rows in task order, as columns ({column: values}; pandas builds
    the same frame from it as from the rows, at a third of the memory of a million row dicts).

    workers=0 runs in this process without dask; otherwise a LocalCluster of `workers` single-threaded
    processes (default: one per core), the existing cluster at `scheduler`, or workers started as
    Slurm jobs (`slurm`; the ids of the jobs that ran are appended to `jobs`).
    """
    results: dict[int, dict[str, list]] = {}
    if workers == 0 and scheduler is None and slurm is None:
        for task in tasks:
            index, rows = run_task(task)
            results[index] = _as_columns(rows)
            if progress:
                progress(len(task.candidates))
    else:
        for index, rows in _execute_dask(tasks, workers, scheduler, progress, slurm, jobs):
            results[index] = _as_columns(rows)
    columns: dict[str, list] = {}
    for task in tasks:
        part = results.pop(task.index)
        if not part:
            continue
        if not columns:
            columns = {key: [] for key in part}
        if list(part) != list(columns):
            raise RuntimeError(f"task {task.index} returned other columns than the tasks before it")
        for key, values in part.items():
            columns[key].extend(values)
    return columns


def _as_columns(rows: list[dict]) -> dict[str, list]:
    """Rows that share their keys (evaluate_candidates' rows) as {key: values}; {} for none."""
    return {key: [row[key] for row in rows] for key in rows[0]} if rows else {}


def _execute_dask(tasks, workers, scheduler, progress, slurm=None, jobs=None) -> Iterable[tuple[int, list[dict]]]:
    from distributed import as_completed

    with dask_session(workers or default_workers(), scheduler, slurm) as session:
        queue = list(tasks)
        futures = as_completed()
        for task in queue[:session.in_flight]:
            futures.add(session.client.submit(run_task, task, pure=False))
        next_task = min(session.in_flight, len(queue))
        for future in futures:
            index, rows = future.result()
            task_size = len(tasks[index].candidates)
            future.release()
            if next_task < len(queue):
                futures.add(session.client.submit(run_task, queue[next_task], pure=False))
                next_task += 1
            session.note_jobs()
            if progress:
                progress(task_size)
            yield index, rows
        if jobs is not None:
            jobs.extend(session.slurm_jobs)
