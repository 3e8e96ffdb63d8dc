"""The recourse MDP (DESIGN.md sections 4 and 5) on a six-person population worked out by hand.

Population (columns x0, x1, an immutable column), the model is favourable iff x0 + x1 >= 6:

    person  x0   x1  group   x0 + x1   con delta d flips at   ord target t flips at
    p0      4.5  1   0       5.5       d >= 0.5               t >= 2 (4.5 + t >= 6)
    p1      3.5  2   0       5.5       d >= 0.5               t >= 3
    p2      1.0  3   0       4.0       d >= 2                 never
    p3      2.0  3   1       5.0       d >= 1                 t >= 4
    p4      1.0  2   1       3.0       d >= 3                 never
    p5      3.5  1   1       4.5       d >= 1.5               t >= 3

x0 is `con` on [0, 10] (entry range [-10, 10], a1 = 3 moves it by 0.3), x1 is `ord` on 1..4
(sentinel 0). N = 2 actions, so there are 4 entries: idx 0 = (a0, x0), 1 = (a0, x1),
2 = (a1, x0), 3 = (a1, x1).

State S, reached by `TO_S` (4 x (0, +3) then 3 x (3, +1)): action 0 = x0 + 1.2, action 1 = x1 := 3.
  action 0 flips p0, p1, p3: g0 2/3, g1 1/3; Gower: 1.2 / 10 on x0, 0 on x1 -> 0.06 per person.
  action 1 flips p0, p1, p5: g0 2/3, g1 1/3; Gower on x1 |3 - x1| / 3: 2/3, 1/3, 0, 0, 1/3, 2/3,
  halved over the two features and averaged over people -> (2 / 6) / 2 = 1/6.
  micro: g0 {p0, p1} 2/3, g1 {p3, p5} 2/3 -> SR 2/3, PD 0.
  macro: g0 best 2/3, g1 best 1/3 -> SR 1/2, PD 1/3.
  ECR (phi 0.6): both actions are effective for g0 only: a = (2/2, 0/2), gap 1.
  Both actions are active under every rule: G_A = (0.06 + 1/6) / 2, G_NA = 0.
"""

from __future__ import annotations

import json
import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from distributed_recourse.data.schema import FeatureSpec
from distributed_recourse.env import RecourseEnv, ScopeProblem
from distributed_recourse.stats import StatsHub

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
TO_S = [(0.0, 3.0)] * 4 + [(3.0, 1.0)] * 3
G_A_S = (0.06 + 1 / 6) / 2
TALLY_S = {"people": [3, 3], "flipped_any": [2, 2], "flipped_best": [2, 1], "effective": [2, 0],
           "n_actions": 2}


class SumModel:
    """Favourable iff x0 + x1 >= 6; counts its calls and checks the immutable column."""

    def __init__(self) -> None:
        self.calls = 0

    def favourable(self, X_: np.ndarray) -> np.ndarray:
        self.calls += 1
        np.testing.assert_array_equal(X_[:, 2], X[:, 2])
        return X_[:, 0] + X_[:, 1] >= 6


def problem(scope: str = "c0", model=None, features=FEATURES, X_=X, groups=GROUPS) -> ScopeProblem:
    return ScopeProblem(scope, X_, groups, ["g0", "g1"], features, model or SumModel())


def make_env(scope: str = "c0", model=None, **config) -> RecourseEnv:
    weights = {"n_actions": 2, **config.pop("weights", {})}
    env = RecourseEnv({"problem": problem(scope, model), "weights": weights, **config})
    env.reset()
    return env


def run(env: RecourseEnv, actions) -> list[tuple]:
    return [env.step(np.array(a, dtype=np.float32)) for a in actions]


