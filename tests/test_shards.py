"""Sharded populations (shards.py): the people split over real Ray actors give exactly what one
process gives, action by action and through a whole search."""

from __future__ import annotations

import numpy as np
import pytest

from distributed_recourse.population import WHOLE, prepare
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.baselines import RandomSearch
from distributed_recourse.recourse.evaluator import LocalOutcomes, ScopeEvaluator
from distributed_recourse.recourse.rewards import Goal, RewardWeights
from distributed_recourse.recourse.search import ScopeProblem, ScopeSearch
from distributed_recourse.shards import ShardedOutcomes


@pytest.fixture(scope="module")
def whole(tiny_config):
    """Every affected person of the tiny Alzheimer config, and its model."""
    prepared = prepare(tiny_config)
    scope = prepared.population.scope(WHOLE)
    return ScopeProblem(WHOLE, scope.X, scope.groups, scope.group_names,
                        prepared.model.space.actionable, prepared.model)


@pytest.fixture
def shards(ray_session, whole):
    space = ActionSpace(whole.features, 1)
    made = []

    def make(X: np.ndarray, k: int = 2) -> ShardedOutcomes:
        sharded = ShardedOutcomes(X, space, whole.model, [{"num_cpus": 0}] * k)
        made.append(sharded)
        return sharded

    yield make
    for sharded in made:
        for actor in sharded.actors:
            ray_session.kill(actor)


def test_two_shards_give_the_masks_of_one_process(whole, shards):
    X = whole.X[:-1] if len(whole.X) % 2 == 0 else whole.X  # an odd count: unequal shards
    space = ActionSpace(whole.features, 1)
    rng = np.random.default_rng(3)
    actions = np.vstack([space.no_change(),
                         space.from_unit(rng.uniform(-1, 1, (40, 2 * space.n_features)))])
    local_flipped = LocalOutcomes(X, space, whole.model.favourable)(actions)
    sharded = shards(X)
    flipped = sharded(actions)
    assert flipped.shape == (41, len(X)) and flipped.dtype == bool
    np.testing.assert_array_equal(flipped, local_flipped)
    assert 0 < flipped[1:].sum() < flipped[1:].size  # the actions do flip some, not all
    assert not flipped[0].any()  # no change: the affected stay affected
    nodes = sharded.nodes()
    assert len(nodes) == 2 and all(isinstance(n, str) and n for n in nodes)


def test_a_search_over_shards_is_the_search_in_one_process(whole, shards):
    w = RewardWeights(reward="EE-ECR", n_actions=3)
    space = ActionSpace(whole.features, w.n_actions)

    def search(compute) -> ScopeSearch:
        found = ScopeSearch(whole, ScopeEvaluator(len(whole.X), compute), w,
                            Goal.from_ceiling(1.0, 0.0), pull=10.0)
        searcher = RandomSearch(found, seed=11)
        for _ in range(2):
            searcher.run(48)
            found.refresh()
        return found

    local = search(LocalOutcomes(whole.X, space, whole.model.favourable))
    sharded = search(shards(whole.X))
    np.testing.assert_array_equal(sharded.best_actions, local.best_actions)
    np.testing.assert_array_equal(sharded.pool.masks, local.pool.masks)
    np.testing.assert_allclose(sharded.pool.gower, local.pool.gower, rtol=1e-12)
    assert sharded.model_calls == local.model_calls > 0
    assert [e["set"] for e in sharded.report()["entries"]] == \
        [e["set"] for e in local.report()["entries"]]
