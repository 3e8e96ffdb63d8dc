"""Cost of evaluating one changed action against one bare model call (DESIGN.md section 7).

On the Adult affected set: apply the changed action + predict + per-group counts + Gower,
as the environment does on a cache miss, against `predict` alone over the same rows.
Target: within 1.2x.  Run: python benchmarks/evaluate_actions.py
"""

import numpy as np
from common import adult, seconds_per_call, whole_population_env

prepared = adult()
env = whole_population_env(prepared, cache_size=0)
X = env.evaluator.X
bare = seconds_per_call(lambda: prepared.model.favourable(X))

rng = np.random.default_rng(0)


def evaluate_changed_action() -> None:
    env.state[0, 0] = rng.integers(0, 20_000)  # a new capital-gain change: never cached
    env._evaluate_action(0)


evaluation = seconds_per_call(evaluate_changed_action)
print(f"people                     {len(X)}")
print(f"bare predict               {bare * 1e3:8.1f} ms")
print(f"evaluate one action        {evaluation * 1e3:8.1f} ms")
print(f"ratio                      {evaluation / bare:8.2f}x   (target <= 1.2x)")
print(f"physical limit             {1 / bare:8.1f} evaluations/s")
