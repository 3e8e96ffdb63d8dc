"""Ray Tune sweeps over reward weights (and any other config field), with a Pareto front.

A sweep file (`SweepSpec`) names a base run config and a search space over dotted config keys.
Every trial is one configuration trained by the engine (engine.py) exactly as `recourse train`
trains it: its scopes' trainers at once in the trial's placement group, with its own statistics
hub, reporting the population's figures every round (ASHA can stop poor trials) and
checkpointing. `run_trials` is the one Tuner set-up, for sweeps and for `train` (one trial).
"""

from __future__ import annotations

import copy
import json
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import yaml

from distributed_recourse.config import ConfigError, RunConfig, config_path
from distributed_recourse.engine import TrialResources, n_scopes, run_trial, trial_outcome
from distributed_recourse.population import Prepared, prepared_for
from distributed_recourse.result import RunResult, atomic_write
from distributed_recourse.runtime import connect, limit_threads

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
    max_concurrent: int = 1
    """Trials at once; the cluster's CPUs are shared so that every scope of every running
    trial trains at once."""
    experiments: dict[str, dict[str, Any]] = field(default_factory=dict)
    """Named sets of overrides (dotted key -> value); `search: {experiment: {grid: [names]}}`
    runs them (the paper's grid is built this way)."""

    @classmethod
    def single(cls, config: RunConfig) -> SweepSpec:
        """One configuration: what `recourse train` runs (a sweep of one trial)."""
        return cls(base=config, search={})

    @classmethod
    def from_yaml(cls, path: str | Path) -> SweepSpec:
        path = config_path(path)
        spec = yaml.safe_load(path.read_text()) or {}
        known = {"base", "search", "num_samples", "objective", "scheduler", "max_concurrent",
                 "experiments"}
        unknown = set(spec) - known
        if unknown:
            raise ConfigError(f"{path}: unknown keys {sorted(unknown)}; known: {sorted(known)}")
        base = spec.get("base", {})
        if isinstance(base, str):  # a run config file, relative to the sweep file, or shipped
            beside = path.parent / base
            base = yaml.safe_load((beside if beside.is_file() else config_path(base)).read_text())
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

    @property
    def n_trials(self) -> int:
        """Every grid point, `num_samples` times (Tune creates trials as slots free up)."""
        points = 1
        for space in self.search.values():
            points *= len(space["grid"]) if "grid" in space else 1
        return points * self.num_samples

    def score(self, figures: dict[str, Any]) -> float:
        """The objective of a trial's figures (maximised)."""
        return objective(figures, self.objective)

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
    """Weighted sum of population figures. Until a trial's final report its Gower term is the
    mean Gower of its sets' active actions (the exact Gower of chosen counterfactuals needs the
    final evaluation); a missing Gower, when nobody is flipped, counts 1."""
    gower = population.get("gower_chosen", population.get("gower_active"))
    values = {**population, "gower_chosen": 1.0 if gower is None else gower}
    return float(sum(w * values[term] for term, w in weights.items()))


def pareto_front(trials: pd.DataFrame) -> pd.DataFrame:
    """Trials no other trial beats on SR (higher), PD and Gower (lower) at once."""
    points = np.column_stack([-trials["SR"], trials["PD"], trials["gower_chosen"].fillna(1.0)])
    keep = [not any((other <= point).all() and (other < point).any() for other in points)
            for point in points]
    return trials[keep]


