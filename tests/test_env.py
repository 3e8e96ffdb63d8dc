"""The recourse MDPs (DESIGN.md sections 4 and 5) on the six-person population of six_people.py.

`RecourseEnv`, the reference MDP: N = 2 actions, so there are 4 entries: idx 0 = (a0, x0),
1 = (a0, x1), 2 = (a1, x0), 3 = (a1, x1); a1 = 3 moves a `con` entry by 0.3 (1.5 % of [-10, 10]).

State S, reached by `TO_S` (4 x (0, +3) then 3 x (3, +1)): action 0 = x0 + 1.2, action 1 = x1 := 3.
  action 0 flips p0, p1, p3: g0 2/3, g1 1/3; Gower: 1.2 / 10 on x0, 0 on x1 -> 0.06 per person.
  action 1 flips p0, p1, p5: g0 2/3, g1 1/3; Gower on x1 |3 - x1| / 3: 2/3, 1/3, 0, 0, 1/3, 2/3,
  halved over the two features and averaged over people -> (2 / 6) / 2 = 1/6.
  micro: g0 {p0, p1} 2/3, g1 {p3, p5} 2/3 -> SR 2/3, PD 0.
  macro: g0 best 2/3, g1 best 1/3 -> SR 1/2, PD 1/3.
  ECR (phi 0.6): both actions are effective for g0 only: a = (2/2, 0/2), gap 1.
  Both actions are active under every rule: G_A = (0.06 + 1/6) / 2, G_NA = 0.

`ProposalEnv` (built with `first_step` 0.125 and 4-step episodes here): a move changes the
feature with the largest gate coordinate by its step x 2^-|v| of the entry's span (x0's
entries span 20, x1's 4); a jump is `from_unit` of the first 2m coordinates:
  A = x0 + 1.25 (move x0, v = 1: 0.125 x 20 / 2) flips p0, p1, p3 (as state S's action 0),
  Gower 1.25 / 10 / 2 = 0.0625 per person. [A, no change], EE micro: SR (2/3 + 1/3) / 2 = 1/2,
  PD 1/3, one active action of two, G_A 0.0625, G_NA 0 (the no-change slot moves nobody).
  B = x1 := 3 (jump, gate x1 only, value 1/3: level 1 + (4/3) / 2 x 3) is state S's action 1:
  [A, B]: SR 2/3, PD 0, both active, G_A = (0.0625 + 1/6) / 2.
"""

from __future__ import annotations

import warnings

import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env
from gymnasium.vector import AutoresetMode
from six_people import FEATURES, NO_CHANGE, SumModel, problem

from distributed_recourse.data.schema import FeatureSpec
from distributed_recourse.env import ProposalEnv, RecourseEnv, standalone_search
from distributed_recourse.recourse.metrics import GroupTally

TO_S = [(0.0, 3.0)] * 4 + [(3.0, 1.0)] * 3
S = [[1.2, 0.0], [0.0, 3.0]]
G_A_S = (0.06 + 1 / 6) / 2
TALLY_S = {"people": [3, 3], "flipped_any": [2, 2], "flipped_best": [2, 1], "effective": [2, 0],
           "n_actions": 2}
NOOP = (1.0, 0.0)
"""Entry (action 0, x1), a1 = 0: an ord entry moves by sign(a1), so nothing moves."""


def make_env(scope: str = "c0", model=None, **config) -> RecourseEnv:
    weights = {"n_actions": 2, **config.pop("weights", {})}
    env = RecourseEnv({"problem": problem(scope, model), "weights": weights, **config})
    env.reset()
    return env


def run(env: RecourseEnv, actions) -> list[tuple]:
    return [env.step(np.array(a, dtype=np.float32)) for a in actions]


# ---------------------------------------------------------------- spaces and the initial state
def test_spaces_and_initial_state():
    model = SumModel()
    env = make_env(model=model)
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
    # the set that changes nothing needs no model call, and its search starts empty
    assert model.calls == 0 and env.search.model_calls == 0
    assert env.search.steps == 0 and env.search.archived == 0 and len(env.search.pool) == 0


def test_action_bounds_follow_n_actions_and_step_size():
    env = make_env(weights={"n_actions": 3, "step_size": 2.0})
    assert env.observation_space.shape == (6,)
    np.testing.assert_array_equal(env.action_space.low, [0.0, -2.0])
    np.testing.assert_array_equal(env.action_space.high, [5.0, 2.0])


