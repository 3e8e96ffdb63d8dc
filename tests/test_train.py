"""Training on a real local Ray: RLlib SAC per scope as Tune trials, the central statistics
actor, the three fairness levels, and resuming a killed run."""

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

from distributed_recourse.population import Prepared
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.evaluation import evaluate_scope
from distributed_recourse.stats import NAMESPACE, RemoteStats, start_actor
from distributed_recourse.train import train

ROOT = Path(__file__).parent.parent


@pytest.fixture(scope="module")
def hybrid_run(ray_session, tiny_config, tmp_path_factory):
    output = tmp_path_factory.mktemp("hybrid")
    return output, train(tiny_config, output, verbose=0)


def test_hybrid_trains_one_scope_per_cluster_and_archives(hybrid_run, tiny_config):
    output, summary = hybrid_run
    assert summary["level"] == "hybrid"
    assert set(summary["scopes"]) == {"cluster-0", "cluster-1"}
    archive = pd.read_csv(output / "archive.csv")
    assert len(archive) >= 1
    assert set(archive.scope) <= {"cluster-0", "cluster-1"}
    met = [s for s in summary["scopes"].values() if s["met_done"]]
    assert met, "no scope archived a successful set"
    for scope in summary["scopes"].values():
        assert scope["env_steps"] >= tiny_config.train.env_steps
        assert scope["env_steps_per_s"] > 0
        assert len(scope["actions"]) == tiny_config.reward.n_actions


def test_hybrid_reward_used_the_central_actors_population_statistics(hybrid_run):
    output, summary = hybrid_run
    stats = json.loads((output / "stats.json").read_text())
    assert set(stats["tallies"]) == {"cluster-0", "cluster-1"}
    # each scope synced many times, so each read the other's tally while training
    assert stats["syncs"] >= 2 * 600 // 20
    for scope, tally in stats["tallies"].items():
        assert sum(tally["people"]) == summary["scopes"][scope]["n"]


def test_summary_figures_are_the_exact_evaluation_of_the_chosen_sets(hybrid_run, tiny_config):
    output, summary = hybrid_run
    prepared = Prepared.load(output)
    space = ActionSpace(prepared.model.space.actionable, tiny_config.reward.n_actions)
    total = 0
    for name, reported in summary["scopes"].items():
        scope = prepared.population.scope(name)
        again, _, _ = evaluate_scope(space, scope.X, scope.groups, scope.group_names,
                                     np.array(reported["set"]), prepared.model.favourable,
                                     tiny_config.reward)
        assert again["SR"] == pytest.approx(reported["SR"])
        assert again["PD"] == pytest.approx(reported["PD"])
        total += reported["n"]
    population = summary["population"]
    assert population["n"] == total == len(prepared.population.X)
    assert sum(g["n"] for g in population["groups"].values()) == total
    assert 0.0 <= population["validity"] <= 1.0


def test_group_and_individual_levels_train_their_scopes(ray_session, tiny_config, tmp_path):
    short = replace(tiny_config.train, env_steps=100, steps_per_iteration=50)
    group = train(replace(tiny_config, level="group", train=short), tmp_path / "group", verbose=0)
    assert set(group["scopes"]) == {"all"}
    assert group["scopes"]["all"]["n"] == group["population"]["n"]
    individual = train(replace(tiny_config, level="individual", train=short),
                       tmp_path / "individual", verbose=0)
    assert set(individual["scopes"]) == {"cluster-0", "cluster-1"}


def test_stats_actor_restarts_and_restores_its_state(ray_session, tmp_path):
    ray = ray_session
    checkpoint = tmp_path / "stats.json"
    actor = start_actor("test-restore", str(checkpoint), "sr_minus_pd")
    tally = {"people": [3, 4], "flipped_any": [1, 2], "flipped_best": [1, 2],
             "effective": [0, 1], "n_actions": 2}
    entry = {"scope": "a", "set": [[1.0]], "SR": 0.9, "PD": 0.0, "gower_active": 0.1,
             "reward": 1.0, "tally": tally}
    client = RemoteStats("test-restore")
    client.sync("a", tally, [entry], 10)
    ray.get(actor.save.remote())
    pid = ray.get(actor.pid.remote())
    os.kill(pid, signal.SIGKILL)
    deadline = time.time() + 60
    while True:  # the actor comes back (max_restarts=-1) and reads its checkpoint
        try:
            snapshot = ray.get(ray.get_actor("test-restore", namespace=NAMESPACE)
                               .snapshot.remote(), timeout=10)
            break
        except Exception:
            assert time.time() < deadline, "the statistics actor did not restart"
            time.sleep(1)
    assert snapshot["archive"]["a"][0]["SR"] == 0.9
    assert snapshot["tallies"]["a"] == tally
    assert ray.get(ray.get_actor("test-restore", namespace=NAMESPACE).pid.remote()) != pid


def intact_records(path: Path) -> list[dict]:
    """Tune's JSON lines; the kill may have torn the line Tune was writing at that moment."""
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
    checkpoints = list(experiment.glob("*/checkpoint_000001"))
    snapshots = list(experiment.glob("experiment_state-*.json"))
    return bool(checkpoints and snapshots) and (  # a snapshot well after the checkpoint
        max(p.stat().st_mtime for p in snapshots) > max(p.stat().st_mtime for p in checkpoints) + 2)


def test_killed_training_resumes_without_losing_finished_work(tmp_path):
    """`recourse train` killed midway, then `--resume`: trials continue from their
    checkpoints and the archive keeps what was recorded before the kill."""
    output = tmp_path / "run"
    config = tmp_path / "config.yaml"
    steps = 4000  # long enough that the kill lands midway, even on an idle machine
    config.write_text((ROOT / "tune_configs" / "tiny.yaml").read_text().replace(
        "env_steps: 600", f"env_steps: {steps}"))
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
    before = json.loads((output / "stats.json").read_text())
    recorded = {(scope, json.dumps(e["set"])) for scope, entries in before["archive"].items()
                for e in entries}

    done = subprocess.run([*command, "--resume"], env=env, capture_output=True, text=True,
                          timeout=600)
    assert done.returncode == 0, done.stderr[-3000:]
    summary = json.loads((output / "summary.json").read_text())
    assert all(s["env_steps"] >= steps for s in summary["scopes"].values())
    after = json.loads((output / "stats.json").read_text())
    kept = {(scope, json.dumps(e["set"])) for scope, entries in after["archive"].items()
            for e in entries}
    assert recorded <= kept
    resumed = []
    for trial in (output / "tune" / "train").glob("SAC_*"):
        results = intact_records(trial / "result.json")
        iterations = [r["training_iteration"] for r in results]
        assert iterations[-1] == max(iterations)
        resumed.append(results[-1]["iterations_since_restore"] < results[-1]["training_iteration"])
    assert any(resumed), "no trial continued from a checkpoint"
