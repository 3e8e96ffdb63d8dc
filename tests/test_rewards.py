"""EE, ECR and EE-ECR rewards and done conditions on hand-built SetMetrics (DESIGN.md section 4)."""

from __future__ import annotations

import numpy as np
import pytest

from distributed_recourse.config import ConfigError, RunConfig
from distributed_recourse.recourse.metrics import ECR, MACRO, MICRO, GroupTally, SetMetrics, metrics_of
from distributed_recourse.recourse.rewards import Goal, RewardWeights, gain, is_done, reward


def metrics(
    effectiveness, sr, pd, choice, effective, ecr_gap, n_active, n_actions, g_a, g_na
) -> SetMetrics:
    return SetMetrics(
        effectiveness=np.array(effectiveness, dtype=float),
        sr=sr,
        pd=pd,
        choice=np.array(choice, dtype=float),
        effective=np.array(effective),
        ecr_gap=ecr_gap,
        n_active=n_active,
        n_actions=n_actions,
        gower_active=g_a,
        gower_nonactive=g_na,
    )


# SR 0.8, PD 0.1, 3 of 4 active, a = (0.5, 0.25), gap 0.25, G_A 0.2, G_NA 0.1: nothing is met.
NOT_DONE = metrics([0.85, 0.75], 0.8, 0.1, [0.5, 0.25], [2, 1], 0.25, 3, 4, 0.2, 0.1)
# SR 0.775, PD 0.05, 2 of 4 active, a = (0.25, 0.25), gap 0, G_A 0.1, G_NA 0: everything is met.
DONE = metrics([0.8, 0.75], 0.775, 0.05, [0.25, 0.25], [1, 1], 0.0, 2, 4, 0.1, 0.0)


def test_ee_reward():
    # 50 (1.1 * 0.8 + 3/4 - 0.1) - 50 (0.8 * 0.1 + 0.2) = 76.5 - 14
    r, done = reward(NOT_DONE, RewardWeights(reward="EE"))
    assert r == pytest.approx(62.5)
    assert done is False


def test_ecr_reward():
    # 50 (2.5 * 0.5 + 2.5 * 0.25 + 3/4 - 0.25) - 14 = 118.75 - 14
    r, done = reward(NOT_DONE, RewardWeights(reward="ECR"))
    assert r == pytest.approx(104.75)
    assert done is False


def test_ee_ecr_reward():
    # EE 62.5 + 50 (1.5 * 0.5 + 1.5 * 0.25 - 0.25) = 62.5 + 43.75
    r, done = reward(NOT_DONE, RewardWeights(reward="EE-ECR"))
    assert r == pytest.approx(106.25)
    assert done is False


def test_done_adds_the_bonus():
    # EE: 50 (1.1 * 0.775 + 2/4 - 0.05) - 50 (0 + 0.1) = 65.125 - 5, + 1000
    assert reward(DONE, RewardWeights(reward="EE")) == (pytest.approx(1060.125), True)
    # ECR: 50 (2.5 * 0.25 * 2 + 2/4 - 0) - 5 = 82.5, + 1000
    assert reward(DONE, RewardWeights(reward="ECR")) == (pytest.approx(1082.5), True)
    # EE-ECR: 60.125 + 50 (1.5 * 0.5 - 0) = 97.625, + 1000
    assert reward(DONE, RewardWeights(reward="EE-ECR")) == (pytest.approx(1097.625), True)
    # a different bonus
    assert reward(DONE, RewardWeights(reward="EE", bonus=10.0))[0] == pytest.approx(70.125)


def test_ee_done_thresholds_are_inclusive():
    edge = metrics([0.795, 0.705], 0.75, 0.09, [0, 0], [0, 0], 0.0, 0, 4, 0.0, 0.0)
    assert is_done(edge, RewardWeights(reward="EE"))
    below = metrics([0.79, 0.70], 0.745, 0.09, [0, 0], [0, 0], 0.0, 0, 4, 0.0, 0.0)
    assert not is_done(below, RewardWeights(reward="EE"))
    wide = metrics([0.85, 0.75], 0.80, 0.10, [0, 0], [0, 0], 0.0, 0, 4, 0.0, 0.0)
    assert not is_done(wide, RewardWeights(reward="EE"))
    assert is_done(wide, RewardWeights(reward="EE", done_pd=0.1))


def test_ecr_done_needs_an_effective_action_for_every_group():
    # equal shares but nobody has an effective action: not done
    empty = metrics([0.9, 0.9], 0.9, 0.0, [0, 0], [0, 0], 0.0, 0, 4, 0.0, 0.0)
    assert not is_done(empty, RewardWeights(reward="ECR"))
    # an absent group (NaN effectiveness) needs no action of its own
    absent = metrics([0.9, np.nan, 0.8], 0.85, 0.1, [0.5, 0, 0.5], [2, 0, 2], 0.0, 2, 4, 0, 0)
    assert is_done(absent, RewardWeights(reward="ECR"))


