"""Environment steps against the model's own limit (DESIGN.md section 7), in one run:

1. Adult, the whole affected population (7,391 people), the reference MDP: a step whose action
   is new (a cache miss) against one bare model call over the same changed rows. Target: within
   1.1x. Medians (a typical step) and means (with the pool's exact set search, which runs
   every max(16, pool / 8) model calls).
2. A 50-person scope (an Alzheimer cluster): a SAC trainer on the default proposal MDP, through
   RLlib, steps/s once it learns, against the limit the model sets (one call over the batch of
   proposals per vector step). Target: >= 300 steps/s per trainer on 2 cores.

Timings are ratios within this run (the machine is shared). Run: python benchmarks/env_step.py
"""

import time
from dataclasses import replace

import numpy as np
from common import adult, quiet_ray, seconds_per_call, whole_population_env

from distributed_recourse.config import RunConfig
from distributed_recourse.population import prepare
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.evaluator import ScopeEvaluator
from distributed_recourse.recourse.rewards import Goal
from distributed_recourse.recourse.search import ScopeProblem, ScopeSearch
from distributed_recourse.runtime import connect

# --------------------------------------------------------------------- 1. Adult, reference MDP
prepared = adult()
for threads in (1, 2):
    prepared.model.use_threads(threads)
    env = whole_population_env(prepared, weights={"reward": "EE-ECR"})
    env.reset(seed=0)
    rng = np.random.default_rng(threads)
    step_times, bare_times = [], []
    for _ in range(200):  # the median of many: single steps here vary by 10 % and more
        # the capital-gain entry of a random action, pushed up: new values, a cache miss
        j = int(rng.integers(0, env.space.n_actions))
        action = np.array([j * env.space.n_features, rng.uniform(0.5, 3.0)])
        start = time.perf_counter()
        env.step(action)
        step_times.append(time.perf_counter() - start)
        moved = env.space.apply(env.search.problem.X, env.state[j])
        start = time.perf_counter()
        prepared.model.favourable(moved)
        bare_times.append(time.perf_counter() - start)
    step, bare = np.median(step_times), np.median(bare_times)
    mean_step, mean_bare = np.mean(step_times), np.mean(bare_times)
    print(f"Adult, reference MDP, model threads {threads}: bare predict {bare * 1e3:6.1f} ms, "
          f"step (cache miss) {step * 1e3:6.1f} ms, ratio {step / bare:4.2f}x (target <= 1.1x); "
          f"means, with the pool's set searches every few steps: {mean_bare * 1e3:6.1f} ms and "
          f"{mean_step * 1e3:6.1f} ms, {mean_step / mean_bare:4.2f}x")
prepared.model.use_threads(1)

# --------------------------------------------------------------------- 2. a 50-person scope
connect(num_cpus=2)
quiet_ray()
from distributed_recourse.sac import SacSearch  # noqa: E402 (RLlib after Ray)

alzheimer = prepare(RunConfig.from_yaml("alzheimer"))
population = alzheimer.population
name = min(population.scope_names("individual"),
           key=lambda s: abs(int(population.members(s).sum()) - 50))
scope = population.scope(name)
config = RunConfig.from_yaml("alzheimer")
config = replace(config, search=replace(config.search, warm_start=False))
space = ActionSpace(alzheimer.model.space.actionable, config.reward.n_actions)
problem = ScopeProblem(name, scope.X, scope.groups, scope.group_names,
                       alzheimer.model.space.actionable, alzheimer.model, alzheimer.costs)
evaluator = ScopeEvaluator.local(scope.X, space, alzheimer.model.favourable, 100_000)
search = ScopeSearch(problem, evaluator, config.reward, Goal.from_ceiling(1.0, 0.0),
                     pull=config.reward.goal, closest=config.reward.gower_chosen)
sac = SacSearch(search, config, seed=0)
sac.run(config.sac.learning_starts + 200)  # past learning starts: updates are on
start, steps, calls = time.perf_counter(), search.steps, search.model_calls
sac.run(1500)
seconds = time.perf_counter() - start
rate = (search.steps - steps) / seconds
batch = np.repeat(scope.X, config.sac.num_envs, axis=0)
bare = seconds_per_call(lambda: alzheimer.model.favourable(batch))
limit = config.sac.num_envs / bare
print(f"{name} ({len(scope.X)} people), SAC proposal MDP, {config.sac.num_envs} episodes at "
      f"once: {rate:5.0f} steps/s (target >= 300), "
      f"{(search.model_calls - calls) / seconds:5.0f} model calls/s; the model's limit: "
      f"{limit:5.0f} steps/s (one call over {len(batch)} rows: {bare * 1e3:.1f} ms), "
      f"ratio {rate / limit:.2f}")
