"""Explanation: the per-row logic on a hand-made example, the FairRecourse estimator on a real
(short) training run, and the Ray Data batch pipeline: validation, exactly-once output,
resumption after a crash or a kill."""

import json
import os
import shutil
import signal
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow.parquet as pq
import pytest
from sklearn.compose import ColumnTransformer
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import OneHotEncoder

from distributed_recourse import explain
from distributed_recourse.batch import explain_batch, explaining_slots, part_name
from distributed_recourse.config import ConfigError
from distributed_recourse.data.datasets import FILES, load_alzheimer, read_table
from distributed_recourse.data.schema import Schema, SchemaError
from distributed_recourse.explain import (
    FAVOURABLE,
    NO_RECOURSE,
    RECOURSE,
    REJECTED,
    Explainer,
    FairRecourse,
    Recourse,
    Scopes,
    closest_actions,
    frame_dataset,
)
from distributed_recourse.model import BlackBox, make_estimator
from distributed_recourse.population import Clustering, Prepared, prepare
from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.describe import action_text

# --------------------------------------------------------------------- a hand-made example
TOY = Schema.from_dict({
    "name": "toy", "label": "ok", "favourable": 1,
    "protected": {"column": "sex", "groups": {"sex": {"F": "Female", "M": "Male"}}},
    "actionable": [{"name": "income", "kind": "con", "low": 0, "high": 100},
                   {"name": "level", "kind": "ord", "low": 1, "high": 5, "direction": "increase"},
                   {"name": "city", "kind": "cat"}],
    "categorical": ["sex"],
})
TRAIN = pd.DataFrame({"age": [30, 40, 50], "sex": ["F", "M", "U"], "income": [10, 50, 90],
                      "level": [1, 3, 5], "city": ["a", "b", "c"], "ok": [0, 1, 1]})
SPACE = TOY.feature_space(TRAIN)  # columns age, sex, income, level, city; city codes a=0 b=1 c=2


class Rule:
    """Favourable when income + 10 level >= 80, or in city c."""

    def predict(self, X: np.ndarray) -> np.ndarray:
        return ((X[:, 2] + 10 * X[:, 3] >= 80) | (X[:, 4] == 2)).astype(int)


SET = np.array([[30.0, 0.0, -1.0],   # 0: income +30            Gower 0.3 / 3
                [0.0, 5.0, -1.0],    # 1: level to 5            |5 - level| / 4 / 3
                [0.0, 0.0, 2.0],     # 2: city to c             1 / 3
                [10.0, 4.0, -1.0]])  # 3: income +10, level 4   (0.1 + |4 - level| / 4) / 3
TOY_EXPLAINER = Explainer(TOY, BlackBox(Rule(), SPACE), Scopes("group"), SET[None])
PEOPLE = pd.DataFrame({
    "age": [30, 41, 52, 63],
    "sex": ["F", "M", "F", "M"],
    "income": [50, 10, 90, 0],
    "level": [2, 1, 3, 5],
    "city": ["a", "b", "a", "a"],
})


def test_chosen_action_is_the_closest_flipping_one_and_alternatives_follow_by_gower():
    data = TOY_EXPLAINER.explain(PEOPLE, alternatives=2)
    assert list(data["status"]) == [RECOURSE, RECOURSE, FAVOURABLE, RECOURSE]
    # person 0 is flipped by every action: closest 0 (0.1), then 3 (0.2), then 1 (0.25)
    first = data.iloc[0]
    assert (first["action"], first["alternative_1"], first["alternative_2"]) == (0, 3, 1)
    assert first["gower"] == pytest.approx(0.1)
    assert first["alternative_1_gower"] == pytest.approx(0.2)
    assert first["alternative_2_gower"] == pytest.approx(0.25)
    assert (first["cf_income"], first["cf_level"], first["cf_city"]) == (80.0, 2.0, "a")
    assert first["sparsity"] == 1 and first["flipped"]
    assert (first["action_text"], first["alternative_1_text"], first["alternative_2_text"]) == (
        "income +30", "income +10; level at least 4", "level at least 5")
    # person 1: only moving to city c flips; no alternative
    second = data.iloc[1]
    assert (second["action"], second["alternative_1"], second["alternative_2"]) == (2, -1, -1)
    assert second["cf_city"] == "c" and second["gower"] == pytest.approx(1 / 3)
    assert np.isnan(second["alternative_1_gower"])
    assert second["action_text"] == "city → c" and pd.isna(second["alternative_1_text"])
    # person 3 is at level 5 already: action 1 changes nothing, action 3 only adds income (the
    # closest change, not flipping); income +30 is the closest that flips
    fourth = data.iloc[3]
    assert (fourth["action"], fourth["alternative_1"], fourth["alternative_2"]) == (0, 2, -1)
    assert fourth["sparsity"] == 1
    # already favourable: passed through, no counterfactual
    third = data.iloc[2]
    assert third["action"] == -1 and not third["flipped"] and np.isnan(third["gower"])
    assert pd.isna(third["action_text"])
    assert pd.isna(third["cf_income"]) and pd.isna(third["cf_city"])
    assert list(data["group"]) == ["Female", "Male", "Female", "Male"]
    assert list(data["scope"]) == ["all"] * 4
    assert data["age"].tolist() == [30.0, 41.0, 52.0, 63.0]


