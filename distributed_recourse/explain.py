"""Recourse for every person in a table, from a trained run.

Each row is validated against the schema, gets its scope (its cluster, or everyone at group
level) and that scope's action set; the flipping action with the smallest Gower distance is the
person's counterfactual and the next-best flipping actions are their alternatives
(DESIGN.md section 3). Rows the model already favours are passed through.

`Explainer` does this in plain numpy/pandas, without Ray, from what a run learned kept as plain
data; `FairRecourse` is the scikit-learn style estimator around it (`fit` trains on Ray). The
batch pipeline over Ray Data is `batch.py`.
"""

from __future__ import annotations

import json
import tempfile
from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.base import BaseEstimator
from sklearn.utils.validation import check_is_fitted

from distributed_recourse.config import ConfigError, RunConfig
from distributed_recourse.data.datasets import BUILTIN, Dataset, builtin_schema, finish
from distributed_recourse.data.schema import OTHER, FeatureSpace, Protected, Schema, SchemaError
from distributed_recourse.model import BlackBox
from distributed_recourse.population import WHOLE, Clustering, cluster_scope
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.describe import action_text
from distributed_recourse.result import RunResult

FAVOURABLE, RECOURSE, NO_RECOURSE, REJECTED = "favourable", "recourse", "no_recourse", "rejected"
"""Row statuses: already favoured (passed through), given a counterfactual, no action of the
scope's set flips the decision, failed validation."""
CF = "cf_"
"""Prefix of the counterfactual's actionable feature columns."""


