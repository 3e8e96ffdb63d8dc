"""Cost of evaluating one changed action against one bare model call (DESIGN.md section 7).

On the Adult affected set: apply the changed action + predict + per-group counts + Gower, as
the environment does on a cache miss, against `predict` alone over the same changed rows
(a forest's cost depends on where the rows fall, so both see the same rows).
Target: within 1.2x.  Run: python benchmarks/evaluate_actions.py
"""

import time

import numpy as np
from common import adult, whole_population_env

prepared = adult()
env = whole_population_env(prepared, cache_size=0)
evaluator, space = env.evaluator, env.space
rng = np.random.default_rng(0)
actions = []
for _ in range(30):
    action = space.initial_set()[0]
    action[0] = rng.integers(0, 20_000)  # a capital-gain change: never seen before
    actions.append(action)
moved = [space.apply(evaluator.X, action) for action in actions]


def median_seconds(calls) -> float:
    times = []
    for call in calls:
        start = time.perf_counter()
        call()
        times.append(time.perf_counter() - start)
    return float(np.median(times))


bare = median_seconds([lambda X=X: prepared.model.favourable(X) for X in moved])
evaluation = median_seconds([lambda a=a: evaluator.set_action(0, a) for a in actions])
print(f"people                     {len(evaluator.X)}")
print(f"bare predict               {bare * 1e3:8.1f} ms")
print(f"evaluate one action        {evaluation * 1e3:8.1f} ms  (apply + predict + counts + Gower)")
print(f"ratio                      {evaluation / bare:8.2f}x   (target <= 1.2x)")
print(f"physical limit             {1 / bare:8.1f} evaluations/s")
