"""Time and peak memory of a whole screen from the command line (default: the default screen), and
the same screen on a previous engine in the same run.

Runs `screening screen` as a child process and samples the resident memory of its whole process tree
(the dask workers included) every 0.5 s. With `--baseline REF` (default: the commit before the
faster engine of issue 14) the same command runs again on that commit's code (a `git worktree` in a
temporary folder, its own package on PYTHONPATH, the same Python and data), the two rankings are
compared cell by cell (floats after the outputs' 9-digit rounding) and the ratio of wall times is
printed. This checkout's side runs with the config's error bars off (`uncertainty: {first_order:
false, monte_carlo_top: 0}`: the previous engine has none) unless `--with-error-bars`; a baseline
that knows error bars gets the same config.
Run: `.venv/bin/python benchmarks/bench_screen.py [--workers N] [--config FILE]
[--limit N] [--baseline REF | --no-baseline] [--with-error-bars]` (`make bench` runs it after the pair
benchmark).
The hull-stable set of the data is cached after its first computation (about 40 s); run once
before timing.
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

import numpy as np
import psutil

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from screening.data.snapshot import default_entries_path  # noqa: E402

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


BASELINE = "e4e80d8"  # the last commit before the pruned engine (issue 14)


def engine_config(config: str | None, errors: bool) -> Path:
    """The screen's config with its error bars switched off (`errors` False: the engine alone, as the
    previous engine computes it; its parser knows no `uncertainty:` section) or left as they are."""
    import yaml

    path = Path(config).resolve() if config else REPO / "workflows" / "config" / "default.yaml"
    if errors:
        return path
    raw = yaml.safe_load(path.read_text())
    raw["uncertainty"] = {**(raw.get("uncertainty") or {}), "first_order": False, "monte_carlo_top": 0}
    out = Path(tempfile.mkdtemp(prefix="bench_config_")) / path.name
    out.write_text(yaml.safe_dump(raw))
    return out


def run(args, code: Path = REPO, config: Path | None = None) -> dict:
    """One screen on the package at `code` (this checkout or a worktree of another commit)."""
    out = Path(tempfile.mkdtemp(prefix="bench_screen_"))
    cmd = [sys.executable, "-m", "screening", "screen", "--out", str(out), "--no-progress"]
    if config is not None:
        cmd += ["--config", str(config)]
    elif args.config:
        cmd += ["--config", str(Path(args.config).resolve())]
    if args.workers is not None:
        cmd += ["--workers", str(args.workers)]
    if args.limit:
        cmd += ["--limit", str(args.limit)]
    start = time.perf_counter()
    env = dict(os.environ, PYTHONPATH=str(code))
    # the same data for both sides: a worktree in a temporary folder has no ../shared beside it
    env.setdefault("SCREENING_ENTRIES", str(default_entries_path()))
    # output to files, not pipes: a screen of 117 stacks prints more than a pipe holds, and a child
    # blocked on a full pipe never ends
    log = out.with_suffix(".out")
    with open(log, "w") as stdout_file, open(log.with_suffix(".err"), "w") as stderr_file:
        child = subprocess.Popen(cmd, stdout=stdout_file, stderr=stderr_file, text=True, cwd=code, env=env)
        handle = psutil.Process(child.pid)
        peak = 0
        while child.poll() is None:
            peak = max(peak, tree_rss(handle))
            time.sleep(0.5)
    elapsed = time.perf_counter() - start
    stdout, stderr = log.read_text(), log.with_suffix(".err").read_text()
    if child.returncode != 0:
        sys.exit(f"screen failed: {stderr.strip().splitlines()[-1] if stderr.strip() else child.returncode}")
    n = stdout.split("(")[1].split(" candidates")[0] if "(" in stdout else "?"
    return {"seconds": elapsed, "peak_mb": peak / 2**20, "candidates": n, "out": out}


def compare(ours: Path, theirs: Path) -> dict[str, int]:
    """Cells that differ between two rankings.csv, matched on (stack, candidate), per column and kind:
    'order' (rank, Pareto rank), 'last digit' (numbers one unit apart in the outputs' last digit:
    rounded to 9 decimals and written with 9 significant digits, values that differ by round-off),
    'no-reaction x' (a mixing ratio the previous engine gave where there is no reaction, now empty)
    and 'other'. Columns only one file has count -1."""
    import pandas as pd

    a = pd.read_csv(ours / "rankings.csv", keep_default_na=False, dtype=str)
    b = pd.read_csv(theirs / "rankings.csv", keep_default_na=False, dtype=str)
    key = ["stack", "candidate"]
    if len(a) != len(b) or a.duplicated(key).any():
        return {"(rows)": abs(len(a) - len(b))}
    merged = a.merge(b, on=key, suffixes=("", "~"))
    diff: dict[str, int] = {c: -1 for c in sorted(set(a.columns) ^ set(b.columns))}
    for column in a.columns.intersection(b.columns).drop(key):
        x, y = merged[column], merged[column + "~"]
        differ = x != y
        if not differ.any():
            continue
        if column in ("rank", "pareto_rank"):
            diff[f"{column} (order)"] = int(differ.sum())
            continue
        xn, yn = pd.to_numeric(x, errors="coerce"), pd.to_numeric(y, errors="coerce")
        # one unit of the 9th significant digit (1e-8 for 1.2 V), at least the 9th decimal
        unit = np.maximum(1e-9, 10.0 ** (np.floor(np.log10(np.maximum(yn.abs(), 1e-300))) - 8))
        last_digit = differ & ((xn - yn).abs() <= 1.01 * unit)
        no_reaction = differ & False
        if column.startswith("rxn_") and column.endswith("_x"):
            no_reaction = differ & (x == "") & merged[column[:-2] + "_products"].eq("")
        other = differ & ~last_digit & ~no_reaction
        for kind, mask in (("last digit", last_digit), ("no-reaction x", no_reaction), ("other", other)):
            if mask.any():
                diff[f"{column} ({kind})"] = int(mask.sum())
    return diff


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workers", type=int, default=None)
    parser.add_argument("--config")
    parser.add_argument("--limit", type=int)
    parser.add_argument("--baseline", default=BASELINE, help="git commit of the previous engine")
    parser.add_argument("--no-baseline", action="store_true")
    parser.add_argument("--with-error-bars", action="store_true",
                        help="keep the config's error bars (first order, Monte Carlo); by default they are "
                             "off here, so that the engine is timed as the previous one computes")
    args = parser.parse_args()
    result = run(args, config=engine_config(args.config, args.with_error_bars))
    rows = [("this engine", result)]
    if not args.no_baseline:
        tree = Path(tempfile.mkdtemp(prefix="bench_baseline_")) / "code"
        subprocess.run(["git", "-C", str(REPO), "worktree", "add", "--detach", str(tree), args.baseline],
                       check=True, capture_output=True)
        try:
            # a baseline that knows `uncertainty:` gets the same config (error bars off unless asked);
            # an older one (no such section in its parser) gets the original, which it reads without error bars
            config_code = tree / "screening" / "screen" / "config.py"
            knows_errors = config_code.is_file() and "uncertainty" in config_code.read_text()
            baseline_config = engine_config(args.config, args.with_error_bars) if knows_errors else None
            rows.append((f"previous engine ({args.baseline})", run(args, tree, config=baseline_config)))
        finally:
            subprocess.run(["git", "-C", str(REPO), "worktree", "remove", "--force", str(tree)],
                           capture_output=True)
    print("| engine | screen | candidates | workers | wall time | peak memory (process tree) |")
    print("|---|---|---:|---:|---:|---:|")
    for name, r in rows:
        print(f"| {name} | {args.config or 'default'} | {r['candidates']} | "
              f"{args.workers if args.workers is not None else 'one per core'} | "
              f"{r['seconds'] / 60:.1f} min ({r['seconds']:.0f} s) | {r['peak_mb']:.0f} MB |")
    if len(rows) == 2:
        print(f"\nSpeed-up: {rows[1][1]['seconds'] / rows[0][1]['seconds']:.2f}x")
        diff = compare(rows[0][1]["out"], rows[1][1]["out"])
        print("Rankings identical to the previous engine's" if not diff else
              "Cells that differ from the previous engine's rankings, matched on (stack, candidate) "
              "(column (kind): count; -1: column in one only): " + ", ".join(f"{k}: {v}" for k, v in diff.items()))
    print(f"\nMachine: nproc {os.cpu_count()}, Python {platform.python_version()}; "
          f"load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
