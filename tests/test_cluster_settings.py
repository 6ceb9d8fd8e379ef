"""execution: {cluster: slurm, slurm: {...}} and --cluster (issue 14 item 3): every value that reaches an
#SBATCH line is checked, bad ones are one line and exit 2; the job script carries exactly the settings.
The runs on the real Slurm are in test_slurm.py."""

from __future__ import annotations

import pytest
import yaml

from screening.cli import main
from screening.errors import InputError
from screening.screen.cluster_settings import SlurmSettings, parse_cluster
from screening.screen.config import config_from_dict

ONE_STACK = [{"electrode": "LCO", "electrolyte": "LPSCl"}]


def test_default_is_local_and_the_command_line_wins():
    assert parse_cluster({}, "cfg") == ("local", None)
    cluster, settings = parse_cluster({"cluster": "local", "slurm": {"queue": "debug"}}, "cfg", "slurm")
    assert cluster == "slurm" and settings.queue == "debug" and settings.maximum_workers == 2
    config = config_from_dict({"stacks": ONE_STACK, "execution": {
        "cluster": "slurm", "slurm": {"queue": "gpu-long.1", "account": "proj_42", "walltime": "1-02:00:00",
                                      "cores": 4, "memory": "16GB", "minimum_workers": 2,
                                      "maximum_workers": 64, "interface": "ib0"}}})
    assert config.cluster == "slurm"
    assert config.slurm == SlurmSettings(queue="gpu-long.1", account="proj_42", walltime="1-02:00:00", cores=4,
                                         memory="16GB", minimum_workers=2, maximum_workers=64, interface="ib0")


@pytest.mark.parametrize("slurm, mention", [
    ({"queue": "debug\n#SBATCH --wrap=rm"}, "queue"),
    ({"queue": "debug; rm -rf ~"}, "queue"),
    ({"account": "$(id)"}, "account"),
    ({"job_name": "-x"}, "job_name"),
    ({"walltime": "forever"}, "walltime"),
    ({"walltime": "01:00:00\n"}, "walltime"),
    ({"memory": "2GB --wrap=x"}, "memory"),
    ({"memory": 2}, "memory"),
    ({"interface": "eth0 && true"}, "interface"),
    ({"cores": 0}, "cores"),
    ({"cores": True}, "cores"),
    ({"cores": 10**5000}, "cores"),
    ({"queue": 10**5000}, "queue"),
    ({"maximum_workers": 5000}, "maximum_workers"),
    ({"minimum_workers": 0}, "minimum_workers"),
    ({"minimum_workers": 4, "maximum_workers": 2}, "exceeds"),
    ({"start_timeout": 1}, "start_timeout"),
    ({"partition": "debug"}, "unknown key"),
])
def test_hostile_slurm_settings_are_refused(slurm, mention):
    with pytest.raises(InputError, match=mention) as error:
        parse_cluster({"cluster": "slurm", "slurm": slurm}, "cfg")
    assert "\n" not in str(error.value) and len(str(error.value)) < 400


def test_unknown_cluster_and_conflicts_are_one_line(tmp_path, capsys, monkeypatch):
    monkeypatch.chdir(tmp_path)
    with pytest.raises(InputError, match="cluster"):
        parse_cluster({"cluster": "kubernetes"}, "cfg")
    with pytest.raises(InputError, match="maximum_workers"):
        config_from_dict({"stacks": ONE_STACK, "execution": {"cluster": "slurm", "workers": 4}})
    config = tmp_path / "c.yaml"
    config.write_text(yaml.safe_dump({"run": "x", "stacks": ONE_STACK, "candidates": {"library": True}}))
    for extra, mention in ((["--cluster", "slurm", "--workers", "2"], "--workers"),
                           (["--cluster", "slurm", "--scheduler", "tcp://127.0.0.1:8786"], "--scheduler"),
                           (["--cluster", "pbs"], "invalid choice")):
        code = main(["screen", "--config", str(config), "--out", str(tmp_path / "out"), "--no-progress", *extra])
        out, err = capsys.readouterr()
        assert code == 2, err
        assert mention in err and len(err.strip().splitlines()) == 1, err
        assert not (tmp_path / "out").exists()


def test_job_script_carries_the_settings():
    """The worker job script SLURMCluster writes from the settings (no job is submitted)."""
    pytest.importorskip("dask_jobqueue")
    from dask_jobqueue import SLURMCluster

    from screening.execution.clusters import slurm_cluster_options

    settings = SlurmSettings(queue="debug", account="proj_42", walltime="02:30:00", cores=3, memory="6GB",
                             job_name="screening-test")
    cluster = SLURMCluster(**slurm_cluster_options(settings))
    try:
        script = cluster.job_script()
    finally:
        cluster.close()
    for line in ("#SBATCH -p debug", "#SBATCH -A proj_42", "#SBATCH -t 02:30:00", "#SBATCH -J screening-test",
                 "#SBATCH --cpus-per-task=3"):
        assert line in script, script
    assert "--nthreads 1" in script and "--nworkers 3" in script, script
    assert "OPENBLAS_NUM_THREADS=1" in script
