"""The statistics hub (plain Python, no Ray): the one owner of a run's search state. Per scope
the tally of its best set (pooled by the other scopes under hybrid fairness), the archive, the
best set and the counters the stop rule reads; snapshots for checkpoints."""

from __future__ import annotations

import json

import numpy as np
import pytest
from six_people import FEATURES, SumModel, X, problem
from three_features import FEATURES3, Linear, people

from distributed_recourse.engine import round_figures
from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.baselines import RandomSearch
from distributed_recourse.recourse.evaluator import ScopeEvaluator
from distributed_recourse.recourse.rewards import Goal, RewardWeights
from distributed_recourse.recourse.search import ScopeProblem, ScopeSearch
from distributed_recourse.recourse.stopping import BUDGET_STEPS, Progress, StopRule
from distributed_recourse.stats import StatsHub


def tally(people, flipped_any, flipped_best, effective, n_actions=2) -> dict:
    return {"people": people, "flipped_any": flipped_any, "flipped_best": flipped_best,
            "effective": effective, "n_actions": n_actions}


A = tally([3, 3], [1, 0], [1, 0], [0, 0])
B = tally([2, 4], [2, 1], [1, 1], [1, 0])
C = tally([5, 0], [4, 0], [3, 0], [2, 0])
NONE = {name: tally([p, q], [0, 0], [0, 0], [0, 0]) for name, (p, q) in
        {"a": (3, 3), "b": (2, 4), "c": (5, 0)}.items()}


def entry(scope, set_, sr, pd, gower, tally_, met=True, reward=0.0) -> dict:
    return {"scope": scope, "set": set_, "SR": sr, "PD": pd, "ECR_gap": 0.0, "gower_active": gower,
            "chosen_cost": gower, "tally": tally_, "reward": reward, "met": met}


def report(best: dict, key: float, steps: int, entries=(), model_calls=None, train_s=1.0,
           improved: bool = True) -> dict:
    """What a scope's trainer reports after a round (ScopeSearch.report + its own figures)."""
    return {"best": best, "key": key, "improved": improved, "entries": list(entries),
            "steps": steps, "model_calls": steps if model_calls is None else model_calls,
            "train_s": train_s, "node_id": "node-1", "shard_nodes": [], "handover": None}


# archived sets of scope b, each with its own tally
TB1 = tally([2, 4], [2, 3], [2, 3], [1, 1])
TB2 = tally([2, 4], [2, 4], [2, 4], [1, 1])
TB3 = tally([2, 4], [1, 3], [1, 3], [0, 1])
E1 = entry("b", [[1.0, 0.0]], 0.8, 0.1, 0.2, TB1, reward=50.0)  # SR - PD 0.7
E2 = entry("b", [[2.0, 0.0]], 0.9, 0.3, 0.1, TB2, reward=60.0)  # 0.6, nearest
E3 = entry("b", [[3.0, 0.0]], 0.75, 0.05, 0.15, TB3, reward=40.0)  # 0.7 (ties E1), nearer than E1


def hub_abc(**kwargs) -> StatsHub:
    hub = StatsHub(**kwargs)
    for scope in "abc":
        hub.register(scope, NONE[scope])
    return hub


def recorded_abc() -> StatsHub:
    """Each scope has reported one round: its best set's tally A, B or C."""
    hub = hub_abc()
    hub.record_round({"a": report(entry("a", [[0.0]], 1 / 6, 1 / 3, 0.1, A, met=False), 10.0, 100),
                      "b": report(entry("b", [[1.0, 0.0]], 0.8, 0.1, 0.2, B), 12.0, 80, [E1]),
                      "c": report(entry("c", [[5.0]], 0.8, 0.0, 0.3, C), 15.0, 120)}, 4.0)
    return hub


# ---------------------------------------------------------------- pooled tallies
def test_register_seeds_each_scopes_no_change_tally():
    hub = hub_abc()
    assert hub.tallies == NONE
    assert hub.archive == {"a": [], "b": [], "c": []}
    assert hub.counters["a"] == {"steps": 0, "model_calls": 0, "train_s": 0.0, "improved_at": 0,
                                 "key": float("-inf"), "stopped": None, "node_id": None,
                                 "shard_nodes": []}
    # pooled terms count everyone before any scope reports: b and c's people, nobody flipped
    assert hub.others("a") == tally([7, 4], [0, 0], [0, 0], [0, 0], 4)
    # registering again (a restored run's driver) keeps what the hub has
    hub.record("a", report(entry("a", [[0.0]], 0.1, 0.3, 0.1, A, met=False), 1.0, 10))
    hub.register("a", NONE["a"])
    assert hub.tallies["a"] == A and hub.counters["a"]["steps"] == 10


