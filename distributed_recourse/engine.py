"""The one way a configuration's scopes are trained. `recourse train`, every sweep trial, every
reproduce experiment and `FairRecourse.fit` run `run_trial` as a Ray Tune trial (`run_trials`),
so the same config and seed give the same result through every door.

A trial is a distributed run (DESIGN.md section 6). Its placement group holds a bundle for the
trial's own process, one for its statistics hub, one per scope trainer and one per shard of a
sharded scope, so that trainers and shards can sit on different nodes. The trial trains its
scopes in rounds, all at once: each trainer advances its search by a round's steps, seeing the
other scopes' pooled tallies of the round before (hybrid fairness); the hub records what they
report; the stop rule ends scopes that are done (a stopped scope keeps serving its tally); the
trial reports the population's figures to Tune (so ASHA can stop it) and checkpoints its
trainers and its hub together. Round-level exchanges make a run deterministic for its seed.

Flow of a trial: the prepared population (from the object store) -> each scope's problem and
goal (from its ceiling) -> hub + trainers -> rounds -> the final sets (chosen jointly under
hybrid fairness) -> exact evaluation -> a RunResult in the trial's last checkpoint.
"""

from __future__ import annotations

import json
import math
import pickle
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from distributed_recourse.config import RunConfig
from distributed_recourse.population import Population, Prepared
from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.archive import best_combination, best_entry
from distributed_recourse.recourse.costs import action_costs
from distributed_recourse.recourse.evaluation import (
    counterfactuals,
    evaluate_scope,
    population_summary,
)
from distributed_recourse.recourse.evaluator import LocalOutcomes, ScopeEvaluator
from distributed_recourse.recourse.minimize import minimize_sets
from distributed_recourse.recourse.plausibility import plausible as plausible_rows
from distributed_recourse.recourse.rewards import Goal
from distributed_recourse.recourse.search import ScopeProblem, ScopeSearch
from distributed_recourse.recourse.stopping import StopRule
from distributed_recourse.result import (
    Ceiling,
    GroupFigures,
    PopulationResult,
    RunResult,
    ScopeResult,
    atomic_write,
    population_from,
)
from distributed_recourse.stats import StatsHub, start_hub

HEAD_CPUS = 0.05
"""The trial's own process: it coordinates the rounds and measures the final sets."""
HUB_CPUS = 0.01
FIRST_ROUND = 16
"""Steps of a scope's first round; later rounds double up to `steps_per_iteration`."""
TRAINER, HUB, ARCHIVE, STATS = "trainer", "hub.json", "archive.csv", "stats.json"


# --------------------------------------------------------------------- what a trial needs
def problems(prepared: Prepared, scopes: list[str]) -> dict[str, ScopeProblem]:
    features = prepared.model.space.actionable
    out = {}
    for name in scopes:
        scope = prepared.population.scope(name)
        out[name] = ScopeProblem(name, scope.X, scope.groups, scope.group_names, features,
                                 prepared.model, prepared.costs, prepared.plausibility)
    return out


def scope_goal(config: RunConfig, population: Population, scope: str) -> Goal:
    """The scope's goal. By default it follows the ceiling: SR >= 0.98 x the scope's ceiling SR
    and PD <= max(0.02, the ceiling's PD + 0.01) (the population's PD under hybrid fairness,
    whose PD is the population's); `goal_sr`/`goal_pd` fix them; the reference formulation
    keeps the paper's `done_sr`/`done_pd`."""
    s, w = config.search, config.reward
    if s.mdp == "reference" and s.kind == "sac":
        goal = Goal.reference(w)
    else:
        own = population.ceiling(population.members(scope))
        pd = population.ceiling()["PD"] if config.level == "hybrid" else own["PD"]
        goal = Goal.from_ceiling(own["SR"], pd, s.goal_share, s.goal_pd_margin, s.goal_pd_floor)
    return Goal(s.goal_sr if s.goal_sr is not None else goal.sr,
                s.goal_pd if s.goal_pd is not None else goal.pd,
                goal.effectiveness, goal.choice)


