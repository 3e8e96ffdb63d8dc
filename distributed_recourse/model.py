"""The black-box classifier: trained from the config or loaded from the user's file, saved with
its metadata, and audited for its own group fairness.

Everything downstream sees the model only as `favourable(X) -> bool array` on the encoded
feature matrix, so any estimator with `predict` can be explained.
"""

from __future__ import annotations

import json
import platform
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pandas as pd
import sklearn
from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from distributed_recourse.config import ConfigError, ModelConfig
from distributed_recourse.data.schema import FeatureSpace, value_key

PAPER_FOREST = dict(
    n_estimators=200, max_depth=15, max_features="sqrt", min_samples_leaf=2, min_samples_split=5
)


def make_estimator(kind: str, params: dict[str, Any], seed: int):
    """A fresh scikit-learn estimator; one CPU (the trainers own the others)."""
    if kind == "random_forest":
        return RandomForestClassifier(**{**PAPER_FOREST, **params}, random_state=seed, n_jobs=1)
    if kind == "logistic_regression":
        return make_pipeline(StandardScaler(), LogisticRegression(**{"max_iter": 1000, **params}))
    if kind == "gradient_boosting":
        return HistGradientBoostingClassifier(**params, random_state=seed)
    if kind == "mlp":
        return make_pipeline(
            StandardScaler(),
            MLPClassifier(**{"hidden_layer_sizes": (64, 32), "max_iter": 300, **params},
                          random_state=seed),
        )
    raise ConfigError(f"model.kind {kind!r} cannot be trained here")


PREDICT_ROWS = 8_192
"""A model's own `predict` gets at most this many rows (a frame of them) at a time: a
scikit-learn model streams its whole input once per tree, and two workers' 20,000-row frames of
Adult's one-hot Pipeline overflow the cache they share (each predicts a row 3.3x slower than
one alone; in frames of 8,192 rows, 2x). A random forest walks its trees without this cost."""


class BlackBox:
    """A classifier seen as the recourse needs it: which encoded rows get the favourable outcome.

    Built-in models are trained on the encoded matrix with y = favourable; a user's model
    reads either that matrix or the decoded frame, and `favourable_output` says which of its
    predictions is the favourable one."""

    def __init__(
        self, estimator, space: FeatureSpace, input: str = "matrix",
        favourable_output: Any = 1, metadata: dict[str, Any] | None = None,
    ) -> None:
        if input not in ("matrix", "frame"):
            raise ConfigError(f"model.input {input!r}, expected `matrix` or `frame`")
        if not hasattr(estimator, "predict"):
            raise ConfigError(f"the model ({type(estimator).__name__}) has no `predict` method")
        self.estimator = estimator
        self.space = space
        self.input = input
        self.favourable_output = favourable_output
        self.metadata = dict(metadata or {})
        self._forest = ForestVote.of(estimator) if input == "matrix" and favourable_output == 1 else None
        self._pool: ThreadPoolExecutor | None = None
        self._threads = 1
        self.work = 0.0
        """Model rows' worth of prediction done so far: rows asked, a forest's rows counted by
        the share of its trees that voted on them (what the model-bound limit divides by)."""

    def use_threads(self, threads: int) -> None:
        """Split a forest's rows over this many threads (tree traversal releases the GIL);
        a trainer that owns two CPUs predicts twice as fast."""
        self._threads = threads
        self._pool = ThreadPoolExecutor(threads) if threads > 1 and self._forest else None

    def __getstate__(self) -> dict:
        return {**self.__dict__, "_pool": None}

    def _inputs(self, X: np.ndarray):
        return X if self.input == "matrix" else self.space.decode(X)

    def favourable(self, X: np.ndarray) -> np.ndarray:
        if self._forest is not None:
            favoured, work = self._forest.favourable(X, self._pool, self._threads)
            self.work += work
            return favoured
        self.work += len(X)
        if len(X) <= PREDICT_ROWS:
            return self._predicted(X)
        return np.concatenate([self._predicted(X[start:start + PREDICT_ROWS])
                               for start in range(0, len(X), PREDICT_ROWS)])

    def _predicted(self, X: np.ndarray) -> np.ndarray:
        predicted = self.estimator.predict(self._inputs(X))
        if self.input == "matrix" and self.favourable_output == 1:
            return np.asarray(predicted) == 1
        codes, outputs = pd.factorize(pd.Series(predicted))  # each distinct output looked up once
        wanted = value_key(self.favourable_output)
        return np.array([value_key(output) == wanted for output in outputs] + [False])[codes]

    __call__ = favourable  # the model is the recourse math's `favourable(X)` callable

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        joblib.dump(self.estimator, folder / "model.joblib")
        meta = {
            **self.metadata,
            "input": self.input,
            "favourable_output": self.favourable_output,
            "feature_space": self.space.to_dict(),
        }
        (folder / "model.json").write_text(json.dumps(meta, indent=2, default=str))

    @classmethod
    def load(cls, folder: str | Path) -> BlackBox:
        folder = Path(folder)
        meta = json.loads((folder / "model.json").read_text())
        space = FeatureSpace.from_dict(meta.pop("feature_space"))
        estimator = joblib.load(folder / "model.joblib")
        return cls(estimator, space, meta.pop("input"), meta.pop("favourable_output"), meta)


