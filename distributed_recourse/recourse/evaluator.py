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
        """Actions evaluated by the model (a batch of several counts each of them)."""
        self._cache: OrderedDict[bytes, tuple[np.ndarray, float]] = OrderedDict()

    def outcome(self, action: np.ndarray) -> tuple[np.ndarray, float]:
        """(flipped mask, Gower sum) of one action, from the cache if seen."""
        return self.outcomes(np.asarray(action, dtype=np.float64)[None])[0]

    def outcomes(self, actions: np.ndarray) -> list[tuple[np.ndarray, float]]:
        """(flipped mask, Gower sum) of each action; those not seen before go to the model in
        one call (a forest's call has a fixed cost that many small calls would pay each)."""
        keys = [np.asarray(a, dtype=np.float64).tobytes() for a in actions]
        new = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if new:
            n = len(self.X)
            fresh = [actions[keys.index(k)] for k in new]
            moved = np.concatenate([self.space.apply(self.X, a) for a in fresh])
            flipped = np.asarray(self.favourable(moved), dtype=bool).reshape(len(new), n)
            for key, rows, mask in zip(new, np.split(moved, len(new)), flipped, strict=True):
                gower = float(self.space.distance(self.X, rows).sum())
                self._cache[key] = (np.packbits(mask), gower)
            self.model_calls += len(new)
        found = []
        for key in keys:
            packed, gower = self._cache[key]
            self._cache.move_to_end(key)
            found.append((np.unpackbits(packed, count=len(self.X)).astype(bool), gower))
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return found

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
