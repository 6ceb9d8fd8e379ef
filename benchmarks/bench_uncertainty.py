"""What the error bars cost: first-order columns against none, and the Monte Carlo of the top rows.

Part 1 (one process, one core, the same candidates both ways, alternated to share the machine's
state): a random sample of the default screen's candidates evaluated in the five default stacks
without and with the first-order error model. Part 2: the Monte Carlo of the top rows of every stack
on the rankings of a finished default screen (`--run DIR`, e.g. results/default), with the default
settings (top 50, 200 draws) unless told otherwise, on `--workers` dask workers.
Run: `.venv/bin/python benchmarks/bench_uncertainty.py [--sample 300] [--run results/default]
[--top 50] [--draws 200] [--workers 2]`. The hull-stable set must be cached (run any screen once).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import pandas as pd


def first_order_cost(sample: int, rounds: int = 2) -> tuple[float, float]:
    """(seconds without, seconds with first-order errors) for `sample` default candidates x 5 stacks."""
    from screening.screen.config import load_config
    from screening.screen.evaluate import evaluate_candidates
    from screening.screen.pruning import stable_table
    from screening.thermo.error_model import ErrorModel

    config = load_config(None)
    table = config.table()
    stable_table(table)
    candidates = config.candidates(table)
    random.seed(0)
    chosen = sorted(random.sample(candidates, min(sample, len(candidates))), key=lambda c: c.elements)
    evaluate_candidates(table, chosen[:20], config.stacks, error_model=ErrorModel())  # warm imports, caches
    plain = with_errors = 0.0
    for _ in range(rounds):
        start = time.perf_counter()
        evaluate_candidates(table, chosen, config.stacks)
        plain += time.perf_counter() - start
        start = time.perf_counter()
        evaluate_candidates(table, chosen, config.stacks, error_model=ErrorModel())
        with_errors += time.perf_counter() - start
    return plain / rounds, with_errors / rounds


def monte_carlo_cost(run: Path, top: int, draws: int, workers: int) -> tuple[float, dict]:
    from screening.execution.uncertainty_run import add_monte_carlo
    from screening.screen.config import config_from_dict

    provenance = __import__("json").loads((run / "provenance.json").read_text())
    raw = dict(provenance["config"])
    raw["uncertainty"] = {**(raw.get("uncertainty") or {}), "monte_carlo_top": top, "draws": draws}
    config = config_from_dict(raw)
    table = config.table()
    frame = pd.read_parquet(run / "rankings.parquet")
    start = time.perf_counter()
    out, summary = add_monte_carlo(config, frame, table, workers=workers)
    seconds = time.perf_counter() - start
    chosen = out[out["rank"] <= top]
    return seconds, {"candidates": summary["monte_carlo"]["candidates"], "rows": len(chosen),
                     "uncertain rows (0 < p_pass_all < 1)": int(chosen["p_pass_all"].between(0.001, 0.999).sum())}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sample", type=int, default=300)
    parser.add_argument("--run", type=Path, help="a finished default screen's folder for part 2")
    parser.add_argument("--top", type=int, default=50)
    parser.add_argument("--draws", type=int, default=200)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    if args.sample:
        plain, with_errors = first_order_cost(args.sample)
        print(f"first order: {args.sample} candidates x 5 stacks: {plain:.1f} s without, {with_errors:.1f} s with "
              f"(+{100 * (with_errors / plain - 1):.0f} %)", flush=True)
    if args.run:
        seconds, facts = monte_carlo_cost(args.run, args.top, args.draws, args.workers)
        print(f"Monte Carlo: top {args.top} per stack x {args.draws} draws on {args.workers} workers: "
              f"{seconds:.0f} s; {facts}")
    print(f"Machine: nproc {os.cpu_count()}; load average at the end {os.getloadavg()[0]:.1f}")


if __name__ == "__main__":
    main()
