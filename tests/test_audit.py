"""The FACTS audit: its measures on a set worked out by hand, the same numbers as aif360's own
FACTS functions on the same actions, correctness and costs, and `recourse audit` on a run folder."""

from __future__ import annotations

import functools
import json

import numpy as np
import pandas as pd
import pytest
import run_files
from sklearn.tree import DecisionTreeClassifier

from distributed_recourse.audit import (
    ECE,
    ECR,
    EE,
    EMR,
    EWB,
    audit_population,
    audit_sections,
    facts_measures,
    micro_measures,
)
from distributed_recourse.cli import main
from distributed_recourse.data.schema import FeatureSpec
from distributed_recourse.population import Population, prepare
from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.costs import GOWER, CostModel, action_costs


# ------------------------------------------------------------------ by hand
def test_facts_measures_by_hand():
    # g0: people 0..3, g1: people 4, 5. a2 repeats a0 (FACTS' list holds a0 and a1).
    # a0 flips g0 2/4, g1 1/2; a1 g0 2/4, g1 2/2. Group costs: a0 g0 0.1, g1 (0.2 + 0.2) / 2;
    # a1 g0 0.3, g1 (0.4 + 0.2) / 2 = 0.3.
    flipped = np.array([[1, 1, 0, 0, 1, 0], [0, 0, 1, 1, 1, 1], [1, 1, 0, 0, 1, 0]], dtype=bool)
    cost = np.array([[0.1] * 4 + [0.2, 0.2], [0.3] * 4 + [0.4, 0.2], [0.1] * 4 + [0.2, 0.2]])
    groups = np.array([0, 0, 0, 0, 1, 1])
    outcome = M.Outcome(flipped, cost, np.ones(flipped.shape, dtype=np.int64))
    measures, tally, cheapest = facts_measures(outcome, groups, 2, np.array([True, True, False]),
                                               cost, phi=0.5, budget=0.15)
    macro, micro = measures["macro"], measures["micro"]
    np.testing.assert_allclose(macro[EE].values, [0.5, 1.0])  # best single action
    np.testing.assert_array_equal(macro[ECR].values, [2, 2])  # a0, a1 flip >= 0.5 of both
    np.testing.assert_allclose(macro[EWB].values, [0.5, 0.0])  # g1: nothing within 0.15
    np.testing.assert_allclose(macro[ECE].values, [0.1, 0.2])  # cheapest flipping >= half
    assert macro[EE].gap == pytest.approx(0.5) and macro[ECE].gap == pytest.approx(0.1)
    # micro: each person's cheapest flipping action at its group cost:
    # 0.1, 0.1, 0.3, 0.3 | 0.2 (a0 beats a1's 0.3), 0.3
    np.testing.assert_allclose(cheapest, [0.1, 0.1, 0.3, 0.3, 0.2, 0.3])
    np.testing.assert_allclose(micro[EE].values, [1.0, 1.0])
    np.testing.assert_allclose(micro[EWB].values, [0.5, 0.0])
    np.testing.assert_allclose(micro[ECE].values, [0.1, 0.2])  # 2nd of 4, 1st of 2
    np.testing.assert_allclose(micro[EMR].values, [0.2, 0.25])
    assert micro[EMR].gap == pytest.approx(0.05)
    np.testing.assert_array_equal(tally.people, [4, 2])


# ------------------------------------------------------------------ a population by hand
class Inlier:
    """Plausible iff x0 <= 12."""

    def predict(self, X):
        return np.where(X[:, 0] <= 12, 1, -1)


