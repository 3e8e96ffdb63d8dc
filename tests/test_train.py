"""Training on a real local Ray through the one engine: a Tune trial per configuration, one
trainer per scope in the trial's placement group, the statistics hub, the three fairness
levels, the search's ceiling and goal, the same result through every door, and resuming a
killed run."""

import json
import os
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from distributed_recourse.engine import summarize
from distributed_recourse.explain import FairRecourse
from distributed_recourse.population import Prepared
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.evaluation import evaluate_scope
from distributed_recourse.recourse.stopping import GOAL_MET
from distributed_recourse.result import RunResult
from distributed_recourse.sweep import SweepSpec, sweep
from distributed_recourse.train import train

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def hybrid_run(ray_session, tiny_config, tmp_path_factory):
    output = tmp_path_factory.mktemp("hybrid")
    return output, train(tiny_config, output)


def test_hybrid_trains_one_scope_per_cluster_and_archives(hybrid_run, tiny_config):
    output, result = hybrid_run
    assert result.level == "hybrid" and result.errors == []
    assert set(result.scopes) == {"cluster-0", "cluster-1"}
    archive = pd.read_csv(output / "archive.csv")
    assert len(archive) >= 1 and set(archive.scope) <= {"cluster-0", "cluster-1"}
    assert archive.model_calls.min() >= 1  # when each set was found, in model calls
    for scope in result.scopes.values():
        assert scope.met_goal
        if scope.stop_reason == "step budget":
            assert scope.steps >= tiny_config.train.env_steps
        else:  # done before it: its goal met and no better set for `patience` steps
            assert scope.stop_reason.startswith(GOAL_MET)
            improved_at = int(scope.stop_reason.split()[-1].replace(",", ""))
            assert scope.steps >= improved_at + tiny_config.search.patience
        assert 0 < scope.model_calls <= scope.steps
        assert len(scope.actions) == tiny_config.reward.n_actions
        assert scope.goal["SR"] == pytest.approx(0.98 * scope.ceiling.SR)


def test_the_hub_owns_the_counters_and_pooled_every_scope(hybrid_run):
    output, result = hybrid_run
    stats = json.loads((output / "stats.json").read_text())
    assert set(stats["tallies"]) == {"cluster-0", "cluster-1"}
    for scope, tally in stats["tallies"].items():
        assert sum(tally["people"]) == result.scopes[scope].n
        assert stats["counters"][scope]["steps"] == result.scopes[scope].steps
        assert stats["counters"][scope]["model_calls"] == result.scopes[scope].model_calls
    assert stats["rounds"] >= 4


def test_summary_figures_are_the_exact_evaluation_of_the_final_sets(hybrid_run, tiny_config):
    output, result = hybrid_run
    prepared = Prepared.load(output)
    space = ActionSpace(prepared.model.space.actionable, tiny_config.reward.n_actions)
    for name, reported in result.scopes.items():
        scope = prepared.population.scope(name)
        again, _, _ = evaluate_scope(space, scope.X, scope.groups, scope.group_names,
                                     np.array(reported.set), prepared.model.favourable,
                                     tiny_config.reward)
        assert again["SR"] == pytest.approx(reported.SR)
        assert again["PD"] == pytest.approx(reported.PD)
    population = result.population
    assert population.n == len(prepared.population.X) == sum(s.n for s in result.scopes.values())
    assert pytest.approx(prepared.summary["affected"]["ceiling"]["SR"]) == population.ceiling.SR
    assert RunResult.load(output) == result  # summary.json reads back as the same RunResult


def test_final_sets_are_minimised_and_keep_every_flip(hybrid_run):
    _, result = hybrid_run
    before = result.population.before_minimizing
    assert before["SR"] - 1e-12 <= result.population.SR
    assert result.population.sparsity <= before["sparsity"] + 1e-12
    for scope in result.scopes.values():
        m = scope.minimized
        assert m["changes"]["after"] <= m["changes"]["before"]
        assert m["flipped"]["after"] >= m["flipped"]["before"]


def test_the_warm_start_hand_over_is_recorded(hybrid_run):
    _, result = hybrid_run
    for scope in result.scopes.values():  # SAC starts from the coordinate search's result
        assert scope.handover is not None
        assert 0 < scope.handover["model_calls"] <= scope.model_calls
        assert {"SR", "PD", "ECR_gap", "gower_chosen"} <= set(scope.handover)


def test_a_run_reads_back_from_its_checkpoint_exactly(hybrid_run, tiny_config):
    output, result = hybrid_run
    stats = json.loads((output / "stats.json").read_text())
    again = summarize(tiny_config, Prepared.load(output), stats, result.wall_s)
    assert again.sets == result.sets and again.population.SR == result.population.SR