# --------------------------------------------------------------------- validation
def validate(
    frame: pd.DataFrame, space: FeatureSpace, protected: Protected, source: str = "data"
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Encode the rows the model's way and say why a row cannot be explained.

    Returns X (n, d) (placeholders in rows with a problem), the protected group label per row
    and the reason per row ("" when valid). Problems reject their row only, with a reason naming
    the column and what it expects: a missing value, a value that is not a (finite) number, an
    unknown category, an actionable value outside its bounds or between ordinal levels, a
    protected value with no group. A reason never repeats a protected column's value (only the
    group label leaves the explainer). A column missing from the whole frame raises a
    SchemaError naming it and `source`."""
    for column in [*space.columns, *protected.columns]:
        if column not in frame.columns:
            raise SchemaError(f"{source}: column {column!r} is missing")
    n = len(frame)
    X = np.zeros((n, len(space.columns)))
    problems: dict[int, list[str]] = {}

    def reject(mask: np.ndarray, column: str, raw: np.ndarray, describe: Callable[[str], str]) -> None:
        hidden = column in protected.columns
        for i in np.flatnonzero(mask):
            value = raw[i]
            shown = "the value" if hidden else repr(value) if isinstance(value, str) else str(value)
            problems.setdefault(int(i), []).append(describe(shown))

    features = {spec.name: spec for spec in space.actionable}
    for i, column in enumerate(space.columns):
        raw = frame[column].to_numpy()  # numpy from here: a column of one row costs ~10x less
        missing = pd.isna(raw)
        if column in space.categories:
            expected = f"expected one of {listed(space.categories[column])}"
            reject(missing, column, raw, lambda v, c=column, e=expected: f"{c}: missing, {e}")
            X[:, i] = codes = space.category_codes(raw, column)
            reject((codes < 0) & ~missing, column, raw,
                   lambda v, c=column, e=expected: f"{c}: {v} is not a known category, {e}")
            continue
        spec = features.get(column)
        expected = "a number" if spec is None else f"a number in {spec.low:g}..{spec.high:g}"
        reject(missing, column, raw, lambda v, c=column, e=expected: f"{c}: missing, expected {e}")
        numeric = raw.astype(np.float64) if raw.dtype.kind in "biuf" else np.asarray(
            pd.to_numeric(raw, errors="coerce"), dtype=np.float64)
        finite = np.isfinite(numeric)
        reject(~finite & ~missing, column, raw, lambda v, c=column, e=expected: f"{c}: {v} is not {e}")
        X[:, i] = np.where(finite, numeric, 0.0)
        if spec is not None:
            outside = finite & ((numeric < spec.low) | (numeric > spec.high))
            reject(outside, column, raw, lambda v, c=column, e=expected: f"{c}: {v} is outside its bounds, "
                                                                        f"expected {e}")
            if spec.kind == "ord":
                between = finite & ~outside & (numeric != np.round(numeric))
                reject(between, column, raw, lambda v, c=column, s=spec: f"{c}: {v} is between levels, "
                                                                         f"expected a whole number in "
                                                                         f"{s.low:g}..{s.high:g}")
    valid = np.ones(n, dtype=bool)
    valid[list(problems)] = False
    groups = None
    for column in protected.columns:
        part = protected.column_groups(frame[column], column).to_numpy()
        mapped = [key for key in protected.groups.get(column, {}) if key != OTHER]
        reject(valid & pd.isna(part), column, frame[column].to_numpy(),
               lambda v, c=column, m=mapped: f"{c}: {v} has no protected group, expected one of {listed(m)}")
        groups = part if groups is None else np.array(
            [None if a is None or b is None else f"{a} x {b}" for a, b in zip(groups, part, strict=True)],
            dtype=object)
    reasons = np.full(n, "", dtype=object)
    for i, found in problems.items():
        reasons[i] = "; ".join(found)
    return X, groups, reasons


def listed(values: list[str], most: int = 12) -> str:
    """`a, b, c` (the first `most` values, then `...`)."""
    return ", ".join(map(str, values[:most])) + (", ..." if len(values) > most else "")


# --------------------------------------------------------------------- scopes
@dataclass(frozen=True)
class Scopes:
    """Which scope's action set a person gets: at group level everyone gets the whole
    population's; otherwise their nearest cluster centre's, as the run's KMeans assigns them
    (on standardised features if it clustered on those).

    Kept as numbers rather than the pickled KMeans, so that a saved explainer holds no
    pickled code but the user's model."""

    level: str
    centers: np.ndarray | None = None
    """(k, d) cluster centres, in the clustering's feature space; None at group level."""
    mean: np.ndarray | None = None
    """Standardisation of the clustering's features (None: raw features)."""
    scale: np.ndarray | None = None

    @classmethod
    def of(cls, level: str, clustering: Clustering) -> Scopes:
        if level == "group":
            return cls(level)
        scaler = clustering.scaler_
        return cls(level, clustering.kmeans_.cluster_centers_,
                   None if scaler is None else scaler.mean_, None if scaler is None else scaler.scale_)

    @property
    def names(self) -> list[str]:
        return [WHOLE] if self.centers is None else [cluster_scope(c) for c in range(len(self.centers))]

    def assign(self, X: np.ndarray) -> np.ndarray:
        """Index into `names` per row."""
        if self.centers is None:
            return np.zeros(len(X), dtype=np.int64)
        features = X if self.mean is None else (X - self.mean) / self.scale
        distances = ((features[:, None, :] - self.centers[None, :, :]) ** 2).sum(axis=2)
        return distances.argmin(axis=1)

    def to_dict(self) -> dict[str, Any]:
        def listed(a: np.ndarray | None) -> list | None:
            return None if a is None else a.tolist()

        return {"level": self.level, "centers": listed(self.centers), "mean": listed(self.mean),
                "scale": listed(self.scale)}

    @classmethod
    def from_dict(cls, spec: dict[str, Any]) -> Scopes:
        def array(key: str) -> np.ndarray | None:
            return None if spec.get(key) is None else np.asarray(spec[key], dtype=np.float64)

        return cls(spec["level"], array("centers"), array("mean"), array("scale"))


