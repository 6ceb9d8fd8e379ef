"""Monte Carlo of a screen's top rows (screening.screen.monte_carlo), its candidates spread over dask
workers like the evaluation: each worker loads the entry table once and draws the same energies from
the seed, so the result does not depend on the number of workers."""

from __future__ import annotations

import time
from dataclasses import dataclass

import pandas as pd

from screening.screen.config import ScreenConfig
from screening.screen.monte_carlo import CandidateJob, MonteCarloSettings, monte_carlo_columns, run_job

MC_CHUNK = 4  # candidates per dask task (each is hundreds of LP solves: small tasks balance best)


@dataclass(frozen=True)
class MonteCarloTask:
    """Candidates' draws on a worker: the table's arguments (as runner.Task) and the settings."""

    index: int
    jobs: tuple[CandidateJob, ...]
    entries_path: str
    user_entries: tuple[str, ...]
    user_scheme: str | None
    user_mode: str
    exclude_entries: tuple[str, ...]
    settings: MonteCarloSettings


def run_monte_carlo_task(task: MonteCarloTask) -> tuple[int, list[dict]]:
    from screening.execution.runner import _table

    table = _table(task.entries_path, task.user_entries, task.user_scheme, task.user_mode,
                   tuple(task.exclude_entries))
    return task.index, [run_job(table, task.settings, job) for job in task.jobs]


def settings_of(config: ScreenConfig) -> MonteCarloSettings | None:
    """The config's Monte Carlo settings, or None when it is off (monte_carlo_top 0)."""
    mc = config.monte_carlo
    if not mc or int(mc.get("top", 0)) <= 0:
        return None
    return MonteCarloSettings(config.energy_errors, int(mc["top"]), int(mc["draws"]), int(mc["seed"]))


def add_monte_carlo(config: ScreenConfig, frame: pd.DataFrame, table, workers: int | None = None,
                    scheduler: str | None = None, progress_factory=None) -> tuple[pd.DataFrame, dict]:
    """The ranked frame with the Monte Carlo columns, and {seconds, candidates, draws, ...} for the
    provenance; the frame unchanged (and None settings) when Monte Carlo is off."""
    settings = settings_of(config)
    if settings is None or frame.empty:
        return frame, {"monte_carlo": None}
    started = time.perf_counter()
    count = {}

    def run_jobs(jobs: list[CandidateJob]) -> list[dict]:
        count["candidates"] = len(jobs)
        tasks = [MonteCarloTask(k, tuple(jobs[i:i + MC_CHUNK]), table.source.path, config.user_entries,
                                config.user_scheme, config.user_mode, config.exclude_entries, settings)
                 for k, i in enumerate(range(0, len(jobs), MC_CHUNK))]
        bar = (progress_factory(len(jobs), f"Monte Carlo x {settings.draws} draws", "cand")
               if progress_factory else None)
        try:
            return _execute(tasks, workers, scheduler, config, bar.update if bar else None)
        finally:
            if bar:
                bar.close()

    out = monte_carlo_columns(frame, table, config.stacks, config.thresholds, config.score_weights, settings,
                              run_jobs=run_jobs)
    summary = {"top": settings.top, "draws": settings.draws, "seed": settings.seed,
               "candidates": count.get("candidates", 0), "seconds": round(time.perf_counter() - started, 1),
               "error_model": settings.model.as_dict(),
               "method": "correlated draws of every entry energy; only the top rows of each stack move, "
                         "the others keep their values and Pareto ranks"}
    return out, {"monte_carlo": summary}


def _execute(tasks: list[MonteCarloTask], workers, scheduler, config: ScreenConfig, progress) -> list[dict]:
    results: dict[int, list[dict]] = {}
    slurm = config.slurm if config.cluster == "slurm" else None
    if workers == 0 and scheduler is None and slurm is None:
        for task in tasks:
            index, values = run_monte_carlo_task(task)
            results[index] = values
            if progress:
                progress(len(task.jobs))
    else:
        from distributed import as_completed

        from screening.execution.clusters import dask_session
        from screening.execution.runner import default_workers

        with dask_session(workers or default_workers(), scheduler, slurm) as session:
            futures = as_completed([session.client.submit(run_monte_carlo_task, task, pure=False)
                                    for task in tasks])
            for future in futures:
                index, values = future.result()
                future.release()
                results[index] = values
                if progress:
                    progress(len(tasks[index].jobs))
    return [value for task in tasks for value in results[task.index]]
