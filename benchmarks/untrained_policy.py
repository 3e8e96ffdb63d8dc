"""What SAC's learning adds (issue 9): the default search with a policy that has learned nothing.

Per scope, each search runs on a fresh `ScopeSearch` (the first to `--calls` model calls, the
others to the calls the first spent there):
- `sac`: the default search (`SacSearch`), as a scope's trainer runs it;
- `untrained`: what SAC runs (the same coordinate-search warm start, then `ProposalEnv` with
  the same episodes and sub-environments), but each step's proposal drawn uniformly from the
  action space instead of by a policy;
- `greedy`, `random`: the non-learned baselines.
If `sac` is no better than `untrained`, the learning adds nothing at that budget and the
formulation (moves, jumps, the warm start) does the work.

Printed first, each scope's ceiling (SR and PD of who any feasible change flips there); then per
search: the means over scopes and seeds of SR - PD, ECR gap and the cost of the
chosen counterfactuals (Gower unless the schema declares costs) of the set the default
selection rule (`SelectionObjective`) picks from the pool, and in how many (scope, seed) runs
that set ranks above or below the first search's under the same rule. Every search runs in
this process (`sac`: RLlib on a local Ray, as in a scope's trainer); `--seeds` reseeds the
searches (the data, model and clusters are the config's).

Run: python benchmarks/untrained_policy.py tinyscope [--level individual|group]
     [--calls 500] [--seeds 42 43 44 45 46 47] [--searches sac untrained greedy random]
     [--sac training_intensity=256 batch_size=64]
"""

import argparse
import dataclasses
import logging
import time

import numpy as np
from common import RunConfig, quiet_ray, with_sac_settings  # noqa: F401 (sets the thread limits first)
from unseen import config_for

from distributed_recourse.config import RunConfig as Config
from distributed_recourse.engine import make_searcher, problems, scope_goal, scope_search, scope_seeds
from distributed_recourse.env import ProposalEnv
from distributed_recourse.population import prepare
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.evaluator import LocalOutcomes
from distributed_recourse.recourse.pool import SelectionObjective, best_set
from distributed_recourse.runtime import connect
from distributed_recourse.sac import SacSearch, env_config

SHIPPED = ("adult", "alzheimer")
SEARCHES = ("sac", "untrained", "greedy", "random")


class UniformPolicy:
    """Stands in for the RLlib algorithm of `SacSearch`: each `train()` steps every episode once
    with a proposal drawn uniformly from the action space."""

    def __init__(self, env: ProposalEnv, seed: int) -> None:
        self.env = env
        env.action_space.seed(seed)
        env.reset()

    def train(self) -> None:
        self.env.step(self.env.action_space.sample())

    def stop(self) -> None:
        pass


class UntrainedSearch(SacSearch):
    """`SacSearch` (its warm start and hand-over) with `UniformPolicy` for its algorithm."""

    def _build(self) -> None:
        env = ProposalEnv({**env_config(self._config, self.search, self._seed),
                           "num_envs": self._config.sac.num_envs})
        env.attach(self.search)
        self.algorithm = UniformPolicy(env, self._seed)


def searched(config: Config, problem, goal, seed: int, kind: str, calls: int) -> dict[str, float]:
    """One scope searched by `kind` to `calls` model calls (or 20 steps per call, where the
    space has fewer distinct actions): the figures of the selected set."""
    space = ActionSpace(problem.features, config.reward.n_actions)
    search = scope_search(config, problem, goal,
                          LocalOutcomes(problem.X, space, problem.model.favourable))
    searcher = UntrainedSearch(search, config, seed) if kind == "untrained" else make_searcher(
        dataclasses.replace(config, search=dataclasses.replace(config.search, kind=kind)),
        search, seed)  # sac: the default SacSearch, RLlib in this process
    while search.model_calls < calls and search.steps < 20 * calls:  # small spaces run dry
        searcher.run(16)
    if hasattr(searcher, "stop"):
        searcher.stop()
    search.refresh()
    chosen = best_set(search.pool, SelectionObjective(search.objective),
                      config.reward.n_actions, start=search.best)
    scored = search.scored(chosen)
    metrics = scored.row(0)[0]
    return {"SR - PD": metrics.sr - metrics.pd, "ECR gap": metrics.ecr_gap,
            "cost": float(scored.chosen_cost[0]), "model calls": search.model_calls,
            "steps": search.steps}


