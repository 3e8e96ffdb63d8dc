"""What actions do to one population: who each flips, with an LRU cache keyed by the action's
values and a count of the actions the model was asked about. (What a change costs each person
needs no model call: the search computes it where it keeps the people, `ScopeSearch.per_person`.)

The work itself is `LocalOutcomes` (apply + one model call for a batch of actions); a population
split into shards computes the same thing per shard and concatenates (shards.py): map = apply +
predict per shard, reduce = stack the masks.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable

import numpy as np

from distributed_recourse.recourse.actions import ActionSpace

Outcomes = Callable[[np.ndarray], np.ndarray]
"""(B, m) actions -> (B, n) flipped masks."""


class LocalOutcomes:
    """Apply each action to every person and ask the model once for the whole batch (a forest's
    call has a fixed cost that many small calls would each pay)."""

    def __init__(self, X: np.ndarray, space: ActionSpace,
                 favourable: Callable[[np.ndarray], np.ndarray]) -> None:
        self.X = np.ascontiguousarray(X, dtype=np.float64)
        self.space = space
        self.favourable = favourable

    def __call__(self, actions: np.ndarray) -> np.ndarray:
        moved = np.concatenate([self.space.apply(self.X, a) for a in actions])
        return np.asarray(self.favourable(moved), dtype=bool).reshape(len(actions), len(self.X))


class ScopeEvaluator:
    """Outcomes of actions on a population of `n` people, cached; `model_calls` counts the
    actions the model was asked about (a batch of several counts each)."""

    def __init__(self, n: int, compute: Outcomes, cache_size: int = 4096) -> None:
        self.n = n
        self.compute = compute
        self.cache_size = cache_size
        self.model_calls = 0
        self._cache: OrderedDict[bytes, np.ndarray] = OrderedDict()

    @classmethod
    def local(cls, X: np.ndarray, space: ActionSpace,
              favourable: Callable[[np.ndarray], np.ndarray], cache_size: int = 4096):
        return cls(len(X), LocalOutcomes(X, space, favourable), cache_size)

    def outcome(self, action: np.ndarray) -> np.ndarray:
        """Who one action flips."""
        return self.outcomes(np.asarray(action, dtype=np.float64)[None])[0]

    def outcomes(self, actions: np.ndarray) -> list[np.ndarray]:
        """Who each action flips; those not seen before go to the model in one batch."""
        keys = [np.asarray(a, dtype=np.float64).tobytes() for a in actions]
        new = list(dict.fromkeys(k for k in keys if k not in self._cache))
        if new:
            flipped = self.compute(np.array([actions[keys.index(k)] for k in new]))
            for key, mask in zip(new, flipped, strict=True):
                self._cache[key] = np.packbits(mask)
            self.model_calls += len(new)
        found = []
        for key in keys:
            self._cache.move_to_end(key)
            found.append(np.unpackbits(self._cache[key], count=self.n).astype(bool))
        while len(self._cache) > self.cache_size:
            self._cache.popitem(last=False)
        return found
