"""The black box (train, load a user's file, save/load, fairness audit) and `prepare`: the
affected people, their groups and clusters."""

from __future__ import annotations

import pickle

import joblib
import numpy as np
import pytest
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.pipeline import Pipeline, make_pipeline
from sklearn.preprocessing import StandardScaler

from distributed_recourse.config import ConfigError, ModelConfig, RunConfig
from distributed_recourse.data.datasets import load_alzheimer
from distributed_recourse.model import BlackBox, fairness_report, train_model
from distributed_recourse.population import (
    WHOLE,
    Clustering,
    Population,
    Prepared,
    prepare,
)

ALZHEIMER = {"dataset": {"name": "alzheimer"}, "population": {"clusters": 3}}


@pytest.fixture(scope="module")
def alzheimer():
    return load_alzheimer()


@pytest.fixture(scope="module")
def prepared(alzheimer):
    return prepare(RunConfig.from_dict(ALZHEIMER), alzheimer)


# ---------------------------------------------------------------- fairness report, by hand
def test_fairness_report_by_hand():
    predicted = np.array([1, 1, 0, 0, 1, 0, 0, 0], dtype=bool)
    actual = np.array([1, 0, 1, 0, 1, 1, 0, 0], dtype=bool)
    groups = np.array([0, 0, 0, 0, 1, 1, 1, 1])
    report = fairness_report(predicted, actual, groups, ["A", "B", "C"])
    # A: favourable 2/4; TPR (rows 0, 2) 1/2; FPR (rows 1, 3) 1/2
    # B: favourable 1/4; TPR (rows 4, 5) 1/2; FPR (rows 6, 7) 0/2; C has nobody
    assert report["groups"] == {
        "A": {"n": 4, "favourable_rate": 0.5, "tpr": 0.5, "fpr": 0.5},
        "B": {"n": 4, "favourable_rate": 0.25, "tpr": 0.5, "fpr": 0.0},
    }
    assert report["accuracy"] == 0.625  # rows 1, 2, 5 wrong
    assert report["demographic_parity_difference"] == 0.25
    assert report["equalized_odds_difference"] == 0.5  # max(TPR gap 0, FPR gap 0.5)


def test_fairness_report_group_without_positives():
    predicted = np.array([1, 0, 1, 1], dtype=bool)
    actual = np.array([1, 0, 0, 0], dtype=bool)
    groups = np.array([0, 0, 1, 1])
    report = fairness_report(predicted, actual, groups, ["A", "B"])
    assert np.isnan(report["groups"]["B"]["tpr"])  # B has no actual positive
    # TPR gap left out (one group only); FPR: A 0/1, B 2/2
    assert report["equalized_odds_difference"] == 1.0
    assert report["demographic_parity_difference"] == 0.5


# ---------------------------------------------------------------- prepare on Alzheimer
def test_affected_people_are_all_turned_down(prepared, alzheimer):
    population = prepared.population
    n = len(population.X)
    assert 120 <= n <= 180  # the reference finds 158 with its split
    assert not prepared.model.favourable(population.X).any()
    np.testing.assert_array_equal(population.X, alzheimer.X[population.row_ids])
    summary = prepared.summary
    assert summary["n_rows"] == 2_149
    assert summary["n_test"] == 430  # ceil(0.2 * 2149)
    assert summary["affected"]["n"] == n
    assert summary["data"]["rows_read"] == 2_149
    assert summary["model"]["kind"] == "random_forest"
    assert summary["model"]["accuracy"] > 0.9


def test_groups_and_clusters_partition_the_affected(prepared, alzheimer):
    population = prepared.population
    n = len(population.X)
    assert population.group_names == ["Female", "Male"]
    sizes = prepared.summary["affected"]["groups"]
    assert set(sizes) == {"Female", "Male"} and sum(sizes.values()) == n
    assert min(sizes.values()) > 0
    labels = alzheimer.groups.to_numpy()[population.row_ids]
    np.testing.assert_array_equal(np.array(population.group_names)[population.groups], labels)
    clusters = prepared.summary["clusters"]
    assert list(clusters) == ["cluster-0", "cluster-1", "cluster-2"]
    assert sum(c["n"] for c in clusters.values()) == n
    assert all(c["n"] > 0 for c in clusters.values())
    for name, cluster in clusters.items():
        assert sum(cluster["groups"].values()) == cluster["n"]
        assert population.members(name).sum() == cluster["n"]
    assert population.n_clusters == 3
    np.testing.assert_array_equal(prepared.clustering.assign(population.X), population.clusters)


