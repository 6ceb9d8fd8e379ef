"""A whole screen: enumerate, evaluate in parallel, rank, write the run folder atomically.

Run folder: rankings.parquet, rankings.csv (byte-identical for identical inputs), provenance.json. It is
created only once the results exist (a new folder appears whole, by one rename): an interrupted,
killed or failed screen leaves nothing behind.
"""

from __future__ import annotations

import io
import json
import os
import secrets
import shutil
import socket
import tempfile
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from screening.data.snapshot import atomic_write_with, atomic_write_bytes
from screening.errors import InputError
from screening.execution.runner import check_scheduler_address, default_workers, execute, make_tasks
from screening.execution.uncertainty_run import add_monte_carlo
from screening.provenance import CONVENTIONS, clean_numbers, now_utc, package_versions
from screening.screen.config import ScreenConfig
from screening.screen.evaluate import bare_pairs
from screening.screen.rank import rank

FLOAT_DIGITS = 9
SCREEN_CONVENTIONS = {
    **CONVENTIONS,
    "stack_reactions": "most negative mixture; closed with the discharged electrode and the "
                       "electrolyte (eV/atom); open to Li at the electrode potential with the charged "
                       "electrode and the electrolyte, mutual reaction only (eV per non-Li atom)",
    "hypothetical_candidates": "grid points at their hull energy plus the amorphisation penalty",
    "proxies": "hybrid films (alucone, ...) are computed as their named inorganic proxy, flagged in "
               "column proxy_for",
}


def evaluate_rows(config: ScreenConfig, table, candidates, workers=None, scheduler=None,
                  progress: Callable[[int], None] | None = None, jobs: list[str] | None = None) -> dict[str, list]:
    """Rows of every candidate in every stack, as columns (runner.execute); on Slurm (config.cluster)
    the job ids go to `jobs`."""
    tasks = make_tasks(candidates, config.stack_specs, table.source.path, config.max_e_above_hull,
                       config.chunk_size, config.user_entries, config.user_scheme,
                       config.user_mode, config.exclude_entries, config.error_spec())
    slurm = config.slurm if config.cluster == "slurm" else None
    return execute(tasks, workers=workers, scheduler=scheduler, progress=progress, slurm=slurm, jobs=jobs)


def load_properties():
    """The property files beside the data (band gaps, ALD list, conductivities; each optional)."""
    from screening.screen.annotate import PropertySet

    return PropertySet.load()


def rank_rows(config: ScreenConfig, rows, bare: dict[str, dict], properties=None) -> pd.DataFrame:
    """The rounded rankings of rows (rank()'s forms: row dicts, {column: values}, a DataFrame)."""
    if len(rows) == 0:
        raise InputError("no candidate passed the enumeration filters: nothing to rank")
    frame = rank(rows, bare, config.thresholds, config.score_weights, [s.name for s in config.stacks],
                 properties=properties)
    return round_frame(frame)


def ranking_summary(config: ScreenConfig, frame: pd.DataFrame, properties) -> dict:
    """Provenance of the ranking: the property files used and the funnel per stack."""
    from screening.screen.rank import funnel

    return {"properties": properties.provenance() if properties is not None else None,
            "funnel_order": list(config.funnel_order), "funnel": funnel(frame, list(config.funnel_order))}


def round_frame(frame: pd.DataFrame) -> pd.DataFrame:
    floats = frame.select_dtypes("float").columns
    frame[floats] = frame[floats].round(FLOAT_DIGITS) + 0.0
    return frame


def write_rankings(frame: pd.DataFrame, out_dir: Path) -> None:
    """rankings.parquet and rankings.csv, each written atomically (streamed: a full-matrix screen's CSV
    is about a gigabyte)."""
    atomic_write_with(out_dir / "rankings.parquet",
                      lambda handle: frame.to_parquet(handle, index=False, engine="pyarrow", compression="zstd"))

    def csv(handle):
        text = io.TextIOWrapper(handle, encoding="utf-8", newline="")
        frame.to_csv(text, index=False, float_format=f"%.{FLOAT_DIGITS}g", lineterminator="\n", chunksize=20000)
        text.flush()
        text.detach()

    atomic_write_with(out_dir / "rankings.csv", csv)


def provenance(config: ScreenConfig, table, n_candidates: int, bare: dict[str, dict],
               extra: dict | None = None) -> dict:
    return clean_numbers({
        "run": config.run, "created": now_utc(),
        "data_source": table.source.as_dict(),
        "user_supplied_entries": sorted(table.names[table.user_supplied].tolist()),
        "user_entry_files": list(config.user_entries), "user_scheme": config.user_scheme,
        "conventions": SCREEN_CONVENTIONS,
        "thresholds": config.thresholds, "score_weights": config.score_weights,
        "max_e_above_hull_for_candidates": config.max_e_above_hull,
        "uncertainty": {"first_order": config.error_model.as_dict() if config.error_model else None,
                        "monte_carlo": config.monte_carlo},
        "stacks": [s.as_dict() for s in config.stacks], "bare_pairs": bare,
        "n_candidates": n_candidates, "config": config.raw, "versions": package_versions(),
        **({"amorphous_grids": config.amorphous_used} if getattr(config, "amorphous_used", None) else {}),
        **(extra or {})})