# ---------------------------------------------------------------- spaces and the initial state
def test_spaces_and_initial_state():
    env = make_env()
    assert env.observation_space.shape == (4,)
    assert env.observation_space.dtype == np.float32
    np.testing.assert_array_equal(env.observation_space.low, [-1, -1, -1, -1])
    np.testing.assert_array_equal(env.observation_space.high, [1, 1, 1, 1])
    assert env.action_space.shape == (2,)
    np.testing.assert_array_equal(env.action_space.low, [0.0, -3.0])
    np.testing.assert_array_equal(env.action_space.high, [3.0, 3.0])
    # entry ranges: con [-10, 10], ord [sentinel 0, 4]
    np.testing.assert_array_equal(env.value_low, [-10, 0, -10, 0])
    np.testing.assert_array_equal(env.value_high, [10, 4, 10, 4])
    # no change: 0 for con, sentinel 0 (= low - 1) for ord
    np.testing.assert_array_equal(env.state, [[0.0, 0.0], [0.0, 0.0]])
    obs, info = env.reset()
    assert info == {}
    assert obs.dtype == np.float32
    # con 0 in [-10, 10] -> 0; ord sentinel 0 in [0, 4] -> -1
    np.testing.assert_array_equal(obs, [0.0, -1.0, 0.0, -1.0])
    # nobody is flipped by the no-change set
    assert not env.evaluator.flipped.any()
    np.testing.assert_array_equal(env.gower, [0.0, 0.0])


def test_action_bounds_follow_n_actions_and_step_size():
    env = make_env(weights={"n_actions": 3, "step_size": 2.0})
    assert env.observation_space.shape == (6,)
    np.testing.assert_array_equal(env.action_space.low, [0.0, -2.0])
    np.testing.assert_array_equal(env.action_space.high, [5.0, 2.0])


def test_observation_is_scaled_to_minus_one_one():
    env = make_env()
    env.state[:] = [[0.3, 3.0], [-10.0, 4.0]]
    # con: 2 (0.3 + 10) / 20 - 1 = 0.03; ord: 2 * 3 / 4 - 1 = 0.5; -10 -> -1; 4 -> 1
    np.testing.assert_allclose(env.observation(), [0.03, 0.5, -1.0, 1.0], rtol=1e-6)
    env.state[:] = [[10.0, 0.0], [5.0, 2.0]]
    np.testing.assert_allclose(env.observation(), [1.0, -1.0, 0.5, 0.0], rtol=1e-6)


# ---------------------------------------------------------------- move
def test_move_picks_entry_by_rounded_index():
    env = make_env()
    assert env.move(np.array([0.0, 1.0])) == (0, 0)
    assert env.move(np.array([0.6, 1.0])) == (0, 1)
    assert env.move(np.array([1.4, 1.0])) == (0, 1)
    assert env.move(np.array([1.6, 1.0])) == (1, 0)
    assert env.move(np.array([2.6, 1.0])) == (1, 1)
    assert env.move(np.array([3.0, 1.0])) == (1, 1)
    # out of range indices clip to the first / last entry
    assert env.move(np.array([-4.0, 1.0])) == (0, 0)
    assert env.move(np.array([9.0, 1.0])) == (1, 1)


def test_move_con_entry_on_its_rescaled_range():
    env = make_env()
    # entry range [-10, 10] on [-100, 100]: a1 = 3 -> +0.3
    env.move(np.array([2.0, 3.0]))
    assert env.state[1, 0] == pytest.approx(0.3)
    env.move(np.array([2.0, 3.0]))
    assert env.state[1, 0] == pytest.approx(0.6)
    env.move(np.array([2.0, -1.0]))
    assert env.state[1, 0] == pytest.approx(0.5)
    # a1 beyond step_size is clipped to it: +0.3, not +1.0
    env.move(np.array([0.0, 10.0]))
    assert env.state[0, 0] == pytest.approx(0.3)
    env.move(np.array([0.0, -10.0]))
    env.move(np.array([0.0, -3.0]))
    assert env.state[0, 0] == pytest.approx(-0.3)
    # the other entries did not move
    assert env.state[0, 1] == 0.0 and env.state[1, 1] == 0.0


