"""Non-learned searches, the yardsticks of the learned one (DESIGN.md section 8).

Both propose actions through the same `ScopeSearch` as SAC does (the same evaluator, model-call
count, pool, objective, archive and best set), so that at equal model calls the only
difference is how the proposals are chosen.

- `RandomSearch`: candidates drawn uniformly (`ActionSpace.from_unit`: each entry kept with
  probability 0.6, uniform within its bounds); the pool's exact search then picks the set.
- `CoordinateSearch`: hill climbing on a working set, one entry at a time (a pattern search):
  each feature of the slot's action is moved up and down by a step, the best move that
  improves the set is kept, and the step halves when none does; a slot whose steps have
  shrunk below the grid restarts from a random action. A call may overrun its steps by one
  round of moves, so that how the steps are cut into calls never changes the search.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from distributed_recourse.recourse.search import ScopeSearch

BASELINES = ("random", "greedy")
FIRST_STEP = 0.5
"""A coordinate move's first size, as a share of the entry's range (SAC's moves start there too)."""


class RandomSearch:
    def __init__(self, search: ScopeSearch, seed: int, batch: int = 16, keep_share: float = 0.6,
                 resolution: int = 100) -> None:
        self.search = search
        self.rng = np.random.default_rng(seed)
        self.batch = batch
        self.keep_share = keep_share
        self.resolution = resolution

    def run(self, steps: int) -> None:
        space = self.search.space
        while steps > 0:
            b = min(self.batch, steps)
            u = self.rng.uniform(-1.0, 1.0, (b, 2 * space.n_features))
            self.search.evaluate(space.from_unit(u, self.keep_share, self.resolution))
            self.search.steps += b
            steps -= b

    def state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state}

    def restore(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]


class CoordinateSearch:
    def __init__(self, search: ScopeSearch, seed: int, keep_share: float = 0.6,
                 resolution: int = 100, first_step: float = FIRST_STEP) -> None:
        self.search = search
        self.rng = np.random.default_rng(seed)
        self.keep_share = keep_share
        self.resolution = resolution
        self.first_step = first_step
        space = search.space
        self.working = space.initial_set()
        """The set being climbed (actions); the search keeps the best set ever seen."""
        self.step = np.full((space.n_actions, space.n_features), first_step)
        """Per entry, the move as a share of the entry's range."""
        self.slot = 0

    def neighbours(self, action: np.ndarray, step: np.ndarray) -> np.ndarray:
        """The slot's action with one entry moved up or down by its step."""
        m = self.search.space.n_features
        features = np.tile(np.arange(m), 2)
        sizes = np.concatenate([step, -step])
        moves = self.search.space.stepped(np.repeat(action[None], 2 * m, axis=0), features, sizes)
        return np.unique(moves[~np.all(moves == action, axis=1)], axis=0)

    def run(self, steps: int) -> None:
        search, space = self.search, self.search.space
        smallest = 1.0 / self.resolution
        while steps > 0:
            j = self.slot
            here = search.evaluate(self.working)
            moves = self.neighbours(self.working[j], self.step[j])
            if len(moves) == 0:
                moves = space.from_unit(self.rng.uniform(-1, 1, (1, 2 * space.n_features)),
                                        self.keep_share, self.resolution)
            index = search.evaluate(moves)
            search.steps += len(moves)
            steps -= len(moves)
            trials = np.repeat(here[None], len(moves), axis=0)
            trials[:, j] = index
            keys = [search.key(t) for t in trials]
            best = int(np.argmax(keys))
            if keys[best] > search.key(here) + 1e-9:
                self.working[j] = moves[best]
                search.offer(trials[best])
                continue
            self.step[j] /= 2.0
            if self.step[j].max() < smallest:  # converged: climb again from a random action
                self.step[j] = self.first_step
                u = self.rng.uniform(-1, 1, (1, 2 * space.n_features))
                self.working[j] = space.from_unit(u, self.keep_share, self.resolution)[0]
            self.slot = (j + 1) % space.n_actions

    def state(self) -> dict[str, Any]:
        return {"rng": self.rng.bit_generator.state, "working": self.working,
                "step": self.step, "slot": self.slot}

    def restore(self, state: dict[str, Any]) -> None:
        self.rng.bit_generator.state = state["rng"]
        self.working, self.step = np.asarray(state["working"]), np.asarray(state["step"])
        self.slot = int(state["slot"])