def test_audit_population_pools_the_scopes():
    # One feature x0 (con 0..100); favourable iff x0 >= 10. cluster-0: x0 0 (g0), 5 (g1) under
    # {+10, +5}; cluster-1: x0 8 (g0), 9 (g1) under {+1, +2}. Gower costs: |change| / 100.
    # cluster-0: person 0 only by +10 (0.10), person 1 by +5 (0.05) or +10 -> 0.05.
    # cluster-1: person 2 only by +2 (0.02), person 3 by +1 (0.01) or +2 -> 0.01.
    spec = FeatureSpec("x0", 0, "con", 0.0, 100.0)
    space = ActionSpace([spec], 2)
    population = Population(np.array([[0.0], [5.0], [8.0], [9.0]]), np.array([0, 1, 0, 1]),
                            ["a", "b"], np.array([0, 0, 1, 1]), np.arange(4), np.ones(4, bool))
    sets = np.array([[[10.0], [5.0]], [[1.0], [2.0]]])
    audit = audit_population(space, CostModel((spec,), (GOWER,)), Inlier(), population,
                             ["cluster-0", "cluster-1"], sets, lambda X: X[:, 0] >= 10,
                             phi=0.5, budget=0.05)
    whole = audit["population"]
    assert whole["micro"][EE]["groups"] == {"a": 1.0, "b": 1.0}
    # micro costs at each action's group cost (one person per group and scope, so the same)
    assert whole["micro"][EMR]["groups"] == pytest.approx({"a": 0.06, "b": 0.03})
    assert whole["micro"][EWB]["groups"] == {"a": 0.5, "b": 1.0}  # a: 0.10 > 0.05
    assert whole["person"]["mean_cost"]["groups"] == pytest.approx({"a": 0.06, "b": 0.03})
    # counterfactuals 10, 10, 10, 10: all plausible (<= 12)
    assert whole["person"]["plausibility"]["groups"] == {"a": 1.0, "b": 1.0}
    # pooled macro choice: each scope's actions flipping >= half a group: cluster-0 a: +10;
    # b: +10 and +5; cluster-1 a: +2; b: +1 and +2 -> a 2, b 4.
    assert whole["macro"][ECR]["groups"] == {"a": 2.0, "b": 4.0}
    assert audit["scopes"]["cluster-0"]["macro"][ECE]["groups"] == pytest.approx(
        {"a": 0.10, "b": 0.05})
    json.dumps(audit, allow_nan=False)
    sections = audit_sections({**audit, "run": "r"})
    assert [s[0].split(": ")[1].split(" (")[0] for s in sections] == [
        "population", "cluster-0", "cluster-1"]
    assert sections[0][1] == ["measure", "viewpoint", "a", "b", "gap"]
    assert len(sections[0][2]) == 2 + 4 + 3  # macro, micro and person rows


# ------------------------------------------------------------------ against aif360
SPECS = (FeatureSpec("gain", 0, "con", 0.0, 100.0), FeatureSpec("hours", 1, "con", 0.0, 80.0),
         FeatureSpec("edu", 2, "ord", 1.0, 16.0, direction="increase", integer=True))
NAMES = ["g0", "g1", "g2"]


def random_scope(seed: int):
    """60 people of 3 groups, a depth-4 tree, 5 actions of which the last repeats the first."""
    rng = np.random.default_rng(seed)
    X = np.column_stack([rng.uniform(0, 60, 300), rng.uniform(0, 60, 300),
                         rng.integers(1, 13, 300)]).astype(np.float64)
    tree = DecisionTreeClassifier(max_depth=4, random_state=seed).fit(
        X, X[:, 0] + X[:, 1] + 4 * X[:, 2] > 110)
    favourable = tree.predict(X).astype(bool)
    X = X[~favourable][:60]
    groups = np.arange(len(X)) % 3
    space = ActionSpace(SPECS, 5)
    action_set = np.array([[rng.uniform(0, 40), rng.uniform(0, 20), rng.integers(1, 17)]
                           for _ in range(4)])
    action_set = space.clip(np.vstack([action_set, action_set[:1]]))
    return space, X, groups, action_set, lambda A: tree.predict(A).astype(bool)


class Flips:
    """The model FACTS asks: a row (person `id`, `action` j) is favourable iff j flips them."""

    def __init__(self, flipped: np.ndarray) -> None:
        self.flipped = flipped

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.flipped[X["action"].to_numpy(), X["id"].to_numpy()].astype(int)