def search_terms(config: RunConfig) -> dict[str, float]:
    """The default search's terms beyond the paper's reward: its pull towards the goal and the
    Gower of chosen counterfactuals (none for the paper's own formulation)."""
    if config.search.kind == "sac" and config.search.mdp == "reference":
        return {"pull": 0.0, "closest": 0.0, "plausible": 0.0}
    w = config.reward
    return {"pull": w.goal, "closest": w.gower_chosen, "plausible": w.plausibility}


def n_scopes(config: RunConfig) -> int:
    return 1 if config.level == "group" else config.population.clusters


def stop_rule(config: RunConfig, scope: str) -> StopRule:
    t = config.train
    return StopRule(config.search.patience, config.search.stall, t.env_steps,
                    scope_budget(t.max_model_calls, scope), scope_budget(t.time_budget_s, scope),
                    t.stop_archived)


def scope_budget(budget: float | dict[str, float] | None, scope: str) -> float | None:
    """A budget given for every scope, or per scope name (a scope not named has none)."""
    return budget.get(scope) if isinstance(budget, dict) else budget


def scope_seeds(seed: int, scopes: list[str]) -> dict[str, int]:
    """An independent seed per scope, the same through every door."""
    children = np.random.SeedSequence(seed).spawn(len(scopes))
    return {name: int(child.generate_state(1)[0]) for name, child in zip(scopes, children,
                                                                         strict=True)}


def no_change_tally(problem: ScopeProblem, n_actions: int, phi: float) -> dict:
    """The tally of a set that changes nothing (one model call: the affected stay affected)."""
    flipped = np.tile(np.asarray(problem.model.favourable(problem.X), dtype=bool), (n_actions, 1))
    distinct = np.zeros(n_actions, dtype=bool)
    distinct[0] = True
    return M.tally(flipped, problem.groups, len(problem.group_names), distinct, phi).to_dict()


# --------------------------------------------------------------------- resources
@dataclass(frozen=True)
class TrialResources:
    """How a trial asks for its share of the cluster: `cpus` of the cluster shared by
    `concurrent` trials so that every scope of every running trial trains at once."""

    cpus: float
    concurrent: int = 1

    def trainer_cpus(self, config: RunConfig, n_scopes: int) -> float:
        if config.train.cpus_per_trainer:
            return config.train.cpus_per_trainer
        shards = n_scopes * self.shard_cpus(config) * (config.train.shards > 1)
        left = self.cpus / self.concurrent - HEAD_CPUS - HUB_CPUS - shards
        # Ray counts resources in steps of 1e-4: 3 x (2/3) would round above 2
        return max(0.01, math.floor(left / n_scopes * 1000) / 1000)

    @staticmethod
    def shard_cpus(config: RunConfig) -> float:
        return float(config.train.shard_resources.get("CPU", 1.0)) * config.train.shards

    def bundles(self, config: RunConfig, n_scopes: int) -> list[dict[str, float]]:
        """[trial, hub, trainer per scope, shard per scope and shard]."""
        t = config.train
        trainer = {"CPU": self.trainer_cpus(config, n_scopes), **t.resources_per_trainer}
        shard = {"CPU": 1.0, **t.shard_resources}  # shard_resources may set its CPUs
        shards = [dict(shard) for _ in range(n_scopes * t.shards)] if t.shards > 1 else []
        return [{"CPU": HEAD_CPUS}, {"CPU": HUB_CPUS, **t.stats_actor_resources},
                *(dict(trainer) for _ in range(n_scopes)), *shards]


def in_bundle(group, index: int) -> dict[str, Any]:
    """Ray options placing an actor in bundle `index` of placement group `group`."""
    if group is None:
        return {}
    from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

    return {"scheduling_strategy": PlacementGroupSchedulingStrategy(
        group, placement_group_bundle_index=index)}


# --------------------------------------------------------------------- a scope's trainer
def scope_search(config: RunConfig, problem: ScopeProblem, goal: Goal, compute) -> ScopeSearch:
    """A scope's search state as the config defines it; `compute` gives the flip masks of
    actions (LocalOutcomes, or its sharded twin)."""
    evaluator = ScopeEvaluator(len(problem.X), compute, cache_size=4 * config.search.pool_size)
    return ScopeSearch(problem, evaluator, config.reward, goal, config.level == "hybrid",
                       config.search.pool_size, **search_terms(config))


