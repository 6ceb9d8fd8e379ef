"""Evaluated shards ("parts") that can be trusted after a crash: verified, reusable, never half-written.

A part is a parquet file whose metadata records the sha256 of the shard file it was computed from and
the digest of the package source that computed it (screening.provenance.code_digest). The evaluate step
also keeps a copy under `<parts folder>/.reuse/`, named by both digests: when Snakemake reruns a shard
whose result already exists there (a job killed with Snakemake, or left running as an orphan that
finished after Snakemake died), the copy is verified and installed instead of recomputing. A part or a
copy whose digests do not match the current shard and code is ignored; `rank` refuses one.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import io
import json
import os
import sys
from contextlib import contextmanager
from pathlib import Path

import pandas as pd

from screening.data.snapshot import atomic_write_bytes
from screening.errors import DataError, InputError
from screening.provenance import code_digest

PART_FORMAT = 1
_METADATA_KEY = b"screening_part"
REUSE_FOLDER = ".reuse"


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def current_code_digest() -> str:
    """The package source's digest as it is on disk now (not the cached value from start-up)."""
    return code_digest.__wrapped__()


def part_bytes(frame: pd.DataFrame, shard_sha256: str, code_sha256: str, shard: int, n_shards: int) -> bytes:
    """The parquet bytes of a part, its provenance in the file's metadata."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    table = pa.Table.from_pandas(frame, preserve_index=False)
    meta = {"format": PART_FORMAT, "shard_sha256": shard_sha256, "code_sha256": code_sha256,
            "shard": shard, "n_shards": n_shards, "rows": len(frame)}
    table = table.replace_schema_metadata({**(table.schema.metadata or {}),
                                           _METADATA_KEY: json.dumps(meta, sort_keys=True).encode()})
    buffer = io.BytesIO()
    pq.write_table(table, buffer)
    return buffer.getvalue()


def read_part(source, what: str) -> tuple[pd.DataFrame, dict]:
    """(rows, metadata) of a part (a path or bytes). DataError if it is damaged or has no metadata."""
    import pyarrow.parquet as pq

    try:
        table = pq.read_table(io.BytesIO(source) if isinstance(source, bytes) else source)
    except FileNotFoundError:
        raise InputError(f"{what} not found") from None
    except Exception as exc:  # pyarrow raises several types for a damaged file
        raise DataError(f"{what} is damaged: {' '.join(str(exc).split())[:160]}") from None
    raw = (table.schema.metadata or {}).get(_METADATA_KEY)
    try:
        meta = json.loads(raw) if raw else None
    except ValueError:
        meta = None
    if not isinstance(meta, dict) or meta.get("format") != PART_FORMAT:
        raise DataError(f"{what} was not written by this version's evaluate step: delete it and rerun")
    frame = table.to_pandas()
    if meta.get("rows") != len(frame):
        raise DataError(f"{what} holds {len(frame)} rows, its metadata says {meta.get('rows')}: delete it and rerun")
    return frame, meta


def mismatch(meta: dict, shard_sha256: str | None, code_sha256: str) -> str | None:
    """Why a part's metadata does not belong to this shard and code (None if it does)."""
    if shard_sha256 is not None and meta.get("shard_sha256") != shard_sha256:
        return "it was computed from another version of its shard file"
    if meta.get("code_sha256") != code_sha256:
        return "it was computed by other code (another version or an edited checkout)"
    return None


def reuse_path(out_path: Path, shard_sha256: str, code_sha256: str) -> Path:
    return out_path.parent / REUSE_FOLDER / f"{out_path.stem}.{shard_sha256[:20]}.{code_sha256[:20]}.parquet"


def load_reusable(out_path: Path, shard_sha256: str, code_sha256: str) -> bytes | None:
    """The bytes of a verified earlier result for this shard and code, else None."""
    path = reuse_path(out_path, shard_sha256, code_sha256)
    try:
        data = path.read_bytes()
        _, meta = read_part(data, f"kept result {path}")
    except (OSError, DataError, InputError):
        return None
    return None if mismatch(meta, shard_sha256, code_sha256) else data


def keep_reusable(out_path: Path, data: bytes, shard_sha256: str, code_sha256: str) -> None:
    """Keep a copy of a part for reuse (only the newest per shard name: older ones are removed)."""
    path = reuse_path(out_path, shard_sha256, code_sha256)
    atomic_write_bytes(path, data)
    for old in path.parent.glob(f"{out_path.stem}.*.parquet"):
        if old != path:
            old.unlink(missing_ok=True)


@contextmanager
def shard_lock(out_path: Path):
    """Exclusive lock on one shard's evaluation: a second evaluate of the same part (a rerun while the
    job of a killed Snakemake still runs) waits for the first and then reuses its result. The kernel
    releases the lock when its holder dies, so a lock never outlives a crash."""
    folder = out_path.parent / REUSE_FOLDER
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{out_path.stem}.lock"
    with open(path, "a+") as handle:
        try:
            fcntl.flock(handle, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as exc:
            if exc.errno not in (errno.EAGAIN, errno.EACCES):
                raise
            handle.seek(0)
            holder = handle.read().strip()[:40] or "another process"
            print(f"screening: waiting for another evaluation of {out_path.name} ({holder}) to finish",
                  file=sys.stderr, flush=True)
            fcntl.flock(handle, fcntl.LOCK_EX)
        handle.seek(0)
        handle.truncate()
        handle.write(f"pid {os.getpid()} on {os.uname().nodename}")
        handle.flush()
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)
