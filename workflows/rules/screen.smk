# Every value interpolated into a shell command is quoted ({x:q}); SCREENING is quoted already.
rule prepare:
    """Parse (or load the cached) entry data once and record its source and hash."""
    output:
        f"{RUN_DIR}/data_source.json",
    params:
        code=CODE,
        data=section("entries", "user_entries", "user_scheme", "user_mode", "exclude_entries"),
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "{SCREENING} data-info --config-json {params.data:q} --out {output:q}"


rule shard:
    """Enumerate the candidates and split them into shards (contiguous chemical systems)."""
    input:
        f"{RUN_DIR}/data_source.json",
    output:
        expand(f"{RUN_DIR}/shards/shard_{{shard}}.json", shard=SHARDS),
    params:
        code=CODE,
        screen=section("entries", "user_entries", "user_scheme", "user_mode", "exclude_entries", "candidates", "stacks", "execution"),
        stack_groups=STACK_GROUPS,
    resources:
        mem_mb=2000,
        runtime=20,
    shell:
        "{SCREENING} shard --config-json {params.screen:q} --stack-groups {params.stack_groups:q} --out {output:q}"


rule evaluate:
    """Evaluate one shard: stability, window and reactions of each candidate in each stack. A verified
    result of the same shard and code (kept under parts/.reuse/, e.g. by a job of a killed run) is
    reused instead of recomputed."""
    input:
        f"{RUN_DIR}/shards/shard_{{shard}}.json",
    output:
        f"{RUN_DIR}/parts/part_{{shard}}.parquet",
    params:
        code=CODE,
        workers=JOB_WORKERS,
    threads: max(1, JOB_WORKERS)
    resources:
        mem_mb=3000,
        runtime=60,
    shell:
        "{SCREENING} evaluate {input:q} --out {output:q} --workers {params.workers:q}"


rule rank:
    """Gather the shards, check each part against its shard and the code, apply the criteria and
    rank each stack."""
    input:
        parts=expand(f"{RUN_DIR}/parts/part_{{shard}}.parquet", shard=SHARDS),
        shards=expand(f"{RUN_DIR}/shards/shard_{{shard}}.json", shard=SHARDS),
    output:
        rankings=f"{RUN_DIR}/rankings.parquet",
        csv=f"{RUN_DIR}/rankings.csv",
        provenance=f"{RUN_DIR}/provenance.json",
    params:
        code=CODE,
        run_dir=RUN_DIR,
        ranking=section("entries", "user_entries", "user_scheme", "user_mode", "exclude_entries", "stacks", "thresholds",
                        "score_weights", "uncertainty"),
    # the Monte Carlo of the top rows runs on this job's cores (dask workers; 1 = in this process):
    # two, or workers_per_job if more; Snakemake lowers it to the cores it has (--cores)
    threads: max(2, JOB_WORKERS)
    resources:
        mem_mb=3000,
        runtime=30,
    shell:
        "{SCREENING} rank --config-json {params.ranking:q} --parts {input.parts:q} --shards {input.shards:q}"
        " --out {params.run_dir:q} --workers {threads:q}"
