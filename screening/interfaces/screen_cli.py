"""The screening commands: `screening screen` and `screening library`."""

from __future__ import annotations

import sys
from pathlib import Path

from screening.errors import InputError
from screening.interfaces.argtypes import bounded_int
from screening.provenance import clean_numbers


_workers = bounded_int("workers", 0, 1024)
_positive = bounded_int("the number", 1, 10_000_000)


def add_commands(sub, common) -> None:
    """Register `screen` and `library`."""
    p = sub.add_parser("screen", parents=[common], help="screen candidate coatings in cell stacks")
    p.add_argument("--config", metavar="FILE.yaml",
                   help="screen configuration (default: the default screen's candidates, stacks and "
                   "error bars with the thermodynamic criteria only; workflows/config/default.yaml "
                   "adds the band-gap, interphase, ALD and practicality criteria)")
    p.add_argument("--out", metavar="DIR", help="run folder (default: results/<run>)")
    p.add_argument("--workers", type=_workers, metavar="N",
                   help="local dask worker processes (default: one per core; 0 = no dask)")
    p.add_argument("--scheduler", metavar="ADDRESS", help="use an existing dask scheduler (tcp://host:port)")
    p.add_argument("--cluster", choices=["local", "slurm"],
                   help="where dask workers run: local processes, or Slurm jobs (dask-jobqueue; settings "
                        "from the config's execution: slurm: ...); default: the config's, else local")
    p.add_argument("--limit", type=_positive, metavar="N", help="only the first N candidates (quick look)")
    p.add_argument("--top", type=_positive, default=5, metavar="N", help="rows per stack to print (5)")
    p.add_argument("--no-progress", action="store_true", help="no progress bar")

    p = sub.add_parser("library", help="list the named materials")
    p.add_argument("--role", choices=["cathode", "electrolyte", "anode", "coating"])
    p.add_argument("--json", action="store_true")


def run_screen(args) -> dict:
    from screening.execution.screen_run import run_screen as run
    from screening.screen.config import load_config

    config = load_config(args.config)
    if args.entries:
        config.entries = args.entries
    if args.user_entries:
        config.user_entries = (*config.user_entries, *args.user_entries)
    if args.user_scheme:
        config.user_scheme = args.user_scheme
    if getattr(args, "user_mode", None):  # --user-mode / --exclude-entries over the config's
        config.user_mode = args.user_mode
    if getattr(args, "exclude_entries", None):
        config.exclude_entries = (*config.exclude_entries, *(f for group in args.exclude_entries for f in group))
    if args.source != "snapshot":
        raise InputError("screens use a data file (--entries); --source mp serves the single-material "
                         "and pair commands")
    if args.cluster:
        from screening.screen.cluster_settings import parse_cluster

        config.cluster, config.slurm = parse_cluster(config.raw.get("execution") or {}, args.config or "defaults",
                                                     args.cluster)
    out = Path(args.out) if args.out else Path("results") / config.run

    def progress_factory(total: int, desc: str, unit: str):
        from tqdm import tqdm

        # an enumeration shows a bar only when it takes more than a second
        return tqdm(total=total, unit=unit, desc=desc, file=sys.stderr, disable=args.no_progress or args.json,
                    mininterval=1.0, delay=1.0 if desc == "enumerating" else 0.0,
                    unit_scale=desc == "enumerating")

    frame = run(config, out, workers=args.workers, scheduler=args.scheduler,
                progress_factory=progress_factory, limit=args.limit)
    top = frame[frame["rank"] <= args.top]
    columns = ["stack", "rank", "candidate", "formula", "passes_all", "e_above_hull", "reduction_potential",
               "oxidation_potential", "rxn_electrode", "rxn_electrode_open", "rxn_electrolyte", "band_gap", "ald_evidence",
               "interphase_worst", "score", "failed_criteria"]
    columns = [c for c in columns if c in frame.columns]
    from screening.screen.rank import funnel

    funnels = funnel(frame, list(config.funnel_order))
    lines = [f"wrote {out}/rankings.parquet, rankings.csv, provenance.json "
             f"({frame['candidate'].nunique()} candidates x {frame['stack'].nunique()} stacks)"]
    for stack, rows in top.groupby("stack", sort=False):
        passing = int(frame[(frame["stack"] == stack) & frame["passes_all"]].shape[0])
        lines.append(f"\n{stack}: {passing} candidates pass every criterion")
        lines.append("  funnel: " + " -> ".join(f"{step['criterion']} {step['remaining']}"
                                                for step in funnels.get(stack, [])))
        lines.append(rows[columns[1:]].to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    payload = {"run_folder": str(out), "n_candidates": int(frame["candidate"].nunique()), "funnel": funnels,
               "top": clean_numbers(top[columns].to_dict(orient="records"))}
    return {"json": payload, "text": "\n".join(lines)}


def run_library(args) -> dict:
    from screening.screen.materials import library

    items = [m for m in library().values() if args.role is None or m.role == args.role]
    payload = [{"name": m.name, "role": m.role, "formula": m.formula, "potential": m.potential,
                "charged": m.charged, "proxy": m.proxy, "aliases": list(m.aliases), "note": m.note}
               for m in items]
    lines = [f"{'name':<12} {'role':<12} {'formula':<30} {'V':>5}  {'charged':<26} note"]
    for m in items:
        volts = f"{m.potential:.2f}" if m.potential is not None else ""
        note = m.note + (f" [proxy {m.proxy}]" if m.proxy else "")
        lines.append(f"{m.name:<12} {m.role:<12} {m.formula:<30} {volts:>5}  {m.charged or '':<26} {note}")
    lines.append("\nUse a name wherever a formula goes; NAME@charged or NAME@4.3V for a charged state.")
    return {"json": payload, "text": "\n".join(lines)}
