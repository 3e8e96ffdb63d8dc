"""Plausibility of counterfactuals per person, per action and per group, with a detector whose
verdicts are known by hand, and with a real IsolationForest on a tight cluster."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.ensemble import IsolationForest

from distributed_recourse.data.schema import FeatureSpec
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.plausibility import (
    action_plausibility,
    fit_detector,
    group_plausibility,
    plausible,
    set_plausibility,
)

SPACE = ActionSpace([FeatureSpec("gain", 0, "con", 0.0, 100.0)], n_actions=2)
X = np.array([[0.0, 1.0], [10.0, 1.0], [20.0, 2.0], [45.0, 2.0]])


class AtMost50:
    """Inlier iff gain <= 50."""

    def predict(self, X):
        return np.where(X[:, 0] <= 50, 1, -1)


def test_plausible_per_row():
    np.testing.assert_array_equal(plausible(AtMost50(), np.array([[50.0, 0], [51.0, 0]])),
                                  [True, False])
    assert plausible(AtMost50(), np.zeros((0, 2))).shape == (0,)


def test_action_plausibility_among_everyone_or_a_mask():
    # gain +30: 30, 40, 50 are inliers, 75 is not -> 3 / 4; among people 2 and 3 -> 1 / 2.
    action = np.array([30.0])
    assert action_plausibility(SPACE, AtMost50(), X, action) == 0.75
    among = np.array([False, False, True, True])
    assert action_plausibility(SPACE, AtMost50(), X, action, among) == 0.5
    assert np.isnan(action_plausibility(SPACE, AtMost50(), X, action, np.zeros(4, dtype=bool)))


def test_set_plausibility_counts_each_actions_flipped_people():
    # a0 +30 flips people 0 and 3 (inlier 30, outlier 75): 0.5; a1 +5 flips nobody: NaN.
    flipped = np.array([[True, False, False, True], [False] * 4])
    shares = set_plausibility(SPACE, AtMost50(), X, np.array([[30.0], [5.0]]), flipped)
    assert shares[0] == 0.5 and np.isnan(shares[1])


def test_group_plausibility():
    # g0: people 0, 1, 2 with CFs, inliers 0 and 2 -> 2 / 3; g1: person 3 inlier, person 4 has
    # no CF (not counted) -> 1; g2: nobody with a CF -> NaN, out of the gap.
    inlier = np.array([True, False, True, True, False, True])
    valid = np.array([True, True, True, True, False, False])
    share, gap = group_plausibility(inlier, valid, np.array([0, 0, 0, 1, 1, 2]), 3)
    np.testing.assert_allclose(share[:2], [2 / 3, 1.0])
    assert np.isnan(share[2])
    assert gap == pytest.approx(1 / 3)


def test_with_an_isolation_forest_a_far_counterfactual_is_an_outlier():
    rng = np.random.default_rng(0)
    favourable = np.column_stack([rng.normal(20, 2, 500), rng.normal(1, 0.1, 500)])
    forest = IsolationForest(random_state=0).fit(favourable)
    people = np.array([[18.0, 1.0], [19.0, 1.0]])
    assert action_plausibility(SPACE, forest, people, np.array([2.0])) == 1.0
    assert action_plausibility(SPACE, forest, people, np.array([60.0])) == 0.0


def test_fit_detector_ignores_the_protected_column_and_accepts_its_share():
    # Column 1 is protected: group 1 is rare among favourable rows (5%), column 0 is the only
    # feature the detector may read. A row of the rare group at the common value 20 is an
    # inlier; at 60 an outlier whatever its group. 5% contamination: 95% of the rows accepted.
    rng = np.random.default_rng(0)
    favourable = np.column_stack([rng.normal(20, 2, 1000), (rng.random(1000) < 0.05).astype(float)])
    detector = fit_detector(favourable, protected=[1], seed=0, contamination=0.05)
    assert plausible(detector, favourable).mean() == pytest.approx(0.95, abs=0.005)
    np.testing.assert_array_equal(plausible(detector, np.array([[20.0, 1.0], [20.0, 7.0],
                                                                [60.0, 0.0]])),
                                  [True, True, False])
    # the protected value changes nothing: the same scores for each row under either group
    rows = favourable[:50].copy()
    other = rows.copy()
    other[:, 1] = 1.0 - other[:, 1]
    np.testing.assert_array_equal(detector.decision_function(rows), detector.decision_function(other))
    plain = IsolationForest(contamination=0.05, random_state=0).fit(favourable)
    assert (plain.decision_function(rows) != plain.decision_function(other)).any()
