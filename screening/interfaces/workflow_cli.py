"""Workflow steps as commands (used by the Snakemake rules): shard, evaluate, rank, report."""

from __future__ import annotations

from pathlib import Path

from screening.interfaces.argtypes import bounded_int


def add_commands(sub, common) -> None:
    p = sub.add_parser("data-info", help="workflow step: load (and cache) the entry data, record its source")
    p.add_argument("--config", metavar="FILE.yaml")
    p.add_argument("--config-json", metavar="JSON", help="the config as a JSON string (from Snakemake)")
    p.add_argument("--out", required=True, metavar="FILE.json")
    p.add_argument("--entries", metavar="PATH")

    p = sub.add_parser("shard", help="workflow step: enumerate candidates and split them into shard files")
    p.add_argument("--config", metavar="FILE.yaml")
    p.add_argument("--config-json", metavar="JSON", help="the config as a JSON string (from Snakemake)")
    p.add_argument("--out", nargs="+", required=True, metavar="SHARD.json")
    p.add_argument("--entries", metavar="PATH")

    p = sub.add_parser("evaluate", help="workflow step: evaluate one shard into a parquet file")
    p.add_argument("shard", metavar="SHARD.json")
    p.add_argument("--out", required=True, metavar="PART.parquet")
    p.add_argument("--workers", type=bounded_int("workers", 0, 1024), default=0, metavar="N",
                   help="dask workers inside the job (0: none)")
    p.add_argument("--scheduler", metavar="ADDRESS")

    p = sub.add_parser("report", help="plots and report.html for a finished run folder")
    p.add_argument("--run-dir", required=True, metavar="DIR")

    p = sub.add_parser("rank", help="workflow step: gather evaluated shards and rank")
    p.add_argument("--config", metavar="FILE.yaml")
    p.add_argument("--config-json", metavar="JSON", help="the config as a JSON string (from Snakemake)")
    p.add_argument("--parts", nargs="+", required=True, metavar="PART.parquet")
    p.add_argument("--out", required=True, metavar="DIR")
    p.add_argument("--entries", metavar="PATH")


def _config(args):
    """The screen config from --config-json, else --config FILE, else the defaults."""
    import json

    from screening.errors import InputError
    from screening.screen.config import config_from_dict, load_config

    if getattr(args, "config_json", None):
        try:
            raw = json.loads(args.config_json)
        except json.JSONDecodeError as exc:
            raise InputError(f"--config-json is not valid JSON: {exc}") from None
        return config_from_dict(raw, source="--config-json")
    return load_config(args.config)


def run_data_info(args) -> dict:
    from screening.execution.screen_run import write_json

    config = _config(args)
    if args.entries:
        config.entries = args.entries
    table = config.table()
    payload = {"data_source": table.source.as_dict(), "compositions": len(table),
               "elements": len(table.elements)}
    write_json(Path(args.out), payload)
    return {"json": payload, "text": f"{table.source.path}: {len(table)} compositions "
                                     f"(sha256 {table.source.sha256[:12]})"}


def run_shard(args) -> dict:
    from screening.execution.steps import write_shards

    config = _config(args)
    if args.entries:
        config.entries = args.entries
    count = write_shards(config, [Path(p) for p in args.out])
    return {"json": {"candidates": count, "shards": len(args.out)},
            "text": f"{count} candidates in {len(args.out)} shards"}


def run_evaluate(args) -> dict:
    from screening.execution.steps import evaluate_shard

    rows = evaluate_shard(Path(args.shard), Path(args.out), workers=args.workers, scheduler=args.scheduler)
    return {"json": {"rows": rows, "out": args.out}, "text": f"{rows} rows -> {args.out}"}


def run_rank(args) -> dict:
    from screening.execution.steps import rank_parts

    config = _config(args)
    if args.entries:
        config.entries = args.entries
    frame = rank_parts(config, [Path(p) for p in args.parts], Path(args.out))
    passing = frame.groupby("stack", sort=False)["passes_all"].sum().to_dict()
    return {"json": {"out": args.out, "passing": {k: int(v) for k, v in passing.items()}},
            "text": f"rankings -> {args.out} (passing every criterion: "
                    + ", ".join(f"{k} {int(v)}" for k, v in passing.items()) + ")"}


def run_report(args) -> dict:
    from screening.interfaces.report import write_report

    out = write_report(Path(args.run_dir))
    return {"json": {"report": str(out)}, "text": f"report -> {out}"}
