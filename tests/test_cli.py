"""The `recourse` command as a person runs it: exit codes 0, 1 and 2, one-line errors, no Ray
noise on the terminal without --verbose, the shipped configs."""

import os
import subprocess
import sys
from pathlib import Path

import joblib
import pytest
import yaml

ROOT = Path(__file__).parent.parent
NOISE = ("WARNING", "You are running SAC", "Configuration for experiment", "TensorBoard",
         "gputil", "DeprecationWarning", "Checkpoint successfully created", "Traceback")


def recourse(*args: str, env: dict | None = None, timeout: int = 600) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "distributed_recourse.cli", *args],
                          capture_output=True, text=True, timeout=timeout,
                          env={**os.environ, "RAY_ADDRESS": "local", **(env or {})})


def test_configs_lists_and_shows_the_shipped_ones():
    listed = recourse("configs")
    assert listed.returncode == 0
    for name in ("adult", "alzheimer", "tiny", "quick_sweep", "adult_sweep"):
        assert name in listed.stdout
    shown = recourse("configs", "show", "adult")
    assert shown.returncode == 0 and "dataset: {name: adult}" in shown.stdout
    missing = recourse("configs", "show", "adlut")
    assert missing.returncode == 2 and "adlut" in missing.stderr and "adult" in missing.stderr


@pytest.mark.parametrize("text, named", [
    (None, "nope.yaml"),                                   # no such file or shipped config
    ("trian: {env_steps: 10}\n", "trian"),                 # a misspelled section
    ("dataset: {name: adult}\nlevel: everyone\n", "level"),  # a bad value
])
def test_a_bad_config_is_one_line_and_exit_code_2(tmp_path, text, named):
    config = tmp_path / "nope.yaml"
    if text is not None:
        config.write_text(text)
    done = recourse("train", "--config", str(config), "--output", str(tmp_path / "run"))
    assert done.returncode == 2
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and named in lines[0]
    assert "Traceback" not in done.stderr + done.stdout


def test_bad_data_is_exit_code_2_naming_the_column(tmp_path):
    data = tmp_path / "loans.csv"
    data.write_text("income;approved;race\n1;yes;a\n2;no;b\n")
    schema = tmp_path / "loans.yaml"
    schema.write_text(yaml.safe_dump({"name": "loans", "label": "approved", "favourable": "yes",
                                      "protected": "race",
                                      "actionable": [{"name": "incme", "kind": "con"}]}))
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump({"dataset": {"name": "csv", "path": str(data),
                                                  "schema": str(schema)}}))
    done = recourse("prepare", "--config", str(config), "--output", str(tmp_path / "run"))
    assert done.returncode == 2 and "incme" in done.stderr and "income" in done.stderr


def test_a_run_shows_its_progress_without_ray_noise_and_names_its_files(tmp_path):
    config = tmp_path / "tiny.yaml"
    config.write_text((ROOT / "tune_configs" / "tiny.yaml").read_text().replace(
        "env_steps: 600", "env_steps: 150"))
    done = recourse("train", "--config", str(config), "--output", str(tmp_path / "run"))
    assert done.returncode == 0, done.stderr[-2000:]
    terminal = done.stdout + done.stderr
    assert not [noise for noise in NOISE if noise in terminal], terminal[-3000:]
    assert "cluster-0" in done.stdout and "of 1.000" in done.stdout  # SR beside the ceiling
    assert done.stdout.strip().splitlines()[-1].startswith("written:")
    logs = tmp_path / "run" / "logs"
    assert "Token authentication" in (logs / "recourse.log").read_text()  # Ray's, kept there
    assert list((logs / "ray").glob("worker-*"))  # the workers' own output
    verbose = recourse("report", "--run", str(tmp_path / "run"), "--verbose")
    assert verbose.returncode == 0 and "written:" in verbose.stdout


def test_a_failing_trainer_is_exit_code_1_naming_the_scope_and_keeping_the_files(tmp_path):
    sys.path.insert(0, str(ROOT / "tests" / "support"))
    from failing_model import FailsInTrainers

    model = tmp_path / "model.joblib"
    joblib.dump(FailsInTrainers(), model)
    spec = yaml.safe_load((ROOT / "tune_configs" / "tiny.yaml").read_text())
    spec["model"] = {"kind": "file", "path": str(model), "input": "matrix", "favourable_output": 1}
    spec["train"] = {**spec["train"], "max_failures": 0}
    config = tmp_path / "config.yaml"
    config.write_text(yaml.safe_dump(spec))
    env = {"PYTHONPATH": os.pathsep.join([str(ROOT / "tests" / "support"),
                                          os.environ.get("PYTHONPATH", "")])}
    done = recourse("train", "--config", str(config), "--output", str(tmp_path / "run"), env=env)
    assert done.returncode == 1, done.stdout[-2000:] + done.stderr[-2000:]
    assert "failed:" in done.stderr and "cluster-" in done.stderr
    assert "the model service is down" in done.stderr
    assert "Traceback" not in done.stderr
    assert (tmp_path / "run" / "summary.json").is_file()  # what finished is written