def facts_lists(flipped: np.ndarray, groups: np.ndarray, group_cost: np.ndarray, actions):
    """FACTS' if-group of everyone: the macro lists (then, correctness, cost) per group that
    aif360's calculate_correctnesses gives, and the micro lists its cum_corr_costs gives."""
    from aif360.sklearn.detectors.facts.misc import calculate_correctnesses, cum_corr_costs
    from aif360.sklearn.detectors.facts.parameters import ParameterProxy
    from aif360.sklearn.detectors.facts.predicate import Predicate

    everyone = Predicate(["action"], [-1])
    thens = [Predicate(["action"], [int(j)]) for j in actions]
    affected = {g: pd.DataFrame({"id": np.flatnonzero(groups == i), "action": -1})
                for i, g in enumerate(NAMES)}
    model = Flips(flipped)
    correct = calculate_correctnesses([(everyone, then, dict.fromkeys(NAMES, 1.0)) for then in thens],
                                      affected, "group", model, verbose=False)
    macro, micro = {}, {}
    for i, g in enumerate(NAMES):
        params = ParameterProxy()
        params.setFeatureChange({"action": lambda _v1, v2, i=i: float(group_cost[v2, i])})
        pairs = [(then, c[g]) for (_, then, _, c) in correct]
        macro[g] = (1.0, [(then, cor, float(group_cost[then.values[0], i])) for then, cor in pairs])
        micro[g] = (1.0, cum_corr_costs(everyone, pairs, affected[g], model, params=params))
    return everyone, macro, micro


def facts_functions(phi: float, budget: float):
    from aif360.sklearn.detectors.facts import metrics as F

    return {
        EE: F.if_group_maximum_correctness,
        ECR: functools.partial(F.if_group_cost_recoursescount_correctness_threshold, cor_thres=phi),
        EWB: functools.partial(F.if_group_cost_max_correctness_cost_budget, cost_thres=budget),
        ECE: functools.partial(F.if_group_cost_min_change_correctness_threshold, cor_thres=phi),
        EMR: F.if_group_average_recourse_cost_conditional,
    }


def assert_same(ours, everyone, lists, function, key: str) -> None:
    from aif360.sklearn.detectors.facts.metrics import (
        calculate_if_subgroup_costs,
        max_intergroup_cost_diff,
    )

    theirs = np.array(list(calculate_if_subgroup_costs(everyone, lists, function).values()))
    if key == ECR:
        theirs = -theirs  # aif360 counts effective actions negated (a cost to minimise)
    if key == EWB:
        # nothing within budget: aif360 says inf, the audit 0 (nobody has recourse within it)
        theirs = np.where(np.isinf(theirs), 0.0, theirs)
    np.testing.assert_allclose(ours.values, theirs, rtol=0, atol=1e-12, err_msg=key)
    gap = max_intergroup_cost_diff(everyone, lists, function)
    if np.isfinite(gap) and key != EWB:
        assert abs(ours.gap - abs(gap)) <= 1e-12, key


# budgets and phis where groups differ; (1, 0.7): no action reaches 0.7 of a group (cost inf);
# (0, 0.5, 0.01): nothing within budget (aif360's inf against the audit's 0)
@pytest.mark.parametrize("seed, phi, budget", [(0, 0.5, 0.12), (1, 0.4, 0.15), (2, 0.3, 0.09),
                                               (3, 0.6, 0.2), (1, 0.7, 0.15), (0, 0.5, 0.01)])
