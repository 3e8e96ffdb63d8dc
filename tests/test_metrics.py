"""Metrics of DESIGN.md section 3 on small populations whose expected values are worked out by
hand in the comments and written as literals."""

from __future__ import annotations

import numpy as np
import pytest

from distributed_recourse.data.schema import FeatureSpec
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.metrics import (
    ECR,
    MACRO,
    MICRO,
    GroupTally,
    Outcome,
    action_effectiveness,
    active_actions,
    best_within_budget,
    cheapest_effective,
    cost_of_effectiveness,
    cost_of_fairness,
    effectiveness_within_budget,
    evaluate_set,
    group_action_cost,
    mean_present,
    mean_recourse_cost,
    metrics_of,
    person_outcome,
    set_metrics,
    share_per_action,
    spread,
    tally,
)

# ---------------------------------------------------------------- population A: 8 people, 2 groups
# group 0: people 0..4 (5), group 1: people 5..7 (3); N = 5 actions; a3 is a copy of a0.
GROUPS_A = np.array([0, 0, 0, 0, 0, 1, 1, 1])
FLIPPED_A = np.array(
    [
        [1, 1, 1, 0, 0, 1, 0, 0],  # a0: g0 3/5 = 0.6, g1 1/3
        [0, 0, 1, 1, 0, 1, 1, 0],  # a1: g0 2/5 = 0.4, g1 2/3
        [0, 0, 0, 0, 1, 0, 0, 0],  # a2: g0 1/5 = 0.2, g1 0
        [1, 1, 1, 0, 0, 1, 0, 0],  # a3 (duplicate of a0): as a0
        [0, 0, 0, 0, 0, 0, 0, 0],  # a4: nobody
    ],
    dtype=bool,
)
DISTINCT_A = np.array([True, True, True, False, True])
MEAN_GOWER_A = np.array([0.10, 0.30, 0.05, 0.10, 0.20])


def test_action_effectiveness_counts_and_shares():
    counts = action_effectiveness(FLIPPED_A, GROUPS_A, 2)
    np.testing.assert_array_equal(counts, [[3, 1], [2, 2], [1, 0], [3, 1], [0, 0]])
    share = share_per_action(counts, np.array([5, 3]))
    np.testing.assert_allclose(
        share, [[0.6, 1 / 3], [0.4, 2 / 3], [0.2, 0.0], [0.6, 1 / 3], [0.0, 0.0]]
    )


def test_tally_micro_macro_and_ecr_counts():
    t = tally(FLIPPED_A, GROUPS_A, 2, DISTINCT_A, phi=0.6)
    np.testing.assert_array_equal(t.people, [5, 3])
    # micro: g0 people 0,1,2 (a0), 3 (a1), 4 (a2) -> 5; g1 people 5, 6 -> 2
    np.testing.assert_array_equal(t.flipped_any, [5, 2])
    # macro: best single action per group: g0 a0 (3), g1 a1 (2)
    np.testing.assert_array_equal(t.flipped_best, [3, 2])
    # ECR, phi 0.6 (>=): g0 a0 (exactly 0.6; a3 is a duplicate), g1 a1 (2/3)
    np.testing.assert_array_equal(t.effective, [1, 1])
    assert t.n_actions == 5
    np.testing.assert_allclose(t.effectiveness(MICRO), [1.0, 2 / 3])
    np.testing.assert_allclose(t.effectiveness(MACRO), [0.6, 2 / 3])
    np.testing.assert_allclose(t.choice(), [0.2, 0.2])


def test_ecr_threshold_is_inclusive_and_duplicates_count_once():
    # phi just above 0.6 loses g0's only effective action
    above = tally(FLIPPED_A, GROUPS_A, 2, DISTINCT_A, phi=0.61)
    np.testing.assert_array_equal(above.effective, [0, 1])
    # without duplicate removal a3 would count a second time for g0
    all_distinct = tally(FLIPPED_A, GROUPS_A, 2, np.ones(5, dtype=bool), phi=0.6)
    np.testing.assert_array_equal(all_distinct.effective, [2, 1])
    # FACTS' phi 0.7: no action reaches it (best shares 0.6 and 2/3)
    facts = tally(FLIPPED_A, GROUPS_A, 2, DISTINCT_A, phi=0.7)
    np.testing.assert_array_equal(facts.effective, [0, 0])