# --------------------------------------------------------------------- running trials
def run_trials(spec: SweepSpec, prepared: Prepared, storage: str, name: str, resume: bool,
               callbacks: list | None = None):
    """Tune runs the spec's trials (each `engine.run_trial` in a placement group of its own,
    the prepared population through the object store); `resume` continues the experiment
    `name` under `storage` (finished trials are not rerun, interrupted ones continue from their
    last checkpoint). Returns Tune's ResultGrid."""
    import ray
    from ray import tune

    resources = TrialResources(ray.cluster_resources().get("CPU", 1.0), spec.max_concurrent)

    def bundles(params: dict[str, Any]):
        config = spec.configure(params)
        return tune.PlacementGroupFactory(resources.bundles(config, n_scopes(config)))

    trainable = tune.with_resources(
        tune.with_parameters(run_trial, spec=spec, prepared=prepared, resources=resources),
        bundles)
    experiment = f"{storage.rstrip('/')}/{name}"
    if resume and tune.Tuner.can_restore(experiment):
        return tune.Tuner.restore(experiment, trainable=trainable, resume_unfinished=True,
                                  resume_errored=True).fit()
    scheduler = None
    if spec.scheduler and "asha" in spec.scheduler:
        from ray.tune.schedulers import ASHAScheduler

        scheduler = ASHAScheduler(**(spec.scheduler["asha"] or {}))
    return tune.Tuner(
        trainable,
        param_space=spec.param_space(),
        tune_config=tune.TuneConfig(metric="objective", mode="max", num_samples=spec.num_samples,
                                    scheduler=scheduler,
                                    max_concurrent_trials=spec.max_concurrent),
        run_config=tune.RunConfig(
            name=name, storage_path=storage, callbacks=callbacks or [], verbose=0,
            checkpoint_config=tune.CheckpointConfig(num_to_keep=2),
            failure_config=tune.FailureConfig(max_failures=spec.base.train.max_failures)),
    ).fit()


# --------------------------------------------------------------------- the sweep
TRIAL_COLUMNS = ("objective", "SR", "PD", "ECR_gap", "validity", "gower_chosen", "steps",
                 "model_calls", "wall_s")


def sweep(
    spec: SweepSpec, output: str | Path, address: str | None = None, resume: bool = False,
    callbacks: list | None = None,
) -> tuple[pd.DataFrame, dict[str, RunResult]]:
    """Run the sweep; write trials.csv, pareto.csv, best.yaml and each trial's run files
    (trials/<trial>/summary.json ...) into `output`. Returns the trials table and each trial's
    RunResult (read through Tune's results and checkpoints, wherever the storage is)."""
    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    limit_threads()
    prepared = prepared_for(spec.base, output)  # every trial starts from this population
    connect(address)
    storage = spec.base.train.storage or str(output / "tune")
    grid = run_trials(spec, prepared, storage, EXPERIMENT, resume, callbacks)
    rows, outcomes = [], {}
    for result in grid:
        trial = Path(result.path).name
        params = {k: v for k, v in result.config.items()}
        outcome = trial_outcome(result, spec.configure(params), prepared,
                                into=output / "trials" / trial)
        outcomes[trial] = outcome
        p = outcome.population
        rows.append({**{f"param:{k}": v for k, v in params.items()}, "trial": trial,
                     "objective": spec.score({"SR": p.SR, "PD": p.PD, "ECR_gap": p.ECR_gap,
                                              "gower_chosen": p.gower_chosen}),
                     "SR": p.SR, "PD": p.PD, "ECR_gap": p.ECR_gap, "validity": p.validity,
                     "gower_chosen": p.gower_chosen,
                     "steps": sum(s.steps for s in outcome.scopes.values()),
                     "model_calls": sum(s.model_calls for s in outcome.scopes.values()),
                     "wall_s": outcome.wall_s, "error": "; ".join(outcome.errors) or None})
    trials = pd.DataFrame(rows).sort_values("objective", ascending=False)
    atomic_write(output / "trials.csv", trials.to_csv(index=False))
    front = pareto_front(trials.dropna(subset=["SR", "PD"]))
    atomic_write(output / "pareto.csv", front.to_csv(index=False))
    params = {key.removeprefix("param:"): to_python(value)
              for key, value in trials.iloc[0].items() if key.startswith("param:")}
    spec.configure(params).to_yaml(output / "best.yaml")
    (output / "sweep.json").write_text(json.dumps(
        {"trials": len(trials), "best_objective": float(trials.iloc[0]["objective"]),
         "best_trial": trials.iloc[0]["trial"]}, indent=2))
    return trials, outcomes


def to_python(value: Any) -> Any:
    """numpy scalars from a DataFrame back to plain YAML-able values."""
    return value.item() if hasattr(value, "item") else value