def test_the_audit_equals_aif360_facts_on_the_same_lists(seed, phi, budget):
    pytest.importorskip("aif360", reason="aif360 is the optional extra `audit` "
                                         "(pip install -e '.[audit]'); it is what this test compares with")
    space, X, groups, action_set, favourable = random_scope(seed)
    outcome = M.evaluate_set(space, X, action_set, favourable)
    costs = CostModel(SPECS, (GOWER, 0.002, GOWER))  # hours: 0.002 per hour
    cost = action_costs(costs, space, X, action_set)
    distinct = space.distinct(action_set)
    measures, _, _ = facts_measures(outcome, groups, 3, distinct, cost, phi, budget)
    group_cost = M.group_action_cost(cost, groups, 3)
    everyone, macro, micro = facts_lists(outcome.flipped, groups, group_cost, np.flatnonzero(distinct))
    functions = facts_functions(phi, budget)
    for key, ours in measures["macro"].items():
        assert_same(ours, everyone, macro, functions[key], key)
    for key, ours in measures["micro"].items():
        assert_same(ours, everyone, micro, functions[key], key)
    assert outcome.flipped.any() and not outcome.flipped.all()  # a test that can fail


def test_the_pooled_micro_measures_equal_aif360_on_the_population(seed=4, phi=0.6, budget=0.08):
    # Two scopes, each with its own set: the population's FACTS list holds every action of both,
    # each flipping only its own scope's people, at its group cost within its scope.
    pytest.importorskip("aif360", reason="aif360 is the optional extra `audit`")
    parts = [random_scope(seed), random_scope(seed + 1)]
    costs = CostModel(SPECS, (GOWER,) * 3)
    tallies, cheapest, flipped, group_cost, groups = [], [], [], [], []
    n_before = 0
    n_total = sum(len(p[1]) for p in parts)
    for space, X, g, action_set, favourable in parts:
        outcome = M.evaluate_set(space, X, action_set, favourable)
        cost = action_costs(costs, space, X, action_set)
        _, tally, mine = facts_measures(outcome, g, 3, space.distinct(action_set), cost, phi, budget)
        tallies.append(tally)
        cheapest.append(mine)
        rows = np.zeros((len(action_set), n_total), dtype=bool)
        rows[:, n_before:n_before + len(X)] = outcome.flipped
        flipped.append(rows)
        group_cost.append(M.group_action_cost(cost, g, 3))
        groups.append(g)
        n_before += len(X)
    groups = np.concatenate(groups)
    ours = micro_measures(tallies[0] + tallies[1], np.concatenate(cheapest), groups, phi, budget)
    flipped, group_cost = np.vstack(flipped), np.vstack(group_cost)
    everyone, _, micro = facts_lists(flipped, groups, group_cost, range(len(flipped)))
    functions = facts_functions(phi, budget)
    for key, measure in ours.items():
        assert_same(measure, everyone, micro, functions[key], key)


# ------------------------------------------------------------------ a run folder
@pytest.fixture(scope="module")
def run(tiny_config, tmp_path_factory):
    """A run folder with hand-chosen sets: the audit reads the level, the sets and prepared/."""
    folder = tmp_path_factory.mktemp("audit") / "run"
    prepared = prepare(tiny_config)
    sets = {"cluster-0": [[3, 0, 0], [0, 3, 0], [0, 0, 8], [2, 2, 3]],
            "cluster-1": [[5, 0, 0], [0, 5, 0], [0, 0, 10], [0, 0, 10]]}
    best = {name: run_files.entry(prepared, tiny_config, name, s, 100) for name, s in sets.items()}
    result = run_files.run_folder(folder, tiny_config, prepared,
                                  {name: [(b, [b])] for name, b in best.items()})
    assert result.sets == sets
    return folder


def test_recourse_audit_writes_audit_json(run, capsys):
    assert main(["audit", "--run", str(run), "--budget", "0.05"]) == 0
    audit = json.loads((run / "audit.json").read_text())
    assert audit["level"] == "hybrid" and audit["costs"] == "gower"
    assert audit["phi"] == 0.6 and audit["budget"] == 0.05  # tiny.yaml keeps the default phi
    assert set(audit["scopes"]) == {"cluster-0", "cluster-1"}
    assert audit["groups"] == ["Female", "Male"]
    people = audit["population"]["people"]
    assert sum(people.values()) == audit["population"]["n"] == sum(
        s["n"] for s in audit["scopes"].values())
    assert "written" in capsys.readouterr().out


