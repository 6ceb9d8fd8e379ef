"""Time and peak memory of a whole screen from the command line (default: the default screen).

Runs `screening screen` as a child process and samples the resident memory of its whole process tree
(the dask workers included) every 0.5 s. Run: `.venv/bin/python benchmarks/bench_screen.py
[--workers N] [--config FILE] [--limit N]` (`make bench` runs it after the pair benchmark).
"""

from __future__ import annotations

import argparse
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import psutil

REPO = Path(__file__).resolve().parents[1]


def tree_rss(proc: psutil.Process) -> int:
    """Resident bytes of a process and all its descendants."""
    total = 0
    for p in [proc, *proc.children(recursive=True)]:
        try:
            total += p.memory_info().rss
        except psutil.Error:
            pass
    return total


def run(args) -> dict:
    out = Path(tempfile.mkdtemp(prefix="bench_screen_"))
    cmd = [sys.executable, "-m", "screening", "screen", "--out", str(out), "--no-progress"]
    if args.config:
        cmd += ["--config", args.config]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    start = time.perf_counter()
    child = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, cwd=REPO)
    handle = psutil.Process(child.pid)
    peak = 0
    while child.poll() is None:
        peak = max(peak, tree_rss(handle))
        time.sleep(0.5)
    elapsed = time.perf_counter() - start
    stdout, stderr = child.communicate()
    if child.returncode != 0:
        sys.exit(f"screen failed: {stderr.strip().splitlines()[-1] if stderr.strip() else child.returncode}")
    n = stdout.split("(")[1].split(" candidates")[0] if "(" in stdout else "?"
    return {"seconds": elapsed, "peak_mb": peak / 2**20, "candidates": n, "out": out}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--config")
    parser.add_argument("--limit", type=int)
    args = parser.parse_args()
    result = run(args)
    print("| screen | candidates | workers | wall time | peak memory (process tree) |")
    print("|---|---:|---:|---:|---:|")
    print(f"| {args.config or 'default'} | {result['candidates']} | "
          f"{args.workers if args.workers is not None else 'one per core'} | "
          f"{result['seconds'] / 60:.1f} min ({result['seconds']:.0f} s) | {result['peak_mb']:.0f} MB |")
    print(f"\nMachine: nproc {os.cpu_count()}, Python {platform.python_version()}; "
          f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