def test_move_con_clips_at_the_range_ends():
    env = make_env()
    env.state[0, 0] = 9.9
    env.move(np.array([0.0, 3.0]))
    assert env.state[0, 0] == 10.0
    env.move(np.array([0.0, 3.0]))
    assert env.state[0, 0] == 10.0
    env.state[0, 0] = -9.8
    env.move(np.array([0.0, -3.0]))
    assert env.state[0, 0] == -10.0


def test_move_integer_con_rounds_and_moves_at_least_one_unit():
    # an integer con feature on [0, 40]: entry range [-40, 40], a1 = 3 -> 0.015 * 80 = 1.2 -> 1
    features = (FeatureSpec("n", 0, "con", 0.0, 40.0, integer=True),
                FeatureSpec("x1", 1, "ord", 1.0, 4.0, integer=True))
    env = RecourseEnv({"problem": problem(features=features), "weights": {"n_actions": 2}})
    env.reset()
    env.move(np.array([0.0, 3.0]))
    assert env.state[0, 0] == 1.0
    env.move(np.array([0.0, 3.0]))  # 1 + 1.2 = 2.2 -> 2
    assert env.state[0, 0] == 2.0
    env.move(np.array([0.0, 1.0]))  # 2 + 0.4 rounds to no move: one unit instead -> 3
    assert env.state[0, 0] == 3.0
    env.move(np.array([0.0, -3.0]))  # 3 - 1.2 = 1.8 -> 2
    assert env.state[0, 0] == 2.0
    env.move(np.array([0.0, 0.0]))  # a1 == 0 leaves it
    assert env.state[0, 0] == 2.0


def test_move_ord_entry_by_sign():
    env = make_env()
    env.move(np.array([1.0, 0.01]))
    assert env.state[0, 1] == 1.0
    env.move(np.array([1.0, 2.9]))
    assert env.state[0, 1] == 2.0
    env.move(np.array([1.0, 0.0]))  # a1 == 0 leaves it
    assert env.state[0, 1] == 2.0
    env.move(np.array([1.0, -0.5]))
    assert env.state[0, 1] == 1.0
    env.move(np.array([1.0, -3.0]))
    assert env.state[0, 1] == 0.0  # back at the sentinel
    env.move(np.array([1.0, -3.0]))
    assert env.state[0, 1] == 0.0  # clipped at the sentinel
    env.state[1, 1] = 4.0
    env.move(np.array([3.0, 1.0]))
    assert env.state[1, 1] == 4.0  # clipped at high


# ---------------------------------------------------------------- rewards on state S
@pytest.mark.parametrize(
    "weights, expected, sr, pd",
    [
        ({"reward": "EE"},
         50 * (1.1 * (2 / 3) + 2 / 2 - 0.0) - 50 * (0.8 * 0.0 + 1.0 * G_A_S), 2 / 3, 0.0),
        ({"reward": "EE", "effectiveness": "macro"},
         50 * (1.1 * 0.5 + 2 / 2 - 1 / 3) - 50 * (0.8 * 0.0 + 1.0 * G_A_S), 0.5, 1 / 3),
        ({"reward": "ECR", "effectiveness": "macro"},
         50 * (2.5 * 1.0 + 2.5 * 0.0 + 2 / 2 - 1.0) - 50 * (0.8 * 0.0 + 1.0 * G_A_S), 0.5, 1 / 3),
        ({"reward": "EE-ECR"},
         50 * (1.1 * (2 / 3) + 2 / 2 - 0.0) - 50 * (0.8 * 0.0 + 1.0 * G_A_S)
         + 50 * (1.5 * 1.0 + 1.5 * 0.0 - 1.0), 2 / 3, 0.0),
    ],
)
def test_step_rewards_on_state_s(weights, expected, sr, pd):
    env = make_env(weights=weights)
    *_, (obs, r, terminated, truncated, info) = run(env, TO_S)
    np.testing.assert_allclose(env.state, [[1.2, 0.0], [0.0, 3.0]])
    np.testing.assert_allclose(obs, [0.12, -1.0, 0.0, 0.5], atol=1e-6)
    np.testing.assert_allclose(env.gower, [0.06, 1 / 6])
    assert r == pytest.approx(expected)
    assert (terminated, truncated) == (False, False)
    assert info["sr"] == pytest.approx(sr)
    assert info["pd"] == pytest.approx(pd)
    assert info["ecr_gap"] == pytest.approx(1.0)
    assert info["archived"] == 0
    assert env.archive == []