def test_the_same_config_and_seed_give_the_same_result_through_every_door(
        hybrid_run, ray_session, tiny_config, tmp_path):
    """`recourse train`, a sweep trial and FairRecourse.fit all run the engine."""
    _, trained = hybrid_run
    _, swept = sweep(SweepSpec.single(tiny_config), tmp_path / "sweep")
    fitted = FairRecourse(tiny_config, run_dir=tmp_path / "fit").fit().result_
    for other in (next(iter(swept.values())), fitted):
        assert other.sets == trained.sets
        assert other.population.SR == trained.population.SR
        assert [s.steps for s in other.scopes.values()] == [s.steps for s in trained.scopes.values()]


@pytest.mark.parametrize("kind", ["random", "greedy"])
def test_the_baselines_run_through_the_same_engine_to_each_scopes_budget(ray_session, tiny_config,
                                                                        tmp_path, kind):
    # as `reproduce` compares them: each scope gets its own model calls, no stop rule
    budgets = {"cluster-0": 300, "cluster-1": 150}
    config = replace(tiny_config, search=replace(tiny_config.search, kind=kind, patience=10**9,
                                                 stall=10**9),
                     train=replace(tiny_config.train, env_steps=None, max_model_calls=budgets))
    result = train(config, tmp_path)
    assert result.search == kind and result.errors == []
    for name, scope in result.scopes.items():
        assert scope.stop_reason == "model-call budget"
        assert budgets[name] <= scope.model_calls <= budgets[name] + 16
        assert scope.handover is None


def test_group_and_individual_levels_train_their_scopes(ray_session, tiny_config, tmp_path):
    short = replace(tiny_config.train, env_steps=100, steps_per_iteration=50)
    group = train(replace(tiny_config, level="group", train=short), tmp_path / "group")
    assert set(group.scopes) == {"all"}
    assert group.scopes["all"].n == group.population.n
    individual = train(replace(tiny_config, level="individual", train=short),
                       tmp_path / "individual")
    assert set(individual.scopes) == {"cluster-0", "cluster-1"}


def test_without_a_budget_the_stop_rule_ends_the_run(ray_session, tiny_config, tmp_path):
    config = replace(tiny_config, search=replace(tiny_config.search, patience=64, stall=256),
                     train=replace(tiny_config.train, env_steps=None))
    result = train(config, tmp_path)
    for scope in result.scopes.values():
        assert scope.stop_reason.startswith(("goal met", "no better set"))


def intact_records(path: Path) -> list[dict]:
    """Tune's JSON lines; a kill may have torn the line Tune was writing at that moment."""
    records = []
    for line in path.read_text().splitlines():
        try:
            records.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return records


def snapshot_knows_a_checkpoint(experiment: Path) -> bool:
    """Tune resumes from its experiment snapshot (written every few seconds): a crash before
    the snapshot that follows a trial checkpoint restarts that trial from the older state."""
    checkpoints = list(experiment.glob("*/checkpoint_*"))
    snapshots = list(experiment.glob("experiment_state-*.json"))
    return bool(checkpoints and snapshots) and (
        max(p.stat().st_mtime for p in snapshots) > min(p.stat().st_mtime for p in checkpoints) + 2)


def test_killed_training_resumes_without_losing_finished_work(tmp_path):
    """`recourse train` killed midway, then `--resume`: the trial continues from its checkpoint
    (trainers and hub together) and keeps the counters and archive it had."""
    output = tmp_path / "run"
    config = tmp_path / "config.yaml"
    steps = 3000  # long enough that the kill lands midway, even on an idle machine
    config.write_text((ROOT / "tune_configs" / "tiny.yaml").read_text().replace(
        "env_steps: 600", f"env_steps: {steps}").replace("stall: 400", "stall: 100000").replace(
        "patience: 200", "patience: 100000"))
    command = [sys.executable, "-m", "distributed_recourse.cli", "train",
               "--config", str(config), "--output", str(output)]
    env = {**os.environ, "RAY_ADDRESS": "local"}  # its own Ray, not the session's
    first = subprocess.Popen(command, env=env, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 240
    while not snapshot_knows_a_checkpoint(output / "tune" / "train"):
        assert first.poll() is None, "training ended before it could be interrupted"
        assert time.time() < deadline, "no checkpoint appeared"
        time.sleep(0.5)
    assert first.poll() is None, "training ended before it could be interrupted"
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    trial = next((output / "tune" / "train").glob("run_trial_*"))
    before = intact_records(trial / "result.json")[-1]
    newest = max(trial.glob("checkpoint_*"), key=lambda p: p.name)
    saved = json.loads((newest / "hub.json").read_text())["counters"]

    done = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = RunResult.load(output)
    assert all(s.steps >= steps for s in result.scopes.values())
    records = intact_records(trial / "result.json")
    last = records[-1]
    assert last["iterations_since_restore"] < last["training_iteration"], "restarted from zero"
    restored = next(r for r in records if r["training_iteration"] > before["training_iteration"]
                    and r["iterations_since_restore"] == 1)
    for scope, counters in restored["scopes"].items():  # the hub's counters went on
        assert counters["steps"] > saved[scope]["steps"] > 0
        assert counters["model_calls"] >= saved[scope]["model_calls"] > 0