def test_fewer_alternatives_are_padded_none_asked_gives_none_and_empty_frames_work():
    more = TOY_EXPLAINER.explain(PEOPLE, alternatives=5)
    assert list(more.iloc[0][[f"alternative_{i}" for i in range(1, 6)]]) == [3, 1, 2, -1, -1]
    none = TOY_EXPLAINER.explain(PEOPLE, alternatives=0)
    assert not [c for c in none.columns if c.startswith("alternative")]
    assert list(none["action"]) == [0, 2, -1, 0]
    empty = TOY_EXPLAINER.explain(PEOPLE.iloc[:0])
    assert empty.empty and list(empty.columns) == list(TOY_EXPLAINER.explain(PEOPLE).columns)
    assert list(TOY_EXPLAINER.explain(PEOPLE.iloc[[2]])["status"]) == [FAVOURABLE]


def test_closest_actions_choose_as_person_outcome_and_ask_only_what_no_cheaper_check_settles():
    rng = np.random.default_rng(3)
    n, alternatives = 400, 1
    X = np.column_stack([rng.integers(20, 70, n), rng.integers(0, 3, n), rng.uniform(0, 100, n),
                         rng.integers(1, 6, n), rng.integers(0, 3, n)]).astype(float)
    actions = ActionSpace(SPACE.actionable, 5)
    sets = actions.clip(np.stack([
        np.column_stack([rng.uniform(-30, 30, 5), rng.integers(0, 5, 5), rng.integers(-1, 2, 5)])
        for _ in range(3)]))
    sets[1, 4] = sets[1, 0]  # a repeated action
    sets[2, 3] = actions.no_change()
    sets[0, 1], sets[0, 2] = [10, 2, -1], [10, 3, -1]  # the same change for people at level >= 3
    model = BlackBox(Rule(), SPACE)
    unfavourable = X[~model.favourable(X)]
    scope = rng.integers(0, 3, len(unfavourable))
    asked = []
    found = closest_actions(actions, unfavourable, sets, scope,
                            lambda X: asked.append(len(X)) or model.favourable(X), alternatives)
    needed = 0  # person by person: actions in Gower order, a counterfactual asked once, until 2 flip
    for person, s in zip(unfavourable, scope, strict=True):
        moved = [actions.apply(person[None], a)[0] for a in sets[s]]
        gower = [actions.distance(person[None], m[None])[0] for m in moved]
        usable = [j for j in np.argsort(gower, kind="stable")
                  if actions.distinct(sets[s])[j] and (moved[j] != person).any()]
        outcomes, flips = {}, 0
        for j in usable:
            if flips > alternatives:
                break
            key = moved[j].tobytes()
            if key not in outcomes:
                outcomes[key] = bool(model.favourable(moved[j][None])[0])
                needed += 1
            flips += outcomes[key]
    assert sum(asked) == needed and len(asked) <= 5
    for s in range(3):
        mine = scope == s
        expected = M.person_outcome(M.evaluate_set(actions, unfavourable[mine], sets[s],
                                                   model.favourable))
        assert (found.chosen[mine] == expected.chosen).all()
        assert np.allclose(found.gower[0][mine], np.where(expected.valid, expected.cost, np.nan),
                           equal_nan=True)
        assert (found.sparsity[mine] == expected.sparsity).all()
        assert model.favourable(found.counterfactual[mine][expected.valid]).all()
    assert 0 < found.valid.mean() < 1
    twins = (scope == 0) & (unfavourable[:, 3] >= 3) & (found.ranked[0] == 1)
    assert twins.any() and (found.ranked[1][twins] == 2).all()  # asked once, both reported
    assert (found.gower[0][twins] == found.gower[1][twins]).all()