def test_step_reward_with_an_inactive_action():
    # After one ord step (x1 := 1 for everyone) nobody is flipped: no action active,
    # G_NA = (1/6 + 0) / 2 where action 0's Gower is |1 - x1| / 3 = 0, 1/3, 2/3, 2/3, 1/3, 0
    # -> (2 / 6) / 2 = 1/6.
    env = make_env(weights={"reward": "EE"})
    _, r, terminated, _, info = env.step(np.array([1.0, 1.0], dtype=np.float32))
    assert r == pytest.approx(50 * (1.1 * 0.0 + 0 / 2 - 0.0) - 50 * (0.8 * (1 / 6) / 2 + 1.0 * 0.0))
    assert terminated is False
    assert info["sr"] == 0.0


def test_ee_done_adds_bonus_terminates_and_archives_once():
    # done_sr 0.6: state S has SR 2/3 and PD 0; the steps before it have PD > 0.09
    env = make_env(weights={"reward": "EE", "done_sr": 0.6})
    results = run(env, TO_S)
    assert [res[2] for res in results] == [False] * 6 + [True]
    assert [res[3] for res in results] == [False] * 7
    _, r, terminated, truncated, info = results[-1]
    assert r == pytest.approx(50 * (1.1 * (2 / 3) + 2 / 2 - 0.0) - 50 * (0.8 * 0.0 + G_A_S) + 1000)
    assert info["archived"] == 1
    assert len(env.archive) == 1
    entry = env.archive[0]
    assert entry["scope"] == "c0"
    assert entry["SR"] == pytest.approx(2 / 3)
    assert entry["PD"] == pytest.approx(0.0)
    assert entry["ECR_gap"] == pytest.approx(1.0)
    assert entry["reward"] == pytest.approx(r)
    assert entry["step"] == 7
    assert entry["n_active"] == 2
    assert entry["gower_active"] == pytest.approx(G_A_S)
    assert entry["gower_nonactive"] == 0.0
    np.testing.assert_allclose(entry["set"], [[1.2, 0.0], [0.0, 3.0]])
    assert len(entry["actions"]) == 2
    assert entry["actions"][0].keys() == {"x0"}
    assert entry["actions"][0]["x0"] == pytest.approx(1.2)
    assert entry["actions"][1] == {"x1": 3.0}
    assert entry["tally"] == TALLY_S
    assert entry["effectiveness"] == pytest.approx({"g0": 2 / 3, "g1": 2 / 3})
    assert entry["effective_actions"] == {"g0": 2, "g1": 0}
    assert 0.0 <= entry["elapsed_s"] < 5.0
    json.dumps(entry)  # JSON-ready, as the hub stores it
    # the best set seen is the done one
    assert env.best_seen["reward"] == pytest.approx(r)

    # the same set again, in a new episode: done again, not archived twice
    env.reset()
    *_, (_, r2, terminated2, _, info2) = run(env, TO_S)
    assert terminated2 is True
    assert r2 == pytest.approx(r)
    assert info2["archived"] == 1
    assert len(env.archive) == 1

    # a different successful set (x1 := 4 flips p0, p1, p3, p5: micro still 2/3 each) is archived
    _, _, terminated3, _, info3 = env.step(np.array([3.0, 1.0], dtype=np.float32))
    assert terminated3 is True
    assert info3["archived"] == 2
    np.testing.assert_allclose(env.archive[1]["set"], [[1.2, 0.0], [0.0, 4.0]])
    # and stepping back into the first one adds nothing
    _, _, terminated4, _, info4 = env.step(np.array([3.0, -1.0], dtype=np.float32))
    assert terminated4 is True
    assert info4["archived"] == 2


