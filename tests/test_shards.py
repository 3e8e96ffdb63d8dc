"""Sharded populations: the same search, with the people split over Ray actors."""

import numpy as np

from distributed_recourse.config import RunConfig
from distributed_recourse.env import RecourseEnv, ScopeProblem
from distributed_recourse.population import WHOLE, prepare
from distributed_recourse.recourse.evaluator import ActionCounts


def test_action_counts_add_up():
    a = ActionCounts(np.array([1, 2]), np.array([2, 2]), 0.5)
    b = ActionCounts(np.array([0, 3]), np.array([1, 4]), 0.25)
    total = a + b
    np.testing.assert_array_equal(total.flipped, [1, 5])
    np.testing.assert_array_equal(total.flipped_any, [3, 6])
    assert total.gower_sum == 0.75


def test_two_shards_give_the_same_search_as_one_process(ray_session):
    prepared = prepare(RunConfig.from_dict({"dataset": {"name": "alzheimer"},
                                            "model": {"params": {"n_estimators": 20}}}))
    scope = prepared.population.scope(WHOLE)
    problem = ScopeProblem(WHOLE, scope.X, scope.groups, scope.group_names,
                           prepared.model.space.actionable, prepared.model)
    actions = np.random.default_rng(3).uniform([0, -3], [11, 3], size=(60, 2))

    def trajectory(shards: int) -> list:
        env = RecourseEnv({"problem": problem, "shards": shards, "shard_resources": {"CPU": 0},
                           "weights": {"reward": "EE-ECR"}})
        env.reset(seed=0)
        observations, figures, ends = [], [], []
        for action in actions:
            obs, reward, done, truncated, info = env.step(action)
            observations.append(obs)
            figures.append((reward, info["sr"], info["pd"]))
            ends.append(done)
            if done or truncated:
                env.reset()
        return np.array(observations), np.array(figures), ends, env.model_calls

    local, sharded = trajectory(1), trajectory(2)
    np.testing.assert_array_equal(local[0], sharded[0])
    # Gower sums are added in another order across shards: equal to the last bits
    np.testing.assert_allclose(local[1], sharded[1], rtol=1e-12)
    assert local[2] == sharded[2]
    assert local[3] == sharded[3] > 0
