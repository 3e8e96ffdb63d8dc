"""Sweeps: the search-space file, the objective, the Pareto front, a real short Tune sweep whose
every trial is the engine's distributed run, and killing a sweep mid-trial then resuming it."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from distributed_recourse.config import ConfigError, RunConfig
from distributed_recourse.report import write_report
from distributed_recourse.result import RunResult
from distributed_recourse.sweep import SweepSpec, objective, pareto_front, sweep, with_value

ROOT = Path(__file__).parent.parent


def test_pareto_front_keeps_only_undominated_trials():
    trials = pd.DataFrame({
        "SR": [0.90, 0.95, 0.80, 0.95, 0.70],
        "PD": [0.05, 0.02, 0.01, 0.03, 0.00],
        "gower_chosen": [0.10, 0.10, 0.20, 0.10, 0.30],
    })
    # row 0 is beaten by row 1 (higher SR, lower PD, same Gower); row 3 by row 1 (same SR,
    # higher PD); rows 1, 2 and 4 each win on something
    assert list(pareto_front(trials).index) == [1, 2, 4]


def test_a_sweep_counts_its_trials_before_tune_creates_them(tiny_config):
    spec = SweepSpec(base=tiny_config, num_samples=3,
                     search={"reward.pd": {"grid": [0.5, 2.0]}, "sac.actor_lr": {"grid": [1e-4, 3e-4, 1e-3]},
                             "reward.ecr_gap": {"uniform": [0.0, 2.0]}})
    assert spec.n_trials == 2 * 3 * 3
    assert SweepSpec.single(tiny_config).n_trials == 1


def test_objective_is_the_weighted_sum_of_population_figures():
    population = {"SR": 0.9, "PD": 0.1, "ECR_gap": 0.25, "gower_chosen": 0.2}
    weights = {"SR": 1.0, "PD": -1.0, "ECR_gap": -1.0, "gower_chosen": -0.5}
    assert objective(population, weights) == pytest.approx(0.9 - 0.1 - 0.25 - 0.1)
    assert objective({**population, "gower_chosen": None}, weights) == pytest.approx(0.05)
    # a round's figures carry the active actions' Gower until the final, exact one
    rounds = {"SR": 0.9, "PD": 0.1, "ECR_gap": 0.25, "gower_active": 0.4}
    assert objective(rounds, weights) == pytest.approx(0.9 - 0.1 - 0.25 - 0.2)


def test_with_value_sets_a_dotted_key_and_validates_it():
    config = with_value(RunConfig(), "reward.pd", 2.5)
    assert config.reward.pd == 2.5
    assert with_value(config, "population.clusters", 5).population.clusters == 5
    with pytest.raises(ConfigError, match="pdd"):
        with_value(config, "reward.pdd", 1.0)
    with pytest.raises(ConfigError, match="rewards"):
        with_value(config, "rewards.pd", 1.0)


def test_sweep_file_errors_name_the_key(tmp_path):
    bad = tmp_path / "sweep.yaml"
    bad.write_text(yaml.safe_dump({"search": {"reward.pd": {"between": [0, 1]}}}))
    with pytest.raises(ConfigError, match="reward.pd"):
        SweepSpec.from_yaml(bad)
    bad.write_text(yaml.safe_dump({"search": {"reward.nope": {"grid": [1]}}}))
    with pytest.raises(ConfigError, match="nope"):
        SweepSpec.from_yaml(bad)
    bad.write_text(yaml.safe_dump({"serach": {}}))
    with pytest.raises(ConfigError, match="serach"):
        SweepSpec.from_yaml(bad)


def test_shipped_sweeps_parse_by_name():
    quick = SweepSpec.from_yaml("quick_sweep")
    assert len(quick.search) == 2 and quick.max_concurrent == 2
    adult = SweepSpec.from_yaml("adult_sweep")  # its base names the shipped adult.yaml
    assert adult.base.dataset.name == "adult" and adult.scheduler


def test_a_short_sweep_runs_each_trial_through_the_engine(ray_session, tiny_config, tmp_path):
    spec = SweepSpec(base=with_value(tiny_config, "train.env_steps", 200),
                     search={"reward.pd": {"grid": [0.5, 2.0]}}, max_concurrent=2)
    trials, outcomes = sweep(spec, tmp_path)
    assert len(trials) == 2 and sorted(trials["param:reward.pd"]) == [0.5, 2.0]
    assert trials["objective"].is_monotonic_decreasing
    for trial, outcome in outcomes.items():  # each trial's run, read back through Tune
        assert set(outcome.scopes) == {"cluster-0", "cluster-1"} and outcome.errors == []
        assert all(s.steps >= 200 for s in outcome.scopes.values())
        folder = tmp_path / "trials" / trial
        assert RunResult.load(folder) == outcome
        assert {"archive.csv", "stats.json"} <= {p.name for p in folder.iterdir()}
    for column in ("SR", "PD", "ECR_gap", "gower_chosen", "model_calls"):
        assert trials[column].notna().all()
    report = write_report(tmp_path).read_text()
    assert "Pareto" in report and (tmp_path / "plots" / "sweep.png").stat().st_size > 0
    assert 1 <= len(pd.read_csv(tmp_path / "pareto.csv")) <= 2
    best = RunConfig.from_yaml(tmp_path / "best.yaml")
    assert best.reward.pd == trials.iloc[0]["param:reward.pd"]


def intact_records(path: Path) -> list[dict]:
    records = []
    for line in path.read_text().splitlines() if path.exists() else []:
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def test_a_killed_sweep_resumes_finished_trials_untouched_and_the_rest_from_checkpoints(tmp_path):
    """SIGKILL `recourse tune` once its first trial has finished and its second has a
    checkpoint in Tune's snapshot; `--resume` must not rerun the first and must continue the
    second from its checkpoint, not from zero."""
    base = yaml.safe_load((ROOT / "tune_configs" / "tiny.yaml").read_text())
    base["train"] = {"env_steps": 2500, "steps_per_iteration": 50, "checkpoint_every_s": 1}
    base["search"] = {"patience": 100000, "stall": 100000}
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump({"base": base, "search": {"reward.pd": {"grid": [0.5, 2.0]}},
                                          "max_concurrent": 1}))
    output = tmp_path / "sweep"
    command = [sys.executable, "-m", "distributed_recourse.cli", "tune", "--config",
               str(sweep_file), "--output", str(output)]
    env = {**os.environ, "RAY_ADDRESS": "local"}
    first = subprocess.Popen(command, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    experiment = output / "tune" / "sweep"

    deadline = time.time() + 400
    while True:
        assert first.poll() is None, "the sweep ended before it could be interrupted"
        assert time.time() < deadline, "no finished trial and checkpointed second trial appeared"
        trials = sorted(experiment.glob("run_trial_*"))
        done = [t for t in trials if any(r.get("finished") for r in
                                         intact_records(t / "result.json"))]
        running = [t for t in trials if t not in done and list(t.glob("checkpoint_*"))]
        if done and running:
            snapshot = max(experiment.glob("experiment_state-*.json"), key=os.path.getmtime)
            oldest = min(p.stat().st_mtime for p in running[0].glob("checkpoint_*"))
            if snapshot.stat().st_mtime > oldest + 1:  # the snapshot knows a checkpoint
                finished, interrupted = done[0], running[0]
                break
        time.sleep(0.5)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    finished_lines = (finished / "result.json").read_text()
    before = intact_records(interrupted / "result.json")[-1]["training_iteration"]

    resumed = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True,
                             timeout=900)
    assert resumed.returncode == 0, resumed.stdout[-3000:] + resumed.stderr[-3000:]
    assert (finished / "result.json").read_text() == finished_lines  # not rerun
    records = intact_records(interrupted / "result.json")
    after_kill = [r for r in records if r["training_iteration"] > before]
    assert after_kill and after_kill[-1]["finished"]
    first_again = after_kill[0]
    assert first_again["iterations_since_restore"] < first_again["training_iteration"], \
        "the interrupted trial started again from zero"
    assert len(pd.read_csv(output / "trials.csv")) == 2