def test_ecr_done():
    # phi 0.3: after 4 con steps action 0 (g0 2/3, g1 1/3) is effective for both groups,
    # action 1 (no change) for neither: a = (1/2, 1/2), gap 0, every group has one -> done.
    # ECR counts only action 0 active: G_A = 0.06, G_NA = 0.
    env = make_env(weights={"reward": "ECR", "effectiveness": "macro", "phi": 0.3})
    results = run(env, TO_S[:4])
    assert [res[2] for res in results] == [False, False, False, True]
    _, r, _, _, info = results[-1]
    assert r == pytest.approx(50 * (2.5 * 0.5 + 2.5 * 0.5 + 1 / 2 - 0.0) - 50 * (0.8 * 0.0 + 0.06) + 1000)
    assert info["ecr_gap"] == 0.0
    assert len(env.archive) == 1
    assert env.archive[0]["tally"]["effective"] == [1, 1]


def test_ee_ecr_done_needs_both():
    # phi 0.3, done_sr 0.6. At step 4 ECR holds (as in test_ecr_done) but PD = 1/3;
    # at state S both hold: a = (1, 1), gap 0, SR 2/3, PD 0.
    env = make_env(weights={"reward": "EE-ECR", "phi": 0.3, "done_sr": 0.6})
    results = run(env, TO_S)
    assert [res[2] for res in results] == [False] * 6 + [True]
    assert results[-1][1] == pytest.approx(
        50 * (1.1 * (2 / 3) + 2 / 2 - 0.0) - 50 * (0.8 * 0.0 + 1.0 * G_A_S)
        + 50 * (1.5 * 1.0 + 1.5 * 1.0 - 0.0) + 1000
    )


def test_best_seen_keeps_the_highest_reward():
    env = make_env(weights={"reward": "EE"})
    rewards = [res[1] for res in run(env, TO_S)]
    assert env.best_seen["reward"] == pytest.approx(max(rewards))
    # step 7 (state S, 81.0) is the best of these seven
    assert max(rewards) == pytest.approx(rewards[-1])
    np.testing.assert_allclose(env.best_seen["set"], [[1.2, 0.0], [0.0, 3.0]])
    # moving away to a worse set (x1 := 4, Gower 1/3, same SR) keeps the best
    env.step(np.array([3.0, 1.0], dtype=np.float32))
    np.testing.assert_allclose(env.best_seen["set"], [[1.2, 0.0], [0.0, 3.0]])


# ---------------------------------------------------------------- truncation
def test_truncation_waits_for_the_archive_then_caps():
    weights = {"reward": "EE", "done_sr": 0.6, "max_episode_steps": 3,
               "truncate_after_archived": 1, "episode_step_limit": 8}
    noop = [(1.0, 0.0)]  # ord entry, a1 = 0: nothing moves
    # nothing archived: only the hard cap at 8 steps truncates
    env = make_env(weights=weights)
    assert [res[3] for res in run(env, noop * 8)] == [False] * 7 + [True]

    # once one set is archived, an episode truncates at max_episode_steps
    env = make_env(weights=weights)
    results = run(env, TO_S)
    # step 3: nothing archived yet; step 7 archives one set but is done, so not truncated
    assert [res[3] for res in results] == [False] * 7
    env.reset()
    assert [res[3] for res in run(env, noop * 3)] == [False, False, True]


