"""A random population of a few dozen people with a `con`, an `ord` and a `cat` actionable
feature and a linear model, for searches too large to work out by hand (baselines, the hub)."""

from __future__ import annotations

import numpy as np

from distributed_recourse.data.schema import FeatureSpec
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.evaluator import ScopeEvaluator
from distributed_recourse.recourse.rewards import Goal, RewardWeights
from distributed_recourse.recourse.search import ScopeProblem, ScopeSearch

FEATURES3 = (FeatureSpec("a", 0, "con", 0.0, 10.0), FeatureSpec("b", 1, "ord", 0.0, 4.0, integer=True),
             FeatureSpec("c", 2, "cat", 0.0, 2.0, integer=True))


class Linear:
    """Favourable iff a + 2 b + 3 [c = 2] >= 12; counts its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def favourable(self, X_: np.ndarray) -> np.ndarray:
        self.calls += 1
        return X_[:, 0] + 2 * X_[:, 1] + 3 * (X_[:, 2] == 2) >= 12


def people(n: int = 60) -> np.ndarray:
    """The affected among n random people (column 3 is the group, 0 or 1)."""
    rng = np.random.default_rng(0)
    X_ = np.column_stack([rng.uniform(0, 10, n), rng.integers(0, 5, n), rng.integers(0, 3, n),
                          rng.integers(0, 2, n)]).astype(float)
    return X_[~Linear().favourable(X_)]


def linear_search(model=None, n_actions: int = 3) -> ScopeSearch:
    """A scope's search over `people()` under `Linear`, its goal every affected person."""
    X3 = people()
    w = RewardWeights(reward="EE-ECR", n_actions=n_actions)
    model = model or Linear()
    problem3 = ScopeProblem("s", X3, X3[:, 3].astype(int), ["g0", "g1"], FEATURES3, model)
    evaluator = ScopeEvaluator.local(X3, ActionSpace(FEATURES3, n_actions), model.favourable)
    return ScopeSearch(problem3, evaluator, w, Goal.from_ceiling(1.0, 0.0), pull=10.0)