def test_set_metrics_micro():
    t = tally(FLIPPED_A, GROUPS_A, 2, DISTINCT_A, phi=0.6)
    share = share_per_action(action_effectiveness(FLIPPED_A, GROUPS_A, 2), t.people)
    active = active_actions(MICRO, action_effectiveness(FLIPPED_A, GROUPS_A, 2), share, DISTINCT_A, 0.6, 0.3)
    np.testing.assert_array_equal(active, [True, True, True, True, False])
    m = set_metrics(t, MICRO, active, MEAN_GOWER_A)
    np.testing.assert_allclose(m.effectiveness, [1.0, 2 / 3])
    assert m.sr == pytest.approx(5 / 6)  # (1 + 2/3) / 2
    assert m.pd == pytest.approx(1 / 3)
    np.testing.assert_allclose(m.choice, [0.2, 0.2])
    np.testing.assert_array_equal(m.effective, [1, 1])
    assert m.ecr_gap == 0.0
    assert (m.n_active, m.n_actions) == (4, 5)
    assert m.gower_active == pytest.approx(0.1375)  # (0.1 + 0.3 + 0.05 + 0.1) / 4
    assert m.gower_nonactive == pytest.approx(0.2)


def test_set_metrics_macro_with_threshold():
    t = tally(FLIPPED_A, GROUPS_A, 2, DISTINCT_A, phi=0.6)
    share = share_per_action(action_effectiveness(FLIPPED_A, GROUPS_A, 2), t.people)
    active = active_actions(MACRO, action_effectiveness(FLIPPED_A, GROUPS_A, 2), share, DISTINCT_A, 0.6, 0.3)
    # a2 flips someone (micro-active) but only 0.2 of g0 < 0.3
    np.testing.assert_array_equal(active, [True, True, False, True, False])
    m = set_metrics(t, MACRO, active, MEAN_GOWER_A)
    np.testing.assert_allclose(m.effectiveness, [0.6, 2 / 3])
    assert m.sr == pytest.approx(19 / 30)  # (0.6 + 2/3) / 2
    assert m.pd == pytest.approx(1 / 15)  # 2/3 - 0.6
    assert m.n_active == 3
    assert m.gower_active == pytest.approx(0.5 / 3)  # (0.1 + 0.3 + 0.1) / 3
    assert m.gower_nonactive == pytest.approx(0.125)  # (0.05 + 0.2) / 2
    # a threshold of exactly 0.2 makes a2 active too (>=)
    np.testing.assert_array_equal(
        active_actions(MACRO, action_effectiveness(FLIPPED_A, GROUPS_A, 2), share, DISTINCT_A, 0.6, 0.2),
        [True, True, True, True, False],
    )


def test_active_actions_ecr_rule():
    people = np.array([5, 3])
    share = share_per_action(action_effectiveness(FLIPPED_A, GROUPS_A, 2), people)
    ecr = active_actions(ECR, action_effectiveness(FLIPPED_A, GROUPS_A, 2), share, DISTINCT_A, 0.6, 0.3)
    # a0 (0.6 in g0), a1 (2/3 in g1); a3 is effective but a duplicate
    np.testing.assert_array_equal(ecr, [True, True, False, False, False])
    np.testing.assert_array_equal(
        active_actions(ECR, action_effectiveness(FLIPPED_A, GROUPS_A, 2), share, DISTINCT_A, 0.61, 0.3),
        [False, True, False, False, False],
    )
    t = tally(FLIPPED_A, GROUPS_A, 2, DISTINCT_A, phi=0.6)
    m = set_metrics(t, MICRO, ecr, MEAN_GOWER_A)
    assert m.gower_active == pytest.approx(0.2)  # (0.1 + 0.3) / 2
    assert m.gower_nonactive == pytest.approx(0.35 / 3)  # (0.05 + 0.1 + 0.2) / 3
    with pytest.raises(ValueError, match="'best'"):
        active_actions("best", FLIPPED_A, share, DISTINCT_A, 0.6, 0.3)


def test_gower_averages_when_all_or_none_active():
    t = tally(FLIPPED_A, GROUPS_A, 2, DISTINCT_A, phi=0.6)
    none = set_metrics(t, MICRO, np.zeros(5, dtype=bool), MEAN_GOWER_A)
    assert (none.n_active, none.gower_active) == (0, 0.0)
    assert none.gower_nonactive == pytest.approx(0.15)  # 0.75 / 5
    every = set_metrics(t, MICRO, np.ones(5, dtype=bool), MEAN_GOWER_A)
    assert (every.gower_nonactive, every.gower_active) == (0.0, pytest.approx(0.15))