def test_others_pools_the_other_scopes_best_set_tallies():
    hub = recorded_abc()
    # B + C: people (7, 4), any (6, 1), best (4, 1), effective (3, 0), N 4
    assert hub.others("a") == tally([7, 4], [6, 1], [4, 1], [3, 0], 4)
    assert hub.others("b") == tally([8, 3], [5, 0], [4, 0], [2, 0], 4)  # A + C
    assert hub.others("c") == tally([5, 7], [3, 1], [2, 1], [1, 0], 4)  # A + B
    assert hub.others_all() == {s: hub.others(s) for s in "abc"}
    # a scope's tally is its best set's, not that of its best archived set (E1's is TB1)
    assert hub.tallies["b"] == B
    # a later round replaces it
    hub.record("b", report(entry("b", [[2.0, 0.0]], 0.9, 0.3, 0.1, TB2), 20.0, 160))
    assert hub.others("a") == tally([7, 4], [6, 4], [5, 4], [3, 1], 4)  # TB2 + C


def test_others_is_none_without_other_scopes():
    hub = StatsHub()
    assert hub.others("a") is None and hub.others_all() == {}
    hub.register("a", A)
    assert hub.others("a") is None and hub.others_all() == {"a": None}


def test_a_scope_that_has_stopped_still_serves_its_tally():
    hub = recorded_abc()
    hub.stop("a", "goal met, no better set since step 100")
    assert hub.status()["a"]["stopped"].startswith("goal met")
    # b and c go on; a reports no more, and its last best set's tally stays in the pool
    for rounds in range(3):
        hub.record_round({"b": report(entry("b", [[2.0, 0.0]], 0.9, 0.3, 0.1, TB2), 20.0 + rounds,
                                      200 + 100 * rounds),
                          "c": report(entry("c", [[5.0]], 0.8, 0.0, 0.3, C), 15.0, 220)}, 6.0)
    assert hub.others("b") == tally([8, 3], [5, 0], [4, 0], [2, 0], 4)  # A + C
    assert hub.others("c") == tally([5, 7], [3, 4], [3, 4], [1, 1], 4)  # A + TB2
    assert hub.counters["a"]["steps"] == 100 and hub.counters["b"]["steps"] == 400
    assert hub.rounds == 4 and hub.wall_s == 6.0


# ---------------------------------------------------------------- counters and progress
def test_record_takes_the_scopes_own_judgement_of_improvement():
    """Only the scope can tell (under one tally of the others) whether its best improved."""
    hub = hub_abc()
    best = entry("a", [[0.0]], 0.5, 0.1, 0.1, A, met=False)
    hub.record("a", report(best, 10.0, 100, improved=True))
    assert hub.counters["a"]["improved_at"] == 100
    hub.record("a", report(best, 10.0, 200, improved=False))
    hub.record("a", report(best, 99.0, 300, improved=False))  # a key raised by the others
    assert hub.counters["a"]["improved_at"] == 100
    assert hub.counters["a"]["steps"] == 300 and hub.counters["a"]["key"] == 99.0
    hub.record("a", report(best, 3.0, 500, improved=True))  # better, though others lowered it
    assert hub.counters["a"]["improved_at"] == 500


def test_progress_and_status_read_the_counters():
    hub = recorded_abc()
    hub.record("b", report(entry("b", [[1.0, 0.0]], 0.8, 0.1, 0.2, B), 12.0, 180, [E2],
                           model_calls=150, train_s=3.5, improved=False))
    assert hub.progress("b") == Progress(steps=180, model_calls=150, improved_at=80, met=True,
                                         train_s=3.5, archived=2)
    assert hub.progress("a").met is False and hub.progress("a").archived == 0
    status = hub.status()["b"]
    assert status == {"steps": 180, "model_calls": 150, "train_s": 3.5, "improved_at": 80,
                      "stopped": None, "node_id": "node-1", "shard_nodes": [], "handover": None,
                      "archived": 2, "SR": 0.8, "PD": 0.1, "ECR_gap": 0.0, "met": True}
    # the stop rule reads the hub's progress
    assert StopRule(patience=100, stall=1000).reason(hub.progress("b")) == \
        "goal met, no better set since step 80"
    assert StopRule(patience=100, stall=1000, max_steps=180).reason(hub.progress("a")) is None
    assert StopRule(patience=100, stall=1000, max_steps=100).reason(hub.progress("a")) == \
        BUDGET_STEPS


