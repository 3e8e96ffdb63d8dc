"""Recourse action sets: N actions over the m actionable features, and applying them to people.

An action holds, per feature, an additive change (`con`) or a target value (`ord`/`cat`), where
the sentinel `low - 1` means "no change" (DESIGN.md section 2). Plain numpy, vectorised over people.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from distributed_recourse.data.schema import FeatureSpec


class ActionSpace:
    """Bounds, encodings and arithmetic of action sets over a fixed list of actionable features."""

    def __init__(self, features: Sequence[FeatureSpec], n_actions: int) -> None:
        if n_actions < 1:
            raise ValueError(f"n_actions must be at least 1, got {n_actions}")
        self.features = tuple(features)
        self.n_actions = n_actions
        self.columns = np.array([f.column for f in features], dtype=np.int64)
        self.low = np.array([f.low for f in features], dtype=np.float64)
        self.high = np.array([f.high for f in features], dtype=np.float64)
        self.span = self.high - self.low
        self.is_con = np.array([f.kind == "con" for f in features])
        self.is_cat = np.array([f.kind == "cat" for f in features])
        self.integer = np.array([f.integer for f in features])
        self.increase_only = np.array([f.direction == "increase" for f in features])
        self.decrease_only = np.array([f.direction == "decrease" for f in features])
        self.sentinel = self.low - 1.0
        # Whole-number features clip to the whole numbers inside their bounds.
        self.clip_low = np.where(self.integer, np.ceil(self.low), self.low)
        self.clip_high = np.where(self.integer, np.floor(self.high), self.high)

    @property
    def n_features(self) -> int:
        return len(self.features)

    @property
    def names(self) -> list[str]:
        return [f.name for f in self.features]

    # ----------------------------------------------------------------- the space of values
    def no_change(self) -> np.ndarray:
        """One action that changes nothing: 0 for `con`, the sentinel for `ord`/`cat`."""
        return np.where(self.is_con, 0.0, self.sentinel)

    def initial_set(self) -> np.ndarray:
        return np.tile(self.no_change(), (self.n_actions, 1))

    def value_bounds(self) -> tuple[np.ndarray, np.ndarray]:
        """Per feature, the smallest and largest value an action entry may hold."""
        con_low = np.where(self.increase_only, 0.0, -self.span)
        con_high = np.where(self.decrease_only, 0.0, self.span)
        return (
            np.where(self.is_con, con_low, self.sentinel),
            np.where(self.is_con, con_high, self.high),
        )

    def clip(self, action_set: np.ndarray) -> np.ndarray:
        """Project values onto the space: within bounds, whole numbers where the feature is."""
        low, high = self.value_bounds()
        clipped = np.clip(action_set, low, high)
        return np.where(self.integer, np.round(clipped), clipped)

    def from_unit(self, u: np.ndarray, keep_share: float = 0.6, resolution: int = 100) -> np.ndarray:
        """Actions from points of [-1, 1]^(2m): per feature a gate (the feature changes when
        its gate is above 1 - 2 `keep_share`) and a value placed over the entry's range (a
        `con` change on a grid of `resolution` steps per range, an `ord`/`cat` level). A
        uniform point is the random baseline's candidate: each entry kept with probability
        `keep_share`, uniform within its bounds. (B, 2m) -> (B, m)."""
        u = np.atleast_2d(np.asarray(u, dtype=np.float64))
        m = self.n_features
        gate, value = u[:, :m] > 1.0 - 2.0 * keep_share, (np.clip(u[:, m:], -1, 1) + 1.0) / 2.0
        low, high = self.value_bounds()
        con = low + value * (high - low)
        con = np.round(con / self.span * resolution) * self.span / resolution
        level = np.round(self.low + value * (self.high - self.low))
        moved = np.where(self.is_con, con, level)
        return self.clip(np.where(gate, moved, self.no_change()))

    def stepped(self, base: np.ndarray, feature: np.ndarray, size: np.ndarray) -> np.ndarray:
        """Actions moved from `base` in one entry each: `feature` by `size` (signed, a share of
        the entry's range), a whole-number entry by at least one level; the coordinate moves
        of a pattern search. (B, m), (B,), (B,) -> (B, m)."""
        base = np.array(np.atleast_2d(base), dtype=np.float64)
        feature, size = np.atleast_1d(feature), np.atleast_1d(size).astype(np.float64)
        low, high = self.value_bounds()
        move = size * (high[feature] - low[feature])
        whole = self.integer[feature] & (move != 0)
        move = np.where(whole, np.sign(move) * np.maximum(1.0, np.round(np.abs(move))), move)
        base[np.arange(len(base)), feature] += move
        return self.clip(base)

    def to_unit(self, actions: np.ndarray) -> np.ndarray:
        """Where actions sit on their entries' ranges, in [-1, 1] (what an agent observes)."""
        low, high = self.value_bounds()
        return 2.0 * (np.asarray(actions) - low) / (high - low) - 1.0

    # ----------------------------------------------------------------- acting on people
    def moved_columns(self, X: np.ndarray, action: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """The features the action moves (`moves`: an action usually moves a few of them) and
        their values per person after it: (f,), (n, len(f)). The other columns stay as they
        were, so that on a large scope a step computes only what changes."""
        action = np.asarray(action, dtype=np.float64)
        f = np.flatnonzero(self.moves(action))
        current, value = X[:, self.columns[f]], action[f]
        targets = np.broadcast_to(value, current.shape)
        targets = np.where(self.increase_only[f], np.maximum(current, targets), targets)
        targets = np.where(self.decrease_only[f], np.minimum(current, targets), targets)
        moved = np.where(self.is_con[f], current + value, targets)
        moved = np.where(self.integer[f], np.round(moved), moved)
        return f, np.clip(moved, self.clip_low[f], self.clip_high[f])

    def apply(self, X: np.ndarray, action: np.ndarray) -> np.ndarray:
        """Each row of X after action; only the columns it moves change."""
        out = X.copy()
        f, values = self.moved_columns(X, action)
        out[:, self.columns[f]] = values
        return out

    def action_distance(self, X: np.ndarray, action: np.ndarray) -> np.ndarray:
        """`distance(X, apply(X, action))`, from the moved columns alone."""
        f, after = self.moved_columns(X, action)
        return self._gower_terms(X[:, self.columns[f]], after, f).sum(axis=1) / self.n_features

    def feature_distance(self, X: np.ndarray, X_new: np.ndarray) -> np.ndarray:
        """(n, m) each actionable feature's Gower term per person: |change| / span, or 1 if a
        categorical feature changed."""
        return self._gower_terms(X[:, self.columns], X_new[:, self.columns], slice(None))

    def _gower_terms(self, before: np.ndarray, after: np.ndarray,
                     f: np.ndarray | slice) -> np.ndarray:
        """The Gower terms of features `f` (indices or a slice), from their values before and
        after."""
        return np.where(self.is_cat[f], (after != before).astype(np.float64),
                        np.abs(after - before) / self.span[f])

    def distance(self, X: np.ndarray, X_new: np.ndarray) -> np.ndarray:
        """Gower distance over the actionable features, per person (DESIGN.md section 3)."""
        return self.feature_distance(X, X_new).mean(axis=1)

    def n_changed(self, X: np.ndarray, X_new: np.ndarray) -> np.ndarray:
        """Sparsity: how many features the action changed for each person."""
        return (X[:, self.columns] != X_new[:, self.columns]).sum(axis=1)

    # ----------------------------------------------------------------- reading actions
    def moves(self, action: np.ndarray) -> np.ndarray:
        """The entries of an action ((m,), or (B, m) for several) that can change someone (a
        one-way feature's target at its own end, e.g. `education at least 1`, changes nobody)."""
        moves = np.where(self.is_con, action != 0.0, action != self.sentinel)
        moves &= ~(self.increase_only & ~self.is_con & (action <= self.low))
        moves &= ~(self.decrease_only & ~self.is_con & (action >= self.high))
        return moves

    def describe(self, action: np.ndarray) -> dict[str, float]:
        """The entries of one action that can change someone, by feature name."""
        return {f.name: float(value)
                for f, value, move in zip(self.features, action, self.moves(action), strict=True)
                if move}

    def from_description(self, changes: dict[str, float]) -> np.ndarray:
        """Inverse of `describe`: unknown names raise, missing ones mean no change."""
        action = self.no_change()
        names = self.names
        for name, value in changes.items():
            if name not in names:
                raise ValueError(f"action names feature {name!r}; actionable are {names}")
            action[names.index(name)] = value
        return action

    def canonical(self, actions: np.ndarray) -> np.ndarray:
        """The actions with every entry that changes nobody written as "no change": two
        actions that do the same to everyone then compare equal (`education at least 1` and
        no change of education), so that the model is not asked twice and a person is not
        handed the same action twice as two choices. (m,) or (B, m)."""
        actions = np.asarray(actions, dtype=np.float64)
        return np.where(self.moves(actions), actions, self.no_change())

    def distinct(self, action_set: np.ndarray) -> np.ndarray:
        """Mask of the first occurrence of each distinct action (ECR counts each once)."""
        _, first = np.unique(self.canonical(action_set), axis=0, return_index=True)
        mask = np.zeros(len(action_set), dtype=bool)
        mask[first] = True
        return mask
