"""One scope's search state (recourse/search.py), the non-learned searches over it
(recourse/baselines.py) and the stop rule (recourse/stopping.py).

The hand-worked cases use the six people of six_people.py and the candidates of test_pool.py:
A = x0 + 1.2 (flips p0, p1, p3; Gower 0.06), B = x1 := 3 (p0, p1, p5; 1/6), C = x1 := 4
(p0, p1, p3, p5; 1/3), E = x0 + 3 (everyone; 0.15). With EE micro and done_sr 0.6:
  [A, B] meets the goal: SR 2/3, PD 0, G_A (0.06 + 1/6) / 2 -> 50 (1.1 x 2/3 + 1) - 50 G_A.
  [A, C] meets it too, with a larger Gower.
  [E, A], the best pair there is: SR 1, PD 0, G_A (0.15 + 0.06) / 2 -> 50 (1.1 + 1 - 0.105).
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
from six_people import FEATURES, SumModel, X, problem
from three_features import Linear, linear_search

from distributed_recourse.config import ConfigError, RunConfig
from distributed_recourse.engine import stop_rule
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.archive import archive_entry, selection_key
from distributed_recourse.recourse.baselines import CoordinateSearch, RandomSearch
from distributed_recourse.recourse.evaluator import ScopeEvaluator
from distributed_recourse.recourse.metrics import GroupTally
from distributed_recourse.recourse.pool import NO_CHANGE, SelectionObjective
from distributed_recourse.recourse.rewards import Goal, RewardWeights
from distributed_recourse.recourse.search import ScopeSearch
from distributed_recourse.recourse.stopping import (
    BUDGET_ARCHIVE,
    BUDGET_CALLS,
    BUDGET_STEPS,
    BUDGET_TIME,
    GOAL_MET,
    STALLED,
    Progress,
    StopRule,
)
from distributed_recourse.stats import StatsHub

A, B, C, E = [1.2, 0.0], [0.0, 3.0], [0.0, 4.0], [3.0, 0.0]
KEEP = [0.0, 0.0]
KEY_AB = 50 * (1.1 * 2 / 3 + 1) - 50 * (0.06 + 1 / 6) / 2 + 1000
KEY_EA = 50 * (1.1 + 1 - (0.15 + 0.06) / 2) + 1000


def six_search(model=None, pool_size: int = 4096, pull: float = 0.0, hybrid: bool = False,
               **weights) -> ScopeSearch:
    w = RewardWeights(**{"n_actions": 2, "reward": "EE", "done_sr": 0.6, **weights})
    model = model or SumModel()
    evaluator = ScopeEvaluator.local(X, ActionSpace(FEATURES, w.n_actions), model.favourable)
    return ScopeSearch(problem(model=model), evaluator, w, Goal.reference(w), hybrid=hybrid,
                       pool_size=pool_size, pull=pull)


def as_set(actions) -> set[tuple[float, ...]]:
    return {tuple(np.round(a, 9)) for a in np.asarray(actions)}


# ---------------------------------------------------------------- evaluating and offering
def test_evaluate_asks_the_model_once_for_the_new_actions():
    model = SumModel()
    search = six_search(model)
    index = search.evaluate(np.array([A, KEEP, B, A]))
    assert index.tolist() == [0, NO_CHANGE, 1, 0]
    assert (model.calls, search.model_calls, len(search.pool)) == (1, 2, 2)
    assert search.evaluate(np.array([B, A])).tolist() == [1, 0]
    assert (model.calls, search.model_calls) == (1, 2)
    np.testing.assert_array_equal(search.actions_of(np.array([1, NO_CHANGE])), [B, KEEP])
    assert search.steps == 0  # steps are the searchers' to count


def test_an_action_doing_what_a_known_one_does_is_that_one():
    # x1 is ord 1..4 with no direction: a target always moves someone. Make it increase-only,
    # and "x1 at least 1" changes nobody: A with it is A, and it alone is no change
    model = SumModel()
    search = six_search(model)
    up = (FEATURES[0], dataclasses.replace(FEATURES[1], direction="increase"))
    search.space = ActionSpace(up, 2)
    assert search.evaluate(np.array([[1.2, 1.0], [0.0, 1.0]])).tolist() == [0, NO_CHANGE]
    assert search.evaluate(np.array([A])).tolist() == [0]
    assert (model.calls, search.model_calls, len(search.pool)) == (1, 1, 1)
    np.testing.assert_array_equal(search.pool.actions[0], A)


def test_offer_archives_only_sets_meeting_the_goal_each_once_in_any_order():
    search = six_search()
    start = search.key(search.best)
    a_only = search.evaluate(np.array([A, KEEP]))
    search.offer(a_only)  # SR 1/2, PD 1/3: not a success, but better than no change
    assert search.archived == 0
    assert search.key(search.best) > start
    np.testing.assert_array_equal(search.best_actions, [A, KEEP])

    search.steps = 5
    search.offer(search.evaluate(np.array([A, B])))
    assert search.archived == 1
    assert search.key(search.best) == pytest.approx(KEY_AB)
    search.offer(search.evaluate(np.array([B, A])))  # the same set
    assert search.archived == 1
    search.offer(search.evaluate(np.array([A, C])))  # another success, but not the best
    assert search.archived == 2
    np.testing.assert_array_equal(search.best_actions, [A, B])
    search.offer(a_only)  # a worse set never replaces the best
    np.testing.assert_array_equal(search.best_actions, [A, B])

    report = search.report()
    assert [as_set(e["set"]) for e in report["entries"]] == [as_set([A, B]), as_set([A, C])]
    assert [e["step"] for e in report["entries"]] == [5, 5]
    assert report["key"] == pytest.approx(KEY_AB)
    assert report["best"]["met"] is True and report["best"]["set"] == [A, B]
    assert report["best"]["tally"] == {"people": [3, 3], "flipped_any": [2, 2],
                                       "flipped_best": [2, 1], "effective": [2, 0], "n_actions": 2}
    assert (report["steps"], report["model_calls"]) == (5, 3)
    # the report drains what it sent; the search still knows what it archived
    again = search.report()
    assert again["entries"] == [] and again["best"]["set"] == [A, B]
    search.offer(search.evaluate(np.array([C, A])))
    assert search.report()["entries"] == [] and search.archived == 2


def test_refresh_finds_the_best_set_among_every_action_evaluated():
    search = six_search()
    for action in (A, B, C, [0.3, 0.0], E, [1.5, 2.0], [0.0, 1.0]):  # none of them offered
        search.evaluate(np.array([action]))
    assert search.archived == 0
    np.testing.assert_array_equal(search.best_actions, [KEEP, KEEP])
    search.refresh()
    assert as_set(search.best_actions) == as_set([E, A])
    assert search.key(search.best) == pytest.approx(KEY_EA)
    # the best set meets the goal: it is offered and archived; and so is the pool's best set
    # under the selection rule: [E, C] has SR - PD 1 as well, and no ECR gap, where [E, A]
    # is an effective choice for g0 alone (A flips 2/3 of g0, 1/3 of g1; phi 0.6)
    assert search.archived == 2
    best, selected = search.report()["entries"]
    assert as_set(best["set"]) == as_set([E, A]) and best["ECR_gap"] == pytest.approx(0.5)
    assert as_set(selected["set"]) == as_set([E, C])
    assert (selected["SR"], selected["PD"], selected["ECR_gap"]) == (1.0, 0.0, 0.0)


def test_the_selection_objective_ranks_sets_as_the_selection_rule_does():
    search = six_search()
    for action in (A, B, C, E):
        search.evaluate(np.array([action]))
    objective = SelectionObjective(search.objective)
    entries = {}
    for pair in ([A, B], [A, C], [E, A], [E, C], [A, KEEP]):
        chosen = search.evaluate(np.array(pair))
        entries[str(pair)] = {**archive_entry("c0", search.space, np.array(pair),
                                              *search.score(chosen)[:2], ["g0", "g1"], 0, 0.0),
                              **search.scored(chosen).extras(0)}
        entries[str(pair)]["key"] = objective.key(search.pool, chosen)
    met = [e for name, e in entries.items() if name != str([A, KEEP])]  # SR 1/2: missed
    by_rule = sorted(met, key=selection_key, reverse=True)
    assert [e["key"] for e in by_rule] == sorted((e["key"] for e in met), reverse=True)
    assert by_rule[0]["set"] == [E, C]  # SR - PD 1, no gap: above [E, A]'s gap of 0.5
    assert entries[str([A, KEEP])]["key"] < min(e["key"] for e in met)


def test_evaluating_refreshes_the_best_set_every_sixteen_model_calls():
    search = six_search()
    for k in range(15):  # x0 + 0.1 ... + 1.5: the last ones flip p0, p1, p3 (and p5 at 1.5)
        search.evaluate(np.array([[0.1 * (k + 1), 0.0]]))
    np.testing.assert_array_equal(search.best_actions, [KEEP, KEEP])
    search.evaluate(np.array([E]))  # the 16th call
    assert as_set(search.best_actions) >= as_set([E])
    assert search.archived >= 1


def test_refresh_prunes_beyond_capacity_and_keeps_the_best():
    search = six_search(pool_size=3)
    for action in (A, B, C, [0.3, 0.0], E, [1.5, 2.0], [0.0, 1.0]):
        search.evaluate(np.array([action]))
    search.refresh()
    assert len(search.pool) == 3
    assert as_set(search.best_actions) == as_set([E, A])
    np.testing.assert_array_equal(search.actions_of(search.best), search.best_actions)
    assert search.key(search.best) == pytest.approx(KEY_EA)


def test_remembered_scores_are_forgotten_when_the_pool_is_renumbered_or_the_others_change():
    search = six_search(pool_size=3, hybrid=True)
    for action in (A, B, C, [0.3, 0.0], E, [1.5, 2.0], [0.0, 1.0]):
        search.evaluate(np.array([action]))
    chosen = np.array([0, 2])  # A and C, before the pool is pruned and renumbered
    before = search.key(chosen)
    search.refresh()  # prunes to A, B and E: index 2 now holds E
    np.testing.assert_array_equal(search.actions_of(chosen), [A, E])
    assert search.key(chosen) == pytest.approx(KEY_EA) and before != pytest.approx(KEY_EA)
    # the others' tally enters the group terms under hybrid fairness
    best = search.key(search.best)
    search.set_others(GroupTally([5, 5], [5, 0], [5, 0], [1, 0], 2))
    assert search.key(search.best) == pytest.approx(search.objective.key(search.pool, search.best))
    assert search.key(search.best) != pytest.approx(best)


def test_restore_continues_from_the_hubs_counters_and_archive():
    search = six_search()
    search.steps = 7
    search.offer(search.evaluate(np.array([A, B])))
    search.offer(search.evaluate(np.array([A, C])))
    entries = search.report()["entries"]
    state = search.state()

    model = SumModel()
    again = six_search(model)
    again.restore(state, steps=120, model_calls=40, archived=[np.array(e["set"]) for e in entries])
    assert (again.steps, again.model_calls, again.archived) == (120, 40, 2)
    np.testing.assert_array_equal(again.best_actions, [A, B])
    np.testing.assert_array_equal(again.pool.actions, search.pool.actions)
    np.testing.assert_array_equal(again.pool.masks, search.pool.masks)
    assert again.key(again.best) == pytest.approx(KEY_AB)
    assert model.calls == 0  # the pool comes back without asking the model
    # a set archived before the restart is not archived again, in any order
    again.offer(again.evaluate(np.array([C, A])))
    assert again.report()["entries"] == []
    # a new success is, with the counters going on from the hub's
    again.steps += 1
    again.offer(again.evaluate(np.array([E, A])))
    (entry,) = again.report()["entries"]
    assert entry["step"] == 121 and entry["model_calls"] > 40


# ---------------------------------------------------------------- the baselines
def run_baseline(kind, seed: int, steps: int = 300, rounds: int = 3, model=None):
    search = linear_search(model)
    searcher = kind(search, seed)
    for _ in range(rounds):
        searcher.run(steps // rounds)
        search.refresh()
    return search, searcher


@pytest.mark.parametrize("kind", [RandomSearch, CoordinateSearch])
def test_baselines_are_deterministic_under_a_seed(kind):
    first, _ = run_baseline(kind, seed=3, steps=150)
    second, _ = run_baseline(kind, seed=3, steps=150)
    np.testing.assert_array_equal(first.pool.actions, second.pool.actions)
    np.testing.assert_array_equal(first.best_actions, second.best_actions)
    assert first.model_calls == second.model_calls and first.archived == second.archived
    other, _ = run_baseline(kind, seed=4, steps=150)
    assert len(other.pool) != len(first.pool) or \
        not np.array_equal(other.pool.actions, first.pool.actions)


@pytest.mark.parametrize("kind", [RandomSearch, CoordinateSearch])
def test_baselines_spend_at_most_one_model_call_per_step(kind):
    model = Linear()
    search, _ = run_baseline(kind, seed=0, model=model)
    if kind is RandomSearch:
        assert search.steps == 300  # exactly the steps asked for
    else:  # at most one round of moves (up and down per feature) past them
        assert 300 <= search.steps <= 300 + 3 * 2 * search.space.n_features  # 3 calls of 100
    assert 0 < search.model_calls <= search.steps
    if kind is RandomSearch:
        # candidates are drawn 16 at a time and asked of the model in one call; most are new
        # (a repeat or a draw that changes nothing costs nothing)
        assert search.model_calls >= 0.6 * search.steps
        assert model.calls <= 3 * 7  # rounds of 100: six batches of 16 and one of 4
        assert model.calls * 8 < search.model_calls
    assert search.archived >= 1  # both find sets meeting the goal here
    assert search.key(search.best) > search.key(np.full(3, NO_CHANGE))


@pytest.mark.parametrize("kind", [RandomSearch, CoordinateSearch])
def test_a_restored_baseline_continues_as_if_never_stopped(kind):
    whole, _ = run_baseline(kind, seed=5, steps=200, rounds=2)
    half, searcher = run_baseline(kind, seed=5, steps=100, rounds=1)
    hub_counters = (half.steps, half.model_calls)
    search, state = half.state(), searcher.state()
    resumed = linear_search()
    resumed_searcher = kind(resumed, 99)  # another seed: the saved generator state wins
    resumed.restore(search, *hub_counters, archived=[])
    resumed_searcher.restore(state)
    resumed_searcher.run(100)
    resumed.refresh()
    np.testing.assert_array_equal(resumed.best_actions, whole.best_actions)
    assert resumed.steps == whole.steps >= 200
    assert as_set(resumed.pool.actions) == as_set(whole.pool.actions)


# ---------------------------------------------------------------- the stop rule
def progress(steps=1000, model_calls=900, improved_at=0, met=False, train_s=1.0, archived=0):
    return Progress(steps, model_calls, improved_at, met, train_s, archived)


def test_a_scope_that_is_done_stops_after_its_patience():
    rule = StopRule(patience=200, stall=1000)
    assert rule.reason(progress(steps=1199, improved_at=1000, met=True)) is None
    assert rule.reason(progress(steps=1200, improved_at=1000, met=True)) == f"{GOAL_MET} step 1,000"
    # the same quiet stretch without the goal is not enough
    assert rule.reason(progress(steps=1200, improved_at=1000, met=False)) is None


def test_a_stalled_scope_stops_goal_met_or_not():
    rule = StopRule(patience=200, stall=1000)
    assert rule.reason(progress(steps=1999, improved_at=1000)) is None
    assert rule.reason(progress(steps=2000, improved_at=1000)) == f"{STALLED} step 1,000"


def test_an_improving_scope_goes_on():
    rule = StopRule(patience=200, stall=1000)
    for steps in range(100, 20_000, 100):
        # goal met or not, it improved within the last 150 steps
        assert rule.reason(progress(steps=steps, improved_at=steps - 150, met=steps > 5000)) is None


@pytest.mark.parametrize("budget, field, value, reason", [
    ({"max_steps": 500}, "steps", 500, BUDGET_STEPS),
    ({"max_model_calls": 300}, "model_calls", 300, BUDGET_CALLS),
    ({"time_budget_s": 2.5}, "train_s", 2.5, BUDGET_TIME),
    ({"stop_archived": 4}, "archived", 4, BUDGET_ARCHIVE),
])
def test_each_budget_stops_a_scope(budget, field, value, reason):
    rule = StopRule(patience=10_000, stall=10_000, **budget)
    below = {"steps": 100, "model_calls": 50, "train_s": 0.5, "archived": 0}
    assert rule.reason(progress(**below, improved_at=90)) is None
    at = {**below, field: value}
    assert rule.reason(progress(**at, improved_at=at["steps"] - 10)) == reason
    # no budget, no stop
    far = {**below, field: value * 100}
    assert StopRule(patience=10_000, stall=10_000).reason(
        progress(**far, improved_at=far["steps"] - 10)) is None


def test_budgets_given_per_scope_reach_only_their_scope():
    # baselines compared "at equal model calls" get each scope's own calls of the learned run
    config = RunConfig.from_dict({"dataset": {"name": "alzheimer"},
                                  "train": {"max_model_calls": {"cluster-0": 300},
                                            "time_budget_s": 2.5}})
    assert stop_rule(config, "cluster-0").max_model_calls == 300
    assert stop_rule(config, "cluster-1").max_model_calls is None
    assert stop_rule(config, "cluster-1").time_budget_s == 2.5
    with pytest.raises(ConfigError, match=r"train.max_model_calls: expected a number >= 0"):
        RunConfig.from_dict({"dataset": {"name": "alzheimer"},
                             "train": {"max_model_calls": {"cluster-0": "many"}}})


def test_the_stop_rule_ends_a_real_search_that_is_done():
    # the rounds of the engine, without Ray: search, report to the hub, ask the rule
    search = linear_search()
    searcher = RandomSearch(search, 1)
    hub = StatsHub()
    hub.register("s", search.report()["best"]["tally"])
    rule = StopRule(patience=150, stall=600, max_steps=5000)
    reasons = []
    while not reasons or reasons[-1] is None:
        searcher.run(50)
        search.refresh()
        hub.record("s", {**search.report(), "train_s": 0.0, "node_id": None})
        reasons.append(rule.reason(hub.progress("s")))
    p = hub.progress("s")
    assert p.met and reasons[-1].startswith(GOAL_MET)
    assert p.steps - p.improved_at >= 150 and p.steps < 5000
    assert all(r is None for r in reasons[:-1])