def make_searcher(config: RunConfig, search: ScopeSearch, seed: int):
    """SAC (the method) or a non-learned baseline, over the same search."""
    kind, s = config.search.kind, config.search
    if kind == "sac":
        from distributed_recourse.sac import SacSearch

        return SacSearch(search, config, seed)
    from distributed_recourse.recourse.baselines import CoordinateSearch, RandomSearch

    if kind == "random":
        return RandomSearch(search, seed, keep_share=s.keep_share, resolution=s.resolution)
    return CoordinateSearch(search, seed, keep_share=s.keep_share, resolution=s.resolution)


class ScopeTrainer:
    """One scope's search in a process of its own (a Ray actor in the trial's bundle): the
    searcher, its `ScopeSearch` and the evaluator (local, or over shard actors)."""

    def __init__(self, config: RunConfig, problem: ScopeProblem, goal: Goal, seed: int,
                 cpus: float, shard_placements: list[dict[str, Any]]) -> None:
        from distributed_recourse.runtime import limit_threads

        limit_threads(1)
        problem.model.use_threads(max(1, int(cpus)))  # a forest predicts on the CPUs it owns
        space = ActionSpace(problem.features, config.reward.n_actions)
        if shard_placements:
            from distributed_recourse.shards import ShardedOutcomes

            compute = ShardedOutcomes(problem.X, space, problem.model, shard_placements)
        else:
            compute = LocalOutcomes(problem.X, space, problem.model.favourable)
        self.compute = compute
        self.search = scope_search(config, problem, goal, compute)
        self.searcher = make_searcher(config, self.search, seed)
        self.train_s = 0.0
        self.shard_nodes: list[str] | None = None
        """The nodes the scope's shard actors run on (none unless it is sharded)."""

    def run(self, steps: int, others: dict | None) -> dict[str, Any]:
        """Search `steps` more steps (the other scopes' tally fixed), then report."""
        import ray

        self.search.set_others(M.GroupTally.from_dict(others) if others else None)
        started = time.perf_counter()
        self.searcher.run(steps)
        self.search.refresh()
        self.train_s += time.perf_counter() - started
        if self.shard_nodes is None:
            self.shard_nodes = self.compute.nodes() if hasattr(self.compute, "nodes") else []
        return {**self.search.report(), "train_s": self.train_s,
                "node_id": ray.get_runtime_context().get_node_id(),
                "shard_nodes": self.shard_nodes,
                "handover": getattr(self.searcher, "handover", None)}

    def state(self) -> bytes:
        return pickle.dumps({"search": self.search.state(), "searcher": self.searcher.state(),
                             "train_s": self.train_s})

    def restore(self, state: bytes, counters: dict[str, Any], archived: list[dict]) -> None:
        """Continue from a checkpoint; the counters and the archive come from the hub."""
        saved = pickle.loads(state)
        self.search.restore(saved["search"], counters["steps"], counters["model_calls"],
                            [np.asarray(e["set"]) for e in archived])
        self.searcher.restore(saved["searcher"])
        self.train_s = saved["train_s"]


# --------------------------------------------------------------------- the engine
class TrainerError(RuntimeError):
    """A scope's trainer failed; the message names the scope."""


def first_line(error: BaseException) -> str:
    """The gist of an error (Ray's own carry a whole remote traceback)."""
    lines = [line for line in str(error).splitlines() if line.strip()]
    cause = [line for line in lines if not line.startswith((" ", "Traceback", "ray.", "File "))]
    return (cause[-1] if cause else lines[-1] if lines else type(error).__name__).strip()


