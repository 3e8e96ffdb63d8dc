"""Costs of counterfactuals: the schema's `cost` field, the CostModel's terms on hand-computed
CDFs and weights, Gower as the default, and a JSON round trip."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from distributed_recourse.data.schema import Schema, SchemaError
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.costs import GOWER, CostModel, action_costs
from distributed_recourse.recourse.evaluation import group_costs

# 10 rows: gain 0 (8 rows), 100, 200; hours 10..100; edu 1..5 twice; job a/b/c.
FRAME = pd.DataFrame({
    "gain": [0, 0, 0, 0, 0, 0, 0, 0, 100, 200],
    "hours": [10, 20, 30, 40, 50, 60, 70, 80, 90, 100],
    "edu": [1, 2, 3, 4, 5, 1, 2, 3, 4, 5],
    "job": ["a", "b", "c", "a", "b", "c", "a", "b", "c", "a"],
    "sex": ["F", "M"] * 5,
    "ok": [0, 1] * 5,
})


def schema(**costs) -> Schema:
    return Schema.from_dict({
        "name": "toy", "label": "ok", "favourable": 1, "protected": "sex",
        "categorical": ["sex"],
        "actionable": [
            {"name": "gain", "kind": "con", **({"cost": costs["gain"]} if "gain" in costs else {})},
            {"name": "hours", "kind": "con", **({"cost": costs["hours"]} if "hours" in costs else {})},
            {"name": "edu", "kind": "ord", "direction": "increase"},
            {"name": "job", "kind": "cat", **({"cost": costs["job"]} if "job" in costs else {})},
        ],
    })


def model_of(s: Schema) -> tuple[CostModel, np.ndarray, ActionSpace]:
    space = s.feature_space(FRAME)
    X = space.encode(FRAME)
    return CostModel.fit(s, space, X), X, ActionSpace(space.actionable, 1)


# ------------------------------------------------------------------ the schema field
@pytest.mark.parametrize("cost, message", [
    (-1.0, r"'gain': cost -1.0, expected a positive weight per unit of change or `percentile`"),
    (0, r"'gain': cost 0"),
    (True, r"'gain': cost True"),
    ("cheap", r"'gain': cost 'cheap'"),
    (float("inf"), r"'gain': cost inf"),
])
def test_bad_costs_name_the_feature(cost, message):
    with pytest.raises(SchemaError, match=message):
        schema(gain=cost)


def test_percentile_needs_an_ordered_feature():
    with pytest.raises(SchemaError, match=r"'job': cost `percentile` needs an ordered feature"):
        schema(job="percentile")


def test_costs_round_trip_through_the_schema_dict():
    s = schema(gain="percentile", hours=0.01)
    assert Schema.from_dict(s.to_dict()) == s
    assert [a.cost for a in s.actionable] == ["percentile", 0.01, None, None]


# ------------------------------------------------------------------ terms
def test_without_costs_the_cost_is_the_gower_distance():
    costs, X, space = model_of(schema())
    assert costs.is_gower and costs.rules == (GOWER,) * 4
    X_new = space.apply(X, np.array([50.0, -5.0, 4.0, 2.0]))
    np.testing.assert_array_equal(costs.cost(X, X_new), space.distance(X, X_new))
    np.testing.assert_array_equal(CostModel.gower(schema().feature_space(FRAME)).cost(X, X_new),
                                  space.distance(X, X_new))


def test_percentile_is_the_change_in_the_empirical_cdf():
    # gain's CDF on the 10 rows: F(v) = 0 below 0, 0.8 on [0, 100), 0.9 on [100, 200), 1 from 200.
    costs, _, _ = model_of(schema(gain="percentile"))
    np.testing.assert_allclose(costs.cdf("gain", np.array([-1, 0, 50, 100, 150, 200, 300])),
                               [0.0, 0.8, 0.8, 0.9, 0.9, 1.0, 1.0])
    # A person at gain 0 moved to 150 passes 10% of the rows: term 0.1; to 50, nobody: 0.
    X = np.zeros((2, 4))
    X_new = X.copy()
    X_new[:, 0] = [150.0, 50.0]
    np.testing.assert_allclose(costs.terms(X, X_new)[:, 0], [0.1, 0.0])
    np.testing.assert_allclose(costs.cost(X, X_new), [0.1 / 4, 0.0])


def test_weights_per_unit_and_per_categorical_change():
    # hours 0.01 per hour: +20 hours -> 0.2; job 2.0 per change; edu keeps its Gower term
    # (+2 levels of 4 -> 0.5); gain's Gower term +100 / 200 = 0.5. Mean of the four.
    costs, X, space = model_of(schema(hours=0.01, job=2.0))
    person = X[:1]  # gain 0, hours 10, edu 1, job a
    moved = space.apply(person, np.array([100.0, 20.0, 3.0, 1.0]))
    np.testing.assert_allclose(costs.terms(person, moved), [[0.5, 0.2, 0.5, 2.0]])
    np.testing.assert_allclose(costs.cost(person, moved), [(0.5 + 0.2 + 0.5 + 2.0) / 4])


def test_a_cost_model_round_trips_through_json(tmp_path):
    costs, X, space = model_of(schema(gain="percentile", hours=0.01))
    costs.save(tmp_path / "costs.json")
    loaded = CostModel.load(tmp_path / "costs.json")
    X_new = space.apply(X, np.array([150.0, 5.0, 4.0, 2.0]))
    np.testing.assert_array_equal(loaded.cost(X, X_new), costs.cost(X, X_new))
    assert loaded.rules == ("percentile", 0.01, GOWER, GOWER)


def test_percentile_without_training_rows_is_an_error():
    s = schema(gain="percentile")
    with pytest.raises(SchemaError, match="'gain': cost `percentile` needs training rows"):
        CostModel.fit(s, s.feature_space(FRAME), np.zeros((0, 5)))


def test_action_costs_per_action_and_person():
    costs, X, space = model_of(schema())
    action_set = np.array([[0.0, 10.0, 0.0, -1.0], [0.0, 0.0, 0.0, -1.0]])
    cost = action_costs(costs, space, X[:2], action_set)
    # hours +10 of span 90, over 4 features; the second action changes nothing
    np.testing.assert_allclose(cost, [[10 / 90 / 4] * 2, [0.0, 0.0]])


# ------------------------------------------------------------------ per group
def test_group_costs():
    # g0 costs 0.1, 0.3, inf; g1 0.2, 0.2. Mean cost: g0 0.2 (of the two with recourse), g1 0.2.
    # Level 0.5: g0 needs its 2nd of 3 (0.3), g1 its 1st of 2 (0.2). Budget 0.25: g0 1/3, g1 1.
    cost = np.array([0.1, 0.3, np.inf, 0.2, 0.2])
    out = group_costs(cost, np.array([0, 0, 0, 1, 1]), ["a", "b"], level=0.5, budget=0.25)
    assert out["mean_cost"]["groups"] == pytest.approx({"a": 0.2, "b": 0.2})
    assert out["mean_cost"]["gap"] == pytest.approx(0.0)
    needed, within = out["cost_of_effectiveness"], out["effectiveness_within_budget"]
    assert needed["level"] == 0.5 and needed["gap"] == pytest.approx(0.1)
    assert needed["groups"] == pytest.approx({"a": 0.3, "b": 0.2})
    assert within["budget"] == 0.25 and within["gap"] == pytest.approx(2 / 3)
    assert within["groups"] == pytest.approx({"a": 1 / 3, "b": 1.0})