# --------------------------------------------------------------------- per-row recourse
@dataclass(frozen=True)
class Recourse:
    """Each person's recourse under their scope's set."""

    ranked: np.ndarray
    """(1 + k, n) flipping actions, closest first: the chosen one, then k alternatives
    (index into the scope's set; -1 where there are no more)."""
    gower: np.ndarray
    """(1 + k, n) their Gower distances (NaN where there are no more)."""
    sparsity: np.ndarray
    """(n,) features the chosen action changes (0 without one)."""
    counterfactual: np.ndarray
    """(n, d) the chosen action applied (the person's own row without one)."""

    @property
    def chosen(self) -> np.ndarray:
        return self.ranked[0]

    @property
    def valid(self) -> np.ndarray:
        return self.ranked[0] >= 0


def closest_actions(
    actions: ActionSpace, X: np.ndarray, sets: np.ndarray, scope: np.ndarray,
    favourable: Callable[[np.ndarray], np.ndarray], alternatives: int = 2,
) -> Recourse:
    """The closest flipping action of each person's scope's set, and the next `alternatives`.

    X holds people the model does not favour; `sets` (S, N, m) one set per scope and `scope`
    (n,) each person's. The model is asked rank by rank, in order of Gower distance, all
    people of a rank in one call, and only about what no cheaper check settles: a person stops
    being evaluated once 1 + `alternatives` actions flip them; an action that changes nothing
    for the person, or repeats an earlier action of the set, is never evaluated; one that
    gives the person the same counterfactual as a closer action (say, raising a feature that
    a one-way rule keeps where it is) gets that action's outcome. The chosen action is what
    `metrics.person_outcome` would choose over all actions (ties: the first in the set)."""
    n, N = len(X), sets.shape[1]
    moved = np.repeat(X[None], N, axis=0)
    for s in np.unique(scope):
        mine = scope == s
        for j, action in enumerate(sets[s]):
            moved[j, mine] = actions.apply(X[mine], action)
    gower = np.stack([actions.distance(X, after) for after in moved])
    changed = np.stack([actions.n_changed(X, after) for after in moved])
    distinct = np.stack([actions.distinct(action_set) for action_set in sets])
    usable = distinct[scope].T & (changed > 0)
    # copy_of[j, i]: an earlier action of the set giving person i the same counterfactual as
    # action j (equal rows have equal Gower distances, so it ranks before j), else -1
    copy_of = np.full((N, n), -1)
    moves = moved[:, :, actions.columns]
    for j in range(1, N):
        for k in range(j - 1, -1, -1):
            same = usable[k] & usable[j] & (moves[j] == moves[k]).all(axis=1)
            copy_of[j, same] = k
    order = np.argsort(np.where(usable, gower, np.inf), axis=0, kind="stable")
    people = np.arange(n)
    flipped = np.zeros((N, n), dtype=bool)
    found = np.zeros(n, dtype=np.int64)
    for j in order:  # j[i]: person i's action at this rank
        todo = np.flatnonzero((found <= alternatives) & usable[j, people])
        if not len(todo):
            break
        action = j[todo]
        source = copy_of[action, todo]
        copied = source >= 0
        hit = np.empty(len(todo), dtype=bool)
        hit[copied] = flipped[source[copied], todo[copied]]
        if not copied.all():
            hit[~copied] = np.asarray(favourable(moved[action[~copied], todo[~copied]]), dtype=bool)
        flipped[action, todo] = hit
        found[todo] += hit
    wanted = 1 + alternatives
    cost = np.vstack([np.where(flipped, gower, np.inf), np.full((max(0, wanted - N), n), np.inf)])
    ranked = np.argsort(cost, axis=0, kind="stable")[:wanted]
    ranked_cost = np.take_along_axis(cost, ranked, axis=0)
    exists = np.isfinite(ranked_cost)
    chosen = np.where(exists[0], ranked[0], 0)
    return Recourse(
        ranked=np.where(exists, ranked, -1),
        gower=np.where(exists, ranked_cost, np.nan),
        sparsity=np.where(exists[0], changed[chosen, people], 0),
        counterfactual=np.where(exists[0][:, None], moved[chosen, people], X),
    )