class OwnPredict:
    """A model seen only through its own `predict`, so that no shortcut applies; counts calls."""

    def __init__(self, estimator) -> None:
        self.estimator, self.calls = estimator, []

    def predict(self, X):
        self.calls.append((type(X), len(X)))
        return self.estimator.predict(X)


def unoptimised_actions(actions, X, sets, scope, favourable, alternatives=2) -> Recourse:
    """The reference: every action of each person's set asked of the model, then ranked by
    Gower distance (ties: the first in the set), as DESIGN.md section 3 reads."""
    N, n = sets.shape[1], len(X)
    moved = np.repeat(X[None], N, axis=0)
    cost = np.full((max(N, 1 + alternatives), n), np.inf)
    changed = np.zeros((N, n), dtype=np.int64)
    for s in np.unique(scope):
        mine = np.flatnonzero(scope == s)
        first = actions.distinct(sets[s])
        for j, action in enumerate(sets[s]):
            moved[j, mine] = after = actions.apply(X[mine], action)
            changed[j, mine] = actions.n_changed(X[mine], after)
            flips = np.asarray(favourable(after), dtype=bool) & first[j] & (changed[j, mine] > 0)
            cost[j, mine] = np.where(flips, actions.distance(X[mine], after), np.inf)
    ranked = np.argsort(cost, axis=0, kind="stable")[:1 + alternatives]
    ranked_cost = np.take_along_axis(cost, ranked, axis=0)
    exists = np.isfinite(ranked_cost)
    chosen, people = np.where(exists[0], ranked[0], 0), np.arange(n)
    return Recourse(np.where(exists, ranked, -1), np.where(exists, ranked_cost, np.nan),
                    np.where(exists[0], changed[chosen, people], 0),
                    np.where(exists[0][:, None], moved[chosen, people], X))


def assert_explains_as_unoptimised(explainer: Explainer, frame: pd.DataFrame, monkeypatch,
                                   alternatives: int = 3) -> pd.DataFrame:
    """Every output row equals the unoptimised path's: the model's own predict on every
    action of every person's set."""
    got = explainer.explain(frame, alternatives)
    reference = replace(explainer, model=BlackBox(OwnPredict(explainer.model.estimator), explainer.space,
                                                  explainer.model.input, explainer.model.favourable_output))
    with monkeypatch.context() as patch:
        patch.setattr(explain, "closest_actions", unoptimised_actions)
        expected = reference.explain(frame, alternatives)
    pd.testing.assert_frame_equal(got, expected, check_exact=True)
    return got


def toy_people(n: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"age": rng.integers(20, 70, n), "sex": rng.choice(["F", "M"], n),
                         "income": rng.uniform(0, 100, n).round(1), "level": rng.integers(1, 6, n),
                         "city": rng.choice(["a", "b", "c"], n, p=[0.45, 0.45, 0.1])})


def test_a_frame_model_is_asked_one_frame_per_rank_and_answers_as_unoptimised(monkeypatch):
    """A user's Pipeline reading the raw frame (OneHotEncoder + HistGradientBoosting)."""
    train = toy_people(3000, 0)
    label = ((train["income"] + 10 * train["level"] >= 80) | (train["city"] == "c")).astype(int)
    encode = ColumnTransformer([("cat", OneHotEncoder(), ["sex", "city"])], remainder="passthrough")
    pipeline = make_pipeline(encode, HistGradientBoostingClassifier(random_state=0)).fit(train, label)
    counted = OwnPredict(pipeline)
    explainer = Explainer(TOY, BlackBox(counted, SPACE, input="frame"), Scopes("group"), SET[None])
    people = toy_people(2000, 1)
    explainer.explain(people)
    calls, counted.calls = counted.calls, []
    assert all(kind is pd.DataFrame for kind, _ in calls)
    assert len(calls) <= 1 + len(SET)  # the favourable check, then one frame per rank
    assert calls[0][1] == len(people)
    data = assert_explains_as_unoptimised(explainer, people, monkeypatch)
    assert (data["status"] == RECOURSE).sum() > 500


