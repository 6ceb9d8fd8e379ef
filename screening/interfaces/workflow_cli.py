"""Workflow steps as commands (used by the Snakemake rules): workflow-config, data-info, shard,
evaluate, rank, report."""

from __future__ import annotations

import sys
from pathlib import Path

from screening.interfaces.argtypes import bounded_int


def add_commands(sub, common) -> None:
    """The step commands (not the `common` options: the rules pass each step only what it reads)."""
    parsers = []
    p = sub.add_parser("workflow-config",
                       help="workflow step: check a whole workflow config (JSON on stdin), print its settings")
    p.add_argument("--config-json", required=True, metavar="JSON",
                   help="the config as a JSON string, '-' to read it from stdin (from Snakemake)")
    parsers.append(p)

    p = sub.add_parser("data-info", help="workflow step: load (and cache) the entry data, record its source")
    p.add_argument("--config", metavar="FILE.yaml")
    p.add_argument("--config-json", metavar="JSON", help="the config as a JSON string (from Snakemake)")
    p.add_argument("--out", required=True, metavar="FILE.json")
    p.add_argument("--entries", metavar="PATH")
    parsers.append(p)

    p = sub.add_parser("shard", help="workflow step: enumerate candidates and split them into shard files")
    p.add_argument("--config", metavar="FILE.yaml")
    p.add_argument("--config-json", metavar="JSON", help="the config as a JSON string (from Snakemake)")
    p.add_argument("--out", nargs="+", required=True, metavar="SHARD.json")
    p.add_argument("--entries", metavar="PATH")
    p.add_argument("--stack-groups", type=bounded_int("stack groups", 1, 1000), default=None, metavar="G",
                   help="split the stacks into G groups too (shards: a multiple of G; default: the "
                        "config's workflow.stack_groups, else 1)")
    parsers.append(p)

    p = sub.add_parser("evaluate", help="workflow step: evaluate one shard into a parquet file")
    p.add_argument("shard", metavar="SHARD.json")
    p.add_argument("--out", required=True, metavar="PART.parquet")
    p.add_argument("--workers", type=bounded_int("workers", 0, 1024), default=0, metavar="N",
                   help="dask workers inside the job (0: none)")
    p.add_argument("--scheduler", metavar="ADDRESS")
    parsers.append(p)

    p = sub.add_parser("report", help="plots and report.html for a finished run folder")
    p.add_argument("--run-dir", required=True, metavar="DIR")
    parsers.append(p)

    p = sub.add_parser("rank", help="workflow step: gather evaluated shards and rank")
    p.add_argument("--config", metavar="FILE.yaml")
    p.add_argument("--config-json", metavar="JSON", help="the config as a JSON string (from Snakemake)")
    p.add_argument("--parts", nargs="+", required=True, metavar="PART.parquet")
    p.add_argument("--shards", nargs="+", metavar="SHARD.json",
                   help="the shard files of the parts, in the same order: each part must come from its shard")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--entries", metavar="PATH")
    p.add_argument("--workers", type=int, default=1, metavar="N",
                   help="processes for the Monte Carlo of the top rows (1: this one)")
    parsers.append(p)
    for p in parsers:
        p.add_argument("--json", action="store_true", help="print the step's summary as JSON")


def _raw_config(text: str) -> object:
    """--config-json: JSON from the argument or ('-') stdin, parsed with the input bounds."""
    from screening.errors import InputError
    from screening.safe_io import LIMITS, loads_json

    if text == "-":
        text = sys.stdin.read(LIMITS.max_config_bytes + 1)
    if len(text) > LIMITS.max_config_bytes:
        raise InputError(f"--config-json is longer than {LIMITS.max_config_bytes} characters "
                         "(SCREENING_MAX_CONFIG_BYTES)")
    return loads_json(text, "--config-json")


def _config(args):
    """The screen config from --config-json, else --config FILE, else the defaults."""
    from screening.screen.config import config_from_dict, load_config

    if getattr(args, "config_json", None):
        return config_from_dict(_raw_config(args.config_json), source="--config-json")
    return load_config(args.config)


def run_workflow_config(args) -> dict:
    import json

    from screening import __version__
    from screening.execution.workflow_config import workflow_settings
    from screening.provenance import code_digest

    settings = workflow_settings(_raw_config(args.config_json), source="workflow config")
    payload = {**settings.as_dict(), "code": f"screening {__version__} (code sha256 {code_digest()})"}
    return {"json": payload, "text": json.dumps(payload, sort_keys=True)}


def run_data_info(args) -> dict:
    from screening.execution.steps import write_json_output

    config = _config(args)
    if args.entries:
        config.entries = args.entries
    table = config.table()
    payload = {"data_source": table.source.as_dict(), "compositions": len(table),
               "elements": len(table.elements)}
    write_json_output(Path(args.out), payload, "data summary")
    return {"json": payload, "text": f"{table.source.path}: {len(table)} compositions "
                                     f"(sha256 {table.source.sha256[:12]})"}


def run_shard(args) -> dict:
    from screening.execution.steps import check_shard_paths, write_shards

    paths = [Path(p) for p in args.out]
    check_shard_paths(paths)  # before the (slow) enumeration
    config = _config(args)
    if args.entries:
        config.entries = args.entries
    count = write_shards(config, paths, args.stack_groups)
    return {"json": {"candidates": count, "shards": len(paths)},
            "text": f"{count} candidates in {len(paths)} shards"}


def run_evaluate(args) -> dict:
    from screening.execution.steps import evaluate_shard

    rows, reused = evaluate_shard(Path(args.shard), Path(args.out), workers=args.workers,
                                  scheduler=args.scheduler)
    how = "reused: a verified result of the same shard and code" if reused else "computed"
    return {"json": {"rows": rows, "out": args.out, "reused": reused},
            "text": f"{rows} rows -> {args.out} ({how})"}


def run_rank(args) -> dict:
    from screening.errors import InputError
    from screening.execution.steps import rank_parts

    config = _config(args)
    if args.entries:
        config.entries = args.entries
    shards = [Path(p) for p in args.shards] if args.shards else None
    if not 1 <= args.workers <= 1024:
        raise InputError(f"--workers must be from 1 to 1024, got {args.workers}")
    frame = rank_parts(config, [Path(p) for p in args.parts], Path(args.out), shard_paths=shards,
                       workers=0 if args.workers == 1 else args.workers)
    passing = frame.groupby("stack", sort=False)["passes_all"].sum().to_dict()
    return {"json": {"out": args.out, "passing": {k: int(v) for k, v in passing.items()}},
            "text": f"rankings -> {args.out} (passing every criterion: "
                    + ", ".join(f"{k} {int(v)}" for k, v in passing.items()) + ")"}


def run_report(args) -> dict:
    from screening.interfaces.report import write_report

    out = write_report(Path(args.run_dir))
    return {"json": {"report": str(out)}, "text": f"report -> {out}"}
