"""SAC's replay memory as arrays: one row per transition, drawn by one seeded index draw.

RLlib's `EpisodeReplayBuffer` keeps episode objects and slices one for every transition it
draws, 60 % of an update's time at a batch of 256 (docs/RESULTS.md); rows of arrays make an
update's draw one fancy index. Pure numpy: the RLlib side (sac.py) hands it episodes' arrays.
"""

from __future__ import annotations

from typing import Any

import numpy as np


class TransitionReplay:
    """A ring of (obs, action, reward, next obs, terminated) rows, `capacity` at most.

    Rows are allocated as they come (a scope's search fills a fraction of the default million),
    doubling, so memory follows what was stored."""

    FIELDS = ("obs", "actions", "rewards", "new_obs", "terminateds")

    def __init__(self, capacity: int, seed: int | None) -> None:
        self.capacity = int(capacity)
        self.rng = np.random.default_rng(seed)
        self.columns: dict[str, np.ndarray] | None = None
        self.added = 0
        """Rows ever added (the ring's write position is `added % capacity`)."""

    @property
    def size(self) -> int:
        """Rows held."""
        return min(self.added, self.capacity)

    def __len__(self) -> int:
        return self.size

    def add(self, obs: np.ndarray, actions: np.ndarray, rewards: np.ndarray,
            new_obs: np.ndarray, terminateds: np.ndarray) -> None:
        """Append one batch of transitions (first axis: transitions)."""
        batch = dict(zip(self.FIELDS, (obs, actions, rewards, new_obs, terminateds),
                         strict=True))
        n = len(rewards)
        if n == 0:
            return
        self._reserve(min(self.size + n, self.capacity), batch)
        rows = (self.added + np.arange(n)) % self.capacity
        for name, values in batch.items():
            self.columns[name][rows] = values
        self.added += n

    def _reserve(self, rows: int, batch: dict[str, np.ndarray]) -> None:
        have = 0 if self.columns is None else len(self.columns["rewards"])
        if rows <= have:
            return
        grown = min(self.capacity, max(rows, 2 * have, 1024))
        fresh = {name: np.zeros((grown, *np.shape(v)[1:]), np.asarray(v).dtype)
                 for name, v in batch.items()}
        if self.columns is not None:
            for name, column in self.columns.items():
                fresh[name][:have] = column
        self.columns = fresh

    def sample(self, batch_size: int) -> dict[str, np.ndarray]:
        """`batch_size` rows drawn uniformly with replacement, as SAC's loss reads them
        (`n_step` 1 and unit importance weights, as RLlib's uniform buffer gives)."""
        if self.size == 0:
            raise ValueError("TransitionReplay.sample: the buffer is empty")
        rows = self.rng.integers(0, self.size, batch_size)
        batch = {name: column[rows] for name, column in self.columns.items()}
        batch["n_step"] = np.ones(batch_size, np.float32)
        batch["weights"] = np.ones(batch_size, np.float32)
        return batch

    def get_state(self) -> dict[str, Any]:
        columns = None if self.columns is None else \
            {name: column[:self.size] for name, column in self.columns.items()}
        return {"columns": columns, "added": self.added, "rng": self.rng.bit_generator.state}

    def set_state(self, state: dict[str, Any]) -> None:
        self.columns = state["columns"]
        self.added = state["added"]
        self.rng.bit_generator.state = state["rng"]