def test_every_row_is_as_the_unoptimised_path_gives_on_the_papers_forest(run, monkeypatch):
    """The paper's forest (200 trees, impure leaves), early stopping, people settled early
    and shared counterfactuals: every output row as the unoptimised path's."""
    explainer = Explainer.open(run)
    data = load_alzheimer()
    forest = make_estimator("random_forest", {}, seed=0).fit(data.X, data.favourable.astype(int))
    explainer = replace(explainer, model=BlackBox(forest, explainer.space))
    rng = np.random.default_rng(2)
    frame = ALZHEIMER.sample(1500, random_state=3).reset_index(drop=True)
    for column in ("FunctionalAssessment", "ADL"):  # people near the boundary, many near-ties
        frame[column] = (frame[column] + rng.normal(0, 1.5, len(frame))).clip(0, 10)
    frame.loc[[4, 9], "MMSE"] = [np.nan, 31.0]
    got = assert_explains_as_unoptimised(explainer, frame, monkeypatch)
    assert set(got["status"]) == {FAVOURABLE, RECOURSE, NO_RECOURSE, REJECTED}
    assert explainer.model.work < 3 * len(frame)  # in whole-forest rows


def test_rows_that_fail_validation_are_rejected_with_the_column():
    bad = pd.DataFrame({
        "age": [30, 30, 30, 30, 30, 30, 30, 30],
        "sex": ["F", "F", "F", "X", "U", "F", "F", None],
        "income": [150, 50, 50, 50, 50, None, "lots", 50],
        "level": [2, 2.5, 2, 2, 2, 2, 2, 2],
        "city": ["a", "a", "z", "a", "a", "a", "a", "a"],
    }, index=[10, 11, 12, 13, 14, 15, 16, 17])
    data = TOY_EXPLAINER.explain(pd.concat([PEOPLE, bad]))
    rejected = data[data["status"] == REJECTED]
    assert list(rejected.index) == list(bad.index)
    assert list(rejected["reason"]) == [
        "income: 150 is outside its bounds, expected a number in 0..100",
        "level: 2.5 is between levels, expected a whole number in 1..5",
        "city: 'z' is not a known category, expected one of a, b, c",
        # the protected column's values are never repeated, only what it expects
        "sex: the value is not a known category, expected one of F, M, U",
        "sex: the value has no protected group, expected one of F, M",
        "income: missing, expected a number in 0..100",
        "income: 'lots' is not a number in 0..100",
        "sex: missing, expected one of F, M, U",
    ]
    assert data.loc[:3, "reason"].isna().all()
    assert (rejected["action"] == -1).all() and rejected["income"].isna().all()
    with pytest.raises(SchemaError, match="'city' is missing"):
        TOY_EXPLAINER.explain(PEOPLE.drop(columns=["city"]))


def test_scopes_assign_as_the_fitted_clustering_and_round_trip():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(300, 4)) * [1, 10, 100, 1000]
    for standardize in (False, True):
        clustering = Clustering(3, standardize, seed=1).fit(X)
        scopes = Scopes.of("hybrid", clustering)
        new = rng.normal(size=(500, 4)) * [1, 10, 100, 1000]
        assert (scopes.assign(new) == clustering.assign(new)).all()
        again = Scopes.from_dict(json.loads(json.dumps(scopes.to_dict())))
        assert (again.assign(new) == scopes.assign(new)).all()
    assert Scopes.of("group", clustering).names == ["all"]


# --------------------------------------------------------------------- the estimator
ALZHEIMER = read_table(Path(str(FILES / "alzheimers_disease_data.csv")))


@pytest.fixture(scope="module")
def fitted(ray_session, tiny_config, tmp_path_factory):
    short = replace(tiny_config.train, env_steps=100, steps_per_iteration=50)
    estimator = FairRecourse(replace(tiny_config, train=short), alternatives=2,
                             run_dir=tmp_path_factory.mktemp("fit") / "run")
    assert estimator.fit() is estimator
    return estimator


def test_fit_reads_a_users_frame_with_the_configs_schema(tiny_config):
    """`fit(X, y)` prepares from the frame what `fit()` prepares from the config's dataset."""
    X, y = ALZHEIMER.drop(columns=["Diagnosis"]), ALZHEIMER["Diagnosis"]
    from_frame = prepare(tiny_config, frame_dataset(tiny_config, X, y))
    from_config = prepare(tiny_config)
    assert np.array_equal(from_frame.population.X, from_config.population.X)
    with pytest.raises(SchemaError, match="'Diagnosis' is missing"):
        frame_dataset(tiny_config, X)