def test_spaces_without_a_problem_and_attached_later():
    env = RecourseEnv({"n_features": 2, "weights": {"n_actions": 3}})
    assert env.search is None
    assert env.observation_space.shape == (6,)
    np.testing.assert_array_equal(env.action_space.high, [5.0, 3.0])
    search = standalone_search({"problem": problem(), "weights": {"n_actions": 3}})
    env.attach(search)
    obs, _ = env.reset()
    np.testing.assert_array_equal(obs, [0.0, -1.0] * 3)
    env.step(np.array([0.0, 3.0], dtype=np.float32))
    assert search.steps == 1 and search.model_calls == 1


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
    features = (FeatureSpec("n", 0, "con", 0.0, 40.0, integer=True), FEATURES[1])
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
EE_S = 50 * (1.1 * (2 / 3) + 2 / 2 - 0.0) - 50 * (0.8 * 0.0 + 1.0 * G_A_S)


@pytest.mark.parametrize(
    "weights, expected, sr, pd",
    [
        ({"reward": "EE"}, EE_S, 2 / 3, 0.0),
        ({"reward": "EE", "effectiveness": "macro"},
         50 * (1.1 * 0.5 + 2 / 2 - 1 / 3) - 50 * (0.8 * 0.0 + 1.0 * G_A_S), 0.5, 1 / 3),
        ({"reward": "ECR", "effectiveness": "macro"},
         50 * (2.5 * 1.0 + 2.5 * 0.0 + 2 / 2 - 1.0) - 50 * (0.8 * 0.0 + 1.0 * G_A_S), 0.5, 1 / 3),
        ({"reward": "EE-ECR"}, EE_S + 50 * (1.5 * 1.0 + 1.5 * 0.0 - 1.0), 2 / 3, 0.0),
    ],
)
def test_step_rewards_on_state_s(weights, expected, sr, pd):
    env = make_env(weights=weights)
    *_, (obs, r, terminated, truncated, info) = run(env, TO_S)
    np.testing.assert_allclose(env.state, S)
    np.testing.assert_allclose(obs, [0.12, -1.0, 0.0, 0.5], atol=1e-6)
    i, j = env.search.evaluate(env.state)
    np.testing.assert_allclose(env.search.pool.gower[[i, j]], [0.06, 1 / 6])
    assert r == pytest.approx(expected)
    assert (terminated, truncated) == (False, False)
    assert info["sr"] == pytest.approx(sr)
    assert info["pd"] == pytest.approx(pd)
    assert info["ecr_gap"] == pytest.approx(1.0)
    assert info["archived"] == 0
    assert env.search.report()["entries"] == []
    assert env.search.steps == 7


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
    search = env.search
    results = run(env, TO_S)
    assert [res[2] for res in results] == [False] * 6 + [True]
    assert [res[3] for res in results] == [False] * 7
    _, r, terminated, truncated, info = results[-1]
    assert r == pytest.approx(EE_S + 1000)
    assert info["archived"] == search.archived == 1
    entries = search.report()["entries"]
    assert len(entries) == 1
    entry = entries[0]
    assert entry["scope"] == "c0"
    assert entry["SR"] == pytest.approx(2 / 3)
    assert entry["PD"] == pytest.approx(0.0)
    assert entry["ECR_gap"] == pytest.approx(1.0)
    assert entry["reward"] == pytest.approx(r - 1000)  # the reward's level, without the bonus
    assert entry["step"] == 7
    assert entry["model_calls"] == 7
    assert entry["n_active"] == 2
    assert entry["gower_active"] == pytest.approx(G_A_S)
    assert entry["gower_nonactive"] == 0.0
    np.testing.assert_allclose(entry["set"], S)
    assert len(entry["actions"]) == 2
    assert entry["actions"][0].keys() == {"x0"}
    assert entry["actions"][0]["x0"] == pytest.approx(1.2)
    assert entry["actions"][1] == {"x1": 3.0}
    assert entry["tally"] == TALLY_S
    assert entry["effectiveness"] == pytest.approx({"g0": 2 / 3, "g1": 2 / 3})
    assert entry["effective_actions"] == {"g0": 2, "g1": 0}
    # the done set is the search's best set
    np.testing.assert_allclose(search.best_actions, S)

    # the same set again, in a new episode: done again, not archived twice
    env.reset()
    *_, (_, r2, terminated2, _, info2) = run(env, TO_S)
    assert terminated2 is True
    assert r2 == pytest.approx(r)
    assert info2["archived"] == 1
    # nor in the other order of its actions
    reached = env.state.copy()
    env.state[:] = reached[::-1]
    _, _, terminated_swapped, _, info_swapped = env.step(np.array(NOOP, dtype=np.float32))
    assert terminated_swapped is True and info_swapped["archived"] == 1
    env.state[:] = reached
    assert search.report()["entries"] == []

    # a different successful set (x1 := 4 flips p0, p1, p3, p5: micro still 2/3 each) is archived
    _, _, terminated3, _, info3 = env.step(np.array([3.0, 1.0], dtype=np.float32))
    assert terminated3 is True
    assert info3["archived"] == 2
    (new,) = search.report()["entries"]
    np.testing.assert_allclose(new["set"], [[1.2, 0.0], [0.0, 4.0]])
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
    (entry,) = env.search.report()["entries"]
    assert entry["tally"]["effective"] == [1, 1]


