rule report:
    """Plots (PNG and SVG) and one self-contained HTML page for the run."""
    input:
        rankings=f"{RUN_DIR}/rankings.parquet",
        provenance=f"{RUN_DIR}/provenance.json",
    output:
        report=f"{RUN_DIR}/report.html",
    params:
        code=CODE,
        run_dir=RUN_DIR,
        report=section("stacks", "thresholds"),
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "{SCREENING} report --run-dir {params.run_dir:q}"