def rank(row: dict[str, float]) -> tuple[float, float, float]:
    """The default selection order: SR - PD, then the smaller ECR gap, then the cheaper."""
    return (round(row["SR - PD"], 9), -round(row["ECR gap"], 9), -round(row["cost"], 9))


parser = argparse.ArgumentParser()
parser.add_argument("dataset", help="adult, alzheimer or an unseen.py dataset")
parser.add_argument("--level", default="individual", choices=("individual", "group"))
parser.add_argument("--calls", type=int, default=500,
                    help="model calls per scope of the first search; the others get as many as "
                         "it spent on each scope")
parser.add_argument("--seeds", nargs="+", type=int, default=[42, 43, 44, 45, 46, 47])
parser.add_argument("--searches", nargs="+", default=list(SEARCHES), choices=SEARCHES)
parser.add_argument("--sac", nargs="+", default=[], metavar="FIELD=VALUE",
                    help="SAC settings to screen as a lever, e.g. training_intensity=256")
args = parser.parse_args()

base = Config.from_yaml(args.dataset) if args.dataset in SHIPPED else config_for(args.dataset)
config, lever = with_sac_settings(dataclasses.replace(base, level=args.level), args.sac)
started = time.perf_counter()
prepared = prepare(config)
scopes = prepared.population.scope_names(args.level)
scope_problems = problems(prepared, scopes)
goals = {s: scope_goal(config, prepared.population, s) for s in scopes}
runs = [(seed, s, scope_seeds(seed, scopes)[s]) for seed in args.seeds for s in scopes]
first = args.searches[0]
print(f"{args.dataset}, {args.level}: {len(scopes)} scopes of "
      f"{', '.join(str(len(p.X)) for p in scope_problems.values())} people, seeds {args.seeds}; "
      f"{first} runs {args.calls} model calls per scope, the others as many as it spent "
      f"(prepared in {time.perf_counter() - started:.0f} s)"
      + (f"; SAC settings {lever}" if lever else ""))
if "sac" in args.searches:
    connect()  # RLlib runs SAC in this process, on a local Ray
    quiet_ray()
    logging.captureWarnings(True)
ceilings = {s: prepared.population.ceiling(prepared.population.members(s)) for s in scopes}
print("ceiling SR / PD per scope (who any feasible change flips there; a set may trade SR for "
      "a smaller PD, so its SR - PD can pass the ceiling's): "
      + ", ".join(f"{s} {c['SR']:.4f} / {c['PD']:.4f}" for s, c in ceilings.items()))
print(f"{'search':<10} {'SR - PD':>8} {'ECR gap':>8} {'cost':>8} {'calls':>7} {'steps':>7} "
      f"{'time':>7} "
      f"  vs {first} (scope x seed): better / worse")
reference: list[dict[str, float]] = []
for kind in args.searches:
    started = time.perf_counter()
    rows = [searched(config, scope_problems[s], goals[s], seed_, kind,
                     int(reference[n]["model calls"]) if reference else args.calls)
            for n, (_, s, seed_) in enumerate(runs)]
    reference = reference or rows
    mean = {key: float(np.mean([r[key] for r in rows])) for key in rows[0]}
    better = sum(rank(r) > rank(f) for r, f in zip(rows, reference, strict=True))
    worse = sum(rank(r) < rank(f) for r, f in zip(rows, reference, strict=True))
    print(f"{kind:<10} {mean['SR - PD']:>8.4f} {mean['ECR gap']:>8.3f} {mean['cost']:>8.4f} "
          f"{mean['model calls']:>7.0f} {mean['steps']:>7.0f} {time.perf_counter() - started:>6.1f}s "
          f"  {better} / {worse} of {len(rows)}", flush=True)