class Engine:
    """A configuration's scopes, trained in rounds by their trainers, with their hub."""

    def __init__(self, config: RunConfig, prepared: Prepared, resources: TrialResources,
                 placement_group=None) -> None:
        self.config = config
        self.prepared = prepared
        self.scopes = prepared.population.scope_names(config.level)
        self.problems = problems(prepared, self.scopes)
        self.goals = {s: scope_goal(config, prepared.population, s) for s in self.scopes}
        self.reachable = {s: prepared.population.ceiling(prepared.population.members(s))["SR"]
                          for s in self.scopes}
        self.rules = {s: stop_rule(config, s) for s in self.scopes}
        self.resources = resources
        self.group = placement_group
        self.hub = None
        self.trainers: dict[str, Any] = {}

    def start(self, checkpoint: Path | None = None) -> None:
        """The hub and one trainer per scope; from `checkpoint` when the trial is restored."""
        import ray

        c = self.config
        self.hub = start_hub(c.train.selection, in_bundle(self.group, 1))
        snapshot = json.loads((checkpoint / HUB).read_text()) if checkpoint else None
        if snapshot:
            ray.get(self.hub.restore.remote(snapshot))
        else:
            ray.get([self.hub.register.remote(s, no_change_tally(p, c.reward.n_actions,
                                                                  c.reward.phi))
                     for s, p in self.problems.items()])
        cpus = self.resources.trainer_cpus(c, len(self.scopes))
        seeds = scope_seeds(c.seed, self.scopes)
        shard_first = 2 + len(self.scopes)
        for i, scope in enumerate(self.scopes):
            shard_cpus = float(c.train.shard_resources.get("CPU", 1.0))
            shards = [{"num_cpus": shard_cpus,
                       **in_bundle(self.group, shard_first + i * c.train.shards + k)}
                      for k in range(c.train.shards)] if c.train.shards > 1 else []
            options = {"num_cpus": cpus, **in_bundle(self.group, 2 + i)}
            if self.group is None and c.train.resources_per_trainer:
                options["resources"] = dict(c.train.resources_per_trainer)
            self.trainers[scope] = ray.remote(ScopeTrainer).options(**options).remote(
                c, ray.put(self.problems[scope]), self.goals[scope], seeds[scope], cpus, shards)
        if snapshot:
            ray.get([self.trainers[s].restore.remote(
                (checkpoint / f"{TRAINER}-{s}.pkl").read_bytes(), snapshot["counters"][s],
                snapshot["archive"][s]) for s in self.scopes])
        self.started = time.time() - (snapshot or {}).get("wall_s", 0.0)

    def active(self, status: dict[str, dict[str, Any]]) -> list[str]:
        return [s for s in self.scopes if status[s]["stopped"] is None]

    def round_steps(self, scope: str, counters: dict[str, Any]) -> int:
        """A round's steps: `FIRST_ROUND` at first (progress shows early), doubling with the
        steps done up to `steps_per_iteration` (a schedule of steps, not of seconds, so that
        a run is the same for its seed on any machine), cut short where a step or model-call
        budget ends first."""
        t = self.config.train
        steps = int(np.clip(counters["steps"], FIRST_ROUND, t.steps_per_iteration))
        if t.env_steps is not None:
            steps = min(steps, t.env_steps - counters["steps"])
        calls = self.rules[scope].max_model_calls
        if calls is not None:  # a step asks the model about one action at most
            steps = min(steps, calls - counters["model_calls"])
        return max(1, steps)

    def round(self) -> dict[str, Any]:
        """Every active scope trains one round; returns the hub's status after it. A trainer
        that fails raises `TrainerError` naming its scope."""
        import ray

        status = ray.get(self.hub.status.remote())
        others = ray.get(self.hub.others_all.remote())
        active = self.active(status)
        pending = {s: self.trainers[s].run.remote(self.round_steps(s, status[s]), others[s])
                   for s in active}
        reports = {}
        for scope, ref in pending.items():
            try:
                reports[scope] = ray.get(ref)
            except Exception as error:  # the scope's trainer, its node or its shards died
                raise TrainerError(f"the trainer of {scope} failed: {first_line(error)}") from error
        ray.get(self.hub.record_round.remote(reports, time.time() - self.started))
        for scope in active:
            reason = self.rules[scope].reason(ray.get(self.hub.progress.remote(scope)))
            if reason:
                ray.get(self.hub.stop.remote(scope, reason))
        return ray.get(self.hub.status.remote())

    def run_rounds(self):
        """Rounds until every scope has stopped; yields the status after each."""
        while True:
            status = self.round()
            yield status
            if not self.active(status):
                return

    def save(self, folder: Path) -> None:
        """The hub and every trainer, together (a restored trial continues from here)."""
        import ray

        snapshot = ray.get(self.hub.snapshot.remote())
        (folder / HUB).write_text(json.dumps(snapshot))
        states = ray.get([self.trainers[s].state.remote() for s in self.scopes])
        for scope, state in zip(self.scopes, states, strict=True):
            (folder / f"{TRAINER}-{scope}.pkl").write_bytes(state)

    def snapshot(self) -> dict[str, Any]:
        import ray

        return ray.get(self.hub.snapshot.remote())

    def stop(self) -> None:
        import ray

        for actor in [*self.trainers.values(), self.hub]:
            ray.kill(actor)