def test_fair_recourse_explains_a_frame(fitted):
    frame = ALZHEIMER.sample(300, random_state=0)
    frame.loc[frame.index[0], "MMSE"] = -4.0
    explanation = fitted.explain(frame)
    data, meta = explanation.data, explanation.meta
    assert data.index.equals(frame.index)
    assert sum(meta["counts"].values()) == len(frame) and meta["counts"][REJECTED] == 1
    assert set(meta["sets"]) == {"cluster-0", "cluster-1"}
    assert all(len(actions) == 4 for actions in meta["sets"].values())
    explainer = fitted.explainer_
    features = explainer.space.describe_actionable()  # the text names codes by their labels
    assert meta["sets_text"] == {name: [action_text(a, features) for a in actions]
                                 for name, actions in meta["sets"].items()}
    model, space = explainer.model, explainer.space
    cf = explanation.counterfactuals
    assert len(cf) == meta["counts"][RECOURSE] > 0
    assert model.favourable(space.encode(cf)).all()
    with_cf = data.loc[cf.index]
    original = space.encode(with_cf)
    assert np.allclose(explainer.actions.distance(original, space.encode(cf)), with_cf["gower"])
    assert (explainer.actions.n_changed(original, space.encode(cf)) == with_cf["sparsity"]).all()
    assert model.favourable(space.encode(data[data["status"] == FAVOURABLE])).all()
    assert not model.favourable(space.encode(data[data["status"] == NO_RECOURSE])).any()


def test_fair_recourse_agrees_with_the_runs_own_evaluation(fitted):
    """Explaining the run's affected people gives the summary's population figures."""
    population = Prepared.load(fitted.run_dir_).population
    data = fitted.explain(fitted.explainer_.space.decode(population.X)).data
    assert (data["scope"] == [f"cluster-{c}" for c in population.clusters]).all()
    reported = fitted.result_.population
    assert (data["status"] == RECOURSE).mean() == pytest.approx(reported.validity)
    if reported.gower_chosen is not None:
        assert data["gower"].mean() == pytest.approx(reported.gower_chosen)
    for name, scope in fitted.result_.scopes.items():
        assert fitted.explainer_.sets[fitted.explainer_.scopes.names.index(name)].tolist() == scope.set


def test_fair_recourse_save_load_round_trip(fitted, tmp_path):
    fitted.save(tmp_path / "saved")
    files = sorted(str(p.relative_to(tmp_path / "saved")) for p in (tmp_path / "saved").rglob("*")
                   if p.is_file())
    assert [f for f in files if not f.endswith((".json", ".yaml"))] == ["model/model.joblib"]
    loaded = FairRecourse.load(tmp_path / "saved")
    assert loaded.alternatives == fitted.alternatives and loaded.run_dir_ == fitted.run_dir_
    assert loaded._run_config().to_dict() == fitted._run_config().to_dict()
    frame = ALZHEIMER.sample(200, random_state=1)
    before, after = fitted.explain(frame), loaded.explain(frame)
    pd.testing.assert_frame_equal(before.data, after.data)
    assert before.meta == after.meta
    # the batch command reads a saved explainer as it reads a run folder
    (tmp_path / "in").mkdir()
    frame.to_parquet(tmp_path / "in" / "people.parquet", index=False)
    manifest = explain_batch(tmp_path / "saved", tmp_path / "in", tmp_path / "out")
    assert manifest["status"] == {k: v for k, v in before.meta["counts"].items() if v and k != REJECTED}


# --------------------------------------------------------------------- the batch pipeline
@pytest.fixture(scope="module")
def run(hand_run):
    return hand_run


BAD = {("a.parquet", 5): "MMSE: missing", ("a.parquet", 7): "MMSE: 45.0 is outside its bounds, expected "
                                                                "a number in 0..30",
       ("sub/b.parquet", 3): "Gender: the value has no protected group",
       ("c.csv", 11): "ADL: 'abc' is not a number"}


