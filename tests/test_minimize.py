"""Exact minimisation of actions on toy models whose unneeded changes and smallest steps are
worked out by hand in the comments; and, over random trees and actions, that no flip is lost."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from sklearn.tree import DecisionTreeClassifier

from distributed_recourse.data.schema import FeatureSpec
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.evaluation import evaluate_scope
from distributed_recourse.recourse.minimize import minimize_action, minimize_set, minimize_sets
from distributed_recourse.recourse.rewards import RewardWeights

# X columns: 0 gain (con 0..100, real), 1 hours (con 0..80, whole), 2 edu (ord 1..16,
# increase-only), 3 job (cat 0..2), 4 age (immutable).
GAIN = FeatureSpec("gain", 0, "con", 0.0, 100.0)
HOURS = FeatureSpec("hours", 1, "con", 0.0, 80.0, integer=True)
EDU = FeatureSpec("edu", 2, "ord", 1.0, 16.0, direction="increase", integer=True)
JOB = FeatureSpec("job", 3, "cat", 0.0, 2.0, integer=True)
SPACE = ActionSpace([GAIN, HOURS, EDU, JOB], n_actions=2)


class Counting:
    """A model that counts the calls and rows it is asked about."""

    def __init__(self, rule):
        self.rule, self.calls, self.rows = rule, 0, 0

    def __call__(self, X):
        self.calls += 1
        self.rows += len(X)
        return self.rule(X)


def people(gain, hours=30.0, edu=9.0, job=0.0, age=40.0):
    gain = np.asarray(gain, dtype=np.float64)
    return np.column_stack([gain, *(np.full(len(gain), v) for v in (hours, edu, job, age))])


# ------------------------------------------------------------------ dropping, then bisection
def test_unneeded_changes_are_dropped_and_gain_shrinks_to_the_threshold():
    # Favourable iff gain >= 10. Everyone (gain 0, 2, 5) is flipped by gain +20; hours, edu and
    # job do nothing. Drop order by mean Gower term: job 1.0, gain 0.2, edu 3/15 = 0.2 (ties in
    # feature order), hours 5/80: job, edu and hours go, gain stays (without it nobody flips).
    # Bisection of gain on [0, 20] to 1e-4 x 100 = 0.01: 11 halvings (20 / 2^11 < 0.01).
    X = people([0.0, 2.0, 5.0])
    model = Counting(lambda X: X[:, 0] >= 10)
    result = minimize_action(SPACE, X, np.array([20.0, 5.0, 12.0, 2.0]), model)
    assert 10.0 <= result.action[0] <= 10.01
    np.testing.assert_array_equal(result.action[1:], SPACE.no_change()[1:])
    assert (result.changes_before, result.changes_after) == (4, 1)
    np.testing.assert_array_equal(result.before, [True, True, True])
    np.testing.assert_array_equal(result.after, [True, True, True])
    # calls: before 1, drop tries 4 (job, gain, edu, hours) + 1 (second pass: gain), 11
    # halvings, after 1; each on the 3 people.
    assert result.model_calls == model.calls == 18
    assert result.rows_evaluated == model.rows == 54
    # Gower of the flipped people: before (20/100 + 5/80 + 3/15 + 1) / 4 per person;
    # after, gain +10 (a change, the same for everyone): 10 / 100 / 4.
    assert result.gower_before == pytest.approx((0.2 + 0.0625 + 0.2 + 1.0) / 4)
    assert result.gower_after == pytest.approx(10 / 100 / 4, abs=1e-4)
    # Every remaining change is needed: without gain nobody is flipped.
    assert not model(SPACE.apply(X, SPACE.no_change())).any()


def test_actions_with_the_same_threshold_shrink_to_the_same_value():
    # Favourable iff gain >= 10: gain +20 and gain +37 both shrink over multiples of 0.01 to the
    # first multiple that keeps, 10.00 (plain halving ends wherever its halvings land within
    # 0.01 of 10: two different "choices" that read alike as "gain +10").
    X = people([0.0, 2.0, 5.0])
    model = Counting(lambda X: X[:, 0] >= 10)
    first, second = (minimize_action(SPACE, X, np.array([size, 0.0, 0.0, -1.0]), model).action
                     for size in (20.0, 37.0))
    assert first[0] == second[0] == pytest.approx(10.0)


def test_whole_number_feature_shrinks_to_the_exact_smallest_step():
    # Favourable iff hours >= 40; hours 30 and 35 get +20. Bisection on whole hours:
    # 10 keeps (hi 10), 5 loses (lo 5), 7, 8, 9 lose: +10 exactly, 5 calls.
    X = people([0.0, 0.0], hours=30.0)
    X[1, 1] = 35.0
    model = Counting(lambda X: X[:, 1] >= 40)
    result = minimize_action(SPACE, X, np.array([0.0, 20.0, 0.0, -1.0]), model)
    assert result.action[1] == 10.0
    assert result.model_calls == 1 + 1 + 5 + 1  # before, drop hours, bisection, after


def test_a_decreasing_change_shrinks_towards_zero_from_below():
    # Favourable iff gain <= 50; gain 60 and 70 get -40: the smallest cut is -20 (to 0.01).
    X = people([60.0, 70.0])
    result = minimize_action(SPACE, X, np.array([-40.0, 0.0, 0.0, -1.0]),
                             lambda X: X[:, 0] <= 50)
    assert -20.01 <= result.action[0] <= -20.0


# ------------------------------------------------------------------ people newly flipped
def test_newly_flipped_people_keep_recourse_unless_forbidden():
    # Favourable iff 10 <= hours <= 30 (a model that is not monotone). Hours 0 and 15 get +20:
    # 20 flips, 35 does not. With new flips allowed the smallest step is +10, which also flips
    # the second person (25). Forbidden: steps 10..15 flip them (15 + 15 = 30), so bisection
    # settles on +16 (10 no, 15 no, 17 yes, 16 yes).
    X = people([0.0, 0.0], hours=0.0)
    X[1, 1] = 15.0
    model = lambda X: (X[:, 1] >= 10) & (X[:, 1] <= 30)  # noqa: E731
    action = np.array([0.0, 20.0, 0.0, -1.0])
    loose = minimize_action(SPACE, X, action, model)
    assert loose.action[1] == 10.0
    np.testing.assert_array_equal(loose.before, [True, False])
    np.testing.assert_array_equal(loose.after, [True, True])
    strict = minimize_action(SPACE, X, action, model, allow_new=False)
    assert strict.action[1] == 16.0
    np.testing.assert_array_equal(strict.after, [True, False])


# ------------------------------------------------------------------ ord targets
def test_increase_only_level_moves_down_to_the_lowest_level_that_keeps():
    # Favourable iff edu >= 12; edu 3, 8, 10 get "at least 15". Cheaper levels, cheapest first:
    # 3, 2, 1 (no change for anyone: 2 and 1 move the rows as 3 did, not asked again), then
    # 4..11 (each loses someone), 12 keeps. Calls: before, drop, 1 + 8 + 1 levels, after = 13.
    X = people([0.0, 0.0, 0.0])
    X[:, 2] = [3.0, 8.0, 10.0]
    model = Counting(lambda X: X[:, 2] >= 12)
    result = minimize_action(SPACE, X, np.array([0.0, 0.0, 15.0, -1.0]), model)
    assert result.action[2] == 12.0
    assert result.model_calls == 13
    # Gower: edu moves 9, 4, 2 levels of 15, over 4 features; before 12, 7, 5.
    assert result.gower_after == pytest.approx(15 / 3 / 15 / 4)
    assert result.gower_before == pytest.approx(24 / 3 / 15 / 4)


def test_two_way_level_moves_to_the_cheapest_level_for_the_people():
    # level: ord 0..10 either way; favourable iff 4 <= level <= 7. People at 1 and 2 are set to
    # 7; the cheapest level that keeps both is 4 (cost 3 + 2), not 5, 6 or 7.
    space = ActionSpace([FeatureSpec("level", 0, "ord", 0.0, 10.0, integer=True)], 1)
    X = np.array([[1.0], [2.0]])
    result = minimize_action(space, X, np.array([7.0]), lambda X: (X[:, 0] >= 4) & (X[:, 0] <= 7))
    assert result.action[0] == 4.0


# ------------------------------------------------------------------ edge cases
def test_an_action_that_flips_nobody_loses_every_change_without_extra_calls():
    model = Counting(lambda X: X[:, 0] >= 1000)
    result = minimize_action(SPACE, people([0.0, 1.0]), np.array([20.0, 5.0, 12.0, 2.0]), model)
    np.testing.assert_array_equal(result.action, SPACE.no_change())
    assert model.calls == result.model_calls == 2  # before and after
    assert np.isnan(result.gower_before)


def test_an_empty_population_needs_no_model_call():
    model = Counting(lambda X: X[:, 0] >= 10)
    result = minimize_action(SPACE, np.zeros((0, 5)), np.array([20.0, 0.0, 0.0, -1.0]), model)
    assert model.calls == result.model_calls == 0
    np.testing.assert_array_equal(result.action, SPACE.no_change())


# ------------------------------------------------------------------ a set
def test_minimize_set_pools_its_actions():
    # a0 as in the first test on 3 people (gain 0, 2, 5: flipped by gain >= 10 at +20); a1
    # flips nobody. Changes 4 + 2 -> 1 + 0; Gower pooled over a0's 3 people.
    X = people([0.0, 2.0, 5.0])
    result = minimize_set(SPACE, X, np.array([[20.0, 5.0, 12.0, 2.0], [0.0, 5.0, 0.0, 1.0]]),
                          lambda X: X[:, 0] >= 10)
    assert (result.changes_before, result.changes_after) == (6, 1)
    assert result.gower("before") == pytest.approx(result.actions[0].gower_before)
    assert result.model_calls == 18 + 2
    d = result.to_dict()
    assert d["changes"] == {"before": 6, "after": 1}
    assert d["flipped"] == {"before": 3, "after": 3}
    np.testing.assert_array_equal(result.action_set[1], SPACE.no_change())


# ------------------------------------------------------------------ properties
@settings(max_examples=40, deadline=None)
@given(seed=st.integers(0, 10_000), allow_new=st.booleans())
def test_no_flip_is_lost_and_no_change_grows_on_random_trees(seed, allow_new):
    rng = np.random.default_rng(seed)
    X_train = np.column_stack([rng.uniform(0, 100, 200), rng.integers(0, 81, 200),
                               rng.integers(1, 17, 200), rng.integers(0, 3, 200),
                               rng.uniform(20, 60, 200)])
    tree = DecisionTreeClassifier(max_depth=4, random_state=seed).fit(
        X_train, X_train[:, 0] + X_train[:, 1] + 3 * X_train[:, 2] > rng.uniform(80, 160))
    model = Counting(lambda X: tree.predict(X).astype(bool))
    X = X_train[:40]
    low, high = SPACE.value_bounds()
    action = SPACE.clip(rng.uniform(low, high))
    result = minimize_action(SPACE, X, action, model, allow_new=allow_new)
    assert not (result.before & ~result.after).any()
    if not allow_new:
        np.testing.assert_array_equal(result.before, result.after)
    np.testing.assert_array_equal(result.after, model(SPACE.apply(X, result.action)))
    assert result.model_calls == model.calls - 1
    assert not (SPACE.moves(result.action) & ~SPACE.moves(action)).any()
    con = SPACE.is_con
    assert (np.abs(result.action[con]) <= np.abs(action[con])).all()
    assert (result.action[con] * action[con] >= 0).all()
    np.testing.assert_array_equal(SPACE.clip(result.action), result.action)
    if SPACE.moves(result.action)[2]:
        assert result.action[2] <= action[2]  # increase-only level only comes down
    if result.before.any():
        assert result.gower_after <= result.gower_before + 1e-12


def test_minimized_sets_never_widen_the_ecr_gap():
    # one con feature x on 0..30; favourable iff 10 <= x < 22 or x >= 28. g0 is at x = 0, g1
    # at x = 5. a1 = +20 flips g0 only (0 -> 20; 5 -> 25), a2 = +23 g1 only (0 -> 23; 5 -> 28):
    # SR 1, PD 0, one choice each, ECR gap 0. Reduced with new flips allowed, a1 becomes +10,
    # which flips g1 too (5 -> 15): g1 then has two choices, g0 one, a gap of 0.5. Reduced so
    # as to flip the same people, a1 stops at +17 (g1 at 22) and the gap stays 0; a2 stays
    # +23 (bisection's first tries, +11.5 and +17.25, flip g0 too).
    space = ActionSpace([FeatureSpec("x", 0, "con", 0.0, 30.0)], n_actions=2)
    X, groups = np.array([[0.0], [0.0], [5.0], [5.0]]), np.array([0, 0, 1, 1])

    def favourable(X_):
        return ((X_[:, 0] >= 10) & (X_[:, 0] < 22)) | (X_[:, 0] >= 28)

    weights = RewardWeights(n_actions=2, reward="EE-ECR")

    def gap(action_set):
        return evaluate_scope(space, X, groups, ["g0", "g1"], action_set, favourable,
                              weights)[0]["ECR_gap"]

    def judge(sets):
        return (-round(gap(sets["c0"]), 9),)

    original = {"c0": np.array([[20.0], [23.0]])}
    assert gap(original["c0"]) == 0.0
    loose = minimize_set(space, X, original["c0"], favourable)
    assert loose.action_set[0, 0] == pytest.approx(10.0, abs=0.01)
    assert gap(loose.action_set) == pytest.approx(0.5)
    reduced, minimized = minimize_sets(space, {"c0": X}, original, favourable, judge,
                                       judge(original))
    assert gap(reduced["c0"]) == 0.0
    assert reduced["c0"][0, 0] == pytest.approx(17.0, abs=0.01)
    assert reduced["c0"][1, 0] == 23.0 and set(minimized) == {"c0"}


def test_minimized_sets_stay_as_they_were_when_every_reduction_is_worse():
    space = ActionSpace([FeatureSpec("x", 0, "con", 0.0, 30.0)], n_actions=2)
    X = np.array([[0.0], [5.0]])
    original = {"c0": np.array([[20.0], [23.0]])}
    reduced, minimized = minimize_sets(space, {"c0": X}, original, lambda X_: X_[:, 0] >= 10,
                                       lambda sets: (float(sets["c0"].sum()),), (43.0,))
    np.testing.assert_array_equal(reduced["c0"], original["c0"])
    assert minimized == {}
