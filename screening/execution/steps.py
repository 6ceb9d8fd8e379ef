"""A screen as separate steps, for the Snakemake workflow: enumerate -> shards -> evaluate -> rank.

Each step reads files and writes its outputs atomically, so a killed job leaves either nothing or a
whole file and Snakemake reruns only what is missing. A shard file carries everything its evaluation
needs (candidates, stacks, data file), so re-evaluating it does not depend on the config file.
"""

from __future__ import annotations

import io
import json
from pathlib import Path

import pandas as pd

from screening.data.snapshot import atomic_write_bytes
from screening.data.sources import load_table
from screening.errors import DataError, InputError
from screening.execution.runner import execute, group_chunks, make_tasks
from screening.execution.screen_run import provenance, rank_rows, write_json, write_rankings
from screening.screen.candidates import Candidate
from screening.screen.config import ScreenConfig
from screening.screen.evaluate import bare_pairs

SHARD_FORMAT = 2


def write_shards(config: ScreenConfig, shard_paths: list[Path]) -> int:
    """Enumerate candidates and split them into len(shard_paths) shard files; returns the count."""
    table = config.table()
    candidates = config.candidates(table)
    n = len(shard_paths)
    # whole chemical systems per shard (see group_chunks), about the same number of candidates each
    systems = group_chunks(candidates, 1)
    bounds = [round(k * len(candidates) / n) for k in range(n + 1)]
    parts: list[list[Candidate]] = [[] for _ in range(n)]
    done = 0
    for system in systems:
        k = min(n - 1, next(i for i in range(n) if done < bounds[i + 1] or i == n - 1))
        parts[k].extend(system)
        done += len(system)
    for k, (path, part) in enumerate(zip(shard_paths, parts)):
        payload = {"format": SHARD_FORMAT, "shard": k, "n_shards": n, "entries": table.source.path,
                   "entries_sha256": table.source.sha256, "stacks": config.stack_specs,
                   "user_entries": list(config.user_entries), "user_scheme": config.user_scheme,
                   "max_e_above_hull": config.max_e_above_hull, "chunk_size": config.chunk_size,
                   "candidates": [c.as_dict() for c in part]}
        write_json(Path(path), payload)
    return len(candidates)


def read_shard(path: Path) -> dict:
    try:
        payload = json.loads(Path(path).read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise InputError(f"shard file not found: {path}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DataError(f"corrupt shard file {path}: {exc}") from None
    if not isinstance(payload, dict) or payload.get("format") != SHARD_FORMAT:
        raise DataError(f"shard file {path} was written by another version: re-run the split step")
    return payload


def evaluate_shard(shard_path: Path, out_path: Path, workers: int | None = 0,
                   scheduler: str | None = None) -> int:
    """Evaluate one shard into a parquet file of rows; returns the number of rows."""
    shard = read_shard(shard_path)
    table = load_table(shard["entries"], tuple(shard["user_entries"]), shard["user_scheme"])
    if table.source.sha256 != shard["entries_sha256"]:
        raise DataError(f"the data file {shard['entries']} changed since the shards were written: "
                        "re-run the split step")
    candidates = [Candidate.from_dict(c) for c in shard["candidates"]]
    tasks = make_tasks(candidates, shard["stacks"], table.source.path, shard["max_e_above_hull"],
                       shard["chunk_size"], tuple(shard["user_entries"]), shard["user_scheme"])
    rows = execute(tasks, workers=workers, scheduler=scheduler)
    frame = pd.DataFrame(rows)
    buffer = io.BytesIO()
    frame.to_parquet(buffer, index=False, engine="pyarrow")
    atomic_write_bytes(Path(out_path), buffer.getvalue())
    return len(frame)


def rank_parts(config: ScreenConfig, part_paths: list[Path], out_dir: Path, n_candidates: int | None = None):
    """Gather the evaluated shards and write rankings.parquet, rankings.csv and provenance.json."""
    frames = []
    for path in part_paths:
        try:
            frames.append(pd.read_parquet(path))
        except FileNotFoundError:
            raise InputError(f"evaluated shard not found: {path}") from None
        except Exception as exc:  # pyarrow raises several types for a damaged file
            raise DataError(f"corrupt evaluated shard {path}: {exc}") from None
    frames = [f for f in frames if not f.empty]
    rows = pd.concat(frames, ignore_index=True).to_dict(orient="records") if frames else []
    rows = [{k: (None if isinstance(v, float) and v != v else v) for k, v in row.items()} for row in rows]
    table = config.table()
    bare = bare_pairs(table, config.stacks)
    frame = rank_rows(config, rows, bare)
    out_dir.mkdir(parents=True, exist_ok=True)
    write_rankings(frame, out_dir)
    count = n_candidates if n_candidates is not None else int(frame["candidate"].nunique())
    write_json(out_dir / "provenance.json", provenance(config, table, count, bare,
                                                       {"execution": {"workflow": "snakemake",
                                                                      "shards": len(part_paths)}}))
    return frame
