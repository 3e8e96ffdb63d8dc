"""SAC on RLlib with its replay as arrays: every transition the environment made is replayed,
the learner trains on it, the acting policy is the learner's, and a restored search holds
what it saved."""

import numpy as np
import pytest
import torch
from three_features import linear_search

from distributed_recourse.config import RunConfig
from distributed_recourse.sac import SacSearch

SMALL = {"dataset": {"name": "alzheimer"}, "search": {"warm_start": False},
         "reward": {"reward": "EE-ECR", "n_actions": 3},  # as linear_search's
         "sac": {"num_envs": 4, "rollout_fragment_length": 4, "learning_starts": 32,
                 "batch_size": 32, "actor_hidden": [16], "critic_hidden": [16]}}


def weights(module) -> dict[str, torch.Tensor]:
    return {name: value.clone() for name, value in module.state_dict().items()}


@pytest.fixture
def sac(ray_session):
    searches = []

    def build(seed: int = 0) -> SacSearch:
        searches.append(SacSearch(linear_search(), RunConfig.from_dict(SMALL), seed))
        return searches[-1]

    yield build
    for search in searches:
        search.stop()


def test_every_transition_is_replayed_and_the_policy_acts_on_what_it_learned(sac):
    search = sac()
    acting = search.algorithm.env_runner.module  # inference only: the policy
    before = weights(acting)
    search.run(96)  # 6 training steps of 16 transitions; updates from the third on
    assert search.algorithm.replay.added == search.search.steps == 96
    learner = search.algorithm.learner_group._learner.module["default_policy"]
    trained = weights(learner)
    after = weights(acting)
    for name, value in after.items():  # synced after each update
        torch.testing.assert_close(value, trained[name])
    assert any(not torch.equal(value, before[name]) for name, value in after.items())


def test_a_restored_sac_search_holds_the_replay_and_policy_it_saved_and_goes_on(sac):
    saved = sac()
    saved.run(64)
    resumed = sac(seed=5)  # another seed: the saved state wins
    resumed.restore(saved.state())
    np.testing.assert_array_equal(resumed.algorithm.replay.sample(16)["obs"],
                                  saved.algorithm.replay.sample(16)["obs"])
    policy = weights(saved.algorithm.env_runner.module)
    for name, value in weights(resumed.algorithm.env_runner.module).items():
        torch.testing.assert_close(value, policy[name])
    resumed.run(32)
    assert resumed.algorithm.replay.added == 64 + 32
