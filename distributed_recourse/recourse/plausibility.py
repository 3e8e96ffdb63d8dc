"""Whether counterfactuals lie in the data's support: per person, per candidate action on a
population (what a reward term or a selection rule needs) and per group.

The detector is passed in: any object with scikit-learn's outlier `predict` (+1 inlier,
-1 outlier). The project's is the IsolationForest `population.prepare` fits on the favourable
training rows. It was chosen over the distance to the k nearest favourable rows because it is
already fitted and saved with every run and costs ~5 us per row on Adult against ~1 ms for a
5-NN Gower distance to the 7,900 favourable training rows (200x; measured in one run by
benchmarks/actionable.py), which decides it for a term evaluated at every environment step.
The two agree on the shape of the problem: on Adult the forest accepts 0.86 of the favourable
test rows, 0.57 of the affected people before any change and 0.51 of their chosen
counterfactuals; 5-NN at a threshold passing 95% of favourable rows: 0.95, 0.72 and 0.71.
"""

from __future__ import annotations

from typing import Protocol

import numpy as np

from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace


class Detector(Protocol):
    def predict(self, X: np.ndarray) -> np.ndarray: ...


def plausible(detector: Detector, X_cf: np.ndarray) -> np.ndarray:
    """(n,) the detector takes each row for an inlier."""
    if not len(X_cf):
        return np.zeros(0, dtype=bool)
    return np.asarray(detector.predict(X_cf)) == 1


def action_plausibility(
    space: ActionSpace, detector: Detector, X: np.ndarray, action: np.ndarray,
    among: np.ndarray | None = None,
) -> float:
    """The share of plausible counterfactuals one action gives the people X, counted among
    `among` (a mask, e.g. the people it flips; default everyone). NaN when nobody is counted."""
    rows = X if among is None else X[among]
    return float(plausible(detector, space.apply(rows, action)).mean()) if len(rows) else np.nan


def set_plausibility(
    space: ActionSpace, detector: Detector, X: np.ndarray, action_set: np.ndarray,
    flipped: np.ndarray,
) -> np.ndarray:
    """(N,) each action's plausibility among the people it flips ((N, n) `flipped`; NaN for an
    action that flips nobody)."""
    return np.array([action_plausibility(space, detector, X, action, mask)
                     for action, mask in zip(action_set, flipped, strict=True)])


def group_plausibility(
    inlier: np.ndarray, valid: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, float]:
    """Per group, the share of chosen counterfactuals that are plausible, among the people who
    have one (NaN if nobody in the group has); and the largest gap between groups."""
    counted = np.bincount(groups, weights=valid, minlength=n_groups)
    inliers = np.bincount(groups, weights=valid & inlier, minlength=n_groups)
    share = np.divide(inliers, counted, out=np.full(n_groups, np.nan), where=counted > 0)
    return share, M.spread(share)