def test_ee_ecr_done_needs_both():
    # phi 0.3, done_sr 0.6. At step 4 ECR holds (as in test_ecr_done) but PD = 1/3;
    # at state S both hold: a = (1, 1), gap 0, SR 2/3, PD 0.
    env = make_env(weights={"reward": "EE-ECR", "phi": 0.3, "done_sr": 0.6})
    results = run(env, TO_S)
    assert [res[2] for res in results] == [False] * 6 + [True]
    assert results[-1][1] == pytest.approx(EE_S + 50 * (1.5 * 1.0 + 1.5 * 1.0 - 0.0) + 1000)


def test_the_search_keeps_the_best_successful_set():
    # done_sr 0.6: state S is done; S with x1 := 4 is done too but its Gower is larger
    # (|4 - x1| / 3: 1, 2/3, 1/3, 1/3, 2/3, 1 -> 1/3 per person), so its key is lower
    env = make_env(weights={"reward": "EE", "done_sr": 0.6})
    search = env.search
    run(env, TO_S[:6])
    np.testing.assert_array_equal(search.best_actions, [NO_CHANGE, NO_CHANGE])  # nothing done yet
    run(env, TO_S[6:])
    np.testing.assert_allclose(search.best_actions, S)
    assert search.key(search.best) == pytest.approx(EE_S + 1000)
    _, r_worse, done, _, _ = env.step(np.array([3.0, 1.0], dtype=np.float32))
    assert done and r_worse < EE_S + 1000
    assert search.archived == 2
    np.testing.assert_allclose(search.best_actions, S)


def test_two_environments_on_one_search_share_its_archive():
    search = standalone_search({"problem": problem(),
                                "weights": {"n_actions": 2, "reward": "EE", "done_sr": 0.6}})
    envs = [RecourseEnv({"n_features": 2, "weights": {"n_actions": 2}}) for _ in range(2)]
    for env in envs:
        env.attach(search)
        env.reset()
    run(envs[0], TO_S)
    assert search.archived == 1 and search.model_calls == 7
    *_, (_, _, done, _, info) = run(envs[1], TO_S)
    # the second environment finds the same set: no new model call, not archived again
    assert done and info["archived"] == 1
    assert search.model_calls == 7 and search.steps == 14
    assert len(search.report()["entries"]) == 1


# ---------------------------------------------------------------- truncation
def test_truncation_waits_for_the_archive_then_caps():
    weights = {"reward": "EE", "done_sr": 0.6, "max_episode_steps": 3,
               "truncate_after_archived": 1, "episode_step_limit": 8}
    # nothing archived: only the hard cap at 8 steps truncates
    env = make_env(weights=weights)
    assert [res[3] for res in run(env, [NOOP] * 8)] == [False] * 7 + [True]

    # once one set is archived, an episode truncates at max_episode_steps
    env = make_env(weights=weights)
    results = run(env, TO_S)
    # step 3: nothing archived yet; step 7 archives one set but is done, so not truncated
    assert [res[3] for res in results] == [False] * 7
    env.reset()
    assert [res[3] for res in run(env, [NOOP] * 3)] == [False, False, True]