def test_ee_ecr_done_needs_both():
    ee_only = metrics([0.8, 0.75], 0.775, 0.05, [0.5, 0.25], [2, 1], 0.25, 2, 4, 0.1, 0.0)
    assert is_done(ee_only, RewardWeights(reward="EE"))
    assert not is_done(ee_only, RewardWeights(reward="ECR"))
    assert not is_done(ee_only, RewardWeights(reward="EE-ECR"))
    ecr_only = metrics([0.5, 0.4], 0.45, 0.1, [0.25, 0.25], [1, 1], 0.0, 1, 4, 0.1, 0.0)
    assert is_done(ecr_only, RewardWeights(reward="ECR"))
    assert not is_done(ecr_only, RewardWeights(reward="EE-ECR"))
    assert is_done(DONE, RewardWeights(reward="EE-ECR"))


def test_k_groups_choice_term_is_two_over_k_times_the_sum():
    # a = (0.5, 0.25, 0.25): (2/3) * 1.0; 2 of 4 active; gap 0.25; no Gower
    three = metrics([0.9, 0.8, 0.7], 0.8, 0.2, [0.5, 0.25, 0.25], [2, 1, 1], 0.25, 2, 4, 0.0, 0.0)
    r, done = reward(three, RewardWeights(reward="ECR"))
    assert r == pytest.approx(50 * (2.5 * 2 / 3 + 0.5 - 0.25))  # 95.8333...
    assert r == pytest.approx(95.833333333)
    assert done is False
    # EE-ECR: 50 (1.1 * 0.8 + 0.5 - 0.2) + 50 (1.5 * 2/3 - 0.25) = 59 + 37.5
    assert reward(three, RewardWeights(reward="EE-ECR"))[0] == pytest.approx(96.5)


def test_absent_group_left_out_of_the_choice_term():
    # present groups 0 and 2: (2/2) * (0.5 + 0.25) = 0.75
    absent = metrics([0.8, np.nan, 0.6], 0.7, 0.2, [0.5, 0, 0.25], [2, 0, 1], 0.25, 2, 4, 0, 0)
    r, _ = reward(absent, RewardWeights(reward="ECR"))
    assert r == pytest.approx(50 * (2.5 * 0.75 + 0.5 - 0.25))  # 106.25
    assert r == pytest.approx(106.25)


def test_every_weight_is_used():
    w = RewardWeights(
        reward="EE-ECR", scale=10.0, sr=2.0, active=0.5, pd=3.0, gower_active=2.0,
        gower_nonactive=1.0, ee_ecr_choice=4.0, ecr_gap=2.0,
    )
    # 10 (2 * 0.8 + 0.5 * 0.75 - 3 * 0.1 + 4 * 0.75 - 2 * 0.25) - 10 (1 * 0.1 + 2 * 0.2)
    # = 10 * 4.175 - 10 * 0.5
    assert reward(NOT_DONE, w) == (pytest.approx(36.75), False)
    w_ecr = RewardWeights(reward="ECR", scale=1.0, ecr_choice=1.0, active=0.0, ecr_gap=4.0)
    # 1 * 0.75 - 4 * 0.25 - (0.8 * 0.1 + 0.2)
    assert reward(NOT_DONE, w_ecr)[0] == pytest.approx(-0.53)


def test_reward_weights_defaults_are_the_reference():
    w = RewardWeights()
    assert (w.reward, w.effectiveness, w.n_actions, w.phi, w.macro_active) == (
        "EE-ECR", MICRO, 4, 0.6, 0.3,
    )
    assert (w.scale, w.sr, w.active, w.pd, w.gower_active, w.gower_nonactive) == (
        50.0, 1.1, 1.0, 1.0, 1.0, 0.8,
    )
    assert (w.ecr_choice, w.ecr_gap, w.ee_ecr_choice, w.done_sr, w.done_pd, w.bonus) == (
        2.5, 1.0, 1.5, 0.75, 0.09, 1000.0,
    )
    assert (w.max_episode_steps, w.truncate_after_archived) == (2000, 10)


def test_active_rule():
    assert RewardWeights(reward="ECR").active_rule == ECR
    assert RewardWeights(reward="EE", effectiveness=MACRO).active_rule == MACRO
    assert RewardWeights(reward="EE-ECR", effectiveness=MICRO).active_rule == MICRO


def test_reward_weights_from_dict():
    w = RewardWeights.from_dict({"reward": "EE", "phi": 0.7, "n_actions": 5})
    assert (w.reward, w.phi, w.n_actions) == ("EE", 0.7, 5)
    assert RewardWeights.from_dict(None) == RewardWeights()
    assert RewardWeights.from_dict(w.to_dict()) == w
    with pytest.raises(ValueError, match="'bonus_points'"):
        RewardWeights.from_dict({"bonus_points": 5})


@pytest.mark.parametrize(
    "spec, word",
    [
        ({"reward": "EEC"}, "'EEC'"),
        ({"effectiveness": "ecr"}, "'ecr'"),
        ({"n_actions": 0}, "n_actions"),
    ],
)
def test_reward_weights_reject_bad_values(spec, word):
    with pytest.raises(ValueError, match=word):
        RewardWeights(**spec)