class ForestVote:
    """Exactly `RandomForestClassifier.predict(X) == 1` for a binary (0/1) forest, stopping each
    row's vote once the trees still to vote cannot change its majority.

    The forest predicts the class of the larger mean of its trees' class probabilities (ties:
    class 0). Each tree moves a row's lead (sum over trees of p1 - p0) by at most 1 either way,
    so once |lead| exceeds the number of trees still to vote, by a margin far above the
    rounding of a sum of a few hundred probabilities, the outcome is settled. A row cannot be
    settled before half the trees voted; past that, rows are checked every 5% of the trees and
    the settled ones leave the vote. A row still within the margin after every tree (a near-tie) is
    asked of the forest itself, so even the tie rule is scikit-learn's. On Adult's forest a row
    needs about 62% of the trees. Also faster per tree than the forest's own `predict`: no
    per-tree dispatch, and each tree's leaves reduced to their lead once. A few rows (a
    request to the HTTP service) walk every tree at once instead, level by level in numpy,
    which costs a fifth of one call per tree."""

    MARGIN = 1e-9
    FEW = 16
    """Up to this many rows, every tree at once."""

    def __init__(self, forest: RandomForestClassifier) -> None:
        self.forest = forest
        self.trees = [tree.tree_ for tree in forest.estimators_]
        self.step = max(1, len(self.trees) // 20)
        # every tree's nodes in one array (a tree's children offset by where its nodes start)
        starts = np.cumsum([0, *(tree.node_count for tree in self.trees)])
        self.roots = starts[:-1]
        self.left, self.right = (
            np.concatenate([np.where(getattr(tree, side) < 0, -1, getattr(tree, side) + start)
                            for tree, start in zip(self.trees, self.roots, strict=True)]).astype(np.int32)
            for side in ("children_left", "children_right"))
        self.feature = np.concatenate([np.maximum(tree.feature, 0) for tree in self.trees]).astype(np.int32)
        self.threshold = np.concatenate([tree.threshold for tree in self.trees])
        self.missing_left = np.concatenate([tree.missing_go_to_left for tree in self.trees]).astype(bool)
        self.lead = np.concatenate([tree.value[:, 0, 1] - tree.value[:, 0, 0] for tree in self.trees])
        self.leads = np.split(self.lead, starts[1:-1])  # each tree's, as views
        self.depth = max(tree.max_depth for tree in self.trees)

    def __reduce__(self):  # the forest alone: what is derived from it is rebuilt, not shipped
        return type(self), (self.forest,)

    @classmethod
    def of(cls, estimator) -> ForestVote | None:
        """The vote of a binary (0/1) random forest; None for any other estimator."""
        if not isinstance(estimator, RandomForestClassifier):
            return None
        if estimator.n_outputs_ != 1 or list(estimator.classes_) != [0, 1]:
            return None
        return cls(estimator)

    def favourable(self, X: np.ndarray, pool: ThreadPoolExecutor | None = None,
                   threads: int = 1) -> tuple[np.ndarray, float]:
        """Per row, whether the forest predicts 1; and the work done, in rows of the whole
        forest (rows x trees voted / trees). A pool splits the rows over `threads` threads."""
        X32 = np.ascontiguousarray(X, dtype=np.float32)
        if pool is None or len(X32) < threads:
            favoured, voted = self.vote(X32)
        else:
            parts = np.array_split(np.arange(len(X32)), threads)
            done = list(pool.map(lambda rows: self.vote(X32[rows]), parts))
            favoured = np.concatenate([f for f, _ in done])
            voted = sum(v for _, v in done)
        return favoured, voted / len(self.trees)

    def vote(self, X32: np.ndarray) -> tuple[np.ndarray, int]:
        """(favoured per row, tree votes cast) for float32 rows."""
        n, trees, step = len(X32), len(self.trees), self.step
        if not n:
            return np.zeros(0, dtype=bool), 0
        if n <= self.FEW:
            return self.vote_few(X32), n * trees
        lead = np.zeros(n)
        first = trees // 2  # no row is settled before half the trees voted
        for tree, leads in zip(self.trees[:first], self.leads[:first], strict=True):
            lead += leads[tree.apply(X32)]
        voted = first * n
        favoured = np.zeros(n, dtype=bool)
        rows = np.arange(n)  # the rows still voting, their features and lead
        for start in range(first, trees, step):
            for tree, leads in zip(self.trees[start:start + step], self.leads[start:start + step],
                                   strict=True):
                lead += leads[tree.apply(X32)]
            voted += len(rows) * min(step, trees - start)
            left = trees - min(trees, start + step)
            settled = np.abs(lead) > left + self.MARGIN
            if settled.any():
                favoured[rows[settled]] = lead[settled] > 0
                rows, X32, lead = rows[~settled], X32[~settled], lead[~settled]
                if not len(rows):
                    break
        if len(rows):  # near-ties: the forest's own arithmetic and tie rule
            favoured[rows] = self.forest.predict(X32) == 1
            voted += len(rows) * trees
        return favoured, voted

    def vote_few(self, X32: np.ndarray) -> np.ndarray:
        """Every tree at once, a level per step: each row's node in each tree moves to the child
        the tree's own test picks (a missing value goes where the tree sends it)."""
        node = np.repeat(self.roots[None], len(X32), axis=0)
        row = np.arange(len(X32))[:, None]
        for _ in range(self.depth):
            left = self.left[node]
            value = X32[row, self.feature[node]]
            go_left = (value <= self.threshold[node]) | (np.isnan(value) & self.missing_left[node])
            node = np.where(left < 0, node, np.where(go_left, left, self.right[node]))
        lead = self.lead[node].sum(axis=1)
        favoured = lead > self.MARGIN
        tied = np.abs(lead) <= self.MARGIN
        if tied.any():
            favoured[tied] = self.forest.predict(X32[tied]) == 1
        return favoured


def train_model(
    config: ModelConfig, space: FeatureSpace, X: np.ndarray, y: np.ndarray, seed: int,
    favourable_label: Any,
) -> BlackBox:
    """Fit the configured model on (X, y = favourable), or load the user's."""
    versions = {"sklearn": sklearn.__version__, "numpy": np.__version__,
                "python": platform.python_version()}
    if config.kind == "file":
        if not config.path or not Path(config.path).is_file():
            raise ConfigError(f"model.path {config.path!r}: no such model file")
        estimator = joblib.load(config.path)
        output = favourable_label if config.favourable_output is None else config.favourable_output
        return BlackBox(estimator, space, config.input, output,
                        {"kind": "file", "path": str(config.path), "versions": versions})
    estimator = make_estimator(config.kind, config.params, seed)
    if isinstance(estimator, RandomForestClassifier):  # fit on every core, predict on one
        estimator.set_params(n_jobs=-1).fit(X, y.astype(int)).set_params(n_jobs=1)
    else:
        estimator.fit(X, y.astype(int))
    return BlackBox(estimator, space, "matrix", 1,
                    {"kind": config.kind, "params": config.params, "seed": seed,
                     "versions": versions})


def fairness_report(
    predicted: np.ndarray, actual: np.ndarray, groups: np.ndarray, group_names: list[str]
) -> dict[str, Any]:
    """Accuracy and the model's own group fairness: demographic parity difference (gap in
    favourable rate) and equalised odds difference (larger of the TPR and FPR gaps), each the
    largest gap between any two groups."""
    per_group = {}
    for code, name in enumerate(group_names):
        mask = groups == code
        if not mask.any():
            continue
        pred, true = predicted[mask], actual[mask]
        per_group[name] = {
            "n": int(mask.sum()),
            "favourable_rate": float(pred.mean()),
            "tpr": float(pred[true].mean()) if true.any() else float("nan"),
            "fpr": float(pred[~true].mean()) if (~true).any() else float("nan"),
        }

    def gap(key: str) -> float:
        values = [g[key] for g in per_group.values() if not np.isnan(g[key])]
        return float(max(values) - min(values)) if len(values) > 1 else 0.0

    return {
        "accuracy": float((predicted == actual).mean()),
        "demographic_parity_difference": gap("favourable_rate"),
        "equalized_odds_difference": max(gap("tpr"), gap("fpr")),
        "groups": per_group,
    }