def test_truncation_needs_enough_archived_sets():
    weights = {"reward": "EE", "done_sr": 0.6, "max_episode_steps": 3,
               "truncate_after_archived": 2, "episode_step_limit": 20}
    env = make_env(weights=weights)
    run(env, TO_S)
    assert env.search.archived == 1
    env.reset()
    # 1 archived set < 2: not truncated at 3
    assert [res[3] for res in run(env, [NOOP] * 4)] == [False] * 4
    # a second successful set (state S with x1 := 4) makes two
    env.reset()
    run(env, TO_S + [(3.0, 1.0)])
    assert env.search.archived == 2
    env.reset()
    assert [res[3] for res in run(env, [NOOP] * 3)] == [False, False, True]


def test_truncation_reads_the_searchs_archive():
    # sets archived through the search by anyone (another environment, a refresh) count
    weights = {"reward": "EE", "done_sr": 0.6, "max_episode_steps": 2,
               "truncate_after_archived": 1}
    env = make_env(weights=weights)
    first = env.search.evaluate(np.array(S))
    env.search.offer(first)
    assert env.search.archived == 1
    assert [res[3] for res in run(env, [NOOP] * 2)] == [False, True]


# ---------------------------------------------------------------- cost: model calls and the cache
def test_model_calls_and_cache():
    model = SumModel()
    env = make_env(model=model)
    run(env, TO_S)  # seven distinct new actions, one model call each
    assert env.search.model_calls == 7 and model.calls == 7
    # steps that change nothing make no call: ord a1 = 0, ord below the sentinel, con at its end
    run(env, [(1.0, 0.0), (1.0, -3.0), (3.0, 0.0)])
    assert env.search.model_calls == 7 and model.calls == 7
    env.state[1, 0] = 10.0
    run(env, [(3.0, 0.0)])  # action 1 is new (x0 + 10, x1 := 3): one call
    assert model.calls == 8
    run(env, [(2.0, 3.0)])  # already at 10: no change
    assert env.search.model_calls == 8 and model.calls == 8
    # revisiting a set hits the cache: reset and replay
    env.reset()
    results = run(env, TO_S)
    assert env.search.model_calls == 8 and model.calls == 8
    # the default reward is EE-ECR micro
    assert results[-1][1] == pytest.approx(EE_S + 50 * (1.5 * 1.0 + 1.5 * 0.0 - 1.0))
    # back and forth on one entry: x1 := 4 is new, back to 3 is cached
    run(env, [(3.0, 1.0), (3.0, -1.0), (3.0, 1.0)])
    assert env.search.model_calls == 9 and model.calls == 9
    assert model.rows == 9 * 6  # each call predicts the six people once
    assert env.search.steps == 7 + 3 + 1 + 1 + 7 + 3


def test_cache_evicts_least_recently_used():
    model = SumModel()
    env = make_env(model=model, cache_size=2)
    up, down = (1.0, 1.0), (1.0, -1.0)  # action 0's x1 target
    run(env, [up, up, up])  # x1 := 1, 2, 3: three calls; the cache keeps {2, 3}
    assert model.calls == 3
    run(env, [down])  # back to 2: cached, now the most recent: {3, 2}
    assert model.calls == 3
    run(env, [down])  # 1 was evicted: called again, evicting 3 (least recent): {2, 1}
    assert model.calls == 4
    run(env, [up])  # 2 is still cached (first in, but used since: not first out)
    assert model.calls == 4
    run(env, [up])  # 3 was evicted
    assert model.calls == 5
    # the outcome read back from the cache: x1 := 2 flips p0 only
    run(env, [down])
    assert model.calls == 5
    i, _ = env.search.evaluate(env.state)
    np.testing.assert_array_equal(env.search.pool.masks[i], [1, 0, 0, 0, 0, 0])


# ---------------------------------------------------------------- hybrid fairness
OTHER_TALLY = {"people": [2, 4], "flipped_any": [2, 1], "flipped_best": [1, 1], "effective": [1, 0],
               "n_actions": 2}
# pooled with TALLY_S: people (5, 7), flipped_any (4, 3), flipped_best (3, 2), effective (3, 0),
# N 4: micro p = (4/5, 3/7), macro p = (3/5, 2/7), a = (3/4, 0/4)


