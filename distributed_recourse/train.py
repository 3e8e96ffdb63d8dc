"""Training on Ray: one RLlib SAC trainer per scope, run concurrently as Ray Tune trials, with
the central statistics actor pooling the group terms and archiving successful sets.

Flow of `train`: prepare (or reuse) the population -> put each scope's problem in the object
store -> start the statistics actor -> Tune runs SAC per scope -> pick each scope's final set
from the archive -> exact evaluation -> summary.json, archive.csv.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import time
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from distributed_recourse.config import ConfigError, RunConfig
from distributed_recourse.env import RecourseEnv, ScopeProblem
from distributed_recourse.population import Population, Prepared, prepare
from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.archive import best_combination, best_entry
from distributed_recourse.recourse.evaluation import (
    counterfactuals,
    evaluate_scope,
    population_summary,
)
from distributed_recourse.runtime import connect, limit_threads
from distributed_recourse.stats import RemoteStats, start_actor

EXPERIMENT = "train"
STEPS_KEY = "env_runners/num_env_steps_sampled_lifetime"


# --------------------------------------------------------------------- RLlib pieces
def recourse_catalog():
    """SAC catalog with the reference's separate sizes: the policy uses `fcnet_hiddens`, each
    Q network maps concat(obs, action) through `q_hiddens` (RLlib's default shares one size)."""
    import torch
    from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.models.base import ENCODER_OUT
    from ray.rllib.core.models.configs import MLPHeadConfig

    class ConcatEncoder(torch.nn.Module):
        def forward(self, batch, **kwargs):
            obs, actions = batch[Columns.OBS].float(), batch[Columns.ACTIONS].float()
            return {ENCODER_OUT: torch.cat([obs, actions], dim=-1)}

    class RecourseSACCatalog(SACCatalog):
        def build_qf_encoder(self, framework):
            return ConcatEncoder()

        def build_qf_head(self, framework):
            inputs = int(np.prod(self.observation_space.shape) + np.prod(self.action_space.shape))
            return MLPHeadConfig(
                input_dims=[inputs],
                hidden_layer_dims=list(self._model_config_dict["q_hiddens"]),
                hidden_layer_activation="relu",
                output_layer_dim=1,
            ).build(framework=framework)

    return RecourseSACCatalog


def recourse_envs(algorithm) -> list[RecourseEnv]:
    """The recourse environments living in this algorithm's local env runner."""
    env = algorithm.env_runner.env if algorithm.env_runner is not None else None
    return [] if env is None else [e.unwrapped for e in env.unwrapped.envs]


def on_algorithm_init(*, algorithm, **kwargs) -> None:
    # RLlib seeds torch and the env, not the replay buffer's sampler.
    algorithm.local_replay_buffer.rng = np.random.default_rng(algorithm.config.seed)


def on_train_result(*, algorithm, result: dict, **kwargs) -> None:
    """Report the search's progress with each iteration, and send the archive to the actor;
    `node_id` shows where on a cluster the trainer ran."""
    import ray

    for env in recourse_envs(algorithm):
        env.flush()
        best = env.best_seen
        result["recourse"] = {
            "scope": env.scope,
            "archived": len(env.archive),
            "model_calls": env.model_calls,
            "best_reward": best["reward"] if best else float("nan"),
            "best_SR": best["SR"] if best else float("nan"),
            "best_PD": best["PD"] if best else float("nan"),
            "node_id": ray.get_runtime_context().get_node_id(),
        }


def progress_callback(total_steps: int):
    """A Tune callback printing one line per trainer iteration: the search's own progress."""
    from ray.tune import Callback

    class Progress(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            r = result.get("recourse", {})
            steps = int(result.get("env_runners", {}).get("num_env_steps_sampled_lifetime", 0))
            seconds = result.get("time_total_s", 0.0) or 1e-9
            print(f"[{r.get('scope', trial.trial_id)}] steps {steps}/{total_steps} "
                  f"({steps / seconds:.1f}/s)  archived {r.get('archived', 0)}  "
                  f"best SR {r.get('best_SR', float('nan')):.3f} "
                  f"PD {r.get('best_PD', float('nan')):.3f}", flush=True)

    return Progress()


def sac_config(config: RunConfig, env_config: dict[str, Any], cpus: float):
    from ray.rllib.algorithms.sac import SACConfig
    from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import (
        DefaultSACTorchRLModule,
    )
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    sac = config.sac
    return (
        SACConfig()
        .environment(env=RecourseEnv, env_config=env_config)
        .framework("torch")
        .env_runners(num_env_runners=0, rollout_fragment_length=sac.rollout_fragment_length)
        .training(
            replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": sac.buffer_size},
            num_steps_sampled_before_learning_starts=sac.learning_starts,
            train_batch_size_per_learner=sac.batch_size,
            actor_lr=sac.actor_lr, critic_lr=sac.critic_lr, alpha_lr=sac.alpha_lr,
            tau=sac.tau, gamma=sac.gamma,
            store_buffer_in_checkpoints=True,  # a restored trainer keeps what it learned from
        )
        .rl_module(
            model_config={"fcnet_hiddens": list(sac.actor_hidden), "fcnet_activation": "relu",
                          "head_fcnet_hiddens": [], "q_hiddens": list(sac.critic_hidden)},
            rl_module_spec=RLModuleSpec(module_class=DefaultSACTorchRLModule,
                                        catalog_class=recourse_catalog()),
        )
        .reporting(min_time_s_per_iteration=0,
                   min_sample_timesteps_per_iteration=config.train.steps_per_iteration)
        .resources(num_cpus_for_main_process=cpus,
                   custom_resources_for_main_process=dict(config.train.resources_per_trainer))
        # the local learner shares the trainer's CPUs (its "auto" default would ask for 1)
        .learners(num_learners=0, num_cpus_per_learner=cpus)
        .debugging(seed=config.seed)
        .callbacks(on_algorithm_init=on_algorithm_init, on_train_result=on_train_result)
    )


# --------------------------------------------------------------------- the run
def problems(prepared: Prepared, scopes: list[str]) -> dict[str, ScopeProblem]:
    features = prepared.model.space.actionable
    out = {}
    for name in scopes:
        scope = prepared.population.scope(name)
        out[name] = ScopeProblem(name, scope.X, scope.groups, scope.group_names, features,
                                 prepared.model)
    return out


def even_share(cpus: float, trainers: int) -> float:
    """CPUs per trainer so that all fit at once: Ray counts resources in steps of 1e-4, and
    3 x (2/3) would round above 2."""
    return math.floor(cpus / trainers * 1000) / 1000


def start_hub(name: str, checkpoint: Path, config: RunConfig, by_scope: dict[str, ScopeProblem]):
    """The central statistics actor, seeded with every scope's no-change tally."""
    import ray

    hub = start_actor(name, str(checkpoint), config.train.selection,
                      dict(config.train.stats_actor_resources))
    ray.get([hub.register.remote(scope, no_change_tally(problem, config.reward.n_actions,
                                                        config.reward.phi))
             for scope, problem in by_scope.items()])
    return hub


def scope_env_config(
    config: RunConfig, by_scope: dict[str, ScopeProblem], stats_name: str, cpus: float
) -> dict[str, Any]:
    """What every scope's environment is built from; `scope` picks its problem."""
    import ray

    return {
        "problems": {name: [ray.put(problem)] for name, problem in by_scope.items()},
        "weights": config.reward.to_dict(),
        "hybrid": config.level == "hybrid",
        "stats": RemoteStats(stats_name),
        "sync_steps": config.train.stats_sync_steps,
        "model_threads": max(1, int(cpus)),
        "seed": config.seed,
    }


def no_change_tally(problem: ScopeProblem, n_actions: int, phi: float) -> dict:
    """The tally of a set that changes nothing (one model call: the affected stay affected)."""
    flipped = np.asarray(problem.model.favourable(problem.X), dtype=bool)
    flipped = np.tile(flipped, (n_actions, 1))
    distinct = np.zeros(n_actions, dtype=bool)
    distinct[0] = True
    return M.tally(flipped, problem.groups, len(problem.group_names), distinct, phi).to_dict()


PREPARATION = ("dataset", "model", "population", "seed")
"""Config sections that decide the prepared population; a run folder's must match."""


def prepared_for(config: RunConfig, output: Path) -> Prepared:
    """Reuse the population saved in `output` (prepared from the same data, model and
    clustering settings), or prepare and save it."""
    if not Prepared.exists(output):
        prepared = prepare(config)
        prepared.save(output)
        return prepared
    prepared = Prepared.load(output)
    saved, wanted = prepared.config.to_dict(), config.to_dict()
    differ = [key for key in PREPARATION if saved[key] != wanted[key]]
    if differ:
        raise ConfigError(
            f"{output} holds a population prepared with other {differ} settings; "
            "use a new --output folder"
        )
    return prepared


def start_fresh(output: Path) -> None:
    """A run that is not a resume starts with an empty archive and no old trials."""
    shutil.rmtree(output / "tune" / EXPERIMENT, ignore_errors=True)
    for name in ("stats.json", "summary.json", "archive.csv"):
        (output / name).unlink(missing_ok=True)


def train(
    config: RunConfig, output: str | Path, address: str | None = None, resume: bool = False,
    verbose: int = 1,
) -> dict[str, Any]:
    """Train every scope of the config's fairness level; write and return the summary."""
    from ray import tune
    from ray.rllib.algorithms.sac import SAC

    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    limit_threads()
    started = time.time()
    if not resume:
        start_fresh(output)
    prepared = prepared_for(config, output)
    scopes = prepared.population.scope_names(config.level)
    by_scope = problems(prepared, scopes)

    ray = connect(address)
    stats_name = "recourse-stats-" + hashlib.sha1(str(output).encode()).hexdigest()[:10]
    hub = start_hub(stats_name, output / "stats.json", config, by_scope)  # alive while held
    cpus = config.train.cpus_per_trainer or even_share(ray.cluster_resources().get("CPU", 1),
                                                       len(scopes))
    env_config = scope_env_config(config, by_scope, stats_name, cpus)
    env_config["scope"] = tune.grid_search(scopes)
    param_space = sac_config(config, env_config, cpus)
    stop = {STEPS_KEY: config.train.env_steps}
    if config.train.time_budget_s:
        stop["time_total_s"] = config.train.time_budget_s
    if config.train.stop_archived:
        stop["recourse/archived"] = config.train.stop_archived

    storage = config.train.storage or str(output / "tune")
    experiment = f"{storage.rstrip('/')}/{EXPERIMENT}"
    if resume and tune.Tuner.can_restore(experiment):
        tuner = tune.Tuner.restore(experiment, trainable=SAC, param_space=param_space,
                                   resume_unfinished=True, resume_errored=True)
    else:
        tuner = tune.Tuner(
            SAC,
            param_space=param_space,
            tune_config=tune.TuneConfig(num_samples=1, max_concurrent_trials=len(scopes)),
            run_config=tune.RunConfig(
                name=EXPERIMENT,
                storage_path=storage,
                stop=stop,
                checkpoint_config=tune.CheckpointConfig(
                    checkpoint_frequency=config.train.checkpoint_every,
                    checkpoint_at_end=True),
                failure_config=tune.FailureConfig(max_failures=config.train.max_failures),
                callbacks=[progress_callback(config.train.env_steps)] if verbose else [],
                verbose=0,
            ),
        )
    results = tuner.fit()
    trials = {}
    for result in results:
        scope = result.config["env_config"]["scope"]
        metrics = result.metrics or {}
        trials[scope] = {
            "env_steps": int(metrics.get("env_runners", {}).get(
                "num_env_steps_sampled_lifetime", 0)),
            "time_s": float(metrics.get("time_total_s", 0.0)),
            "checkpoint": result.checkpoint.path if result.checkpoint else None,
            "error": str(result.error) if result.error else None,
            "node_id": metrics.get("recourse", {}).get("node_id"),
        }
    snapshot = ray.get(hub.snapshot.remote())
    ray.get(hub.save.remote())
    summary = summarize(config, prepared, scopes, snapshot, trials, time.time() - started)
    write_outputs(output, summary, snapshot)
    return summary


def summarize(
    config: RunConfig, prepared: Prepared, scopes: list[str], snapshot: dict[str, Any],
    trials: dict[str, dict], wall_s: float,
) -> dict[str, Any]:
    """Pick each scope's final set and measure it exactly, per scope and over the population
    (and over the held-out people, when the population was split)."""
    weights = config.reward
    space = ActionSpace(prepared.model.space.actionable, weights.n_actions)
    archives = {name: snapshot["archive"].get(name, []) for name in scopes}
    if config.level == "hybrid":
        chosen = best_combination(archives, weights.effectiveness, config.train.selection)
    else:
        chosen = {name: best_entry(entries, config.train.selection)
                  for name, entries in archives.items()}
    sets, met = {}, {}
    for name in scopes:
        entry = chosen[name]
        met[name] = entry is not None
        entry = entry or snapshot.get("best_seen", {}).get(name)
        sets[name] = np.array(entry["set"]) if entry else space.initial_set()
    scope_summaries, population = measure(prepared, prepared.population, sets, space, weights)
    for name, summary in scope_summaries.items():
        trial = trials.get(name, {})
        steps, seconds = trial.get("env_steps", 0), trial.get("time_s", 0.0)
        summary.update(
            met_done=met[name],
            archived=len(snapshot["archive"].get(name, [])),
            env_steps=steps,
            env_steps_per_s=steps / seconds if seconds else 0.0,
            train_s=seconds,
            error=trial.get("error"),
            node_id=trial.get("node_id"),
            set=sets[name].tolist(),
        )
    summary = {
        "dataset": prepared.summary["dataset"],
        "level": config.level,
        "reward": weights.reward,
        "effectiveness": weights.effectiveness,
        "features": prepared.model.space.describe_actionable(),
        "wall_s": wall_s,
        "scopes": scope_summaries,
        "population": population,
    }
    if prepared.holdout is not None:
        summary["heldout"] = measure(prepared, prepared.holdout, sets, space, weights)[1]
    summary["config"] = config.to_dict()
    return summary


def measure(
    prepared: Prepared, population: Population, sets: dict[str, np.ndarray],
    space: ActionSpace, weights,
) -> tuple[dict[str, dict], dict[str, Any]]:
    """Each scope's set on its people, and everyone under their own scope's set."""
    favourable = prepared.model.favourable
    scope_summaries, tallies = {}, []
    n = len(population.X)
    chosen, cost = np.full(n, -1), np.full(n, np.inf)
    sparsity, plausible = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    for name, action_set in sets.items():
        mask = population.members(name)
        scope = population.scope(name)
        summary, outcome, tally = evaluate_scope(space, scope.X, scope.groups,
                                                 scope.group_names, action_set, favourable,
                                                 weights)
        people = M.person_outcome(outcome)
        scope_summaries[name] = summary
        tallies.append(tally)
        chosen[mask], cost[mask], sparsity[mask] = people.chosen, people.cost, people.sparsity
        if mask.any():
            cf = counterfactuals(space, scope.X, action_set, people.chosen)
            plausible[mask] = prepared.plausibility.predict(cf) == 1
    everyone = M.PersonOutcome(chosen >= 0, chosen, cost, sparsity)
    return scope_summaries, population_summary(tallies, everyone, population.groups,
                                               population.group_names, weights, plausible)


def write_outputs(output: Path, summary: dict[str, Any], snapshot: dict[str, Any]) -> None:
    rows = []
    for scope, entries in snapshot["archive"].items():
        for entry in entries:
            row = {k: v for k, v in entry.items() if k not in ("tally", "set", "actions",
                                                              "effectiveness",
                                                              "effective_actions")}
            row["scope"] = scope
            row["actions"] = json.dumps(entry["actions"])
            for group, value in entry["effectiveness"].items():
                row[f"effectiveness[{group}]"] = value
            for group, value in entry["effective_actions"].items():
                row[f"effective_actions[{group}]"] = value
            rows.append(row)
    columns = ["scope", "step", "elapsed_s", "SR", "PD", "ECR_gap", "n_active", "gower_active",
               "gower_nonactive", "reward", "time", "actions"]
    archive = pd.DataFrame(rows, columns=None if rows else columns)
    atomic_write(output / "archive.csv", archive.to_csv(index=False))
    atomic_write(output / "summary.json", json.dumps(summary, indent=2))


def atomic_write(path: Path, text: str) -> None:
    """No reader ever sees a half-written file under its final name."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)
