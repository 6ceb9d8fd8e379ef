"""How a screen's time grows with candidates, stacks and elements per chemical system.

Part 1 (wall time of `screening screen`, child processes, one worker per core): the default candidates
(the first N by the screen's own order, `--limit`) against 1, 5, 25 and 117 stacks (one stack; the
default five; 5 cathodes x 5 electrolytes; every library cathode x every library electrolyte, as
workflows/config/matrix.yaml). Part 2 (one process, one core): milliseconds per candidate by the number
of elements of the candidate's own system plus those of a stack (a random sample of the default
candidates in the default stacks).
Run: `.venv/bin/python benchmarks/bench_scaling.py [--candidates 1000 3000] [--stacks 1 5 25 117]
[--sample 300]`. The hull-stable set must be cached (run any screen once before).
"""

from __future__ import annotations

import argparse
import os
import random
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import yaml

REPO = Path(__file__).resolve().parents[1]
CATHODES_5 = ["LCO", "NMC811", "NCA", "LMO", "LFP"]
ELECTROLYTES_5 = ["LPSCl", "LPS", "LGPS", "LLZO", "LATP"]


def stack_config(n_stacks: int, folder: Path) -> Path:
    """A config with the default candidates and n_stacks stacks (1, 5, 25 or 117)."""
    if n_stacks == 1:
        stacks = [{"electrode": "NMC811", "electrolyte": "LPSCl"}]
    elif n_stacks == 5:
        stacks = None  # the default five
    elif n_stacks == 25:
        stacks = {"electrodes": CATHODES_5, "electrolytes": ELECTROLYTES_5}
    elif n_stacks == 117:
        stacks = {"electrodes": "library-cathodes", "electrolytes": "library-electrolytes"}
    else:
        raise SystemExit(f"--stacks: 1, 5, 25 or 117, not {n_stacks}")
    config = yaml.safe_load((REPO / "workflows" / "config" / "default.yaml").read_text())
    config["run"] = f"scaling{n_stacks}"
    # the engine alone: no error bars (their cost is benchmarks/bench_uncertainty.py's)
    config["uncertainty"] = {"first_order": False, "monte_carlo_top": 0}
    if stacks is not None:
        config["stacks"] = stacks
    path = folder / f"stacks{n_stacks}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def wall_time(config: Path, limit: int | None) -> float:
    out = Path(tempfile.mkdtemp(prefix="bench_scaling_")) / "run"
    cmd = [sys.executable, "-m", "screening", "screen", "--config", str(config), "--out", str(out), "--no-progress"]
    if limit:
        cmd += ["--limit", str(limit)]
    start = time.perf_counter()
    proc = subprocess.run(cmd, capture_output=True, text=True, cwd=REPO)
    if proc.returncode != 0:
        raise SystemExit(f"screen failed: {proc.stderr.strip()[-500:]}")
    return time.perf_counter() - start


def per_elements(sample: int) -> dict[int, list[float]]:
    """ms per candidate (all five default stacks) by the number of elements of candidate + NMC811|LPSCl."""
    from screening.screen.config import load_config
    from screening.screen.evaluate import evaluate_candidates
    from screening.screen.pruning import stable_table

    config = load_config(None)
    table = config.table()
    stable_table(table)
    candidates = config.candidates(table)
    random.seed(0)
    times: dict[int, list[float]] = {}
    stack_elements = set("Li Ni Co Mn O P S Cl".split())
    for candidate in random.sample(candidates, min(sample, len(candidates))):
        start = time.perf_counter()
        evaluate_candidates(table, [candidate], config.stacks)
        n = len(set(candidate.elements) | stack_elements)
        times.setdefault(n, []).append((time.perf_counter() - start) * 1000)
    return times


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, nargs="+", default=[1000, 3000])
    parser.add_argument("--stacks", type=int, nargs="+", default=[1, 5, 25, 117])
    parser.add_argument("--sample", type=int, default=300)
    args = parser.parse_args()
    folder = Path(tempfile.mkdtemp(prefix="bench_scaling_cfg_"))
    print("| candidates | stacks | wall time | per candidate and stack |")
    print("|---:|---:|---:|---:|")
    for n_stacks in args.stacks:
        config = stack_config(n_stacks, folder)
        for n in args.candidates:
            seconds = wall_time(config, n)
            print(f"| {n:,} | {n_stacks} | {seconds:.0f} s | {seconds / n / n_stacks * 1000:.1f} ms |", flush=True)
    if args.sample:
        print("\n| elements (candidate + NMC811, LPSCl) | candidates | ms per candidate, 5 stacks (median) |")
        print("|---:|---:|---:|")
        for n, values in sorted(per_elements(args.sample).items()):
            values.sort()
            print(f"| {n} | {len(values)} | {values[len(values) // 2]:.0f} |")
    print(f"\nMachine: nproc {os.cpu_count()}; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