def test_ecr_gap_when_groups_differ():
    t = tally(FLIPPED_A, GROUPS_A, 2, DISTINCT_A, phi=0.61)
    m = set_metrics(t, MICRO, np.ones(5, dtype=bool), MEAN_GOWER_A)
    np.testing.assert_allclose(m.choice, [0.0, 0.2])
    assert m.ecr_gap == pytest.approx(0.2)


# ---------------------------------------------------------------- three groups
GROUPS_3 = np.array([0, 0, 0, 1, 1, 1, 2, 2, 2])
FLIPPED_3 = np.array(
    [
        [1, 1, 1, 1, 0, 0, 0, 0, 0],  # a0: [3, 1, 0]
        [0, 0, 0, 0, 1, 1, 1, 1, 0],  # a1: [0, 2, 2]
    ],
    dtype=bool,
)


def test_three_groups_micro_macro_sr_pd():
    t = tally(FLIPPED_3, GROUPS_3, 3, np.array([True, True]), phi=0.6)
    np.testing.assert_array_equal(t.flipped_any, [3, 3, 2])
    np.testing.assert_array_equal(t.flipped_best, [3, 2, 2])
    active = np.array([True, True])
    micro = set_metrics(t, MICRO, active, np.array([0.1, 0.2]))
    np.testing.assert_allclose(micro.effectiveness, [1.0, 1.0, 2 / 3])
    assert micro.sr == pytest.approx(8 / 9)
    assert micro.pd == pytest.approx(1 / 3)  # max - min over three groups
    macro = set_metrics(t, MACRO, active, np.array([0.1, 0.2]))
    np.testing.assert_allclose(macro.effectiveness, [1.0, 2 / 3, 2 / 3])
    assert macro.sr == pytest.approx(7 / 9)
    assert macro.pd == pytest.approx(1 / 3)


def test_three_groups_ecr():
    t = tally(FLIPPED_3, GROUPS_3, 3, np.array([True, True]), phi=0.6)
    np.testing.assert_array_equal(t.effective, [1, 1, 1])
    m = set_metrics(t, MICRO, np.array([True, True]), np.array([0.1, 0.2]))
    np.testing.assert_allclose(m.choice, [0.5, 0.5, 0.5])
    assert m.ecr_gap == 0.0
    t7 = tally(FLIPPED_3, GROUPS_3, 3, np.array([True, True]), phi=0.7)
    np.testing.assert_array_equal(t7.effective, [1, 0, 0])
    m7 = set_metrics(t7, MICRO, np.array([True, True]), np.array([0.1, 0.2]))
    assert m7.ecr_gap == pytest.approx(0.5)


def test_absent_group_is_left_out_of_sr_pd_and_ecr_gap():
    groups = np.array([0, 0, 1, 1])  # group 2 exists in the population but not here
    flipped = np.array([[1, 1, 0, 0], [1, 0, 1, 1]], dtype=bool)
    t = tally(flipped, groups, 3, np.array([True, True]), phi=0.6)
    np.testing.assert_array_equal(t.people, [2, 2, 0])
    np.testing.assert_array_equal(t.present, [True, True, False])
    m = set_metrics(t, MICRO, np.array([True, True]), np.array([0.1, 0.1]))
    assert np.isnan(m.effectiveness[2])
    np.testing.assert_allclose(m.effectiveness[:2], [1.0, 1.0])
    assert m.sr == 1.0  # not 2/3
    assert m.pd == 0.0  # not 1
    np.testing.assert_allclose(m.choice, [0.5, 0.5, 0.0])
    assert m.ecr_gap == 0.0  # not 0.5