def test_truncation_needs_enough_archived_sets():
    weights = {"reward": "EE", "done_sr": 0.6, "max_episode_steps": 3,
               "truncate_after_archived": 2, "episode_step_limit": 20}
    noop = [(1.0, 0.0)]
    env = make_env(weights=weights)
    run(env, TO_S)
    assert len(env.archive) == 1
    env.reset()
    # 1 archived set < 2: not truncated at 3
    assert [res[3] for res in run(env, noop * 4)] == [False] * 4
    # a second successful set (state S with x1 := 4) makes two
    env.reset()
    run(env, TO_S + [(3.0, 1.0)])
    assert len(env.archive) == 2
    env.reset()
    assert [res[3] for res in run(env, noop * 3)] == [False, False, True]


# ---------------------------------------------------------------- cost: model calls and the cache
def test_model_calls_and_cache():
    model = SumModel()
    env = make_env(model=model)
    # the two no-change actions are the same: one call at construction, reset hits the cache
    assert env.model_calls == 1 and model.calls == 1
    run(env, TO_S)  # seven distinct new actions
    assert env.model_calls == 8 and model.calls == 8
    # steps that change nothing make no call: ord a1 = 0, ord below the sentinel, con at its end
    run(env, [(1.0, 0.0), (1.0, -3.0), (3.0, 0.0)])
    assert env.model_calls == 8 and model.calls == 8
    env.state[1, 0] = 10.0
    env._evaluate_action(1)  # a new action: one call
    assert model.calls == 9
    run(env, [(2.0, 3.0)])  # already at 10: no change
    assert env.model_calls == 9 and model.calls == 9
    # revisiting a set hits the cache: reset and replay
    env.reset()
    results = run(env, TO_S)
    assert env.model_calls == 9 and model.calls == 9
    # the default reward is EE-ECR micro
    assert results[-1][1] == pytest.approx(
        50 * (1.1 * (2 / 3) + 2 / 2 - 0.0) - 50 * (0.8 * 0.0 + 1.0 * G_A_S)
        + 50 * (1.5 * 1.0 + 1.5 * 0.0 - 1.0)
    )
    # back and forth on one entry: x1 := 4 is new, back to 3 is cached
    run(env, [(3.0, 1.0), (3.0, -1.0), (3.0, 1.0)])
    assert env.model_calls == 10 and model.calls == 10


def test_cache_evicts_least_recently_used():
    model = SumModel()
    env = make_env(model=model, cache_size=2)
    assert model.calls == 1  # no-change cached
    run(env, [(1.0, 1.0)])  # action 0 x1 := 1: cache {none, t1}
    run(env, [(1.0, 1.0)])  # x1 := 2: cache {t1, t2}, no-change evicted
    assert model.calls == 3
    run(env, [(1.0, -1.0)])  # back to t1: cached
    assert model.calls == 3
    run(env, [(1.0, -1.0)])  # back to the no-change action: evicted, called again
    assert model.calls == 4
    # cache {t1, none}: t2 was the least recently used, t1 is still there
    run(env, [(1.0, 1.0)])
    assert model.calls == 4
    run(env, [(1.0, 1.0)])
    assert model.calls == 5
    # the outcome read back from the cache: x1 := 2 flips p0 only
    np.testing.assert_array_equal(env.evaluator.flipped, [[1, 0, 0, 0, 0, 0], [0, 0, 0, 0, 0, 0]])


# ---------------------------------------------------------------- hybrid fairness
OTHER_TALLY = {"people": [2, 4], "flipped_any": [2, 1], "flipped_best": [1, 1], "effective": [1, 0],
               "n_actions": 2}
# pooled with TALLY_S: people (5, 7), flipped_any (4, 3), flipped_best (3, 2), effective (3, 0),
# N 4: micro p = (4/5, 3/7), macro p = (3/5, 2/7), a = (3/4, 0/4)


def hub_with_other() -> StatsHub:
    hub = StatsHub()
    hub.register("c1", OTHER_TALLY)
    return hub


