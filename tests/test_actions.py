"""ActionSpace: bounds, apply, Gower distance and sparsity, on hand-computed examples and as
properties over random spaces, people and actions."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from distributed_recourse.data.schema import FeatureSpec
from distributed_recourse.recourse.actions import ActionSpace

# X columns: 0 age (immutable), 1 hours (con, 1..99, whole numbers), 2 edu (ord 1..16,
# increase-only), 3 job (cat, codes 0..3), 4 score (con, 0..10, real).
HOURS = FeatureSpec("hours", 1, "con", 1.0, 99.0, integer=True)
EDU = FeatureSpec("edu", 2, "ord", 1.0, 16.0, direction="increase", integer=True)
JOB = FeatureSpec("job", 3, "cat", 0.0, 3.0, integer=True)
SCORE = FeatureSpec("score", 4, "con", 0.0, 10.0, integer=False)

X = np.array(
    [
        [30.0, 40.0, 9.0, 1.0, 2.5],
        [50.0, 95.0, 13.0, 0.0, 9.0],
        [22.0, 1.0, 16.0, 3.0, 0.0],
    ]
)


@pytest.fixture
def space() -> ActionSpace:
    return ActionSpace([HOURS, EDU, JOB, SCORE], n_actions=2)


# ------------------------------------------------------------------ the space of values
def test_no_change_initial_set_and_value_bounds(space):
    assert space.n_features == 4
    assert space.names == ["hours", "edu", "job", "score"]
    np.testing.assert_array_equal(space.sentinel, [0.0, 0.0, -1.0, -1.0])
    np.testing.assert_array_equal(space.no_change(), [0.0, 0.0, -1.0, 0.0])
    np.testing.assert_array_equal(space.initial_set(), [[0, 0, -1, 0], [0, 0, -1, 0]])
    low, high = space.value_bounds()
    np.testing.assert_array_equal(low, [-98.0, 0.0, -1.0, -10.0])
    np.testing.assert_array_equal(high, [98.0, 16.0, 3.0, 10.0])


def test_value_bounds_follow_directions():
    up = FeatureSpec("gain", 0, "con", 0.0, 50.0, direction="increase")
    down = FeatureSpec("debt", 1, "con", 10.0, 30.0, direction="decrease")
    level = FeatureSpec("arrests", 2, "ord", 0.0, 6.0, direction="decrease", integer=True)
    low, high = ActionSpace([up, down, level], 1).value_bounds()
    np.testing.assert_array_equal(low, [0.0, -20.0, -1.0])
    np.testing.assert_array_equal(high, [50.0, 0.0, 6.0])


def test_n_actions_must_be_positive():
    with pytest.raises(ValueError, match="n_actions"):
        ActionSpace([HOURS], 0)


def test_clip_bounds_and_rounds_whole_number_features(space):
    clipped = space.clip(np.array([[200.0, 20.0, 5.0, -20.0], [10.6, 0.4, -1.2, 0.55]]))
    np.testing.assert_array_equal(clipped, [[98.0, 16.0, 3.0, -10.0], [11.0, 0.0, -1.0, 0.55]])


# ------------------------------------------------------------------ apply, by hand
def test_apply_additive_target_clip_and_rounding(space):
    action = np.array([10.4, 12.0, 2.0, 1.25])
    out = space.apply(X, action)
    expected = np.array(
        [
            # hours 40+10.4=50.4 -> 50; edu max(9, 12); job -> 2; score 2.5+1.25
            [30.0, 50.0, 12.0, 2.0, 3.75],
            # hours 105.4 -> clipped 99; edu max(13, 12) = 13; score 10.25 -> clipped 10
            [50.0, 99.0, 13.0, 2.0, 10.0],
            # hours 11.4 -> 11; edu stays 16
            [22.0, 11.0, 16.0, 2.0, 1.25],
        ]
    )
    np.testing.assert_array_equal(out, expected)
    # X itself is untouched
    assert X[0, 1] == 40.0 and X[1, 4] == 9.0


def test_apply_sentinel_means_no_change(space):
    out = space.apply(X, space.no_change())
    np.testing.assert_array_equal(out, X)
    assert np.all(space.distance(X, out) == 0.0)
    np.testing.assert_array_equal(space.n_changed(X, out), [0, 0, 0])


def test_apply_ord_target_without_direction_can_lower():
    edu_any = FeatureSpec("edu", 0, "ord", 1.0, 16.0, integer=True)
    space = ActionSpace([edu_any], 1)
    out = space.apply(np.array([[9.0], [3.0], [16.0]]), np.array([5.0]))
    np.testing.assert_array_equal(out[:, 0], [5.0, 5.0, 5.0])


def test_apply_decrease_only_target_is_a_ceiling():
    arrests = FeatureSpec("arrests", 1, "ord", 0.0, 6.0, direction="decrease", integer=True)
    trend = FeatureSpec("trend", 2, "con", -1.5, 2.5, direction="decrease")
    space = ActionSpace([arrests, trend], 1)
    people = np.array([[7.0, 1.0, 2.0], [8.0, 4.0, -1.0], [9.0, 2.0, 0.5]])
    out = space.apply(people, np.array([2.0, -1.0]))
    # arrests: min(current, 2); trend: -1 and clipped at -1.5; column 0 immutable
    np.testing.assert_array_equal(out, [[7.0, 1.0, 1.0], [8.0, 2.0, -1.5], [9.0, 2.0, -0.5]])


def test_apply_cat_sets_code_and_immutables_untouched(space):
    action = np.array([0.0, 0.0, 0.0, 0.0])  # only job -> code 0 (edu sentinel 0)
    out = space.apply(X, action)
    np.testing.assert_array_equal(out[:, 3], [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(np.delete(out, 3, axis=1), np.delete(X, 3, axis=1))


def test_apply_leaves_the_columns_an_action_does_not_move_as_they_were(space):
    # hours 120.5 lies outside its bounds and is not whole: an action that moves only the
    # score must not clip or round it (the person would be charged, and perhaps flipped, for a
    # change nobody proposed)
    person = np.array([[30.0, 120.5, 9.0, 2.0, 3.0]])
    out = space.apply(person, np.array([0.0, 0.0, -1.0, 1.5]))
    np.testing.assert_array_equal(out, [[30.0, 120.5, 9.0, 2.0, 4.5]])
    assert space.n_changed(person, out)[0] == 1


def test_integer_feature_with_fractional_bounds_stays_within_bounds():
    # an integer column whose schema bounds are not whole numbers: clipping first and
    # rounding after can leave the bounds (round(0.5) == 0 < 0.5)
    count = FeatureSpec("count", 0, "con", 0.5, 10.5, integer=True)
    space = ActionSpace([count], 1)
    out = space.apply(np.array([[1.0], [10.0]]), np.array([-5.0]))
    assert out[0, 0] >= 0.5
    out = space.apply(np.array([[1.0], [10.0]]), np.array([5.0]))
    assert out[1, 0] <= 10.5


# ------------------------------------------------------------------ Gower and sparsity
def test_gower_distance_and_n_changed_by_hand(space):
    action = np.array([10.4, 12.0, 2.0, 1.25])
    out = space.apply(X, action)
    expected = [
        # hours 10/98, edu 3/15, job changed 1, score 1.25/10
        (10 / 98 + 3 / 15 + 1 + 0.125) / 4,
        # hours 4/98 (95 -> 99), edu 0, job 0 -> 2, score 1/10
        (4 / 98 + 0 + 1 + 0.1) / 4,
        # hours 10/98, edu 0, job 3 -> 2, score 0.125
        (10 / 98 + 0 + 1 + 0.125) / 4,
    ]
    np.testing.assert_allclose(space.distance(X, out), expected)
    np.testing.assert_allclose(space.distance(X, out), [0.35676020, 0.28520408, 0.30676020])
    np.testing.assert_array_equal(space.n_changed(X, out), [4, 3, 3])


def test_gower_cat_counts_one_however_far_the_code_moves():
    job = FeatureSpec("job", 0, "cat", 0.0, 9.0, integer=True)
    space = ActionSpace([job], 1)
    before = np.array([[0.0], [8.0], [1.0]])
    after = space.apply(before, np.array([1.0]))
    np.testing.assert_array_equal(space.distance(before, after), [1.0, 1.0, 0.0])


def test_gower_ignores_immutable_columns(space):
    moved = X.copy()
    moved[:, 0] += 100.0  # age is not actionable
    np.testing.assert_array_equal(space.distance(X, moved), [0.0, 0.0, 0.0])
    np.testing.assert_array_equal(space.n_changed(X, moved), [0, 0, 0])


# ------------------------------------------------------------------ reading actions
def test_describe_and_from_description(space):
    action = np.array([10.0, 12.0, -1.0, 0.0])
    assert space.describe(action) == {"hours": 10.0, "edu": 12.0}
    assert space.describe(space.no_change()) == {}
    np.testing.assert_array_equal(space.from_description({"edu": 12.0, "hours": 10.0}), action)
    with pytest.raises(ValueError, match="'salary'"):
        space.from_description({"salary": 3.0})


def test_distinct_marks_first_occurrences(space):
    a, b, c = [1.0, 2.0, -1.0, 0.0], [0.0, 5.0, 1.0, 0.5], [3.0, 0.0, -1.0, 0.0]
    mask = space.distinct(np.array([a, b, a, c, b]))
    np.testing.assert_array_equal(mask, [True, True, False, True, False])


def test_canonical_writes_the_entries_that_change_nobody_as_no_change(space):
    # edu is increase-only from 1: "edu at least 1" changes nobody, as the sentinel 0 does;
    # "at least 2" is a change, and so are every con change and every job target
    actions = np.array([[5.0, 1.0, -1.0, 0.0], [0.0, 2.0, 0.0, -0.5], [0.0, 1.0, -1.0, 0.0]])
    np.testing.assert_array_equal(space.canonical(actions),
                                  [[5.0, 0.0, -1.0, 0.0], [0.0, 2.0, 0.0, -0.5], space.no_change()])
    np.testing.assert_array_equal(space.canonical(actions[0]), [5.0, 0.0, -1.0, 0.0])
    # the same for everyone, so one action: not two choices
    same = space.apply(X, actions[0]), space.apply(X, [5.0, 0.0, -1.0, 0.0])
    np.testing.assert_array_equal(*same)
    np.testing.assert_array_equal(space.distinct(np.array([actions[0], [5.0, 0.0, -1.0, 0.0]])),
                                  [True, False])


# ------------------------------------------------------------------ proposals from points of [-1, 1]
# con x on [0, 10] (entries in [-10, 10]), ord k on 1..4 (sentinel 0), cat j on 0..2 (sentinel -1)
PROPOSED = [FeatureSpec("x", 0, "con", 0.0, 10.0), FeatureSpec("k", 1, "ord", 1.0, 4.0, integer=True),
            FeatureSpec("j", 2, "cat", 0.0, 2.0, integer=True)]


def test_from_unit_by_hand():
    space = ActionSpace(PROPOSED, 1)
    # gates: x and j change (above 1 - 2 x 0.6 = -0.2), k does not; values: x at
    # (0.13 + 1) / 2 of [-10, 10] = +1.3 on the grid of 0.1 steps, j at the top code 2
    u = np.array([[0.5, -0.5, 1.0, 0.13, 0.9, 1.0]])
    np.testing.assert_allclose(space.from_unit(u), [[1.3, 0.0, 2.0]])
    # every gate open; k at the bottom level, x at the grid point nearest -10 + 0.5 x 20 = 0
    np.testing.assert_allclose(space.from_unit(np.array([1, 1, 1, 0.004, -1, -1.0])),
                               [[0.0, 1.0, 0.0]])
    # every gate shut: no change
    np.testing.assert_array_equal(space.from_unit(-np.ones((2, 6))), [space.no_change()] * 2)
    # another share and resolution: x at (0.13 + 1) / 2 -> 1.3 on a grid of 2.5 steps -> 2.5
    np.testing.assert_allclose(space.from_unit(u, keep_share=0.3, resolution=4), [[2.5, 0, 2.0]])


def test_from_unit_of_uniform_points_keeps_each_entry_with_its_share():
    space = ActionSpace(PROPOSED, 1)
    u = np.random.default_rng(0).uniform(-1, 1, (20_000, 6))
    actions = space.from_unit(u, keep_share=0.6)
    changed = actions != space.no_change()
    # x is changed unless its value lands on 0 (its grid point 0 is "no change")
    assert changed.mean(axis=0) == pytest.approx([0.6, 0.6, 0.6], abs=0.02)
    low, high = space.value_bounds()
    assert (actions >= low).all() and (actions <= high).all()
    assert set(np.unique(actions[:, 1])) == {0.0, 1.0, 2.0, 3.0, 4.0}
    assert set(np.unique(actions[:, 2])) == {-1.0, 0.0, 1.0, 2.0}
    assert actions[changed[:, 0], 0].min() < -9.5 and actions[changed[:, 0], 0].max() > 9.5


def test_stepped_moves_one_entry_by_a_share_of_its_range():
    space = ActionSpace(PROPOSED, 1)
    base = np.array([[1.25, 0.0, -1.0]] * 4)
    # x by +1/8 of [-10, 10]; k from its sentinel 0 by 0.1 x 4 -> at least one level; j by
    # -1/2 x 3 -> 1.5 rounds to 2 levels, clipped at its sentinel -1; x by -1 -> clipped at -10
    moved = space.stepped(base, np.array([0, 1, 2, 0]), np.array([0.125, 0.1, -0.5, -1.0]))
    np.testing.assert_allclose(moved, [[3.75, 0.0, -1.0], [1.25, 1.0, -1.0], [1.25, 0.0, -1.0],
                                       [-10.0, 0.0, -1.0]])
    # a size of 0 moves nothing, even a whole-number entry
    np.testing.assert_allclose(space.stepped(base[:1], np.array([1]), np.array([0.0])), base[:1])


def test_to_unit_places_actions_on_their_ranges():
    space = ActionSpace(PROPOSED, 2)
    actions = np.array([space.no_change(), [10.0, 4.0, 2.0], [-5.0, 2.0, 0.5]])
    np.testing.assert_allclose(space.to_unit(actions),
                               [[0.0, -1.0, -1.0], [1.0, 1.0, 1.0], [-0.5, 0.0, 0.0]])


# ------------------------------------------------------------------ properties
N_IMMUTABLE = 2


@st.composite
def spaces_people_actions(draw):
    """A random space (1..4 actionable features among immutable ones), people within bounds
    (whole numbers where the feature is) and one action within value_bounds."""
    m = draw(st.integers(1, 4))
    n_columns = m + N_IMMUTABLE
    columns = draw(st.permutations(range(n_columns)))[:m]
    specs = []
    for i, column in enumerate(columns):
        kind = draw(st.sampled_from(["con", "ord", "cat"]))
        low = float(draw(st.integers(-5, 5)))
        high = low + draw(st.integers(1, 20))
        directions = ["any"] if kind == "cat" else ["any", "increase", "decrease"]
        direction = draw(st.sampled_from(directions))
        integer = kind != "con" or draw(st.booleans())
        specs.append(FeatureSpec(f"f{i}", column, kind, low, high, direction, integer))
    space = ActionSpace(specs, 1)
    n = draw(st.integers(1, 6))
    X = np.array(
        draw(
            st.lists(
                st.lists(st.floats(-1e3, 1e3), min_size=n_columns, max_size=n_columns),
                min_size=n,
                max_size=n,
            )
        )
    )
    for spec in specs:
        values = draw(
            st.lists(
                st.integers(int(spec.low), int(spec.high)) if spec.integer
                else st.floats(spec.low, spec.high),
                min_size=n,
                max_size=n,
            )
        )
        X[:, spec.column] = values
    low, high = space.value_bounds()
    action = np.array([draw(st.floats(lo, hi)) for lo, hi in zip(low, high, strict=True)])
    return space, X, action


@settings(max_examples=50, deadline=None, database=None)
@given(spaces_people_actions())
def test_apply_properties(case):
    space, X, action = case
    out = space.apply(X, action)
    moved, before = out[:, space.columns], X[:, space.columns]
    # within bounds
    assert np.all(moved >= space.low) and np.all(moved <= space.high)
    # whole numbers stay whole
    assert np.all(moved[:, space.integer] == np.round(moved[:, space.integer]))
    # non-actionable columns unchanged
    others = np.setdiff1d(np.arange(X.shape[1]), space.columns)
    np.testing.assert_array_equal(out[:, others], X[:, others])
    # directions
    assert np.all(moved[:, space.increase_only] >= before[:, space.increase_only])
    assert np.all(moved[:, space.decrease_only] <= before[:, space.decrease_only])
    # Gower in [0, 1]; n_changed in [0, m]
    gower = space.distance(X, out)
    assert np.all((gower >= 0.0) & (gower <= 1.0 + 1e-12))
    # the distance computed from the moved columns alone is the same
    np.testing.assert_allclose(space.action_distance(X, action), gower, rtol=0, atol=1e-12)
    changed = space.n_changed(X, out)
    assert np.all((changed >= 0) & (changed <= space.n_features))
    # the clipped action (what the environment stores) acts the same way on the bounds
    out_clipped = space.apply(X, space.clip(action[None, :])[0])
    assert np.all(out_clipped[:, space.columns] >= space.low)
    assert np.all(out_clipped[:, space.columns] <= space.high)


@settings(max_examples=50, deadline=None, database=None)
@given(spaces_people_actions())
def test_apply_is_idempotent_for_target_actions(case):
    space, X, action = case
    action = np.where(space.is_con, 0.0, action)  # only ord/cat targets
    once = space.apply(X, action)
    twice = space.apply(once, action)
    np.testing.assert_array_equal(twice, once)


def test_describe_leaves_out_one_way_targets_that_change_nobody():
    features = (FeatureSpec("edu", 0, "ord", 1.0, 16.0, direction="increase", integer=True),
                FeatureSpec("debt", 1, "ord", 0.0, 5.0, direction="decrease", integer=True),
                FeatureSpec("gain", 2, "con", 0.0, 100.0))
    space = ActionSpace(features, 1)
    assert space.describe(np.array([1.0, 5.0, 0.0])) == {}
    assert space.describe(np.array([2.0, 4.0, -3.0])) == {"edu": 2.0, "debt": 4.0, "gain": -3.0}
