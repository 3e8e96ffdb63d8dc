"""What actions do to a population (recourse/evaluator.py): LocalOutcomes' one model call per
batch, and ScopeEvaluator's cache, batching and model-call count, on the six people of
six_people.py (A = x0 + 1.2 flips p0, p1, p3; B = x1 := 3 flips p0, p1, p5)."""

from __future__ import annotations

import numpy as np
from six_people import FEATURES, SumModel, X

from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.evaluator import LocalOutcomes, ScopeEvaluator

A, B, C, D = [1.2, 0.0], [0.0, 3.0], [0.0, 4.0], [0.3, 0.0]
SPACE = ActionSpace(FEATURES, 1)


class Recorder:
    """An `Outcomes` function that records the batches it is asked about."""

    def __init__(self) -> None:
        self.model = SumModel()
        self.local = LocalOutcomes(X, SPACE, self.model.favourable)
        self.batches: list[list[list[float]]] = []

    def __call__(self, actions: np.ndarray):
        self.batches.append(np.asarray(actions).tolist())
        return self.local(actions)


def test_local_outcomes_ask_the_model_once_per_batch():
    model = SumModel()
    flipped = LocalOutcomes(X, SPACE, model.favourable)(np.array([A, B, C]))
    assert model.calls == 1 and model.rows == 3 * 6
    np.testing.assert_array_equal(flipped.astype(int), [[1, 1, 0, 1, 0, 0], [1, 1, 0, 0, 0, 1],
                                                        [1, 1, 0, 1, 0, 1]])
    # the same as applying each action on its own (DESIGN.md section 3)
    outcome = M.evaluate_set(SPACE, X, np.array([A, B, C]), SumModel().favourable)
    np.testing.assert_array_equal(flipped, outcome.flipped)


def test_a_repeated_action_costs_no_model_call():
    compute = Recorder()
    evaluator = ScopeEvaluator(6, compute)
    mask = evaluator.outcome(np.array(A))
    assert evaluator.model_calls == 1 and len(compute.batches) == 1
    again = evaluator.outcome(np.array(A))
    assert evaluator.model_calls == 1 and len(compute.batches) == 1
    np.testing.assert_array_equal(again, mask)
    assert mask.dtype == bool and mask.shape == (6,)  # unpacked to the six people exactly


def test_new_actions_go_to_the_model_in_one_batch():
    compute = Recorder()
    evaluator = ScopeEvaluator(6, compute)
    evaluator.outcome(np.array(A))
    found = evaluator.outcomes(np.array([B, A, C, B, D]))
    # one call, with each new action once (A is cached, B is asked once)
    assert compute.batches == [[A], [B, C, D]]
    assert evaluator.model_calls == 4
    assert [f.astype(int).tolist() for f in found] == [
        [1, 1, 0, 0, 0, 1], [1, 1, 0, 1, 0, 0], [1, 1, 0, 1, 0, 1], [1, 1, 0, 0, 0, 1], [0] * 6]
    evaluator.outcomes(np.array([D, C]))
    assert len(compute.batches) == 2  # nothing new: no call at all


def test_the_cache_evicts_the_least_recently_used():
    compute = Recorder()
    evaluator = ScopeEvaluator(6, compute, cache_size=2)
    for action in (A, B, A, C):  # A used again after B: B is the least recent when C comes
        evaluator.outcome(np.array(action))
    assert compute.batches == [[A], [B], [C]]
    evaluator.outcome(np.array(A))  # still cached
    assert len(compute.batches) == 3
    evaluator.outcome(np.array(B))  # evicted
    assert compute.batches[-1] == [B]
    assert evaluator.model_calls == 4
    # a batch larger than the cache is answered in full, then the cache keeps the last two
    found = evaluator.outcomes(np.array([A, B, C, D]))
    assert [f.sum() for f in found] == [3, 3, 4, 0]
    assert compute.batches[-1] == [C, D]
    evaluator.outcomes(np.array([C, D]))
    assert compute.batches[-1] == [C, D] and len(compute.batches) == 5


def test_local_builds_the_evaluator_of_a_population():
    model = SumModel()
    evaluator = ScopeEvaluator.local(X, SPACE, model.favourable, cache_size=8)
    assert evaluator.n == 6 and evaluator.cache_size == 8
    evaluator.outcomes(np.array([A, B]))
    assert model.calls == 1 and evaluator.model_calls == 2