# --------------------------------------------------------------------- the outcome
def round_figures(status: dict[str, dict[str, Any]], snapshot: dict[str, Any],
                  effectiveness: str) -> dict[str, Any]:
    """The population's figures from the scopes' best sets' tallies (exact counts; Gower is
    the mean Gower of the active actions, the exact Gower of chosen counterfactuals comes with
    the final result), and per scope what a progress display shows."""
    tallies = [M.GroupTally.from_dict(t) for t in snapshot["tallies"].values()]
    pooled = sum(tallies[1:], tallies[0])
    p = pooled.effectiveness(effectiveness)
    best = snapshot["best_seen"].values()
    return {
        "SR": M.mean_present(p), "PD": M.spread(p),
        "ECR_gap": M.spread(np.where(pooled.present, pooled.choice(), np.nan)),
        "gower_active": float(np.mean([b["gower_active"] for b in best])) if best else 0.0,
        "steps": int(sum(s["steps"] for s in status.values())),
        "model_calls": int(sum(s["model_calls"] for s in status.values())),
        "scopes": status,
    }


def summarize(config: RunConfig, prepared: Prepared, snapshot: dict[str, Any], wall_s: float,
              errors: list[str] | None = None) -> RunResult:
    """Pick each scope's final set and measure it exactly, per scope and over the population
    (and over the held-out people, when the population was split)."""
    weights = config.reward
    scopes = prepared.population.scope_names(config.level)
    space = ActionSpace(prepared.model.space.actionable, weights.n_actions)
    hub = StatsHub.from_snapshot(snapshot) if snapshot else StatsHub(config.train.selection)
    archives = {name: hub.archive.get(name, []) for name in scopes}
    if config.level == "hybrid":
        chosen = best_combination(archives, weights.effectiveness, config.train.selection)
    else:
        chosen = {name: best_entry(entries, config.train.selection)
                  for name, entries in archives.items()}
    sets, met = {}, {}
    for name in scopes:
        entry = chosen[name]
        met[name] = entry is not None
        entry = entry or hub.best_seen.get(name)
        sets[name] = np.array(entry["set"]) if entry else space.initial_set()
    minimized = {}
    if config.train.minimize:
        def fairness(population: PopulationResult) -> tuple[float, float]:
            """What the selection ranks first: SR - PD, then the ECR gap."""
            return (round(population.SR - population.PD, 9), -round(population.ECR_gap, 9))

        before = measure(prepared, prepared.population, sets, space, weights)[1]
        sets, minimized = minimize_sets(
            space, {name: prepared.population.scope(name).X for name in scopes}, sets,
            prepared.model.favourable,
            lambda reduced: fairness(measure(prepared, prepared.population, reduced, space,
                                             weights)[1]),
            fairness(before))
    measured, population = measure(prepared, prepared.population, sets, space, weights)
    if minimized:
        population.before_minimizing = {k: getattr(before, k) for k in (
            "SR", "PD", "ECR_gap", "validity", "gower_chosen", "sparsity", "plausibility")}
    counters = hub.counters
    scope_results = {}
    for name in scopes:
        c = counters.get(name, {})
        steps, seconds = int(c.get("steps", 0)), float(c.get("train_s", 0.0))
        goal = scope_goal(config, prepared.population, name)
        scope_results[name] = ScopeResult(
            name=name, **measured[name], set=sets[name].tolist(),
            ceiling=Ceiling(**prepared.population.ceiling(prepared.population.members(name))),
            goal={"SR": goal.sr, "PD": goal.pd}, met_goal=met[name],
            archived=len(archives[name]), steps=steps,
            model_calls=int(c.get("model_calls", 0)), train_s=seconds,
            steps_per_s=steps / seconds if seconds else 0.0, stop_reason=c.get("stopped"),
            node_id=c.get("node_id"), shard_nodes=c.get("shard_nodes") or [],
            minimized=minimized[name].to_dict() if name in minimized else None,
            handover=handover_figures(prepared, name, c.get("handover"), space, weights),
        )
    heldout = None
    if prepared.holdout is not None:
        heldout = measure(prepared, prepared.holdout, sets, space, weights)[1]
    s = config.search
    return RunResult(
        dataset=prepared.summary["dataset"], level=config.level, reward=weights.reward,
        effectiveness=weights.effectiveness,
        search=f"sac/{s.mdp}" if s.kind == "sac" else s.kind,
        features=prepared.model.space.describe_actionable(), wall_s=wall_s,
        scopes=scope_results, population=population, heldout=heldout, config=config.to_dict(),
        errors=list(errors or []),
    )


