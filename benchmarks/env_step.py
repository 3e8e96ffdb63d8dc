"""Environment step cost against one bare model call over the same changed rows, and the step
rate with the cache (DESIGN.md section 7). Target: a cache-missing step within 1.5x.

Run: python benchmarks/env_step.py
"""

import time

import numpy as np
from common import adult, whole_population_env

prepared = adult()
for threads in (1, 2):
    prepared.model.use_threads(threads)
    env = whole_population_env(prepared, cache_size=0, weights={"reward": "EE-ECR"})
    env.reset(seed=0)
    rng = np.random.default_rng(threads)
    step_times, bare_times = [], []
    for _ in range(30):
        # the capital-gain entry of a random action, pushed up: new values, a cache miss
        j = int(rng.integers(0, env.space.n_actions))
        action = np.array([j * env.space.n_features, rng.uniform(0.5, 3.0)])
        start = time.perf_counter()
        env.step(action)
        step_times.append(time.perf_counter() - start)
        moved = env.space.apply(env.evaluator.X, env.state[j])
        start = time.perf_counter()
        prepared.model.favourable(moved)
        bare_times.append(time.perf_counter() - start)
    step, bare = np.median(step_times), np.median(bare_times)
    print(f"model threads {threads}: bare predict {bare * 1e3:6.1f} ms, env step (miss) "
          f"{step * 1e3:6.1f} ms, ratio {step / bare:4.2f}x (target <= 1.5x), "
          f"limit {1 / bare:5.1f} steps/s")

prepared.model.use_threads(1)
env = whole_population_env(prepared, weights={"reward": "EE-ECR"})
env.reset(seed=0)
steps = 300
start = time.perf_counter()
for _ in range(steps):
    _, _, done, truncated, _ = env.step(env.action_space.sample())
    if done or truncated:
        env.reset()
elapsed = time.perf_counter() - start
print(f"random policy with cache (1 thread): {steps / elapsed:5.1f} steps/s, "
      f"{env.model_calls / steps:4.2f} model calls per step")