def write_json(path: Path, payload: dict) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def check_out_dir(out_dir: Path) -> None:
    """Fail before any work if the run folder could not be written; creates nothing (a probe folder in
    the nearest existing ancestor is removed at once)."""
    if out_dir.exists():
        if not out_dir.is_dir():
            raise InputError(f"the output folder {out_dir} is a file")
        probe_in = out_dir
    else:
        probe_in = out_dir.absolute().parent
        while not probe_in.exists():
            probe_in = probe_in.parent
        if not probe_in.is_dir():
            raise InputError(f"cannot create the output folder {out_dir}: {probe_in} is a file")
    try:
        os.rmdir(tempfile.mkdtemp(prefix=".screening-probe-", dir=probe_in))
    except OSError as exc:
        raise InputError(f"cannot create the output folder {out_dir}: {exc.strerror or exc}") from None


def write_run_folder(out_dir: Path, frame: pd.DataFrame, provenance_payload: dict) -> None:
    """rankings.parquet, rankings.csv and provenance.json. A new folder is filled beside its final place
    and renamed into it, so it appears complete or not at all; an existing one gets each file atomically."""
    if out_dir.is_dir():
        write_rankings(frame, out_dir)
        write_json(out_dir / "provenance.json", provenance_payload)
        return
    created = []  # ancestors this call creates, removed again if the writing fails
    for ancestor in reversed(out_dir.absolute().parents):
        if not ancestor.exists():
            created.append(ancestor)
    staging = None
    try:
        out_dir.parent.mkdir(parents=True, exist_ok=True)
        _remove_stale_staging(out_dir)
        staging = out_dir.parent / f".{out_dir.name}.{_HOST}-{os.getpid()}.{secrets.token_hex(4)}.tmp"
        staging.mkdir()
        write_rankings(frame, staging)
        write_json(staging / "provenance.json", provenance_payload)
        os.rename(staging, out_dir)
        staging = None
    except OSError as exc:
        raise InputError(f"cannot write the output folder {out_dir}: {exc.strerror or exc}") from None
    finally:
        if staging is not None:
            shutil.rmtree(staging, ignore_errors=True)
            for ancestor in reversed(created):
                try:
                    ancestor.rmdir()
                except OSError:
                    break


_HOST = socket.gethostname().replace(".", "_")


def _remove_stale_staging(out_dir: Path) -> None:
    """Staging folders of this run folder left by a killed screen of this host (its process is gone)."""
    for path in out_dir.parent.glob(f".{out_dir.name}.{_HOST}-*.tmp"):
        pid = path.name[len(f".{out_dir.name}.{_HOST}-"):].split(".")[0]
        if pid.isdigit() and not _alive(int(pid)):
            shutil.rmtree(path, ignore_errors=True)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except OSError:
        return True
    return True


def run_screen(config: ScreenConfig, out_dir: Path, workers: int | None = None,
               scheduler: str | None = None, progress_factory=None, limit: int | None = None) -> pd.DataFrame:
    """Enumerate, evaluate, rank and write `out_dir`. Returns the rankings.

    progress_factory(total, desc, unit) returns a bar with update(n) and close() (tqdm's)."""
    if scheduler is not None:
        check_scheduler_address(scheduler)
        if config.cluster == "slurm":
            raise InputError("--scheduler uses a cluster someone else started; it cannot be combined with "
                             "--cluster slurm (or execution: {cluster: slurm})")
    if config.cluster == "slurm" and workers is not None:
        raise InputError("--workers sets local worker processes; on Slurm set execution: {slurm: "
                         "{maximum_workers: N}} in the config")
    check_out_dir(out_dir)
    table = config.table()
    work = config.enumeration_work()
    bar = progress_factory(work, "enumerating", "stoichiometries") if progress_factory and work else None
    try:
        candidates = config.candidates(table, progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    if limit is not None:
        candidates = candidates[:limit]
    started = time.perf_counter()
    bar = progress_factory(len(candidates), f"screening x {len(config.stacks)} stacks", "cand") if progress_factory else None
    jobs: list[str] = []
    try:
        rows = evaluate_rows(config, table, candidates, workers=config.workers if workers is None else workers,
                             scheduler=scheduler, progress=bar.update if bar else None, jobs=jobs)
    finally:
        if bar:
            bar.close()
    bare = bare_pairs(table, config.stacks)
    properties = load_properties()
    frame = pd.DataFrame(rows)
    rows.clear()  # the columns' values now live in the frame: free the lists before ranking
    frame = rank_rows(config, frame, bare, properties)
    frame, monte_carlo = add_monte_carlo(config, frame, table, workers=config.workers if workers is None else workers,
                                         scheduler=scheduler, progress_factory=progress_factory)
    frame = round_frame(frame)
    elapsed = time.perf_counter() - started
    used = workers if workers is not None else (config.workers if config.workers is not None else default_workers())
    execution = {"cluster": config.cluster, "workers": used, "scheduler": scheduler, "seconds": round(elapsed, 1)}
    if config.cluster == "slurm":
        execution.update(workers=config.slurm.maximum_workers, slurm=config.slurm.as_dict(), slurm_jobs=jobs)
    write_run_folder(out_dir, frame, provenance(config, table, len(candidates), bare, {
        "execution": execution, **monte_carlo,
        **ranking_summary(config, frame, properties)}))
    return frame
