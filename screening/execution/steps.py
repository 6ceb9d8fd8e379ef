"""A screen as separate steps, for the Snakemake workflow: enumerate -> shards -> evaluate -> rank.

Each step reads files and writes its outputs atomically, so a killed job leaves either nothing or a
whole file and Snakemake reruns only what is missing. A shard file carries everything its evaluation
needs (candidates, stacks, data file), so re-evaluating it does not depend on the config file. A part
(an evaluated shard) records the digests of its shard and of the code (see screening.execution.parts).
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import pandas as pd

from screening.data.snapshot import atomic_write_bytes
from screening.data.sources import load_table
from screening.errors import DataError, InputError
from screening.execution.parts import (current_code_digest, keep_reusable, load_reusable, mismatch, part_bytes,
                                       read_part, sha256_bytes, shard_lock)
from screening.execution.runner import execute, group_chunks, make_tasks
from screening.execution.screen_run import (load_properties, provenance, rank_rows, ranking_summary, round_frame,
                                            write_json, write_rankings)
from screening.execution.uncertainty_run import add_monte_carlo
from screening.execution.workflow_config import MAX_SHARDS, check_stack_groups
from screening.provenance import code_digest
from screening.safe_io import loads_json, quote, read_bytes
from screening.screen.candidates import Candidate
from screening.screen.config import ScreenConfig, config_from_dict
from screening.screen.evaluate import bare_pairs

SHARD_FORMAT = 4
_SHARD_KEYS = {"format", "shard", "n_shards", "entries", "entries_sha256", "stacks", "user_entries",
               "user_scheme", "user_mode", "exclude_entries", "max_e_above_hull", "chunk_size", "candidates",
               "uncertainty"}
_SHARD_OPTIONAL = {"amorphous_grids"}  # the amorphous grid points computed when the candidates were enumerated
MAX_AMORPHOUS_RECORDS = 10000
_CANDIDATE_KEYS = {"name", "composition", "sources", "hypothetical", "energy_penalty", "proxy_for", "note"}


def write_output(path: Path, data: bytes, what: str) -> None:
    """Atomic write (temporary file + rename in the same folder); an unwritable place is one line."""
    try:
        atomic_write_bytes(Path(path), data)
    except OSError as exc:
        raise InputError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


def write_json_output(path: Path, payload: dict, what: str) -> None:
    try:
        write_json(Path(path), payload)
    except OSError as exc:
        raise InputError(f"cannot write {what} {path}: {exc.strerror or exc}") from None


def check_shard_paths(shard_paths: list[Path]) -> None:
    """1..MAX_SHARDS distinct shard files (two names for one file would overwrite a shard)."""
    if not 1 <= len(shard_paths) <= MAX_SHARDS:
        raise InputError(f"{len(shard_paths)} shard files: 1..{MAX_SHARDS} are allowed")
    seen: dict[Path, Path] = {}
    for path in shard_paths:
        key = Path(path).resolve()
        if key in seen:
            raise InputError(f"the shard file {path} is given twice (as {seen[key]} and {path})")
        seen[key] = Path(path)


def write_shards(config: ScreenConfig, shard_paths: list[Path], n_groups: int | None = None) -> int:
    """Enumerate candidates and split them into len(shard_paths) shard files; returns the number of
    candidates written (every candidate in exactly one shard)."""
    check_shard_paths(shard_paths)
    table = config.table()
    candidates = config.candidates(table)
    groups = stack_groups(config, len(shard_paths), n_groups)
    n = len(shard_paths) // len(groups)  # candidate parts; shard k: part k // len(groups), stacks k % len(groups)
    # whole chemical systems per shard (see group_chunks), about the same number of candidates each
    systems = group_chunks(candidates, 1)
    bounds = [round(k * len(candidates) / n) for k in range(n + 1)]
    parts: list[list[Candidate]] = [[] for _ in range(n)]
    done = 0
    for system in systems:
        k = min(n - 1, next(i for i in range(n) if done < bounds[i + 1] or i == n - 1))
        parts[k].extend(system)
        done += len(system)
    for k, path in enumerate(shard_paths):
        part, stacks = parts[k // len(groups)], groups[k % len(groups)]
        payload = {"format": SHARD_FORMAT, "shard": k, "n_shards": len(shard_paths), "entries": table.source.path,
                   "entries_sha256": table.source.sha256, "stacks": stacks,
                   "user_entries": list(config.user_entries), "user_scheme": config.user_scheme,
                   "user_mode": config.user_mode, "exclude_entries": list(config.exclude_entries),
                   "max_e_above_hull": config.max_e_above_hull, "chunk_size": config.chunk_size,
                   "uncertainty": config.raw.get("uncertainty") or {},
                   "candidates": [c.as_dict() for c in part],
                   **({"amorphous_grids": config.amorphous_used} if config.amorphous_used else {})}
        write_json_output(Path(path), payload, "shard file")
    return sum(len(part) for part in parts)


def stack_groups(config: ScreenConfig, n_shards: int, count: int | None = None) -> list[list[dict]]:
    """The config's stacks in `count` (default: the config's workflow.stack_groups, else 1) contiguous
    groups of about equal size (each shard holds one candidate part and one group; the shards are a
    multiple of the groups)."""
    if count is None:
        count = (config.raw.get("workflow") or {}).get("stack_groups", 1)
    specs = config.stack_specs
    check_stack_groups(count, len(specs), n_shards)
    bounds = [round(k * len(specs) / count) for k in range(count + 1)]
    return [specs[bounds[k]:bounds[k + 1]] for k in range(count)]


def read_shard(path: Path) -> tuple[dict, str]:
    """(the checked contents of a shard file, the sha256 of its bytes). One line for a bad file."""
    data = read_bytes(path, "shard file")
    what = f"shard file {path}"
    payload = loads_json(data, what)
    if not isinstance(payload, dict) or payload.get("format") != SHARD_FORMAT:
        raise DataError(f"{what} was written by another version: re-run the split step")
    missing = sorted(_SHARD_KEYS - set(payload))
    if missing:
        raise DataError(f"{what} lacks the key {quote(missing[0])}: re-run the split step")
    unknown = sorted(set(payload) - _SHARD_KEYS - _SHARD_OPTIONAL)
    if unknown:
        raise DataError(f"{what} has an unknown key {quote(unknown[0])}")
    for key, low, high in (("shard", 0, MAX_SHARDS - 1), ("n_shards", 1, MAX_SHARDS), ("chunk_size", 1, 100000)):
        value = payload[key]
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            raise DataError(f"{what}: {key} must be a whole number {low}..{high}, got {quote(value)}")
    if not isinstance(payload["entries_sha256"], str) or not isinstance(payload["candidates"], list):
        raise DataError(f"{what}: entries_sha256 must be text and candidates a list")
    grids = payload.get("amorphous_grids", [])
    if (not isinstance(grids, list) or len(grids) > MAX_AMORPHOUS_RECORDS
            or not all(isinstance(g, dict) for g in grids)):
        raise DataError(f"{what}: amorphous_grids must be a list of at most {MAX_AMORPHOUS_RECORDS} records")
    # the screen settings a shard carries pass the same checks as a screen config
    config_from_dict({"entries": payload["entries"], "user_entries": payload["user_entries"],
                      "user_scheme": payload["user_scheme"], "stacks": payload["stacks"],
                      "user_mode": payload["user_mode"], "exclude_entries": payload["exclude_entries"],
                      "candidates": {"data": False, "library": False,
                                     "max_e_above_hull": payload["max_e_above_hull"]},
                      "execution": {"chunk_size": payload["chunk_size"]},
                      "uncertainty": payload["uncertainty"]}, source=what)
    return payload, sha256_bytes(data)


def shard_candidates(payload: dict, what: str) -> list[Candidate]:
    out = []
    for k, item in enumerate(payload["candidates"]):
        if not isinstance(item, dict) or set(item) != _CANDIDATE_KEYS:
            raise DataError(f"{what}: candidate {k} must have exactly the keys {', '.join(sorted(_CANDIDATE_KEYS))}")
        try:
            candidate = Candidate.from_dict(item)
        except Exception as exc:  # pymatgen raises several types for a bad formula
            raise DataError(f"{what}: candidate {k} is malformed: {' '.join(str(exc).split())[:120]}") from None
        if not candidate.composition.num_atoms > 0 or not math.isfinite(candidate.composition.num_atoms):
            raise DataError(f"{what}: candidate {k} has no atoms")
        out.append(candidate)
    return out


def evaluate_shard(shard_path: Path, out_path: Path, workers: int | None = 0,
                   scheduler: str | None = None) -> tuple[int, bool]:
    """Evaluate one shard into a parquet file of rows; returns (rows, reused). A verified earlier result
    for the same shard bytes and code (kept beside the parts, see screening.execution.parts) is reused."""
    shard, shard_sha = read_shard(shard_path)
    what = f"shard file {shard_path}"
    candidates = shard_candidates(shard, what)
    out_path = Path(out_path)
    code = code_digest()
    try:
        with shard_lock(out_path):
            kept = load_reusable(out_path, shard_sha, code)
            if kept is not None:
                write_output(out_path, kept, "evaluated shard")
                return read_part(kept, str(out_path))[1]["rows"], True
            data, rows = _evaluate(shard, candidates, shard_sha, code, workers, scheduler)
            keep_reusable(out_path, data, shard_sha, code)
            # a job left running by a killed workflow must not install a result that is no longer
            # current: the shard or the code may have changed under it
            try:
                now = sha256_bytes(Path(shard_path).read_bytes())
            except OSError:
                now = None
            changed = what if now != shard_sha else "the package's source" if current_code_digest() != code \
                else None
            if changed:
                raise DataError(f"{changed} changed while this shard was evaluated: its result is not "
                                f"written to {out_path} (rerun the workflow)")
            write_output(out_path, data, "evaluated shard")
            return rows, False
    except OSError as exc:
        raise InputError(f"cannot write beside {out_path}: {exc.strerror or exc}") from None


def _evaluate(shard: dict, candidates: list[Candidate], shard_sha: str, code: str, workers, scheduler):
    table = load_table(shard["entries"], tuple(shard["user_entries"]), shard["user_scheme"],
                       user_mode=shard["user_mode"], exclude_entries=tuple(shard["exclude_entries"]))
    if table.source.sha256 != shard["entries_sha256"]:
        raise DataError(f"the data file {shard['entries']} changed since the shards were written: "
                        "re-run the split step")
    config = config_from_dict({"stacks": shard["stacks"], "uncertainty": shard["uncertainty"],
                               "candidates": {"data": False, "library": False}}, source="shard")
    tasks = make_tasks(candidates, shard["stacks"], table.source.path, shard["max_e_above_hull"],
                       shard["chunk_size"], tuple(shard["user_entries"]), shard["user_scheme"],
                       shard["user_mode"], tuple(shard["exclude_entries"]), config.error_spec())
    frame = pd.DataFrame(execute(tasks, workers=workers, scheduler=scheduler))
    return part_bytes(frame, shard_sha, code, shard["shard"], shard["n_shards"]), len(frame)


def check_parts(part_paths: list[Path], shard_paths: list[Path] | None) -> list[pd.DataFrame]:
    """The parts' rows, after checking each part was computed from its shard (same position in
    shard_paths, when given) by this code, and that together they are every shard once."""
    if shard_paths is not None and len(shard_paths) != len(part_paths):
        raise InputError(f"{len(part_paths)} parts but {len(shard_paths)} shard files")
    code = code_digest()
    given: dict[str, Path] = {}
    for path in part_paths:
        key = os.path.realpath(path)
        if key in given:
            raise InputError(f"the part {path} is given twice (as {given[key]} and {path})")
        given[key] = path
    frames, seen = [], {}
    for k, path in enumerate(part_paths):
        frame, meta = read_part(path, f"evaluated shard {path}")
        shard_sha = None
        if shard_paths is not None:
            shard_sha = sha256_bytes(read_bytes(shard_paths[k], "shard file"))
        why = mismatch(meta, shard_sha, code)
        if why:
            raise DataError(f"evaluated shard {path} cannot be used: {why} (a job left running by a killed "
                            "workflow?): delete it and rerun")
        index = (meta.get("shard"), meta.get("n_shards"))
        if index in seen or meta.get("n_shards") != len(part_paths):
            raise DataError(f"evaluated shard {path} is shard {index[0]} of {index[1]}, but "
                            f"{len(part_paths)} parts were given" + (f" (and {seen[index]} is the same shard)"
                                                                       if index in seen else ""))
        seen[index] = path
        frames.append(frame)
    return frames


def rank_parts(config: ScreenConfig, part_paths: list[Path], out_dir: Path, n_candidates: int | None = None,
               shard_paths: list[Path] | None = None, workers: int | None = 0):
    """Gather the evaluated shards and write rankings.parquet, rankings.csv and provenance.json."""
    frames = [f for f in check_parts(part_paths, shard_paths) if not f.empty]
    # as the columns a screen's own run ranks (NaN back to None), without a million row dicts
    whole = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    del frames
    rows = {column: [None if isinstance(v, float) and v != v else v for v in whole[column].tolist()]
            for column in whole.columns}
    del whole
    table = config.table()
    bare = bare_pairs(table, config.stacks)
    properties = load_properties()
    frame = rank_rows(config, rows, bare, properties)
    frame, monte_carlo = add_monte_carlo(config, frame, table, workers=workers)
    frame = round_frame(frame)
    count = n_candidates if n_candidates is not None else int(frame["candidate"].nunique())
    # the amorphous grid points were computed when the candidates were split: their record rides the shards
    amorphous = read_shard(shard_paths[0])[0].get("amorphous_grids") if shard_paths else None
    payload = provenance(config, table, count, bare, {"execution": {"workflow": "snakemake",
                                                                   "shards": len(part_paths)},
                                                      **({"amorphous_grids": amorphous} if amorphous else {}),
                                                      **monte_carlo,
                                                      **ranking_summary(config, frame, properties)})
    try:
        out_dir.mkdir(parents=True, exist_ok=True)
        write_rankings(frame, out_dir)
    except OSError as exc:
        raise InputError(f"cannot write the rankings in {out_dir}: {exc.strerror or exc}") from None
    write_json_output(out_dir / "provenance.json", payload, "provenance")
    return frame