def handover_figures(prepared: Prepared, scope: str, handover: dict[str, Any] | None,
                     space: ActionSpace, weights) -> dict[str, Any] | None:
    """The warm start's hand-over set measured exactly on its scope, beside its counters."""
    if handover is None:
        return None
    figures = measure(prepared, prepared.population, {scope: np.array(handover["set"])}, space,
                      weights)[0][scope]
    return {"model_calls": handover["model_calls"], "steps": handover["steps"],
            **{k: figures[k] for k in ("SR", "PD", "ECR_gap", "gower_chosen", "actions")}}


def measure(prepared: Prepared, population: Population, sets: dict[str, np.ndarray],
            space: ActionSpace, weights) -> tuple[dict[str, dict], Any]:
    """Each scope's set on its people, and everyone under their own scope's set (exact: one
    model call per action and scope)."""
    favourable = prepared.model.favourable
    scope_figures, tallies = {}, []
    n = len(population.X)
    chosen, gower, cost = np.full(n, -1), np.full(n, np.inf), np.full(n, np.inf)
    sparsity, plausible = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    for name, action_set in sets.items():
        mask = population.members(name)
        scope = population.scope(name)
        figures, outcome, tally = evaluate_scope(space, scope.X, scope.groups, scope.group_names,
                                                 action_set, favourable, weights)
        ceiling = population.ceiling(mask)["groups"]
        figures["groups"] = {g: GroupFigures(**v, ceiling=ceiling[g])
                             for g, v in figures["groups"].items()}
        # each person's chosen counterfactual: the cheapest flipping action (Gower by default)
        people = M.person_outcome(outcome, cost=action_costs(prepared.costs, space, scope.X,
                                                             action_set))
        rows = np.arange(len(scope.X))
        chosen_gower = np.where(people.valid, outcome.gower[np.maximum(people.chosen, 0), rows],
                                np.inf)
        figures["gower_chosen"] = float(chosen_gower[people.valid].mean()) \
            if people.valid.any() else None
        scope_figures[name] = figures
        tallies.append(tally)
        chosen[mask], cost[mask], sparsity[mask] = people.chosen, people.cost, people.sparsity
        gower[mask] = chosen_gower
        if mask.any():
            cf = counterfactuals(space, scope.X, action_set, people.chosen)
            plausible[mask] = plausible_rows(prepared.plausibility, cf)
    everyone = M.PersonOutcome(chosen >= 0, chosen, gower, sparsity)
    summary = population_summary(tallies, everyone, population.groups, population.group_names,
                                 weights, plausible, chosen_cost=cost)
    ceiling = population.ceiling()
    summary["groups"] = {g: {**v, "ceiling": ceiling["groups"][g]}
                         for g, v in summary["groups"].items()}
    summary["ceiling"] = ceiling
    return scope_figures, population_from(summary)


def archive_table(snapshot: dict[str, Any]) -> pd.DataFrame:
    """archive.csv: every archived set, one row each, with its metrics."""
    rows = []
    for scope, entries in snapshot.get("archive", {}).items():
        for entry in entries:
            row = {k: v for k, v in entry.items()
                   if k not in ("tally", "set", "actions", "effectiveness", "effective_actions")}
            row["scope"] = scope
            row["actions"] = json.dumps(entry["actions"])
            for group, value in entry["effectiveness"].items():
                row[f"effectiveness[{group}]"] = value
            for group, value in entry["effective_actions"].items():
                row[f"effective_actions[{group}]"] = value
            rows.append(row)
    columns = ["scope", "step", "SR", "PD", "ECR_gap", "n_active", "gower_active",
               "gower_nonactive", "reward", "time", "actions"]
    return pd.DataFrame(rows, columns=None if rows else columns)


