"""The ceiling (recourse/ceiling.py): who any feasible change flips, on a hand-made problem.

Columns u (con on [0, 10], increase only), d (ord 0..3, decrease only), c (cat 0..2) and the
immutable z, which picks the rule the model applies:

    z = 0: favourable iff u >= 8 and d <= 1
    z = 1: c == 2
    z = 2: d == 3 and u >= 5
    z = 3: u <= 2
    z = 4: never

    person  u    d  c  z  group  reachable?
    p0      2    3  0  0  g0     yes: u up to 8+ and d down to 1 or less (two features at once)
    p1      9    2  1  0  g0     yes: d down to 1
    p2      0    3  0  1  g0     yes: c := 2
    p7      5    0  0  4  g0     no: nothing flips z = 4
    p3      1    3  1  2  g1     yes: u up to 5+
    p4      9    2  0  2  g1     no: d would have to go up to 3 (decrease only)
    p5      6    0  2  3  g1     no: u would have to go down to 2 (increase only)
    p6      7.5  1  0  0  g1     yes: u up to 8, a point of the grid 0, 1, ..., 10

Reachable shares: g0 3/4, g1 2/4 -> SR 0.625, PD 0.25. The values tried: u 11 grid points,
d 4 levels, c 3 categories, each or the person's own value: 12 x 5 x 4 - 1 = 239 combinations
(leaving out the one that changes nothing).
"""

from __future__ import annotations

import numpy as np
import pytest

from distributed_recourse.data.schema import FeatureSpec
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.ceiling import (
    ceiling_figures,
    feature_values,
    reachable_people,
)

FEATURES = (
    FeatureSpec("u", 0, "con", 0.0, 10.0, direction="increase"),
    FeatureSpec("d", 1, "ord", 0.0, 3.0, direction="decrease", integer=True),
    FeatureSpec("c", 2, "cat", 0.0, 2.0, integer=True),
)
#              u    d  c  z
X = np.array([[2.0, 3, 0, 0],   # p0
              [9.0, 2, 1, 0],   # p1
              [0.0, 3, 0, 1],   # p2
              [5.0, 0, 0, 4],   # p7
              [1.0, 3, 1, 2],   # p3
              [9.0, 2, 0, 2],   # p4
              [6.0, 0, 2, 3],   # p5
              [7.5, 1, 0, 0]])  # p6
GROUPS = np.array([0, 0, 0, 0, 1, 1, 1, 1])
REACHABLE = [True, True, True, False, True, False, False, True]


class RuleModel:
    """The model of the module docstring; counts the rows it is asked about and checks that
    the immutable z never changes."""

    def __init__(self, X_: np.ndarray = X) -> None:
        self.z = X_[:, 3]
        self.rows = 0

    def favourable(self, rows: np.ndarray) -> np.ndarray:
        self.rows += len(rows)
        u, d, c, z = rows.T
        assert set(z) <= set(self.z)
        return (((z == 0) & (u >= 8) & (d <= 1)) | ((z == 1) & (c == 2))
                | ((z == 2) & (d == 3) & (u >= 5)) | ((z == 3) & (u <= 2)))


def space(features=FEATURES) -> ActionSpace:
    return ActionSpace(features, 1)


def test_nobody_is_favoured_as_they_are():
    assert not RuleModel().favourable(X).any()


def test_the_ceiling_is_exact_by_enumeration():
    model = RuleModel()
    ceiling = reachable_people(space(), X, model.favourable)
    assert ceiling.reachable.tolist() == REACHABLE
    assert ceiling.exact is True
    assert ceiling.space_size == 12 * 5 * 4 - 1
    assert ceiling.combinations == ceiling.space_size  # three people are never flipped
    # people stop being asked about once flipped: far fewer rows than 8 x 239
    assert ceiling.model_rows == model.rows
    assert 3 * 239 <= ceiling.model_rows < 8 * 239
    figures = ceiling.figures(GROUPS, ["g0", "g1"])
    assert figures == {"SR": pytest.approx(0.625), "PD": pytest.approx(0.25), "exact": True,
                       "groups": {"g0": 0.75, "g1": 0.5}}


def test_directions_decide_who_is_reachable():
    # without the directions p4 (d up to 3) and p5 (u down to 2) can be flipped
    free = tuple(FeatureSpec(f.name, f.column, f.kind, f.low, f.high, integer=f.integer)
                 for f in FEATURES)
    ceiling = reachable_people(space(free), X, RuleModel().favourable)
    assert ceiling.reachable.tolist() == [True, True, True, False, True, True, True, True]


def test_a_grid_too_coarse_for_a_threshold_misses_people():
    # a model that wants u between 7.7 and 8.3 is met on the grid 0, 1, ..., 10 (at 8) and
    # missed on the grid 0, 5, 10
    def window(rows):
        return (rows[:, 0] >= 7.7) & (rows[:, 0] <= 8.3)

    people = np.array([[2.0, 3, 0, 0]])
    assert reachable_people(space(), people, window).reachable.tolist() == [True]
    assert reachable_people(space(), people, window, grid_points=3).reachable.tolist() == [False]