def hybrid_env(weights: dict, others: dict | None = OTHER_TALLY) -> RecourseEnv:
    env = make_env(weights=weights, hybrid=True)
    env.search.set_others(GroupTally.from_dict(others) if others else None)
    return env


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
    env = hybrid_env(weights)
    *_, (_, r, terminated, _, info) = run(env, TO_S)
    assert info["sr"] == pytest.approx(sr)  # the scope's own
    assert info["pd"] == pytest.approx(pd)  # the population's
    assert info["ecr_gap"] == pytest.approx(gap)
    assert r == pytest.approx(expected)
    assert terminated is False
    # the same scope alone (not hybrid, even given the others' tally) uses its own group terms
    alone = make_env(weights=weights)
    alone.search.set_others(GroupTally.from_dict(OTHER_TALLY))
    *_, (_, _, _, _, info_alone) = run(alone, TO_S)
    assert info_alone["ecr_gap"] == pytest.approx(1.0)
    assert info_alone["pd"] == pytest.approx(1 / 3 if weights.get("effectiveness") == "macro" else 0.0)


def test_hybrid_before_any_tally_uses_the_scopes_own_terms():
    hybrid = hybrid_env({"reward": "EE-ECR"}, others=None)
    alone = make_env(weights={"reward": "EE-ECR"})
    for (_, r1, *_, i1), (_, r2, *_, i2) in zip(run(hybrid, TO_S), run(alone, TO_S), strict=True):
        assert r1 == pytest.approx(r2) and i1 == i2


def test_hybrid_done_uses_the_pooled_pd():
    # done_sr 0.6: alone, state S is done (PD 0); pooled PD 4/5 - 3/7 is not
    env = hybrid_env({"reward": "EE", "done_sr": 0.6})
    assert [res[2] for res in run(env, TO_S)] == [False] * 7
    assert env.search.archived == 0
    # the engine sets the others' tally once per round: a new one changes the next step
    apart = {"people": [2, 4], "flipped_any": [1, 3], "flipped_best": [1, 3],
             "effective": [0, 1], "n_actions": 2}  # pooled micro p (3/5, 5/7): PD 0.114 > 0.09
    env.search.set_others(GroupTally.from_dict(apart))
    assert run(env, [NOOP])[0][2] is False
    level = {**apart, "people": [3, 3], "flipped_any": [2, 2]}  # pooled (4/6, 4/6): PD 0
    env.search.set_others(GroupTally.from_dict(level))
    _, _, done, _, info = run(env, [NOOP])[0]
    assert done and info["pd"] == pytest.approx(0.0) and env.search.archived == 1


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


# ================================================================ the proposal environment
GATE_X0, GATE_X1 = [1.0, -1.0], [-1.0, 1.0]
MOVE, JUMP = [-1.0], [1.0]  # the last coordinate: a move of the slot's action, or a fresh one
TO_A = GATE_X0 + [1.0, 0.0] + MOVE  # x0 + 0.125 x 20 / 2 = +1.25
TO_B = GATE_X1 + [0.0, 1 / 3] + JUMP  # x1 := 3, x0 unchanged
DOWN_X0 = GATE_X0 + [-0.5, 0.0] + MOVE  # x0 - 2.5 / sqrt(2)
DOWN = -2.5 * 2**-0.5
STAY = GATE_X1 + [0.0, -1.0] + MOVE  # x1 down: at its sentinel in both slots, nothing moves
KEY_A = 50 * (1.1 * 0.5 + 1 / 2 - 1 / 3) - 50 * 0.0625
KEY_AB = 50 * (1.1 * (2 / 3) + 2 / 2 - 0.0) - 50 * (0.0625 + 1 / 6) / 2


def proposal_env(model=None, num_envs: int = 1, **config) -> ProposalEnv:
    weights = {"n_actions": 2, "reward": "EE", **config.pop("weights", {})}
    return ProposalEnv({"problem": problem(model=model), "weights": weights,
                        "num_envs": num_envs, "first_step": 0.125, "episode_length": 4, **config})


def step(env: ProposalEnv, *proposals):
    return env.step(np.array(proposals, dtype=np.float32))