# ---------------------------------------------------------------- pooling tallies
def test_pooling_scopes_with_their_own_sets_adds_counts():
    # scope A: population A under its set; scope B: 4 people under a 2-action set
    a = tally(FLIPPED_A, GROUPS_A, 2, DISTINCT_A, phi=0.6)
    flipped_b = np.array([[1, 1, 1, 0], [0, 0, 0, 0]], dtype=bool)
    b = tally(flipped_b, np.array([0, 1, 1, 1]), 2, np.array([True, True]), phi=0.6)
    np.testing.assert_array_equal(b.effective, [1, 1])  # g0 1/1, g1 2/3
    pooled = a + b
    np.testing.assert_array_equal(pooled.people, [6, 6])
    np.testing.assert_array_equal(pooled.flipped_any, [6, 4])
    np.testing.assert_array_equal(pooled.effective, [2, 2])
    assert pooled.n_actions == 7
    # macro pools each scope's own best action: g0 3 (A's a0) + 1 (B's a0), g1 2 + 2
    np.testing.assert_array_equal(b.flipped_best, [1, 2])
    np.testing.assert_array_equal(pooled.flipped_best, [4, 4])
    np.testing.assert_allclose(pooled.effectiveness(MACRO), [4 / 6, 4 / 6])
    np.testing.assert_allclose(pooled.effectiveness(MICRO), [1.0, 2 / 3])
    np.testing.assert_allclose(pooled.choice(), [2 / 7, 2 / 7])
    # micro: the pooled tally is the tally of the concatenated population
    whole_groups = np.concatenate([GROUPS_A, [0, 1, 1, 1]])
    whole_flipped_any = np.concatenate([FLIPPED_A.any(axis=0), flipped_b.any(axis=0)])
    np.testing.assert_array_equal(
        np.bincount(whole_groups, weights=whole_flipped_any).astype(int), pooled.flipped_any
    )


def test_shards_of_one_population_pool_to_the_whole_under_micro():
    whole = tally(FLIPPED_A, GROUPS_A, 2, DISTINCT_A, phi=0.6)
    first, second = [0, 1, 2, 5], [3, 4, 6, 7]
    pooled = tally(FLIPPED_A[:, first], GROUPS_A[first], 2, DISTINCT_A, phi=0.6) + tally(
        FLIPPED_A[:, second], GROUPS_A[second], 2, DISTINCT_A, phi=0.6
    )
    np.testing.assert_array_equal(pooled.people, whole.people)
    np.testing.assert_array_equal(pooled.flipped_any, whole.flipped_any)
    np.testing.assert_allclose(pooled.effectiveness(MICRO), [1.0, 2 / 3])


def test_tally_dict_round_trip():
    t = tally(FLIPPED_A, GROUPS_A, 2, DISTINCT_A, phi=0.6)
    d = t.to_dict()
    assert d == {
        "people": [5, 3],
        "flipped_any": [5, 2],
        "flipped_best": [3, 2],
        "effective": [1, 1],
        "n_actions": 5,
    }
    back = GroupTally.from_dict(d)
    for key in ("people", "flipped_any", "flipped_best", "effective"):
        np.testing.assert_array_equal(getattr(back, key), getattr(t, key))
    assert back.n_actions == 5


# ---------------------------------------------------------------- batches of sets
def test_spread_and_mean_present_of_one_set_and_of_a_batch():
    nan = np.nan
    assert spread(np.array([0.2, 0.9, nan, 0.5])) == pytest.approx(0.7)
    assert mean_present(np.array([0.2, 0.9, nan, 0.5])) == pytest.approx(1.6 / 3)
    assert isinstance(spread(np.array([0.2, 0.9])), float)
    assert isinstance(mean_present(np.array([0.2, 0.9])), float)
    batch = np.array([[0.2, 0.9, nan, 0.5],  # three present groups
                      [0.4, nan, nan, nan],  # one: no gap
                      [nan, nan, nan, nan],  # none: no gap, mean 0
                      [1.0, 0.0, 0.5, 0.5]])
    gaps, means = spread(batch), mean_present(batch)
    assert gaps.shape == means.shape == (4,)
    np.testing.assert_allclose(gaps, [0.7, 0.0, 0.0, 1.0])
    np.testing.assert_allclose(means, [1.6 / 3, 0.4, 0.0, 0.5])
    # each row as it is on its own
    np.testing.assert_allclose(gaps, [spread(row) for row in batch])
    np.testing.assert_allclose(means, [mean_present(row) for row in batch])


