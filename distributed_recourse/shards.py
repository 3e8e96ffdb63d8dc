"""A scope's people split over Ray actors: each shard evaluates actions on its rows (apply +
predict) and answers in per-group counts, which add up to the whole scope's (DESIGN.md
section 6). The same code runs the shards on one machine or across a cluster's nodes."""

from __future__ import annotations

import numpy as np

from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.evaluator import ActionCounts, ScopeEvaluator


class ShardedEvaluator:
    """`ScopeEvaluator`'s interface over `shards` Ray actors, one contiguous slice of the people
    each; every call goes to all shards at once and the counts are summed."""

    def __init__(self, problem, space: ActionSpace, shards: int, cache_size: int,
                 resources: dict[str, float]) -> None:
        import ray

        resources = dict(resources)
        options = {"num_cpus": resources.pop("CPU", 1), "resources": resources or None}
        remote = ray.remote(ScopeEvaluator).options(**options)
        n_groups = len(problem.group_names)
        model = ray.put(problem.model)
        self.actors = [
            remote.remote(X, groups, n_groups, space, model, cache_size)  # model: a callable
            for X, groups in zip(np.array_split(problem.X, shards),
                                 np.array_split(problem.groups, shards), strict=True)
        ]
        self.people = np.bincount(problem.groups, minlength=n_groups)
        self._ray = ray

    def set_action(self, j: int, action: np.ndarray) -> ActionCounts:
        parts = self._ray.get([actor.set_action.remote(j, action) for actor in self.actors])
        return sum(parts[1:], parts[0])

    @property
    def model_calls(self) -> int:
        """Steps that needed the model (every shard calls it once for such a step)."""
        return max(self._ray.get([actor.__ray_call__.remote(lambda e: e.model_calls)
                                  for actor in self.actors]))