def test_scopes(prepared):
    population = prepared.population
    assert population.scope_names("group") == [WHOLE]
    assert population.scope_names("individual") == ["cluster-0", "cluster-1", "cluster-2"]
    assert population.scope_names("hybrid") == population.scope_names("individual")
    whole = population.scope(WHOLE)
    assert len(whole.X) == len(population.X) and whole.n_groups == 2
    one = population.scope("cluster-1")
    assert len(one.X) == prepared.summary["clusters"]["cluster-1"]["n"]
    np.testing.assert_array_equal(one.groups, population.groups[population.clusters == 1])


def test_prepare_is_reproducible(prepared, alzheimer):
    again = prepare(RunConfig.from_dict(ALZHEIMER), alzheimer)
    np.testing.assert_array_equal(again.population.row_ids, prepared.population.row_ids)
    np.testing.assert_array_equal(again.population.clusters, prepared.population.clusters)
    np.testing.assert_array_equal(again.population.groups, prepared.population.groups)
    X = alzheimer.X
    np.testing.assert_array_equal(again.model.favourable(X), prepared.model.favourable(X))
    assert again.summary == prepared.summary
    other_seed = prepare(RunConfig.from_dict({**ALZHEIMER, "seed": 7}), alzheimer)
    assert not np.array_equal(other_seed.population.row_ids, prepared.population.row_ids)


def test_prepared_save_load_round_trip(prepared, alzheimer, tmp_path):
    assert not Prepared.exists(tmp_path)
    prepared.save(tmp_path)
    assert Prepared.exists(tmp_path)
    back = Prepared.load(tmp_path)
    assert back.config == prepared.config
    assert back.summary == prepared.summary
    for key in ("X", "groups", "clusters", "row_ids"):
        np.testing.assert_array_equal(
            getattr(back.population, key), getattr(prepared.population, key)
        )
    assert back.population.group_names == ["Female", "Male"]
    X = alzheimer.X
    np.testing.assert_array_equal(back.model.favourable(X), prepared.model.favourable(X))
    assert back.model.space == prepared.model.space
    assert back.model.metadata["kind"] == "random_forest"
    assert back.model.metadata["dataset"] == "alzheimer"
    np.testing.assert_array_equal(
        back.clustering.assign(X[:50]), prepared.clustering.assign(X[:50])
    )
    np.testing.assert_array_equal(
        back.plausibility.predict(X[:50]), prepared.plausibility.predict(X[:50])
    )


def test_max_affected_and_standardised_clusters(alzheimer, prepared):
    config = RunConfig.from_dict(
        {**ALZHEIMER, "population": {"clusters": 2, "max_affected": 40, "standardize": True}}
    )
    small = prepare(config, alzheimer)
    assert len(small.population.X) == 40
    assert set(small.population.row_ids) <= set(prepared.population.row_ids)
    assert small.population.n_clusters == 2
    assert small.clustering.scaler_ is not None
    assert sum(c["n"] for c in small.summary["clusters"].values()) == 40


def test_population_save_load(tmp_path):
    population = Population(
        X=np.arange(12.0).reshape(4, 3), groups=np.array([0, 1, 1, 0]),
        group_names=["a", "b"], clusters=np.array([1, 0, 1, 1]), row_ids=np.array([3, 5, 8, 9]),
        reachable=np.array([True, False, True, True]), ceiling_exact=False,
    )
    assert population.group_sizes() == {"a": 2, "b": 2}
    assert population.group_sizes(population.clusters == 1) == {"a": 2, "b": 1}
    population.save(tmp_path)
    back = Population.load(tmp_path)
    np.testing.assert_array_equal(back.X, population.X)
    np.testing.assert_array_equal(back.row_ids, [3, 5, 8, 9])
    assert back.group_names == ["a", "b"]
    np.testing.assert_array_equal(back.reachable, [True, False, True, True])
    assert back.ceiling_exact is False
    # the ceiling over a mask: b's only person in cluster 0 is unreachable
    assert back.ceiling(back.clusters == 0)["groups"] == {"a": None, "b": 0.0}
    assert back.ceiling() == {"SR": 0.75, "PD": 0.5, "exact": False,
                              "groups": {"a": 1.0, "b": 0.5}}


def test_clustering_is_seeded():
    X = np.random.default_rng(0).normal(size=(60, 3))
    first = Clustering(3, seed=1).fit(X).assign(X)
    second = Clustering(3, seed=1).fit(X).assign(X)
    np.testing.assert_array_equal(first, second)
    assert len(set(first)) == 3


def test_forest_shortcut_is_exactly_sklearn_predict(prepared, alzheimer):
    model = prepared.model
    X = alzheimer.X
    noisy = X + np.random.default_rng(0).normal(0.0, 0.5, X.shape) * X.std(axis=0)
    for rows in (X, noisy, X[:1]):
        expected = model.estimator.predict(rows) == 1
        np.testing.assert_array_equal(model.favourable(rows), expected)
    assert 0 < (model.estimator.predict(noisy) == 1).sum() < len(noisy)
    threaded = pickle.loads(pickle.dumps(model))
    threaded.use_threads(2)
    np.testing.assert_array_equal(threaded.favourable(noisy), model.estimator.predict(noisy) == 1)
    again = pickle.loads(pickle.dumps(threaded))  # the thread pool is not pickled
    np.testing.assert_array_equal(again.favourable(noisy), model.estimator.predict(noisy) == 1)



