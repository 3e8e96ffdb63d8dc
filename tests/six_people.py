"""The six-person population the environment, pool and search tests work out by hand.

Columns x0, x1 and an immutable column; the model is favourable iff x0 + x1 >= 6:

    person  x0   x1  group   x0 + x1   con delta d flips at   ord target t flips at
    p0      4.5  1   0       5.5       d >= 0.5               t >= 2 (4.5 + t >= 6)
    p1      3.5  2   0       5.5       d >= 0.5               t >= 3
    p2      1.0  3   0       4.0       d >= 2                 never
    p3      2.0  3   1       5.0       d >= 1                 t >= 4
    p4      1.0  2   1       3.0       d >= 3                 never
    p5      3.5  1   1       4.5       d >= 1.5               t >= 3

x0 is `con` on [0, 10] (an action's entry lies in [-10, 10]), x1 is `ord` on 1..4 (sentinel 0).
The Gower distance of an action is averaged over the two features, then over the people.
"""

from __future__ import annotations

import numpy as np

from distributed_recourse.data.schema import FeatureSpec
from distributed_recourse.recourse.search import ScopeProblem

X = np.array(
    [
        [4.5, 1, 0],
        [3.5, 2, 1],
        [1.0, 3, 0],
        [2.0, 3, 1],
        [1.0, 2, 0],
        [3.5, 1, 1],
    ]
)
GROUPS = np.array([0, 0, 0, 1, 1, 1])
FEATURES = (
    FeatureSpec("x0", 0, "con", 0.0, 10.0),
    FeatureSpec("x1", 1, "ord", 1.0, 4.0, integer=True),
)
NO_CHANGE = np.array([0.0, 0.0])
"""The action that changes nothing: con 0, ord at its sentinel low - 1 = 0."""


class SumModel:
    """Favourable iff x0 + x1 >= 6; counts its calls and the rows it saw, and checks that
    the immutable column never changes."""

    def __init__(self) -> None:
        self.calls = 0
        self.rows = 0

    def favourable(self, X_: np.ndarray) -> np.ndarray:
        self.calls += 1
        self.rows += len(X_)
        np.testing.assert_array_equal(X_[:, 2], np.tile(X[:, 2], len(X_) // len(X)))
        return X_[:, 0] + X_[:, 1] >= 6


def problem(scope: str = "c0", model=None, features=FEATURES) -> ScopeProblem:
    return ScopeProblem(scope, X, GROUPS, ["g0", "g1"], features, model or SumModel())