def test_run_config_names_bad_reward_options():
    with pytest.raises(ConfigError, match=r"reward: .*'gamma'"):
        RunConfig.from_dict({"reward": {"gamma": 0.9}})
    with pytest.raises(ConfigError, match=r"reward: .*'EEC'"):
        RunConfig.from_dict({"reward": {"reward": "EEC"}})


# ---------------------------------------------------------------- goals
def test_the_reference_goal_is_the_rewards_done_condition():
    assert Goal.reference(RewardWeights(reward="EE")) == Goal(0.75, 0.09, True, False)
    assert Goal.reference(RewardWeights(reward="ECR")) == Goal(0.75, 0.09, False, True)
    assert Goal.reference(RewardWeights(reward="EE-ECR", done_sr=0.6, done_pd=0.2)) == \
        Goal(0.6, 0.2, True, True)
    for name in ("EE", "ECR", "EE-ECR"):
        w = RewardWeights(reward=name)
        assert [Goal.reference(w).met(m) for m in (NOT_DONE, DONE)] == \
            [is_done(NOT_DONE, w), is_done(DONE, w)]
    # the default goal of reward() is the reference's; another goal changes done and the bonus
    w = RewardWeights(reward="EE")
    assert reward(NOT_DONE, w)[1] is False
    assert reward(NOT_DONE, w, Goal(0.8, 0.1)) == (pytest.approx(62.5 + 1000), True)


def test_goal_from_the_ceiling():
    goal = Goal.from_ceiling(0.9, 0.05)
    assert (goal.sr, goal.pd) == pytest.approx((0.98 * 0.9, 0.06))
    assert (goal.effectiveness, goal.choice) == (True, False)
    # PD never asked below the floor
    assert Goal.from_ceiling(1.0, 0.0).pd == pytest.approx(0.02)
    # a ceiling whose PD is above the reference's 0.09 still gives a goal sets can meet
    high = Goal.from_ceiling(0.905, 0.167)
    assert high.pd == pytest.approx(0.177)
    reachable = metrics([0.98, 0.81], 0.895, 0.17, [0, 0], [0, 0], 0.0, 0, 4, 0.0, 0.0)
    assert high.met(reachable) and not Goal.reference(RewardWeights(reward="EE")).met(reachable)
    custom = Goal.from_ceiling(0.8, 0.1, share=0.9, pd_margin=0.05, pd_floor=0.2)
    assert (custom.sr, custom.pd) == pytest.approx((0.72, 0.2))


def test_shortfall_is_the_distance_to_the_goal():
    goal = Goal(0.9, 0.05)
    assert goal.shortfall(NOT_DONE) == pytest.approx((0.9 - 0.8) + (0.1 - 0.05))
    assert goal.shortfall(DONE) == pytest.approx(0.9 - 0.775)  # its PD 0.05 is within
    assert Goal(0.7, 0.1).shortfall(DONE) == 0.0
    assert isinstance(goal.shortfall(NOT_DONE), float)
    # equal choice alone (ECR) has no SR or PD to fall short of
    assert Goal(0.9, 0.05, effectiveness=False, choice=True).shortfall(NOT_DONE) == 0.0


def batch_metrics() -> SetMetrics:
    """Three sets on (5, 3) people, 4 actions each: micro p (1, 1/3), (1, 0) and (1, 1)."""
    tally = GroupTally(np.array([5, 3]), np.array([[5, 1], [5, 0], [5, 3]]),
                       np.array([[4, 1], [5, 0], [5, 3]]), np.array([[2, 0], [1, 0], [1, 1]]), 4)
    return metrics_of(tally, MICRO, np.array([2, 1, 2]), 4, np.array([0.1, 0.2, 0.3]),
                      np.array([0.0, 0.05, 0.0]))


def test_goals_and_gain_over_a_batch_of_sets():
    m = batch_metrics()
    np.testing.assert_allclose(m.sr, [2 / 3, 0.5, 1.0])
    np.testing.assert_allclose(m.pd, [2 / 3, 1.0, 0.0])
    goal = Goal(0.6, 0.1)
    met, short = goal.met(m), goal.shortfall(m)
    assert met.shape == short.shape == (3,)
    assert met.tolist() == [False, False, True]
    np.testing.assert_allclose(short, [2 / 3 - 0.1, 0.1 + 0.9, 0.0])
    # equal choice: a = (2/4, 0), (1/4, 0), (1/4, 1/4): only the last has it for both groups
    assert Goal(0.0, 1.0, effectiveness=False, choice=True).met(m).tolist() == [False, False, True]
    for name in ("EE", "ECR", "EE-ECR"):
        w = RewardWeights(reward=name)
        levels = gain(m, w)
        assert levels.shape == (3,)
        for i in range(3):
            row = SetMetrics(m.effectiveness[i], float(m.sr[i]), float(m.pd[i]), m.choice[i],
                             m.effective[i], float(m.ecr_gap[i]), int(m.n_active[i]), 4,
                             float(m.gower_active[i]), float(m.gower_nonactive[i]))
            assert levels[i] == pytest.approx(reward(row, w, Goal(2.0, -1.0))[0])