def test_forest_vote_stops_early_yet_agrees_with_sklearn_on_impure_leaves_and_ties():
    """A forest's vote stops once the trees left cannot change it, and near-ties (equal in
    exact arithmetic, 0.1 + 0.9 against 0.9 + 0.1, where sklearn's own rounding and tie rule
    decide) are left to the forest itself."""
    from concurrent.futures import ThreadPoolExecutor

    from sklearn.ensemble import RandomForestClassifier

    from distributed_recourse.model import ForestVote

    rng = np.random.default_rng(5)
    X = rng.normal(size=(3000, 4))
    y = (X[:, 0] + X[:, 1] * X[:, 2] + rng.normal(0, 0.5, len(X)) > 0).astype(int)

    def forest(trees: int, leaves) -> RandomForestClassifier:
        fitted = RandomForestClassifier(n_estimators=trees, max_depth=6, random_state=0).fit(X, y)
        for tree in fitted.estimators_:  # impure leaves, probabilities in tenths
            p1 = leaves(tree.tree_.value[:, 0, 1])
            tree.tree_.value[:, 0, 0], tree.tree_.value[:, 0, 1] = 1 - p1, p1
        return fitted

    ties = forest(4, lambda p1: rng.integers(0, 11, len(p1)) / 10)
    lead = sum(t.tree_.value[t.tree_.apply(X.astype(np.float32)), 0] @ [-1, 1] for t in ties.estimators_)
    expected = ties.predict(X) == 1
    assert (np.abs(lead) < 1e-9).sum() > 100 and ((lead > 0) != expected).sum() > 10  # a naive vote errs
    np.testing.assert_array_equal(ForestVote.of(ties).favourable(X)[0], expected)
    few = np.flatnonzero((np.abs(lead) < 1e-9) & expected)[:5].tolist() + [0, 1, 2]  # one walk
    np.testing.assert_array_equal(ForestVote.of(ties).favourable(X[few])[0], expected[few])

    trained = forest(40, lambda p1: np.round(p1 * 10) / 10)
    for tree in trained.estimators_:  # thresholds on a grid that the values below meet
        tree.tree_.threshold[:] = np.round(tree.tree_.threshold * 2) / 2
    X = np.round(X * 2) / 2
    expected = trained.predict(X) == 1
    vote = ForestVote.of(trained)
    favoured, work = vote.favourable(X)
    np.testing.assert_array_equal(favoured, expected)
    assert 0.5 * len(X) < work < 0.8 * len(X)  # in whole-forest rows: most rows stopped early
    for rows in (slice(0, 1), slice(5, 12), slice(0, ForestVote.FEW)):  # every tree at once
        np.testing.assert_array_equal(vote.favourable(X[rows])[0], expected[rows])
        assert vote.favourable(X[rows])[1] == len(X[rows])
    with ThreadPoolExecutor(3) as pool:
        np.testing.assert_array_equal(vote.favourable(X, pool, 3)[0], expected)
        assert vote.favourable(X, pool, 3)[1] == work
    assert vote.favourable(X[:0])[0].shape == (0,)
    strings = RandomForestClassifier(n_estimators=3).fit(X, np.where(y, "yes", "no"))
    assert ForestVote.of(strings) is None and ForestVote.of(LogisticRegression()) is None



def test_a_models_own_predict_gets_bounded_frames(alzheimer):
    """Large calls reach a user's model in frames of at most PREDICT_ROWS rows, in order."""
    from distributed_recourse.model import PREDICT_ROWS

    frame = alzheimer.frame
    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    estimator.fit(frame[alzheimer.space.columns], frame["Diagnosis"])
    sizes = []

    class Counted:
        def predict(self, rows):
            sizes.append(len(rows))
            return estimator.predict(rows)

    X = np.repeat(alzheimer.X, 10, axis=0)[:2 * PREDICT_ROWS + 5]
    model = BlackBox(Counted(), alzheimer.space, input="frame", favourable_output=0)
    expected = estimator.predict(alzheimer.space.decode(X)) == 0
    np.testing.assert_array_equal(model.favourable(X), expected)
    assert sizes == [PREDICT_ROWS, PREDICT_ROWS, 5] and model.work == len(X)