def test_a_bounded_search_is_a_lower_bound():
    exact = reachable_people(space(), X, RuleModel().favourable).reachable
    for limit in (1, 5, 27, 100):
        ceiling = reachable_people(space(), X, RuleModel().favourable, max_combinations=limit)
        assert 1 <= ceiling.combinations <= limit
        assert ceiling.exact is False
        assert not (ceiling.reachable & ~exact).any()  # never more than the truth
    # every reachable person here flips at an end of each feature: the 3^3 - 1 corners
    # (each feature at its low end, high end or kept) come first and find them all, yet the
    # result is still reported as a lower bound
    corners = reachable_people(space(), X, RuleModel().favourable, max_combinations=27)
    assert corners.reachable.tolist() == REACHABLE and corners.exact is False
    assert corners.figures(GROUPS, ["g0", "g1"])["exact"] is False


def test_a_row_budget_cuts_the_search_short():
    model = RuleModel()
    # combination 1 (c := 0) and 2 (c := 2, flips p2) ask all 8 people: 16 rows; the third
    # would ask 7 more, beyond 20
    ceiling = reachable_people(space(), X, model.favourable, max_rows=20)
    assert ceiling.model_rows == model.rows == 16
    assert ceiling.combinations == 2 and ceiling.exact is False
    assert ceiling.reachable.tolist() == [False, False, True, False, False, False, False, False]


def test_everyone_flipped_is_exact_however_short_the_search():
    people = X[[1, 2]]  # p1 (d := 0 is a corner) and p2 (c := 2)
    ceiling = reachable_people(space(), people, RuleModel(people).favourable, max_combinations=5)
    assert ceiling.reachable.tolist() == [True, True]
    assert ceiling.exact is True and ceiling.combinations < ceiling.space_size


def test_the_seed_orders_the_sample_not_the_answer():
    exact = [reachable_people(space(), X, RuleModel().favourable, seed=seed).reachable.tolist()
             for seed in (0, 1)]
    assert exact == [REACHABLE, REACHABLE]

    def sample(seed):
        ceiling = reachable_people(space(), X, RuleModel().favourable, max_combinations=3,
                                   seed=seed)
        return ceiling.reachable.tolist(), ceiling.combinations, ceiling.model_rows

    assert sample(4) == sample(4)
    assert len({str(sample(seed)) for seed in range(6)}) > 1


def test_feature_values():
    features = (
        FeatureSpec("real", 0, "con", 0.0, 10.0),
        FeatureSpec("whole", 1, "con", 0.0, 40.0, integer=True),
        FeatureSpec("few", 2, "con", 1.0, 4.0, integer=True),
        FeatureSpec("level", 3, "ord", 1.0, 100.0, integer=True),
        FeatureSpec("kind", 4, "cat", 0.0, 2.0, integer=True),
    )
    real, whole, few, level, kind = feature_values(space(features), grid_points=11, max_levels=64)
    np.testing.assert_allclose(real, np.arange(11.0))
    np.testing.assert_array_equal(whole, np.arange(0.0, 41.0, 4.0))  # thinned to 11 points
    np.testing.assert_array_equal(few, [1.0, 2.0, 3.0, 4.0])  # every whole number
    assert len(level) == 64 and level[0] == 1.0 and level[-1] == 100.0
    assert np.all(level == np.round(level)) and np.all(np.diff(level) > 0)
    np.testing.assert_array_equal(kind, [0.0, 1.0, 2.0])


# ---------------------------------------------------------------- SR and PD over groups
def test_ceiling_figures_over_groups_and_masks():
    reachable = np.array([1, 1, 0, 1, 0, 0, 1, 1, 1], dtype=bool)
    groups = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
    names = ["a", "b", "c"]
    # a 2/3, b 1/3, c 3/3: SR 2/3, PD 2/3
    figures = ceiling_figures(reachable, True, groups, names)
    assert figures["SR"] == pytest.approx(2 / 3) and figures["PD"] == pytest.approx(2 / 3)
    assert figures["groups"] == pytest.approx({"a": 2 / 3, "b": 1 / 3, "c": 1.0})
    # a scope without anybody of group c: c is left out (None), not counted as 0
    mask = np.array([1, 1, 1, 1, 1, 0, 0, 0, 0], dtype=bool)
    figures = ceiling_figures(reachable, False, groups, names, mask)
    assert figures["groups"] == {"a": pytest.approx(2 / 3), "b": 0.5, "c": None}
    assert figures["SR"] == pytest.approx((2 / 3 + 1 / 2) / 2)
    assert figures["PD"] == pytest.approx(2 / 3 - 1 / 2)
    assert figures["exact"] is False
    # one group only: no gap; nobody at all: SR 0
    alone = ceiling_figures(reachable, True, groups, names, groups == 1)
    assert alone["SR"] == pytest.approx(1 / 3) and alone["PD"] == 0.0
    nobody = ceiling_figures(reachable, True, groups, names, np.zeros(9, dtype=bool))
    assert nobody["SR"] == 0.0 and nobody["PD"] == 0.0
    assert nobody["groups"] == {"a": None, "b": None, "c": None}