def placed(values: np.ndarray, rows: np.ndarray, n: int, fill: Any) -> np.ndarray:
    """`values` at positions `rows` of an n-array holding `fill` elsewhere (None: an object
    array, so that e.g. integer codes stay integers beside the gaps)."""
    out = np.full(n, fill, dtype=object if fill is None else values.dtype)
    out[rows] = values
    return out


# --------------------------------------------------------------------- the explainer
@dataclass
class Explainer:
    """What explaining needs from a trained run, as plain data: the schema (validation,
    groups), the model, the scopes and each scope's final action set."""

    schema: Schema
    model: BlackBox
    scopes: Scopes
    sets: np.ndarray
    """(S, N, m) the final set of each scope, in `scopes.names` order."""

    @property
    def space(self) -> FeatureSpace:
        return self.model.space

    @cached_property
    def actions(self) -> ActionSpace:
        return ActionSpace(self.space.actionable, self.sets.shape[1])

    @cached_property
    def action_texts(self) -> np.ndarray:
        """(S, N + 1) each scope's actions in words, as the end-of-run table prints them
        (`recourse/describe.py`); the last column, where index -1 (no action) points, is None."""
        features = self.space.describe_actionable()
        return np.array([[action_text(self.actions.describe(action), features) for action in action_set]
                         + [None] for action_set in self.sets], dtype=object)

    def explain(self, frame: pd.DataFrame, alternatives: int = 2, source: str = "data") -> pd.DataFrame:
        """One row per row of `frame` (same index): the features as the model reads them,
        `scope`, `group`, `status`, `reason` (why a row was rejected), `flipped`, `action`
        (index into the scope's set, -1: none) and `action_text` (it in words), the
        counterfactual's actionable features (`cf_<name>`), its `gower` distance and
        `sparsity`, then `alternative_<i>`, `alternative_<i>_text` and `alternative_<i>_gower`
        for the next-best flipping actions (-1 / None / NaN: none)."""
        return pd.DataFrame(self.explained(frame, alternatives, source), index=frame.index)

    def explained(self, frame: pd.DataFrame, alternatives: int = 2,
                  source: str = "data") -> dict[str, np.ndarray]:
        """`explain`'s columns as arrays (NaN or None where a value is missing), for readers that
        need no frame (the batch output, the HTTP answers)."""
        X, groups, reasons = validate(frame, self.space, self.schema.protected, source)
        n = len(frame)
        rows = np.flatnonzero(reasons == "")
        X = X[rows]
        favourable = self.model.favourable(X) if len(X) else np.zeros(0, dtype=bool)
        scope = self.scopes.assign(X)
        affected = np.flatnonzero(~favourable)
        found = closest_actions(self.actions, X[affected], self.sets, scope[affected],
                                self.model.favourable, alternatives)
        status = np.where(favourable, FAVOURABLE, NO_RECOURSE).astype(object)
        status[affected[found.valid]] = RECOURSE
        at = rows[affected]

        def text(ranked: np.ndarray) -> np.ndarray:
            return placed(self.action_texts[scope[affected], ranked], at, n, None)

        data = {c: placed(v, rows, n, np.nan if v.dtype.kind == "f" else None)
                for c, v in self.space.decoded(X).items()}
        data["scope"] = placed(np.asarray(self.scopes.names, dtype=object)[scope], rows, n, None)
        data["group"] = placed(groups[rows].astype(object), rows, n, None)
        data["status"] = placed(status, rows, n, REJECTED)
        data["reason"] = np.where(reasons == "", None, reasons)
        data["flipped"] = placed(found.valid, at, n, False)
        data["action"] = placed(found.chosen, at, n, -1)
        data["action_text"] = text(found.chosen)
        with_cf = affected[found.valid]
        counterfactuals = self.space.decoded(found.counterfactual[found.valid])
        for name in self.actions.names:
            values = counterfactuals[name]
            data[CF + name] = placed(values, rows[with_cf], n, np.nan if values.dtype.kind == "f" else None)
        data["gower"] = placed(found.gower[0], at, n, np.nan)
        data["sparsity"] = placed(found.sparsity, at, n, 0)
        for i in range(1, 1 + alternatives):
            data[f"alternative_{i}"] = placed(found.ranked[i], at, n, -1)
            data[f"alternative_{i}_text"] = text(found.ranked[i])
            data[f"alternative_{i}_gower"] = placed(found.gower[i], at, n, np.nan)
        return data

    def described_sets(self) -> dict[str, list[dict[str, float]]]:
        """Each scope's actions, as the changes they make (what `action` indices point to)."""
        return {name: [self.actions.describe(a) for a in action_set]
                for name, action_set in zip(self.scopes.names, self.sets, strict=True)}

    # ----------------------------------------------------------------- persistence
    @classmethod
    def from_run(cls, run: str | Path) -> Explainer:
        """From a trained run folder (`recourse train --output`)."""
        from distributed_recourse.population import Prepared

        run = Path(run)
        if not (run / "summary.json").is_file() or not Prepared.exists(run):
            raise ConfigError(f"{run} is not a trained run (no summary.json or prepared/); "
                              "train one with `recourse train --output`")
        prepared = Prepared.load(run)
        result = RunResult.load(run)
        scopes = Scopes.of(result.level, prepared.clustering)
        missing = [name for name in scopes.names if name not in result.scopes]
        if missing:
            raise ConfigError(f"{run}/summary.json has no action set for scopes {missing}")
        sets = np.array([result.scopes[name].set for name in scopes.names], dtype=np.float64)
        return cls(prepared.schema, prepared.model, scopes, sets)

    def save(self, folder: str | Path) -> None:
        """JSON and YAML, plus the model as `BlackBox.save` writes it."""
        folder = Path(folder)
        folder.mkdir(parents=True, exist_ok=True)
        self.model.save(folder / "model")
        self.schema.to_yaml(folder / "schema.yaml")
        state = {"scopes": self.scopes.to_dict(), "sets": self.sets.tolist()}
        (folder / "explainer.json").write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, folder: str | Path) -> Explainer:
        folder = Path(folder)
        state = json.loads((folder / "explainer.json").read_text())
        return cls(Schema.from_yaml(folder / "schema.yaml"), BlackBox.load(folder / "model"),
                   Scopes.from_dict(state["scopes"]), np.asarray(state["sets"], dtype=np.float64))

    @classmethod
    def open(cls, path: str | Path) -> Explainer:
        """A saved explainer (`FairRecourse.save`) or a trained run folder."""
        return cls.load(path) if (Path(path) / "explainer.json").is_file() else cls.from_run(path)