def test_hybrid_needs_stats():
    with pytest.raises(ValueError, match="stats"):
        RecourseEnv({"problem": problem(), "weights": {"n_actions": 2}, "hybrid": True})


@pytest.mark.parametrize(
    "weights, expected, sr, pd, gap",
    [
        ({"reward": "EE"},
         50 * (1.1 * (2 / 3) + 2 / 2 - (4 / 5 - 3 / 7)) - 50 * (0.8 * 0.0 + 1.0 * G_A_S),
         2 / 3, 4 / 5 - 3 / 7, 3 / 4),
        ({"reward": "EE", "effectiveness": "macro"},
         50 * (1.1 * 0.5 + 2 / 2 - (3 / 5 - 2 / 7)) - 50 * (0.8 * 0.0 + 1.0 * G_A_S),
         0.5, 3 / 5 - 2 / 7, 3 / 4),
        ({"reward": "EE-ECR"},
         50 * (1.1 * (2 / 3) + 2 / 2 - (4 / 5 - 3 / 7)) - 50 * (0.8 * 0.0 + 1.0 * G_A_S)
         + 50 * (1.5 * (3 / 4) + 1.5 * 0.0 - 3 / 4), 2 / 3, 4 / 5 - 3 / 7, 3 / 4),
        ({"reward": "ECR", "effectiveness": "macro"},
         50 * (2.5 * (3 / 4) + 2.5 * 0.0 + 2 / 2 - 3 / 4) - 50 * (0.8 * 0.0 + 1.0 * G_A_S),
         0.5, 3 / 5 - 2 / 7, 3 / 4),
    ],
)
def test_hybrid_pools_group_terms(weights, expected, sr, pd, gap):
    hub = hub_with_other()
    env = make_env(weights=weights, hybrid=True, stats=hub, sync_steps=1000)
    *_, (_, r, terminated, _, info) = run(env, TO_S)
    assert info["sr"] == pytest.approx(sr)  # the scope's own
    assert info["pd"] == pytest.approx(pd)  # the population's
    assert info["ecr_gap"] == pytest.approx(gap)
    assert r == pytest.approx(expected)
    assert terminated is False
    # the same scope alone (not hybrid, even with the hub) uses its own group terms
    alone = make_env(weights=weights, stats=hub_with_other(), sync_steps=1000)
    *_, (_, _, _, _, info_alone) = run(alone, TO_S)
    assert info_alone["ecr_gap"] == pytest.approx(1.0)
    assert info_alone["pd"] == pytest.approx(1 / 3 if weights.get("effectiveness") == "macro" else 0.0)


def test_hybrid_done_uses_the_pooled_pd():
    # done_sr 0.6: alone, state S is done (PD 0); pooled PD 4/5 - 3/7 is not
    hub = hub_with_other()
    env = make_env(weights={"reward": "EE", "done_sr": 0.6}, hybrid=True, stats=hub,
                   sync_steps=1000)
    assert [res[2] for res in run(env, TO_S)] == [False] * 7
    assert env.archive == []