def write_table(folder: Path, rows: int) -> pd.DataFrame:
    """`rows` Alzheimer rows in two Parquet files (one in a subfolder) and a CSV file, with the
    invalid values of BAD; returns every row with its `source` and `row`."""
    table = ALZHEIMER.sample(rows, replace=True, random_state=0).reset_index(drop=True)
    table = table.astype({"MMSE": float, "Gender": int}).astype({"ADL": object})
    cut = [0, rows * 2 // 5, rows * 3 // 5, rows]
    parts = {name: table.iloc[start:stop].reset_index(drop=True) for name, start, stop
             in zip(["a.parquet", "sub/b.parquet", "c.csv"], cut[:-1], cut[1:], strict=True)}
    parts["a.parquet"].loc[5, "MMSE"] = np.nan
    parts["a.parquet"].loc[7, "MMSE"] = 45.0
    parts["sub/b.parquet"].loc[3, "Gender"] = 3
    parts["c.csv"].loc[11, "ADL"] = "abc"
    (folder / "sub").mkdir(parents=True)
    parts["a.parquet"].astype({"ADL": float}).to_parquet(folder / "a.parquet", row_group_size=rows // 7)
    parts["sub/b.parquet"].astype({"ADL": float}).to_parquet(folder / "sub" / "b.parquet")
    parts["c.csv"].to_csv(folder / "c.csv", index=False)
    return pd.concat([p.assign(source=name, row=np.arange(len(p))) for name, p in parts.items()],
                     ignore_index=True)


def read_output(output: Path) -> tuple[pd.DataFrame, pd.DataFrame]:
    return pd.read_parquet(output / "data"), pd.read_parquet(output / "rejected")


def assert_every_row_once(output: Path, table: pd.DataFrame) -> None:
    data, rejected = read_output(output)
    keys = pd.concat([data[["source", "row"]], rejected[["source", "row"]]], ignore_index=True)
    assert not keys.duplicated().any()
    assert set(map(tuple, keys.to_numpy().tolist())) == set(
        map(tuple, table[["source", "row"]].to_numpy().tolist()))
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["rows_read"] == len(table) == manifest["rows_written"] + manifest["rows_rejected"]
    assert (manifest["rows_written"], manifest["rows_rejected"]) == (len(data), len(rejected))


@pytest.fixture(scope="module")
def table(tmp_path_factory):
    folder = tmp_path_factory.mktemp("input")
    return folder, write_table(folder, 3000)


@pytest.fixture(scope="module")
def explained(ray_session, run, table, tmp_path_factory):
    output = tmp_path_factory.mktemp("out") / "out"
    return output, explain_batch(run, table[0], output, block_rows=400)


def test_batch_explains_every_row_exactly_once(ray_session, explained, table):
    output, manifest = explained
    assert_every_row_once(output, table[1])
    assert manifest["rows_rejected"] == len(BAD)
    assert sum(manifest["status"].values()) == manifest["rows_written"]
    assert manifest["files"]["inputs"] == 3
    assert manifest["nodes"] == {ray_session.get_runtime_context().get_node_id(): len(table[1])}
    assert json.loads((output / "manifest.json").read_text()) == manifest
    _, rejected = read_output(output)
    for (source, row), reason in BAD.items():
        found = rejected[(rejected["source"] == source) & (rejected["row"] == row)]
        assert found["reason"].iloc[0].startswith(reason)
    assert rejected.loc[rejected["source"] == "c.csv", "ADL"].tolist() == ["abc"]


def test_batch_output_is_what_the_explainer_gives(explained, table, run):
    output, _ = explained
    data, _ = read_output(output)
    explainer = Explainer.open(run)
    rows = table[1]
    expected = explainer.explain(rows, alternatives=2)
    expected = expected.assign(source=rows["source"], row=rows["row"])
    expected = expected[expected["status"] != REJECTED].drop(columns="reason")
    got = data.sort_values(["source", "row"]).reset_index(drop=True)
    expected = expected.sort_values(["source", "row"]).reset_index(drop=True)[got.columns]
    pd.testing.assert_frame_equal(got, expected, check_dtype=False)
    favourable = got[got["status"] == FAVOURABLE]
    assert len(favourable) and (favourable["action"] == -1).all() and not favourable["flipped"].any()


def test_batch_rerun_does_nothing_and_another_job_is_refused(explained, run, table):
    output, manifest = explained
    parts = sorted(p.name for p in (output / "data").iterdir())
    again = explain_batch(run, table[0], output)
    assert again["rows_this_run"] == again["workers"] == 0 < manifest["workers"]
    assert {k: again[k] for k in ("rows_read", "rows_written", "rows_rejected", "status")} == \
        {k: manifest[k] for k in ("rows_read", "rows_written", "rows_rejected", "status")}
    assert sorted(p.name for p in (output / "data").iterdir()) == parts
    with pytest.raises(ConfigError, match="another job"):
        explain_batch(run, table[0], output, alternatives=1)


def test_batch_missing_column_fails_fast_naming_column_and_file(ray_session, run, tmp_path):
    (tmp_path / "in").mkdir()
    ALZHEIMER.head(20).to_parquet(tmp_path / "in" / "fine.parquet")
    ALZHEIMER.head(20).drop(columns=["MMSE"]).to_csv(tmp_path / "in" / "short.csv", index=False)
    with pytest.raises(SchemaError, match=r"short\.csv: column 'MMSE' is missing"):
        explain_batch(run, tmp_path / "in", tmp_path / "out")
    assert not (tmp_path / "out").exists()


def test_explaining_slots_count_the_actors_a_cpu_and_the_worker_resources_each_allow():
    assert explaining_slots({"CPU": 3.0, "explain_slot": 2.0}, {"explain_slot": 1}) == 2
    assert explaining_slots({"CPU": 1.5}, None) == 1
    assert explaining_slots({"CPU": 4.0, "gpu_slot": 1.0}, {"gpu_slot": 0.5}) == 2
    assert explaining_slots({"CPU": 4.0}, {"explain_slot": 1}) == 0
    assert explaining_slots({}, None) == 0


def test_batch_asking_for_resources_no_node_offers_names_the_option(ray_session, run, tmp_path):
    (tmp_path / "in").mkdir()
    ALZHEIMER.head(20).to_parquet(tmp_path / "in" / "people.parquet")
    with pytest.raises(ConfigError, match=r"--worker-resources \{'nowhere_slot': 1\}"):
        explain_batch(run, tmp_path / "in", tmp_path / "out", worker_resources={"nowhere_slot": 1})


def test_batch_resumes_from_what_a_crash_left(explained, run, table, tmp_path):
    """A crash leaves temporary files, parts never committed and rejected parts whose data part
    was never renamed into place; should parts ever overlap, they are redone too: a rerun
    finishes the job with every row once."""
    output = tmp_path / "out"
    shutil.copytree(explained[0], output)
    (output / "manifest.json").unlink()
    orphan = sorted((output / "rejected").glob("part-*.parquet"))[0]
    (output / "data" / orphan.name).unlink()
    lost = sorted((output / "data").glob("part-*.parquet"))[0]
    lost.unlink()
    (output / "data" / f".{lost.name}.0123.partial").write_bytes(b"half a parquet file")
    (output / "rejected" / ".part-00009-000000000000-000000000010.parquet.1.partial").write_text("x")
    kept = sorted((output / "data").glob("part-*.parquet"))
    assert len(kept) >= 2
    file, start = int(kept[0].name[5:10]), int(kept[0].name[11:23])
    overlapping = output / "data" / part_name(file, start + 1, start + 3)
    pq.write_table(pq.read_table(kept[0]).slice(1, 2), overlapping)
    manifest = explain_batch(run, table[0], output, block_rows=400)
    assert 0 < manifest["rows_this_run"] < len(table[1])
    assert not list(output.rglob("*.partial")) and not overlapping.exists()
    assert_every_row_once(output, table[1])
    assert manifest["status"] == explained[1]["status"]


def test_killed_batch_resumes_without_duplicates(ray_session, run, tmp_path):
    """`recourse explain` killed midway: no half-written part is visible, and rerunning
    finishes the job with every row exactly once."""
    rows = write_table(tmp_path / "in", 8_000)
    output = tmp_path / "out"
    command = [sys.executable, "-m", "distributed_recourse.cli", "explain", "--run", str(run),
               "--input", str(tmp_path / "in"), "--output", str(output), "--block-rows", "100"]
    first = subprocess.Popen(command, env={**os.environ, "RAY_ADDRESS": ""}, start_new_session=True,
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    deadline = time.time() + 120
    while len(list((output / "data").glob("part-*.parquet"))) < 2:
        assert first.poll() is None, "the job ended before it could be killed"
        assert time.time() < deadline, "no part was committed"
        time.sleep(0.02)
    os.killpg(first.pid, signal.SIGKILL)
    first.wait()
    assert not (output / "manifest.json").exists()
    committed = list((output / "data").glob("part-*.parquet"))
    assert sum(pq.read_metadata(p).num_rows for p in committed) < len(rows)
    manifest = explain_batch(run, tmp_path / "in", output)
    assert 0 < manifest["rows_this_run"] < len(rows)
    assert_every_row_once(output, rows)