def trial_outcome(result, config: RunConfig, prepared: Prepared,
                  into: Path | None = None) -> RunResult:
    """A trial's RunResult, read from its last checkpoint through Tune's storage (local or
    e.g. S3): the summary the trial wrote when it finished, or, for a trial that failed or was
    stopped early, one measured now from the hub state of its last checkpoint. `into`: where
    to write the run files (summary.json, archive.csv, stats.json)."""
    errors = [first_line(result.error)] if result.error else []
    snapshot: dict[str, Any] = {}
    outcome = None
    if result.checkpoint is not None:
        with result.checkpoint.as_directory() as folder:
            folder = Path(folder)
            if (folder / STATS).is_file():
                outcome = RunResult.load(folder)
                snapshot = json.loads((folder / STATS).read_text())
            else:
                snapshot = json.loads((folder / HUB).read_text())
    if outcome is None:
        outcome = summarize(config, prepared, snapshot, snapshot.get("wall_s", 0.0), errors)
    else:
        outcome.errors += errors
    if into is not None:
        into.mkdir(parents=True, exist_ok=True)
        write_run_files(into, outcome, snapshot)
    return outcome


def write_run_files(folder: Path, result: RunResult, snapshot: dict[str, Any]) -> None:
    """summary.json, archive.csv and stats.json (the hub's final state)."""
    result.save(folder)
    atomic_write(folder / ARCHIVE, archive_table(snapshot).to_csv(index=False))
    atomic_write(folder / STATS, json.dumps(snapshot))


# --------------------------------------------------------------------- the Tune trial
def run_trial(params: dict[str, Any], spec, prepared: Prepared, resources: TrialResources) -> None:
    """Tune function trainable: one configuration of `spec` (a SweepSpec), trained by the engine,
    reporting every round and checkpointing every `checkpoint_every_s` seconds and at the end (the
    last checkpoint holds the run files: summary.json, archive.csv, stats.json)."""
    import ray
    from ray import tune

    from distributed_recourse.runtime import limit_threads

    limit_threads(1)
    config = spec.configure(params)
    if prepared.config.population.clusters != config.population.clusters:
        prepared = prepared.reclustered(config.population.clusters)
    engine = Engine(config, prepared, resources, ray.util.get_current_placement_group())
    checkpoint = tune.get_checkpoint()
    if checkpoint is not None:
        with checkpoint.as_directory() as folder:
            engine.start(Path(folder))
    else:
        engine.start()
    saved_at = time.time()
    for status in engine.run_rounds():
        figures = round_figures(status, engine.snapshot(), config.reward.effectiveness)
        for scope, row in figures["scopes"].items():
            row["reachable"] = engine.reachable[scope]
        metrics = {**{k: v for k, v in figures.items() if k != "scopes"},
                   "objective": spec.score(figures), "finished": False,
                   "scopes": figures["scopes"]}
        if not engine.active(status):
            break
        if time.time() - saved_at < config.train.checkpoint_every_s:
            tune.report(metrics)
            continue
        saved_at = time.time()
        with tempfile.TemporaryDirectory() as folder:
            engine.save(Path(folder))
            tune.report(metrics, checkpoint=tune.Checkpoint.from_directory(folder))
    snapshot = engine.snapshot()
    result = summarize(config, prepared, snapshot, snapshot["wall_s"])
    p = result.population
    final = {**metrics, "SR": p.SR, "PD": p.PD, "ECR_gap": p.ECR_gap,
             "gower_chosen": p.gower_chosen, "validity": p.validity, "finished": True}
    final["objective"] = spec.score(final)
    with tempfile.TemporaryDirectory() as folder:
        engine.save(Path(folder))
        write_run_files(Path(folder), result, snapshot)
        tune.report(final, checkpoint=tune.Checkpoint.from_directory(folder))
    engine.stop()
