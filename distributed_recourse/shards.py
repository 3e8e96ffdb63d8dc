"""A scope's people split over Ray actors (DESIGN.md section 6): each shard applies a batch of
actions to its rows and asks the model (map); the trainer stacks the shards' flip masks
(reduce). The same code runs the shards on one machine or on a cluster's nodes,
wherever their placement puts them."""

from __future__ import annotations

from typing import Any

import numpy as np

from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.evaluator import LocalOutcomes


class ShardedOutcomes:
    """`LocalOutcomes` over `len(placements)` Ray actors, one contiguous slice of the people
    each; `placements` are their Ray scheduling options (CPUs, resources, a placement group
    bundle)."""

    def __init__(self, X: np.ndarray, space: ActionSpace, model: Any,
                 placements: list[dict[str, Any]]) -> None:
        import ray

        model_ref = ray.put(model)
        self.actors = [
            ray.remote(LocalOutcomes).options(**placement).remote(part, space, model_ref)
            for part, placement in zip(np.array_split(X, len(placements)), placements,
                                       strict=True)
        ]
        self._ray = ray

    def __call__(self, actions: np.ndarray) -> np.ndarray:
        parts = self._ray.get([actor.__call__.remote(actions) for actor in self.actors])
        return np.concatenate(parts, axis=1)

    def nodes(self) -> list[str]:
        """The node each shard runs on (the multi-node test checks their placement)."""
        return self._ray.get([actor.__ray_call__.remote(
            lambda _: __import__("ray").get_runtime_context().get_node_id())
            for actor in self.actors])
