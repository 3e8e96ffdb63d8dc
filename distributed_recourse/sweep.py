"""Ray Tune sweeps over reward weights (and any other config field), with a Pareto front.

A sweep trial is one configuration. It trains all of its scopes in one process, one RLlib SAC
algorithm per scope stepped in turn, and reports the population's figures every few rounds,
so a scheduler such as ASHA can stop poor configurations early. (`recourse train` instead runs
each scope as its own Tune trial, to spread one configuration over a cluster's nodes.)
"""

from __future__ import annotations

import copy
import json
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from distributed_recourse.config import ConfigError, RunConfig, config_path
from distributed_recourse.population import Prepared
from distributed_recourse.runtime import connect, limit_threads
from distributed_recourse.train import (
    atomic_write,
    prepared_for,
    problems,
    sac_config,
    scope_env_config,
    start_hub,
    summarize,
    write_outputs,
)

EXPERIMENT = "sweep"
SPACES = ("grid", "choice", "uniform", "loguniform", "randint")
DEFAULT_OBJECTIVE = {"SR": 1.0, "PD": -1.0, "ECR_gap": -1.0, "gower_chosen": -0.5}


@dataclass
class SweepSpec:
    """A sweep file: the base run config, the search space and how to search it."""

    base: RunConfig
    search: dict[str, dict[str, Any]]
    """Dotted config key (e.g. `reward.pd`) -> one of {grid: [..]}, {choice: [..]},
    {uniform: [lo, hi]}, {loguniform: [lo, hi]}, {randint: [lo, hi]}."""
    num_samples: int = 1
    """Samples of the random dimensions (each grid point is run this many times)."""
    objective: dict[str, float] = field(default_factory=lambda: dict(DEFAULT_OBJECTIVE))
    """Weights of population figures; the objective is their weighted sum (maximised)."""
    scheduler: dict[str, Any] | None = None
    """`{asha: {grace_period: 2, reduction_factor: 2}}` stops poor trials early; None runs all."""
    rounds_per_report: int = 2
    """Training rounds (one iteration of every scope) between reports to Tune."""
    max_concurrent: int | None = None
    """Trials at once; None lets Tune fill the cluster."""
    cpus_per_trial: float = 1.0
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Named sets of overrides (dotted key -> value); `search: {experiment: {grid: [names]}}`
    runs them (the paper's grid is built this way)."""

    @classmethod
    def from_yaml(cls, path: str | Path) -> SweepSpec:
        path = config_path(path)
        spec = yaml.safe_load(path.read_text()) or {}
        known = {"base", "search", "num_samples", "objective", "scheduler",
                 "rounds_per_report", "max_concurrent", "cpus_per_trial", "experiments"}
        unknown = set(spec) - known
        if unknown:
            raise ConfigError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        base = spec.get("base", {})
        if isinstance(base, str):  # a run config file, relative to the sweep file
            base = yaml.safe_load((path.parent / base).read_text())
        sweep = cls(
            base=RunConfig.from_dict(base, f"{path}: base"),
            search=spec.get("search", {}),
            **{k: spec[k] for k in known - {"base", "search"} if k in spec},
        )
        sweep.check(str(path))
        return sweep

    def check(self, source: str) -> None:
        for key, space in self.search.items():
            if not isinstance(space, dict) or len(space) != 1 or next(iter(space)) not in SPACES:
                raise ConfigError(f"{source}: search.{key} must be one of {SPACES}, got {space!r}")
            if key == "experiment":
                unknown = set(next(iter(space.values()))) - set(self.experiments)
                if unknown:
                    raise ConfigError(f"{source}: experiments {sorted(unknown)} are not defined")
            else:
                with_value(self.base, key, None)  # raises on an unknown key
        for name in self.experiments:
            self.configure({"experiment": name})  # raises on a bad override
        unknown = set(self.objective) - set(DEFAULT_OBJECTIVE)
        if unknown:
            raise ConfigError(f"{source}: objective terms {sorted(unknown)}; known: "
                              f"{sorted(DEFAULT_OBJECTIVE)}")

    def configure(self, params: dict[str, Any]) -> RunConfig:
        """The run config of one trial: the base with its experiment's and parameters' values."""
        config = self.base
        overrides = dict(self.experiments.get(params.get("experiment"), {}))
        overrides.update({k: v for k, v in params.items() if k != "experiment"})
        for key, value in overrides.items():
            config = with_value(config, key, value)
        return config

    def param_space(self) -> dict[str, Any]:
        from ray import tune

        makers = {"grid": tune.grid_search, "choice": tune.choice,
                  "uniform": lambda v: tune.uniform(*v), "loguniform": lambda v: tune.loguniform(*v),
                  "randint": lambda v: tune.randint(*v)}
        return {key: makers[kind](value) for key, (kind, value) in
                ((k, next(iter(s.items()))) for k, s in self.search.items())}


def with_value(config: RunConfig, dotted: str, value: Any) -> RunConfig:
    """A copy of the config with one dotted key set (validated like a config file)."""
    spec = copy.deepcopy(config.to_dict())
    *path, last = dotted.split(".")
    node = spec
    for part in path:
        if not isinstance(node.get(part), dict):
            raise ConfigError(f"search key {dotted!r}: {part!r} is not a config section")
        node = node[part]
    if last not in node:
        raise ConfigError(f"search key {dotted!r}: {last!r} is not an option of {path or 'the config'}")
    if value is not None:
        node[last] = value
    return RunConfig.from_dict(spec, f"search {dotted}")


def objective(population: dict[str, Any], weights: dict[str, float]) -> float:
    """Weighted sum of population figures (a missing Gower, when nobody is flipped, counts 1)."""
    values = {**population, "gower_chosen": population.get("gower_chosen") or 1.0}
    return float(sum(w * values[term] for term, w in weights.items()))


def pareto_front(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials no other trial beats on SR (higher), PD and Gower (lower) at once."""
    points = np.column_stack([-trials["SR"], trials["PD"], trials["gower_chosen"].fillna(1.0)])
    keep = [not any((other <= point).all() and (other < point).any() for other in points)
            for point in points]
    return trials[keep]


# --------------------------------------------------------------------- one trial
def run_trial(params: dict[str, Any], spec: SweepSpec, run_dir: str) -> None:
    """Tune function trainable: train one configuration's scopes in turn, report as it goes."""
    import ray
    from ray import tune

    limit_threads()
    config = spec.configure(params)
    trial_dir = Path(tune.get_context().get_trial_dir())
    prepared = Prepared.load(run_dir)
    if prepared.config.population.clusters != config.population.clusters:
        prepared = prepared.reclustered(config.population.clusters)
    scopes = prepared.population.scope_names(config.level)
    by_scope = problems(prepared, scopes)
    stats_name = f"recourse-sweep-{tune.get_context().get_trial_id()}"
    hub = start_hub(stats_name, trial_dir / "stats.json", config, by_scope)  # alive while held
    env_config = scope_env_config(config, by_scope, stats_name, spec.cpus_per_trial)
    algorithms = {}
    for index, name in enumerate(scopes):
        scope_config = sac_config(config, {**env_config, "scope": name}, spec.cpus_per_trial)
        algorithms[name] = scope_config.debugging(seed=config.seed + index).build_algo()
    started, rounds = time.time(), 0
    while True:
        steps = {}
        for name, algorithm in algorithms.items():
            result = algorithm.train()
            steps[name] = int(result["env_runners"]["num_env_steps_sampled_lifetime"])
        rounds += 1
        elapsed = time.time() - started
        finished = (min(steps.values()) >= config.train.env_steps
                    or (config.train.time_budget_s and elapsed >= config.train.time_budget_s))
        if rounds % spec.rounds_per_report and not finished:
            continue
        trials = {name: {"env_steps": steps[name], "time_s": elapsed} for name in scopes}
        snapshot = ray.get(hub.snapshot.remote())
        summary = summarize(config, prepared, scopes, snapshot, trials, elapsed)
        if finished:  # before the last report: Tune may end the trial as soon as it has it
            write_outputs(trial_dir, summary, snapshot)
            for algorithm in algorithms.values():
                algorithm.stop()
        population = summary["population"]
        tune.report({
            "objective": objective(population, spec.objective),
            **{k: population[k] for k in ("SR", "PD", "ECR_gap", "validity", "gower_chosen")},
            "env_steps": min(steps.values()),
            "finished": bool(finished),  # not `done`: Tune reads that key as "stop this trial"
        })
        if finished:
            return


# --------------------------------------------------------------------- the sweep
def sweep(
    spec: SweepSpec, output: str | Path, address: str | None = None, resume: bool = False,
    verbose: int = 1,
) -> pd.DataFrame:
    """Run the sweep; write trials.csv, pareto.csv and best.yaml into `output` (the report
    plots the front)."""
    from ray import tune

    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    limit_threads()
    prepared_for(spec.base, output)  # every trial starts from this population
    connect(address)
    trainable = tune.with_resources(
        tune.with_parameters(run_trial, spec=spec, run_dir=str(output)),
        {"cpu": spec.cpus_per_trial},
    )
    storage = spec.base.train.storage or str(output / "tune")
    experiment = f"{storage.rstrip('/')}/{EXPERIMENT}"
    if resume and tune.Tuner.can_restore(experiment):
        tuner = tune.Tuner.restore(experiment, trainable=trainable,
                                   resume_unfinished=True, resume_errored=True)
    else:
        scheduler = None
        if spec.scheduler and "asha" in spec.scheduler:
            from ray.tune.schedulers import ASHAScheduler

            scheduler = ASHAScheduler(**(spec.scheduler["asha"] or {}))
        tuner = tune.Tuner(
            trainable,
            param_space=spec.param_space(),
            tune_config=tune.TuneConfig(
                metric="objective", mode="max", num_samples=spec.num_samples,
                scheduler=scheduler, max_concurrent_trials=spec.max_concurrent),
            run_config=tune.RunConfig(
                name=EXPERIMENT, storage_path=storage,
                callbacks=[sweep_progress()] if verbose else [], verbose=0),
        )
    results = tuner.fit()
    rows = []
    for result in results:
        if not result.metrics:
            continue
        rows.append({**{f"param:{k}": v for k, v in result.config.items()},
                     "path": result.path,
                     **{k: result.metrics.get(k) for k in
                        ("objective", "SR", "PD", "ECR_gap", "validity", "gower_chosen",
                         "env_steps", "finished")},
                     "trial": Path(result.path).name,
                     "error": str(result.error) if result.error else None})
    trials = pd.DataFrame(rows).sort_values("objective", ascending=False)
    atomic_write(output / "trials.csv", trials.to_csv(index=False))
    front = pareto_front(trials.dropna(subset=["SR", "PD"]))
    atomic_write(output / "pareto.csv", front.to_csv(index=False))
    params = {key.removeprefix("param:"): to_python(value)
              for key, value in trials.iloc[0].items() if key.startswith("param:")}
    spec.configure(params).to_yaml(output / "best.yaml")
    (output / "sweep.json").write_text(json.dumps(
        {"trials": len(trials), "best_objective": float(trials.iloc[0]["objective"])}, indent=2))
    return trials


def to_python(value: Any) -> Any:
    """numpy scalars from a DataFrame back to plain YAML-able values."""
    return value.item() if hasattr(value, "item") else value


def sweep_progress():
    """A Tune callback printing one line per trial report."""
    from ray.tune import Callback

    class Progress(Callback):
        def on_trial_result(self, iteration, trials, trial, result, **info):
            params = ", ".join(f"{k}={v}" for k, v in trial.config.items())
            print(f"[{trial.trial_id}] {params}: objective {result['objective']:.3f} "
                  f"SR {result['SR']:.3f} PD {result['PD']:.3f} "
                  f"ECR gap {result['ECR_gap']:.3f} steps {result['env_steps']}", flush=True)

    return Progress()
