"""Environment step cost against one bare model call over the same population, and the
step rate with the cache (DESIGN.md section 7). Target: a cache-missing step within 1.5x.

Run: python benchmarks/env_step.py
"""

import numpy as np
from common import adult, seconds_per_call, whole_population_env

prepared = adult()
bare = None
for threads in (1, 2):
    prepared.model.use_threads(threads)
    env = whole_population_env(prepared, cache_size=0, weights={"reward": "EE-ECR"})
    env.reset(seed=0)
    bare = seconds_per_call(lambda env=env: prepared.model.favourable(env.evaluator.X))
    rng = np.random.default_rng(0)

    def changing_step(env=env, rng=rng) -> None:
        # capital-gain entry of a random action, pushed up: always a new value, a cache miss
        j = int(rng.integers(0, env.space.n_actions))
        env.step(np.array([j * env.space.n_features, rng.uniform(0.5, 3.0)]))

    step = seconds_per_call(changing_step)
    print(f"model threads {threads}: bare predict {bare * 1e3:6.1f} ms, env step (miss) "
          f"{step * 1e3:6.1f} ms, ratio {step / bare:4.2f}x (target <= 1.5x), "
          f"limit {1 / bare:5.1f} steps/s")

env = whole_population_env(prepared, weights={"reward": "EE-ECR"})
env.reset(seed=0)
rng = np.random.default_rng(1)
steps = 300
start = __import__("time").perf_counter()
for _ in range(steps):
    _, _, done, truncated, _ = env.step(env.action_space.sample())
    if done or truncated:
        env.reset()
elapsed = __import__("time").perf_counter() - start
print(f"random policy with cache: {steps / elapsed:5.1f} steps/s, "
      f"{env.model_calls / steps:4.2f} model calls per step")