def test_proposal_spaces():
    env = proposal_env(num_envs=3)
    # slot one-hot (N), per group own and pooled effectiveness and choice (3k), the set's
    # actions (N m), the slot's steps (m), the episode's progress (1)
    assert env.single_observation_space.shape == (2 + 3 * 2 + 2 * 2 + 2 + 1,)
    assert env.single_action_space.shape == (5,)  # per feature a gate and a step, and the jump
    assert env.observation_space.shape == (3, 15) and env.action_space.shape == (3, 5)
    assert env.observation_space.dtype == env.action_space.dtype == np.float32
    np.testing.assert_array_equal(env.single_action_space.low, [-1.0] * 5)
    np.testing.assert_array_equal(env.single_action_space.high, [1.0] * 5)
    assert env.metadata["autoreset_mode"] == AutoresetMode.NEXT_STEP
    # the spaces without a problem (the trainer attaches the scope's search later)
    bare = ProposalEnv({"n_features": 3, "n_groups": 4, "weights": {"n_actions": 5}})
    assert bare.single_observation_space.shape == (5 + 12 + 15 + 3 + 1,)
    assert bare.single_action_space.shape == (7,) and bare.num_envs == 1
    assert bare.episode_length == 30 and bare.first_step == 0.5  # 6 N, the coordinate search's


def test_proposal_reset_observes_the_searchs_best_set():
    env = proposal_env(num_envs=2)
    obs, info = env.reset()
    assert info == {} and obs.dtype == np.float32 and obs.shape == (2, 15)
    # slot 0; nobody flipped (own, pooled), no choice; no change: x0 0 -> 0, x1 sentinel -> -1;
    # the slot's steps at their first size -> 1; progress 0 of 4 -> -1
    np.testing.assert_array_equal(obs, [[1, 0, 0, 0, 0, 0, 0, 0, 0, -1, 0, -1, 1, 1, -1]] * 2)
    np.testing.assert_array_equal(env.working, [[NO_CHANGE, NO_CHANGE]] * 2)
    # a new episode starts at the best set the search has found so far (by any searcher)
    search = env.search
    search.offer(search.evaluate(np.array([[1.25, 0.0], NO_CHANGE])))
    obs, _ = env.reset()
    np.testing.assert_allclose(env.working, [[[1.25, 0.0], NO_CHANGE]] * 2)
    np.testing.assert_allclose(obs[0][2:9], [2 / 3, 1 / 3, 2 / 3, 1 / 3, 0.5, 0.0, 0.125])


def test_an_improving_proposal_replaces_the_slot_and_is_rewarded_by_the_improvement():
    model = SumModel()
    env = proposal_env(model=model, weights={"done_sr": 0.6})
    env.reset()
    obs, r, terminated, truncated, info = step(env, TO_A)
    np.testing.assert_allclose(env.working[0], [[1.25, 0.0], NO_CHANGE])
    assert r.shape == (1,) and r[0] == pytest.approx(KEY_A / 50)
    assert terminated.tolist() == [False] and truncated.tolist() == [False] and info == {}
    # slot 1 next; own and pooled p = (2/3, 1/3); A is effective for g0: a = (1/2, 0);
    # A's x0 1.25 on [-10, 10] -> 0.125; slot 1's steps 1; progress 1 of 4 -> -0.5
    np.testing.assert_allclose(obs[0], [0, 1, 2 / 3, 1 / 3, 2 / 3, 1 / 3, 0.5, 0, 0.125, -1, 0, -1,
                                        1, 1, -0.5], atol=1e-6)
    search = env.search
    assert (search.steps, search.model_calls, model.calls) == (1, 1, 1)
    assert search.archived == 0
    np.testing.assert_allclose(search.best_actions, [[1.25, 0.0], NO_CHANGE])  # offered

    # B in slot 1 makes [A, B], which meets the goal (SR 2/3 >= 0.6, PD 0): the bonus is part
    # of the improvement; the set is archived and becomes the search's best
    obs, r, *_ = step(env, TO_B)
    assert r[0] == pytest.approx((KEY_AB + 1000 - KEY_A) / 50)
    np.testing.assert_allclose(env.working[0], [[1.25, 0.0], [0.0, 3.0]])
    assert search.archived == 1
    np.testing.assert_allclose(search.best_actions, [[1.25, 0.0], [0.0, 3.0]])
    assert obs[0][:2].tolist() == [1, 0]  # back to slot 0