# ---------------------------------------------------------------- the archive
def test_duplicate_entries_are_archived_once():
    hub = hub_abc()
    hub.record("b", report(E2, 1.0, 1, [E1, E2]))
    hub.record("b", report(E2, 1.0, 2, [E1, dict(E2, reward=99.0)]))  # the same sets again
    assert [e["set"] for e in hub.archive["b"]] == [[[1.0, 0.0]], [[2.0, 0.0]]]
    assert hub.archive["b"][1]["reward"] == 60.0
    # the same set in another scope is another entry
    hub.record("a", report(E1, 1.0, 1, [dict(E1, scope="a")]))
    assert len(hub.archive["a"]) == 1
    # and a duplicate within one report counts once
    hub.record("c", report(E3, 1.0, 1, [dict(E3, scope="c"), dict(E3, scope="c")]))
    assert len(hub.archive["c"]) == 1


@pytest.mark.parametrize("selection, expected", [("sr_minus_pd", E3), ("gower", E2)])
def test_best_under_the_selection_rule(selection, expected):
    hub = hub_abc(selection=selection)
    assert hub.best("b") is None
    hub.record("b", report(E2, 1.0, 1, [E1, E2, E3]))
    # sr_minus_pd: E1 and E3 tie at 0.7, E3 is nearer; gower: E2 is nearest
    assert hub.best("b")["set"] == expected["set"]
    assert hub.best("z") is None


# ---------------------------------------------------------------- snapshots
def test_snapshot_round_trips_through_json():
    hub = recorded_abc()
    hub.record("b", report(entry("b", [[2.0, 0.0]], 0.9, 0.3, 0.1, TB2), 20.0, 160, [E2, E3]))
    hub.stop("c", "step budget")
    saved = json.dumps(hub.snapshot())  # as a checkpoint writes and reads it
    restored = StatsHub.from_snapshot(json.loads(saved))
    assert restored.snapshot() == hub.snapshot()
    assert restored.others_all() == hub.others_all()
    assert [restored.progress(s) for s in "abc"] == [hub.progress(s) for s in "abc"]
    assert restored.best("b") == hub.best("b")
    assert restored.status() == hub.status()
    # entries re-sent after the restart are not archived twice; new ones are
    new = entry("b", [[4.0, 0.0]], 0.95, 0.0, 0.1, TB2)
    restored.record("b", report(E2, 20.0, 170, [E1, E2, E3, new], improved=False))
    assert [e["set"] for e in restored.archive["b"]] == [E1["set"], E2["set"], E3["set"],
                                                          new["set"]]
    # the restored counters go on: the mark to beat is the checkpointed key
    assert restored.counters["b"]["improved_at"] == 160
    # an actor restores in place
    actor = StatsHub()
    actor.restore(json.loads(saved))
    assert actor.snapshot() == hub.snapshot() and actor.selection == "sr_minus_pd"
    actor.record("b", report(E2, 20.0, 180, [E3], improved=False))
    assert len(actor.archive["b"]) == 3


