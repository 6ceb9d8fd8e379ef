# Screening workflow: prepare -> shard -> evaluate (one job per shard) -> rank -> plots and report.
# Local:  snakemake --profile workflows/profiles/local
# Slurm:  snakemake --profile workflows/profiles/slurm --configfile workflows/config/demo.yaml
# The default config applies only without --configfile: a config given there replaces it (a demo
# config must not inherit the default screen's candidates), and common.smk says so in one line.
import os

DEFAULT_CONFIG = "workflows/config/default.yaml"  # beside this Snakefile, whatever the working folder
if not workflow.overwrite_configfiles:
    workflow.configfile(os.path.join(workflow.basedir, DEFAULT_CONFIG))

include: "workflows/rules/common.smk"
include: "workflows/rules/screen.smk"
include: "workflows/rules/report.smk"


rule all:
    input:
        # the parts are targets too: a lost or deleted shard result is recomputed (alone)
        expand(f"{RUN_DIR}/parts/part_{{shard}}.parquet", shard=SHARDS),
        f"{RUN_DIR}/rankings.parquet",
        f"{RUN_DIR}/report.html",
    default_target: True