# --------------------------------------------------------------------- the estimator
@dataclass
class Explanation:
    """What `FairRecourse.explain` returns, as alibi's explanations: `meta` says how the rows
    were explained (parameters, the scopes' action sets `action` indices point into, as
    changes and as text in `sets_text`, counts per status), `data` holds one row per input
    row (see `Explainer.explain`)."""

    meta: dict[str, Any]
    data: pd.DataFrame

    @property
    def counterfactuals(self) -> pd.DataFrame:
        """The rows with recourse as their chosen counterfactuals: the person's features with
        the actionable ones changed."""
        rows = self.data[self.data["status"] == RECOURSE]
        changed = {name: rows[CF + name] for name in self.meta["actionable"]}
        return rows[self.meta["features"]].assign(**changed)


def frame_dataset(config: RunConfig, X: pd.DataFrame, y: Any = None) -> Dataset:
    """A user's frame as the config's dataset: its schema and row filter (`where`), validated
    the same way."""
    name = config.dataset.name
    if name in BUILTIN and name != "csv":
        schema = builtin_schema(name)
    elif config.dataset.schema:
        schema = Schema.from_yaml(config.dataset.schema)
    else:
        raise ConfigError("dataset `csv` needs `schema` (YAML) to read a frame")
    raw = X if y is None else X.assign(**{schema.label: np.asarray(y)})
    return finish(raw, schema, "frame", len(raw), where=config.dataset.where)