def test_a_proposal_that_does_not_help_gets_nothing_and_leaves_the_set():
    model = SumModel()
    env = proposal_env(model=model)
    env.reset()
    step(env, TO_A)
    step(env, STAY)  # slot 1: x1 is at its sentinel, the proposal is the slot's own action
    # slot 0: x0 1.25 - 1.77 flips nobody; [-0.52, no change] is worse than [A, no change]
    _, r, *_ = step(env, DOWN_X0)
    assert r[0] == 0.0
    np.testing.assert_allclose(env.working[0], [[1.25, 0.0], NO_CHANGE])
    # it was asked of the model all the same, and lands in the pool (the search learns of it)
    assert model.calls == 2 and env.search.steps == 3
    assert env.search.pool.find(np.array([1.25 + DOWN, 0.0])) is not None
    # the move of x0 in slot 0 did not help: its next steps are half as long, x1's in slot 1
    # too (the steps are the episode's own, per slot and feature)
    np.testing.assert_allclose(env.step_size, [[[0.0625, 0.125], [0.125, 0.0625]]])
    # a copy of another slot's action is no improvement either (it would count as a second
    # active action under micro)
    step(env, STAY)  # the episode's fourth proposal
    step(env, STAY)  # NEXT_STEP: episode 2 starts at the best set, [A, no change]
    step(env, STAY)  # slot 0 keeps A
    _, r, *_ = step(env, TO_A)  # slot 1: 0 + 1.25 = A, a copy of slot 0's
    assert r[0] == 0.0
    np.testing.assert_allclose(env.working[0], [[1.25, 0.0], NO_CHANGE])


def test_episodes_end_and_restart_at_the_searchs_best_set_on_the_next_step():
    env = proposal_env(weights={"done_sr": 0.6})
    env.reset()
    results = [step(env, a) for a in (TO_A, TO_B, DOWN_X0, STAY)]
    assert [res[2].tolist() for res in results] == [[False], [False], [False], [True]]
    assert [res[3].tolist() for res in results] == [[False]] * 4
    steps, calls = env.search.steps, env.search.model_calls
    assert steps == 4
    # NEXT_STEP autoreset: the action is ignored (even one that would improve the set), the
    # reward is 0 and the episode starts again at the search's best set
    env.search.offer(env.search.evaluate(np.array([[1.2, 0.0], [0.0, 3.0]])))  # better: Gower
    obs, r, terminated, truncated, _ = step(env, GATE_X0 + [0.125, 0.0] + MOVE)
    assert r.tolist() == [0.0] and terminated.tolist() == [False] and truncated.tolist() == [False]
    np.testing.assert_allclose(env.working[0], [[1.2, 0.0], [0.0, 3.0]])
    assert obs[0][:2].tolist() == [1, 0] and obs[0][-1] == -1.0
    assert env.search.steps == steps  # no proposal was made
    assert env.search.model_calls == calls + 1  # the offered set's new action, not the ignored one
    # the new episode runs its four steps again
    ends = [step(env, STAY)[2][0] for _ in range(4)]
    assert ends == [False, False, False, True]


def test_sub_environments_propose_in_one_model_call():
    model = SumModel()
    env = proposal_env(model=model, num_envs=3)
    env.reset()
    up = 2.5 * 2**-0.5  # x0 + 1.77 flips p0, p1, p3, p5: SR 2/3, PD 0, better than A
    _, r, *_ = step(env, TO_A, DOWN_X0, GATE_X0 + [0.5, 0.0] + MOVE)
    assert model.calls == 1 and env.search.model_calls == 3 and env.search.steps == 3
    assert model.rows == 3 * 6
    assert r[0] == pytest.approx(KEY_A / 50) and r[1] == 0.0 and r[2] > r[0]
    # each sub-environment keeps its own working set
    np.testing.assert_allclose(env.working[:, 0], [[1.25, 0.0], NO_CHANGE, [up, 0.0]])
    # a move that helped keeps its step, one that did not halves it, episode by episode
    np.testing.assert_allclose(env.step_size[:, 0, 0], [0.125, 0.0625, 0.125])
    # proposals seen before cost nothing; new proposals among them cost one call
    step(env, STAY, STAY, STAY)
    assert model.calls == 1
    step(env, TO_A, TO_B, TO_A)  # slot 0 again: 2.5, B on [no change], up + 1.25: all new
    assert model.calls == 2 and env.search.model_calls == 6