def test_metrics_of_a_batch_of_tallies_is_each_tallys_metrics():
    # three sets on population A's people (5, 3), one row each: their flipped counts and
    # effective actions, 5 actions each, with their activity and Gower summed already
    people = np.array([5, 3])
    flipped_any = np.array([[5, 2], [3, 3], [0, 0]])
    flipped_best = np.array([[3, 2], [3, 1], [0, 0]])
    effective = np.array([[1, 1], [1, 0], [0, 0]])
    n_active, g_a, g_na = np.array([4, 2, 0]), np.array([0.1375, 0.2, 0.0]), np.array([0.2, 0.1, 0.15])
    batch = GroupTally(people, flipped_any, flipped_best, effective, 5)
    for mode in (MICRO, MACRO):
        m = metrics_of(batch, mode, n_active, 5, g_a, g_na)
        assert m.effectiveness.shape == m.choice.shape == (3, 2)
        assert np.shape(m.sr) == np.shape(m.pd) == np.shape(m.ecr_gap) == (3,)
        for i in range(3):
            one = metrics_of(GroupTally(people, flipped_any[i], flipped_best[i], effective[i], 5),
                             mode, int(n_active[i]), 5, float(g_a[i]), float(g_na[i]))
            np.testing.assert_allclose(m.effectiveness[i], one.effectiveness)
            np.testing.assert_allclose(m.choice[i], one.choice)
            assert (m.sr[i], m.pd[i], m.ecr_gap[i]) == pytest.approx((one.sr, one.pd, one.ecr_gap))
    m = metrics_of(batch, MICRO, n_active, 5, g_a, g_na)
    # row 0 is test_set_metrics_micro's set: SR 5/6, PD 1/3, a = (0.2, 0.2)
    assert (m.sr[0], m.pd[0], m.ecr_gap[0]) == pytest.approx((5 / 6, 1 / 3, 0.0))
    # row 1: micro (3/5, 1), a = (0.2, 0): gap 0.2; row 2: nobody
    assert (m.sr[1], m.pd[1], m.ecr_gap[1]) == pytest.approx((0.8, 0.4, 0.2))
    assert (m.sr[2], m.pd[2], m.ecr_gap[2]) == (0.0, 0.0, 0.0)
    # a batch pooled with another scope's single tally (hybrid fairness) broadcasts
    other = GroupTally(np.array([1, 1]), np.array([1, 0]), np.array([1, 0]), np.array([1, 0]), 2)
    pooled = metrics_of(batch + other, MICRO, n_active, 5, g_a, g_na)
    np.testing.assert_allclose(pooled.effectiveness[0], [6 / 6, 2 / 4])
    np.testing.assert_allclose(pooled.choice[0], [2 / 7, 1 / 7])


def test_an_absent_group_is_left_out_of_every_row_of_a_batch():
    people = np.array([2, 0, 2])
    batch = GroupTally(people, np.array([[2, 0, 1], [0, 0, 2]]), np.array([[2, 0, 1], [0, 0, 2]]),
                       np.array([[1, 0, 0], [0, 0, 1]]), 2)
    m = metrics_of(batch, MICRO, np.array([1, 1]), 2, np.array([0.1, 0.1]), np.array([0.0, 0.0]))
    assert np.isnan(m.effectiveness[:, 1]).all()
    np.testing.assert_allclose(m.sr, [0.75, 0.5])
    np.testing.assert_allclose(m.pd, [0.5, 1.0])
    np.testing.assert_allclose(m.ecr_gap, [0.5, 0.5])


# ---------------------------------------------------------------- per person
FLIPPED_P = np.array(
    [
        [1, 0, 1, 0],
        [1, 1, 0, 0],
        [0, 1, 1, 0],
    ],
    dtype=bool,
)
GOWER_P = np.array(
    [
        [0.30, 0.10, 0.20, 0.05],
        [0.10, 0.40, 0.50, 0.01],
        [0.20, 0.25, 0.20, 0.02],
    ]
)
CHANGED_P = np.array(
    [
        [2, 1, 1, 1],
        [1, 3, 2, 1],
        [3, 2, 2, 2],
    ]
)


def test_person_outcome():
    p = person_outcome(Outcome(FLIPPED_P, GOWER_P, CHANGED_P))
    np.testing.assert_array_equal(p.valid, [True, True, True, False])
    # person 0: a0 (0.3) or a1 (0.1) -> a1; person 1: a1 (0.4) or a2 (0.25) -> a2 (a0 is
    # closer but does not flip); person 2: a0 and a2 tie at 0.2 -> the first; person 3: none
    np.testing.assert_array_equal(p.chosen, [1, 2, 0, -1])
    np.testing.assert_array_equal(p.cost, [0.10, 0.25, 0.20, np.inf])
    np.testing.assert_array_equal(p.sparsity, [1, 2, 1, 0])


