"""A whole screen: enumerate, evaluate in parallel, rank, write the run folder atomically.

Run folder: rankings.parquet, rankings.csv (byte-identical for identical inputs), provenance.json.
"""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Callable

import pandas as pd

from screening.data.snapshot import atomic_write_bytes
from screening.errors import InputError
from screening.execution.runner import check_scheduler_address, default_workers, execute, make_tasks
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
                  progress: Callable[[int], None] | None = None) -> list[dict]:
    tasks = make_tasks(candidates, config.stack_specs, table.source.path, config.max_e_above_hull,
                       config.chunk_size, config.user_entries, config.user_scheme)
    return execute(tasks, workers=workers, scheduler=scheduler, progress=progress)


def rank_rows(config: ScreenConfig, rows: list[dict], bare: dict[str, dict]) -> pd.DataFrame:
    if not rows:
        raise InputError("no candidate passed the enumeration filters: nothing to rank")
    frame = rank(rows, bare, config.thresholds, config.score_weights, [s.name for s in config.stacks])
    return round_frame(frame)


def round_frame(frame: pd.DataFrame) -> pd.DataFrame:
    floats = frame.select_dtypes("float").columns
    frame[floats] = frame[floats].round(FLOAT_DIGITS) + 0.0
    return frame


def write_rankings(frame: pd.DataFrame, out_dir: Path) -> None:
    """rankings.parquet and rankings.csv, each written atomically."""
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow", compression="zstd")
    atomic_write_bytes(out_dir / "rankings.parquet", buffer.getvalue())
    text = frame.to_csv(index=False, float_format=f"%.{FLOAT_DIGITS}g", lineterminator="\n")
    atomic_write_bytes(out_dir / "rankings.csv", text.encode("utf-8"))


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
        "stacks": [s.as_dict() for s in config.stacks], "bare_pairs": bare,
        "n_candidates": n_candidates, "config": config.raw, "versions": package_versions(),
        **(extra or {})})


def write_json(path: Path, payload: dict) -> None:
    atomic_write_bytes(path, (json.dumps(payload, indent=2, sort_keys=True) + "\n").encode("utf-8"))


def run_screen(config: ScreenConfig, out_dir: Path, workers: int | None = None,
               scheduler: str | None = None, progress_factory=None, limit: int | None = None) -> pd.DataFrame:
    """Enumerate, evaluate, rank and write `out_dir`. Returns the rankings."""
    if scheduler is not None:
        check_scheduler_address(scheduler)
    if out_dir.exists() and not out_dir.is_dir():
        raise InputError(f"the output folder {out_dir} is a file")
    table = config.table()
    candidates = config.candidates(table)
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise InputError(f"cannot create the output folder {out_dir}: {exc.strerror or exc}") from None
    if limit is not None:
        candidates = candidates[:limit]
    started = time.perf_counter()
    bar = progress_factory(len(candidates)) if progress_factory else None
    try:
        rows = evaluate_rows(config, table, candidates, workers=config.workers if workers is None else workers,
                             scheduler=scheduler, progress=bar.update if bar else None)
    finally:
        if bar:
            bar.close()
    bare = bare_pairs(table, config.stacks)
    frame = rank_rows(config, rows, bare)
    elapsed = time.perf_counter() - started
    write_rankings(frame, out_dir)
    used = workers if workers is not None else (config.workers if config.workers is not None else default_workers())
    write_json(out_dir / "provenance.json", provenance(config, table, len(candidates), bare, {
        "execution": {"workers": used, "scheduler": scheduler, "seconds": round(elapsed, 1)}}))
    return frame
