"""Environment steps on a 400,000-person population resampled from Adult, with the people in
one process and split over 2 Ray actor shards (DESIGN.md sections 6 and 7).

Every step here changes an action to values never seen (a cache miss), so each costs a model
call over all 400,000 people. The physical limit is one bare `predict` over them per step
(times the shards, with shards on disjoint CPUs). Target: 2 shards at least 1.6x faster than 1.

Run: python benchmarks/sharded_step.py [--people 400000] [--steps 6]
"""

import argparse
import time

import numpy as np
from common import adult, quiet_ray, seconds_per_call

from distributed_recourse.data import load_dataset
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.evaluator import LocalOutcomes, ScopeEvaluator
from distributed_recourse.runtime import connect
from distributed_recourse.shards import ShardedOutcomes

parser = argparse.ArgumentParser()
parser.add_argument("--people", type=int, default=400_000)
parser.add_argument("--steps", type=int, default=6)
args = parser.parse_args()

prepared = adult()
data = load_dataset("adult")
rows = np.random.default_rng(0).integers(0, len(data.frame), args.people)
X = data.X[rows]
space = ActionSpace(prepared.model.space.actionable, 4)
typical = space.initial_set()[0]
typical[0] = 6000  # a forest's cost depends on where rows fall: time rows a step would see
moved = space.apply(X, typical)
bare = seconds_per_call(lambda: prepared.model.favourable(moved), repeats=3)
print(f"people {args.people:,}; bare predict in one process {bare:.2f} s "
      f"(limit {1 / bare:.2f} steps/s, x2 with 2 shards on 2 cores)")

connect(num_cpus=2)
quiet_ray()


def steps_per_second(shards: int) -> float:
    """A search step whose action is new: apply + predict over every person, once in this
    process or split over `shards` Ray actors (the same evaluator either way)."""
    if shards == 1:
        compute = LocalOutcomes(X, space, prepared.model.favourable)
    else:
        compute = ShardedOutcomes(X, space, prepared.model, [{"num_cpus": 1}] * shards)
    evaluator = ScopeEvaluator(len(X), compute)
    rng = np.random.default_rng(0)  # the same actions for every shard count
    start = time.perf_counter()
    for _ in range(args.steps):
        action = typical.copy()
        action[0] = rng.uniform(5000, 9000)  # capital-gain: new values, a cache miss
        evaluator.outcome(action)
    rate = args.steps / (time.perf_counter() - start)
    assert evaluator.model_calls == args.steps
    return rate


one = steps_per_second(1)
two = steps_per_second(2)
print(f"1 shard : {one:.3f} steps/s ({one * bare:.2f} of the one-process limit)")
print(f"2 shards: {two:.3f} steps/s ({two * bare / 2:.2f} of the two-core limit)")
print(f"speed-up {two / one:.2f}x (target >= 1.6x)")