COST = np.array([0.10, 0.25, 0.40, 0.05, 0.20, np.inf, 0.30])
COST_GROUPS = np.array([0, 0, 0, 0, 1, 1, 1])


def test_effectiveness_within_budget():
    within, gap = effectiveness_within_budget(COST, COST_GROUPS, 2, budget=0.2)
    # g0: 0.10, 0.05 of 4 -> 0.5; g1: 0.20 (<=, inclusive) of 3 -> 1/3
    np.testing.assert_allclose(within, [0.5, 1 / 3])
    assert gap == pytest.approx(1 / 6)
    within, gap = effectiveness_within_budget(COST, COST_GROUPS, 2, budget=0.3)
    np.testing.assert_allclose(within, [0.75, 2 / 3])
    assert gap == pytest.approx(1 / 12)
    # a group with nobody is NaN and left out of the gap
    within, gap = effectiveness_within_budget(COST, COST_GROUPS, 3, budget=1.0)
    np.testing.assert_allclose(within[:2], [1.0, 2 / 3])
    assert np.isnan(within[2])
    assert gap == pytest.approx(1 / 3)


def test_cost_of_effectiveness():
    # g0 sorted [0.05, 0.10, 0.25, 0.40]; g1 sorted [0.20, 0.30, inf]
    needed, gap = cost_of_effectiveness(COST, COST_GROUPS, 2, level=0.5)
    np.testing.assert_allclose(needed, [0.10, 0.30])  # 2nd of 4; ceil(1.5) = 2nd of 3
    assert gap == pytest.approx(0.20)
    needed, gap = cost_of_effectiveness(COST, COST_GROUPS, 2, level=0.25)
    np.testing.assert_allclose(needed, [0.05, 0.20])
    assert gap == pytest.approx(0.15)
    needed, gap = cost_of_effectiveness(COST, COST_GROUPS, 2, level=2 / 3)
    np.testing.assert_allclose(needed, [0.25, 0.30])  # ceil(8/3) = 3rd of 4; 2nd of 3
    assert gap == pytest.approx(0.05)


def test_cost_of_effectiveness_unattainable_level_is_infinite():
    needed, gap = cost_of_effectiveness(COST, COST_GROUPS, 2, level=0.75)
    assert needed[0] == pytest.approx(0.25)
    assert needed[1] == np.inf  # only 2 of 3 in g1 ever have recourse
    assert gap == np.inf
    needed, gap = cost_of_effectiveness(COST, COST_GROUPS, 2, level=1.0)
    np.testing.assert_array_equal(needed, [0.40, np.inf])
    assert gap == np.inf


def test_cost_of_effectiveness_compares_shares_not_a_rounded_product():
    # 0.55 * 100 is 55.000000000000007 in floating point; 55 of 100 people reach 0.55.
    cost = np.arange(100, dtype=np.float64)
    needed, _ = cost_of_effectiveness(cost, np.zeros(100, dtype=np.int64), 1, level=0.55)
    assert needed[0] == 54.0


def test_person_outcome_by_another_cost():
    # a0 flips both people, a1 only person 0. By Gower person 0 takes a0 (0.1 < 0.2); by a
    # cost that makes a0 dear (0.9) they take a1; person 1 keeps a0 at its cost 0.5.
    out = Outcome(np.array([[1, 1], [1, 0]], dtype=bool), np.array([[0.1, 0.1], [0.2, 0.2]]),
                  np.array([[1, 1], [2, 2]]))
    p = person_outcome(out, cost=np.array([[0.9, 0.5], [0.3, 0.3]]))
    np.testing.assert_array_equal(p.chosen, [1, 0])
    np.testing.assert_array_equal(p.cost, [0.3, 0.5])
    np.testing.assert_array_equal(p.sparsity, [2, 1])


def test_mean_recourse_cost():
    # g0: (0.10 + 0.25 + 0.40 + 0.05) / 4 = 0.2; g1: (0.20 + 0.30) / 2 (the inf has none)
    mean, gap = mean_recourse_cost(COST, COST_GROUPS, 2)
    np.testing.assert_allclose(mean, [0.2, 0.25])
    assert gap == pytest.approx(0.05)
    # a group where nobody has recourse costs inf; an absent group is NaN
    mean, gap = mean_recourse_cost(np.array([0.1, np.inf]), np.array([0, 1]), 3)
    np.testing.assert_array_equal(mean, [0.1, np.inf, np.nan])
    assert gap == np.inf