def test_hybrid_sync_every_sync_steps():
    hub = hub_with_other()
    env = make_env(weights={"reward": "EE"}, hybrid=True, stats=hub, sync_steps=3)
    # reset synced once to fetch the other scopes' tally
    assert hub.syncs == 1
    assert hub.tallies["c0"] == {"people": [3, 3], "flipped_any": [0, 0], "flipped_best": [0, 0],
                                 "effective": [0, 0], "n_actions": 2}
    results = run(env, TO_S[:2])
    assert hub.syncs == 1
    run(env, TO_S[2:3])
    assert hub.syncs == 2
    assert hub.steps["c0"] == 3
    run(env, TO_S[3:6])
    assert hub.syncs == 3
    assert hub.steps["c0"] == 6
    # at step 6: action 0 flips p0, p1, p3; action 1 (x1 := 2) flips p0
    assert hub.tallies["c0"] == {"people": [3, 3], "flipped_any": [2, 1], "flipped_best": [2, 1],
                                 "effective": [1, 0], "n_actions": 2}
    # step 1 (x0 + 0.3) flips nobody here; pooled with c1: flipped_any (2, 1) of (5, 7)
    assert results[0][4]["pd"] == pytest.approx(2 / 5 - 1 / 7)

    # c1 changes in the hub: the env sees it only after its next sync (step 9)
    hub.sync("c1", {"people": [2, 4], "flipped_any": [0, 0], "flipped_best": [0, 0],
                    "effective": [0, 0], "n_actions": 2}, [], 0)
    syncs = hub.syncs
    *_, (_, _, _, _, info7) = run(env, TO_S[6:])  # step 7
    assert info7["pd"] == pytest.approx(4 / 5 - 3 / 7)
    noop = [(1.0, 0.0)]
    run(env, noop * 2)  # steps 8, 9: sync at 9
    assert hub.syncs == syncs + 1
    _, _, _, _, info10 = run(env, noop)[0]
    # pooled now: people (5, 7), flipped_any (2, 2): 2/5 - 2/7
    assert info10["pd"] == pytest.approx(2 / 5 - 2 / 7)
    # syncs count all steps, not the episode's: after a reset (no sync, the env has the
    # others' tally), step 12 syncs
    env.reset()
    assert hub.syncs == syncs + 1
    run(env, noop)
    assert hub.syncs == syncs + 1
    run(env, noop)
    assert hub.syncs == syncs + 2
    assert hub.steps["c0"] == 12


class Recorder:
    """A stats object that records what the env sends and forwards it to a hub."""

    def __init__(self, hub: StatsHub) -> None:
        self.hub = hub
        self.sent: list[int] = []

    def sync(self, scope, tally, entries, steps, best_seen=None):
        self.sent.append(len(entries))
        return self.hub.sync(scope, tally, entries, steps, best_seen)


def test_sync_sends_archived_sets_once():
    hub = StatsHub()
    recorder = Recorder(hub)
    env = make_env(weights={"reward": "EE", "done_sr": 0.6}, stats=recorder, sync_steps=1000)
    run(env, TO_S)
    assert len(env.archive) == 1
    assert hub.archive.get("c0", []) == []
    env.flush()
    assert len(hub.archive["c0"]) == 1
    assert hub.archive["c0"][0]["set"] == env.archive[0]["set"]
    assert hub.best_seen["c0"]["reward"] == pytest.approx(env.best_seen["reward"])
    assert hub.tallies["c0"] == TALLY_S
    env.flush()
    assert len(hub.archive["c0"]) == 1
    assert recorder.sent == [1, 0]  # the second flush sends nothing again


# ---------------------------------------------------------------- gymnasium conformance and seeds
def test_gymnasium_check_env():
    env = RecourseEnv({"problem": problem(), "weights": {"n_actions": 2}, "seed": 0})
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        check_env(env, skip_render_check=True)


def test_same_seed_same_trajectory():
    def trajectory(seed):
        env = RecourseEnv({"problem": problem(), "weights": {"n_actions": 2}, "seed": seed})
        obs, _ = env.reset(seed=seed)
        out = [obs]
        for _ in range(40):
            action = env.action_space.sample()
            obs, r, terminated, truncated, _ = env.step(action)
            out.append((action, obs, r, terminated, truncated))
            if terminated or truncated:
                env.reset()
        return out

    a, b, c = trajectory(7), trajectory(7), trajectory(8)
    np.testing.assert_array_equal(a[0], b[0])
    for x, y in zip(a[1:], b[1:], strict=True):
        np.testing.assert_array_equal(x[0], y[0])
        np.testing.assert_array_equal(x[1], y[1])
        assert x[2:] == y[2:]
    # another seed gives other actions
    assert not all(np.array_equal(x[0], z[0]) for x, z in zip(a[1:], c[1:], strict=True))