# ---------------------------------------------------------------- each model kind
@pytest.mark.parametrize(
    "kind, accuracy",
    [("logistic_regression", 0.75), ("gradient_boosting", 0.9), ("mlp", 0.7)],
)
def test_model_kinds_train(alzheimer, kind, accuracy):
    X, y = alzheimer.X, alzheimer.favourable
    train, test = train_test_split(np.arange(len(X)), test_size=0.2, stratify=y, random_state=0)
    model = train_model(ModelConfig(kind=kind), alzheimer.space, X[train], y[train], 0, 0)
    predicted = model.favourable(X[test])
    assert predicted.dtype == bool
    assert (predicted == y[test]).mean() > accuracy
    assert model.metadata["kind"] == kind and model.input == "matrix"
    expected_type = Pipeline if kind != "gradient_boosting" else HistGradientBoostingClassifier
    assert isinstance(model.estimator, expected_type)


def test_model_params_reach_the_estimator(alzheimer):
    X, y = alzheimer.X[:400], alzheimer.favourable[:400]
    model = train_model(
        ModelConfig(kind="random_forest", params={"n_estimators": 7}), alzheimer.space, X, y, 0, 0
    )
    assert model.estimator.n_estimators == 7 and model.estimator.max_depth == 15


# ---------------------------------------------------------------- a user's model file
@pytest.fixture(scope="module")
def user_model_file(alzheimer, tmp_path_factory):
    """A user's pipeline fitted on the raw frame (named columns) predicting raw Diagnosis."""
    frame = alzheimer.frame
    columns = alzheimer.space.columns
    estimator = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
    estimator.fit(frame[columns], frame["Diagnosis"])
    path = tmp_path_factory.mktemp("user") / "model.joblib"
    joblib.dump(estimator, path)
    return path, estimator


def test_file_model_reads_the_frame(alzheimer, user_model_file, tmp_path):
    path, estimator = user_model_file
    config = RunConfig.from_dict(
        {**ALZHEIMER, "model": {"kind": "file", "path": str(path), "input": "frame"}}
    )
    prepared = prepare(config, alzheimer)
    model = prepared.model
    assert (model.input, model.favourable_output) == ("frame", 0)  # the schema's favourable
    X = alzheimer.X
    raw = estimator.predict(alzheimer.frame[alzheimer.space.columns])
    assert set(raw) == {0, 1}
    np.testing.assert_array_equal(model.favourable(X), raw == 0)
    assert not model.favourable(prepared.population.X).any()
    assert prepared.summary["model"]["kind"] == "file"
    model.save(tmp_path / "model")
    back = BlackBox.load(tmp_path / "model")
    assert (back.input, back.favourable_output) == ("frame", 0)
    np.testing.assert_array_equal(back.favourable(X), raw == 0)


def test_file_model_with_string_labels(alzheimer, tmp_path):
    frame = alzheimer.frame
    columns = alzheimer.space.columns
    labels = np.where(frame["Diagnosis"] == 0, "healthy", "alzheimer")
    estimator = HistGradientBoostingClassifier(random_state=0).fit(frame[columns], labels)
    path = tmp_path / "user.joblib"
    joblib.dump(estimator, path)
    config = ModelConfig(kind="file", path=str(path), input="frame", favourable_output="healthy")
    model = train_model(config, alzheimer.space, alzheimer.X, alzheimer.favourable, 0, 0)
    expected = estimator.predict(frame[columns]) == "healthy"
    assert 1_000 < expected.sum() < 1_800
    np.testing.assert_array_equal(model.favourable(alzheimer.X), expected)


def test_file_model_errors(alzheimer, tmp_path):
    missing = ModelConfig(kind="file", path=str(tmp_path / "gone.joblib"))
    with pytest.raises(ConfigError, match=r"model.path .*gone.joblib.*no such model file"):
        train_model(missing, alzheimer.space, alzheimer.X, alzheimer.favourable, 0, 0)
    with pytest.raises(ConfigError, match=r"model.input 'table'"):
        BlackBox(LogisticRegression(), alzheimer.space, input="table")
    with pytest.raises(ConfigError, match=r"\(dict\) has no `predict`"):
        BlackBox({}, alzheimer.space)


# ---------------------------------------------------------------- Adult, once
def test_adult_prepare():
    prepared = prepare(RunConfig.from_dict({"dataset": {"name": "adult"}}))
    affected = prepared.summary["affected"]
    assert 7_000 <= affected["n"] <= 7_600  # the reference: 7,268
    assert set(affected["groups"]) == {"White", "non-White"}
    assert sum(affected["groups"].values()) == affected["n"]
    assert min(affected["groups"].values()) > 500
    assert prepared.summary["n_test"] == 9_035  # ceil(0.2 * 45,175)
    assert prepared.summary["model"]["accuracy"] > 0.83
    assert not prepared.model.favourable(prepared.population.X[:2000]).any()