class FairRecourse(BaseEstimator):
    """Fair recourse for everyone a model turns down, in scikit-learn form: `fit` learns the
    action sets (SAC per scope on Ray, as `recourse train`), `explain` gives each row of a
    frame its closest counterfactual and alternatives, `save`/`load` keep a fitted explainer.

    config: a RunConfig or a YAML path (None: the Adult paper settings); alternatives: how many
    next-best actions to report per person; run_dir: where training writes its run (None: a
    new temporary folder); address: the Ray cluster to join (None: RAY_ADDRESS or a local Ray);
    verbose: show the training's progress (the display `recourse train` shows)."""

    def __init__(
        self, config: RunConfig | str | Path | None = None, alternatives: int = 2,
        run_dir: str | Path | None = None, address: str | None = None, verbose: int = 0,
    ) -> None:
        self.config = config
        self.alternatives = alternatives
        self.run_dir = run_dir
        self.address = address
        self.verbose = verbose

    def _run_config(self) -> RunConfig:
        if self.config is None:
            return RunConfig()
        if isinstance(self.config, RunConfig):
            return self.config
        return RunConfig.from_yaml(self.config)

    def fit(self, X: pd.DataFrame | None = None, y: Any = None) -> FairRecourse:
        """Train on the config's dataset, or on X (with the label column, or labels y) read
        with the config's dataset schema."""
        from distributed_recourse.population import prepare
        from distributed_recourse.train import train

        config = self._run_config()
        run = Path(self.run_dir) if self.run_dir is not None else Path(
            tempfile.mkdtemp(prefix="fair-recourse-"))
        if X is not None:
            prepare(config, frame_dataset(config, X, y)).save(run)
        if self.verbose:  # the progress `recourse train` shows, Ray's own output left as it is
            from distributed_recourse.console import RunConsole

            with RunConsole(run, "fit", verbose=True) as console:
                self.result_ = train(config, run, address=self.address, stage=console.stage,
                                     starting=console.starting,
                                     callbacks=[console.train_callback()])
        else:
            self.result_ = train(config, run, address=self.address)
        self.run_dir_ = run
        self.explainer_ = Explainer.from_run(run)
        return self

    def explain(self, frame: pd.DataFrame) -> Explanation:
        check_is_fitted(self, "explainer_")
        explainer = self.explainer_
        data = explainer.explain(frame, self.alternatives, source="frame")
        meta = {
            "name": type(self).__name__,
            "alternatives": self.alternatives,
            "level": explainer.scopes.level,
            "features": list(explainer.space.columns),
            "actionable": explainer.actions.names,
            "sets": explainer.described_sets(),
            "sets_text": {name: explainer.action_texts[s, :-1].tolist()
                          for s, name in enumerate(explainer.scopes.names)},
            "counts": {s: int((data["status"] == s).sum())
                       for s in (FAVOURABLE, RECOURSE, NO_RECOURSE, REJECTED)},
        }
        return Explanation(meta, data)

    def save(self, path: str | Path) -> None:
        """A folder of JSON/YAML plus the model's joblib file; `recourse explain --run` reads it
        too. The run folder is not copied."""
        check_is_fitted(self, "explainer_")
        folder = Path(path)
        self.explainer_.save(folder)
        self._run_config().to_yaml(folder / "config.yaml")
        params = {k: v for k, v in self.get_params().items() if k != "config"}
        state = {"params": {**params, "run_dir": None if self.run_dir is None else str(self.run_dir)},
                 "run_dir_": str(self.run_dir_), "result_": self.result_.to_dict()}
        (folder / "fair_recourse.json").write_text(json.dumps(state, indent=2))

    @classmethod
    def load(cls, path: str | Path) -> FairRecourse:
        folder = Path(path)
        state = json.loads((folder / "fair_recourse.json").read_text())
        estimator = cls(config=RunConfig.from_yaml(folder / "config.yaml"), **state["params"])
        estimator.explainer_ = Explainer.load(folder)
        estimator.run_dir_ = Path(state["run_dir_"])
        estimator.result_ = RunResult.from_dict(state["result_"])
        return estimator