def test_a_jump_proposes_a_fresh_action_instead_of_a_move():
    env = proposal_env()
    env.reset()
    step(env, TO_A)
    # slot 1 with the jump: the point reads as `from_unit` (gate x0 only, value 0.5 -> 3/4 of
    # x0's change range [-10, 10] -> +5), not as a move of slot 1's action
    step(env, [1.0, -1.0, 0.5, 0.0] + JUMP)
    assert env.search.pool.find(np.array([5.0, 0.0])) is not None


def test_a_jump_takes_the_slot_even_when_worse_and_its_steps_start_over():
    env = proposal_env()
    env.reset()
    step(env, TO_A)
    step(env, STAY)
    step(env, DOWN_X0)  # fails: slot 0's x0 step halves
    assert env.step_size[0, 0, 0] == 0.0625
    step(env, STAY)
    step(env, STAY)  # NEXT_STEP: a new episode at the best set [A, no change], slot 0 next
    # a jump to x0 -> -5 (gate x0 only, value 1/4 of [-10, 10]) flips nobody: it takes slot 0
    # all the same, the reward is the key's loss, and the slot's steps start over
    _, r, *_ = step(env, [1.0, -1.0, -0.5, 0.0] + JUMP)
    np.testing.assert_allclose(env.working[0], [[-5.0, 0.0], NO_CHANGE])
    search = env.search
    worse = search.key(search.evaluate(np.array([[-5.0, 0.0], NO_CHANGE])))
    assert r[0] == pytest.approx((worse - KEY_A) / 50) and r[0] < 0
    np.testing.assert_allclose(env.step_size[0, 0], [0.125, 0.125])
    # the search keeps its best set: a restart never loses what was found
    np.testing.assert_allclose(env.search.best_actions, [[1.25, 0.0], NO_CHANGE])


def test_proposal_env_hybrid_observes_own_and_pooled_effectiveness():
    env = proposal_env(hybrid=True)
    env.search.set_others(GroupTally.from_dict(OTHER_TALLY))
    env.reset()
    obs, r, *_ = step(env, TO_A)
    # own p (2/3, 1/3); pooled flipped_any (2 + 2, 1 + 1) of (5, 7); effective (1 + 1, 0) of 4
    np.testing.assert_allclose(obs[0][2:8], [2 / 3, 1 / 3, 4 / 5, 2 / 7, 0.5, 0.0], atol=1e-6)
    # the reward uses the scope's SR and the population's PD, before (nobody flipped here:
    # pooled p (2/5, 1/7)) and after
    before = 50 * (0.0 - (2 / 5 - 1 / 7))
    after = 50 * (1.1 * 0.5 + 1 / 2 - (4 / 5 - 2 / 7)) - 50 * 0.0625
    assert r[0] == pytest.approx((after - before) / 50)


def test_proposal_env_behaves_as_a_vector_env():
    env = proposal_env(num_envs=3, seed=5, weights={"reward": "EE-ECR"})
    obs, _ = env.reset(seed=5)
    assert env.observation_space.contains(obs)
    ends = []
    for _ in range(14):
        actions = env.action_space.sample()
        assert env.action_space.contains(actions)
        obs, r, terminated, truncated, info = env.step(actions)
        assert env.observation_space.contains(obs)
        assert r.shape == (3,)
        moves = actions[:, -1] <= 1.0 - 2.0 * env.jump_share
        assert np.all(r[moves] >= 0.0)  # a move is kept only when it helps; a jump may lose
        assert terminated.dtype == truncated.dtype == bool
        assert terminated.shape == truncated.shape == (3,) and not truncated.any()
        assert isinstance(info, dict)
        ends.append(bool(terminated.all()))
    # four proposals an episode, then one step to reset: episodes end at steps 4, 9 and 14
    assert [i + 1 for i, end in enumerate(ends) if end] == [4, 9, 14]
    assert env.search.steps == 12 * 3
    # every improvement of a working set was offered to the search: none beats its best set
    assert all(env.search.key(env.search.evaluate(w)) <= env.search.key(env.search.best) + 1e-9
               for w in env.working)


def test_proposal_env_same_seed_same_samples():
    def samples(seed):
        env = proposal_env(num_envs=2, seed=seed)
        return np.array([env.action_space.sample() for _ in range(5)])

    np.testing.assert_array_equal(samples(3), samples(3))
    assert not np.array_equal(samples(3), samples(4))
