"""The outcome of a changing action set on one population, kept up to date one action at a time.

A step of the search changes one action; `ScopeEvaluator.set_action` re-evaluates only that
action (one model call, or none when the action's values were seen before) and answers in
per-group counts. Counts add up, so a population split into shards is evaluated by the same
class on each shard and a sum (see shards.py): map = apply + predict per shard, reduce = add.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np

from distributed_recourse.recourse.actions import ActionSpace


@dataclass(frozen=True)
class ActionCounts:
    """What changing one action did, in numbers that add up over shards."""

    flipped: np.ndarray
    """(k,) people per group that the changed action flips."""
    flipped_any: np.ndarray
    """(k,) people per group flipped by at least one action of the whole current set."""
    gower_sum: float
    """Sum over the people of their Gower distance under the changed action."""

    def __add__(self, other: ActionCounts) -> ActionCounts:
        return ActionCounts(self.flipped + other.flipped, self.flipped_any + other.flipped_any,
                            self.gower_sum + other.gower_sum)


class ScopeEvaluator:
    """The current action set's per-person outcome on a population, with an LRU cache of
    each seen action's outcome (keyed by its values)."""

    def __init__(
        self, X: np.ndarray, groups: np.ndarray, n_groups: int, space: ActionSpace,
        favourable: Callable[[np.ndarray], np.ndarray], cache_size: int = 2048,
    ) -> None:
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.groups = np.asarray(groups, dtype=np.int64)
        self.n_groups = n_groups
        self.space = space
        self.favourable = favourable
        self.cache_size = cache_size
        self.people = np.bincount(self.groups, minlength=n_groups)
        self.flipped = np.zeros((space.n_actions, len(self.X)), dtype=bool)
        self.model_calls = 0
        self._work = self.X.copy()
        self._cache: OrderedDict[bytes, tuple[np.ndarray, float]] = OrderedDict()

    def outcome(self, action: np.ndarray) -> tuple[np.ndarray, float]:
        """(flipped mask, Gower sum) of one action, from the cache if seen."""
        key = np.asarray(action, dtype=np.float64).tobytes()
        hit = self._cache.get(key)
        if hit is not None:
            self._cache.move_to_end(key)
            return np.unpackbits(hit[0], count=len(self.X)).astype(bool), hit[1]
        moved = self.space.apply(self.X, action, out=self._work)
        flipped = np.asarray(self.favourable(moved), dtype=bool)
        gower = float(self.space.distance(self.X, moved).sum())
        self.model_calls += 1
        self._cache[key] = (np.packbits(flipped), gower)
        if len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return flipped, gower

    def set_action(self, j: int, action: np.ndarray) -> ActionCounts:
        """Make action j of the current set `action` and count what it does."""
        flipped, gower = self.outcome(action)
        self.flipped[j] = flipped
        return ActionCounts(
            np.bincount(self.groups, weights=flipped, minlength=self.n_groups).astype(np.int64),
            np.bincount(self.groups, weights=self.flipped.any(axis=0),
                        minlength=self.n_groups).astype(np.int64),
            gower,
        )