# Macro FACTS measures: 3 actions x 2 groups.
SHARE_F = np.array([[0.6, 0.2], [0.3, 0.8], [0.9, 0.5]])
COST_F = np.array([[0.10, 0.10], [0.05, 0.30], [0.40, 0.40]])


def test_group_action_cost_averages_each_group():
    # groups [0, 0, 1, 1]: a0 (0.1 + 0.3) / 2, (0.2 + 0.2) / 2; a1 1, 0; group 2 absent
    cost = group_action_cost(np.array([[0.1, 0.3, 0.2, 0.2], [1.0, 1.0, 0.0, 0.0]]),
                             np.array([0, 0, 1, 1]), 3)
    np.testing.assert_allclose(cost[:, :2], [[0.2, 0.2], [1.0, 0.0]])
    assert np.isnan(cost[:, 2]).all()


def test_best_within_budget():
    # budget 0.1: g0 may take a0 (0.6) or a1 (0.3) -> 0.6; g1 only a0 -> 0.2
    np.testing.assert_allclose(best_within_budget(SHARE_F, COST_F, 0.1), [0.6, 0.2])
    np.testing.assert_allclose(best_within_budget(SHARE_F, COST_F, 1.0), [0.9, 0.8])
    np.testing.assert_allclose(best_within_budget(SHARE_F, COST_F, 0.01), [0.0, 0.0])
    absent = np.column_stack([COST_F, np.full(3, np.nan)])
    assert np.isnan(best_within_budget(np.column_stack([SHARE_F, np.zeros(3)]), absent, 1.0)[2])


def test_cheapest_effective():
    # phi 0.6: g0 a0 (0.6 >= 0.6, cost 0.10) or a2 (0.40) -> 0.10; g1 only a1 -> 0.30
    np.testing.assert_allclose(cheapest_effective(SHARE_F, COST_F, 0.6), [0.10, 0.30])
    np.testing.assert_array_equal(cheapest_effective(SHARE_F, COST_F, 0.95), [np.inf, np.inf])


def test_cost_of_fairness():
    out = cost_of_fairness(
        {"SR": 0.70, "gower_chosen": 0.25}, {"SR": 0.85, "gower_chosen": 0.20}
    )
    assert out == {"SR_drop": pytest.approx(0.15), "gower_rise": pytest.approx(0.05)}


# ---------------------------------------------------------------- evaluate_set end to end
def test_evaluate_set_with_a_hand_written_model():
    # column 0: con 0..10; column 1: ord 1..5; column 2 immutable
    space = ActionSpace(
        [FeatureSpec("x", 0, "con", 0.0, 10.0), FeatureSpec("k", 1, "ord", 1.0, 5.0, integer=True)],
        n_actions=3,
    )
    X = np.array([[2.0, 1.0, 7.0], [5.0, 3.0, 0.0], [9.0, 5.0, 1.0]])
    action_set = np.array([[3.0, 0.0], [0.0, 4.0], [1.0, 2.0]])
    seen = []

    def favourable(Z):
        seen.append(Z.copy())
        return Z[:, 0] > 5

    out = evaluate_set(space, X, action_set, favourable)
    # a0: x -> 5, 8, 10 (12 clipped); a1: x unchanged, k -> 4; a2: x -> 3, 6, 10, k -> 2
    np.testing.assert_array_equal(
        out.flipped, [[False, True, True], [False, False, True], [False, True, True]]
    )
    np.testing.assert_allclose(
        out.gower,
        [
            [0.15, 0.15, 0.05],  # (3/10) / 2, (3/10) / 2, (1/10) / 2
            [0.375, 0.125, 0.125],  # (3/4) / 2, (1/4) / 2, (1/4) / 2
            [0.175, 0.175, 0.425],  # (1/10 + 1/4) / 2, (1/10 + 1/4) / 2, (1/10 + 3/4) / 2
        ],
    )
    np.testing.assert_array_equal(out.changed, [[1, 1, 1], [1, 1, 1], [2, 2, 2]])
    assert len(seen) == 3
    np.testing.assert_array_equal(seen[2], [[3.0, 2.0, 7.0], [6.0, 2.0, 0.0], [10.0, 2.0, 1.0]])
    p = person_outcome(out)
    np.testing.assert_array_equal(p.chosen, [-1, 0, 0])
    np.testing.assert_allclose(p.cost, [np.inf, 0.15, 0.05])