# ---------------------------------------------------------------- issue 9's hybrid test
def test_a_hybrid_run_whose_scopes_finish_at_different_times_pools_every_scopes_tally():
    """The engine's rounds without Ray: each active scope searches with the others' pooled
    tally fixed, reports to the hub, and stops by its budget (here 100, 250 and 400 steps). A
    stopped scope keeps serving its tally until the others finish."""
    X3 = people(90)
    groups = X3[:, 3].astype(int)
    members = {"a": np.arange(len(X3)) % 3 == 0, "b": np.arange(len(X3)) % 3 == 1,
               "c": np.arange(len(X3)) % 3 == 2}
    w = RewardWeights(reward="EE-ECR", n_actions=2)
    space = ActionSpace(FEATURES3, 2)
    searches, searchers = {}, {}
    hub = StatsHub()
    for i, (name, mask) in enumerate(members.items()):
        model = Linear()
        scope_problem = ScopeProblem(name, X3[mask], groups[mask], ["g0", "g1"], FEATURES3, model)
        search = ScopeSearch(scope_problem, ScopeEvaluator.local(X3[mask], space, model.favourable), w,
                             Goal.from_ceiling(1.0, 0.0), hybrid=True, pull=10.0)
        searches[name], searchers[name] = search, RandomSearch(search, seed=i)
        hub.register(name, search.report()["best"]["tally"])
    rules = {"a": StopRule(max_steps=100), "b": StopRule(max_steps=250),
             "c": StopRule(max_steps=400)}
    served: list[tuple[set, dict]] = []
    while True:
        status = hub.status()
        active = [s for s in searches if status[s]["stopped"] is None]
        if not active:
            break
        others = hub.others_all()
        reports = {}
        for name in active:
            served.append(({*searches} - {name}, others[name]))
            searches[name].set_others(M.GroupTally.from_dict(others[name]))
            searchers[name].run(50)
            searches[name].refresh()
            reports[name] = {**searches[name].report(), "train_s": 0.0, "node_id": None}
        hub.record_round(reports, 0.0)
        for name in active:
            reason = rules[name].reason(hub.progress(name))
            if reason:
                hub.stop(name, reason)
    status = hub.status()
    assert [status[s]["steps"] for s in "abc"] == [100, 250, 400]
    assert all(status[s]["stopped"] == BUDGET_STEPS for s in "abc")
    # every scope's tally in the hub is its final best set's own tally, measured from scratch
    final = {}
    for name, search in searches.items():
        flipped = M.evaluate_set(space, X3[members[name]], search.best_actions,
                                 search.problem.model.favourable).flipped
        final[name] = M.tally(flipped, groups[members[name]], 2, space.distinct(search.best_actions),
                              w.phi).to_dict()
        assert hub.tallies[name] == final[name]
    # the last rounds, with only c searching, pooled a's and b's tallies: all the people
    others, c_alone = served[-1]
    assert others == {"a", "b"}
    pooled = M.GroupTally.from_dict(final["a"]) + M.GroupTally.from_dict(final["b"])
    assert c_alone == pooled.to_dict()
    assert sum(c_alone["people"]) + members["c"].sum() == len(X3)
    # every round served each scope the pool of all the others, stopped ones included
    assert all(sum(t["people"]) == len(X3) - sum(members[s].sum() for s in searches if s not in o)
               for o, t in served)
    # and the population's figures pool all three
    figures = round_figures(status, hub.snapshot(), w.effectiveness)
    everyone = sum((M.GroupTally.from_dict(final[s]) for s in "bc"), M.GroupTally.from_dict(final["a"]))
    assert figures["SR"] == pytest.approx(M.mean_present(everyone.effectiveness("micro")))
    assert figures["steps"] == 750


def test_a_hybrid_scope_counts_as_improving_only_when_it_sets_a_record_of_its_own():
    # Scopes answering each other's moves can trade the same points back and forth for ever;
    # a scope improves when its best set beats, under one tally of the others, the one before
    # *and* every key it ever reported.
    w = RewardWeights(reward="EE", n_actions=2)
    model = SumModel()
    search = ScopeSearch(problem(model=model),
                         ScopeEvaluator.local(X, ActionSpace(FEATURES, 2), model.favourable), w,
                         Goal.from_ceiling(1.0, 0.0), hybrid=True, pull=10.0)
    hub = StatsHub()
    hub.register("c0", search.report()["best"]["tally"])
    fair = tally([10, 10], [8, 8], [8, 8], [1, 1])
    hub.register("c1", fair)

    def round_(steps: int, *candidates) -> None:
        search.set_others(M.GroupTally.from_dict(hub.others("c0")))
        for actions in candidates:
            search.offer(search.evaluate(np.array(actions)))
        search.steps = steps
        hub.record("c0", {**search.report(), "train_s": 0.0, "node_id": None})

    # round 1: the other scope is fair; c0 finds x0 + 1.2, x1 := 3, a record
    round_(100, [[1.2, 0.0], [0.0, 3.0]])
    assert hub.progress("c0").improved_at == 100
    record = search.key(search.best)
    # round 2: the other scope now favours g0 (c0's key falls); c0 answers with a better set
    # under it (x0 + 3 flips everyone), but below its record: not an improvement
    hub.record("c1", report(entry("c1", [[0.0]], 0.6, 0.8, 0.1, tally([10, 10], [10, 2], [10, 2],
                                                                     [1, 0])), 1.0, 100))
    search.set_others(M.GroupTally.from_dict(hub.others("c0")))
    before = search.key(search.best)
    round_(200, [[3.0, 0.0], [1.2, 0.0]])
    assert before < search.key(search.best) < record
    assert hub.progress("c0").improved_at == 100
    # round 3: the other scope is fair again; c0's key rises by the others' doing alone
    hub.record("c1", report(entry("c1", [[0.0]], 0.8, 0.0, 0.1, fair), 1.0, 200))
    round_(300)
    assert search.key(search.best) > record
    assert hub.progress("c0").improved_at == 100
