"""The affected people (test rows the model turns down), their protected groups and clusters,
and `prepare`, which builds and saves all of it with the model for the steps that follow."""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.cluster import KMeans
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from distributed_recourse.config import ConfigError, RunConfig
from distributed_recourse.data import Dataset, Schema, load_dataset
from distributed_recourse.model import BlackBox, fairness_report, train_model
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.ceiling import ceiling_figures, reachable_people
from distributed_recourse.recourse.costs import CostModel
from distributed_recourse.recourse.plausibility import Detector, fit_detector

Stage = Callable[[str], None] | None
"""Hears what a long step is doing (`RunConsole.stage`)."""

WHOLE = "all"
COSTS = "costs.json"
"""The scope holding every affected person."""


def cluster_scope(index: int) -> str:
    return f"cluster-{index}"


@dataclass
class Scope:
    """The people one trainer searches recourse for."""

    name: str
    X: np.ndarray
    groups: np.ndarray
    """(n,) group code per person, an index into `group_names`."""
    group_names: list[str]

    @property
    def n_groups(self) -> int:
        return len(self.group_names)


class Clustering:
    """KMeans on the affected people's features, optionally standardised; reused to assign new
    rows to a cluster at explanation time."""

    def __init__(self, n_clusters: int = 3, standardize: bool = False, seed: int = 42) -> None:
        self.n_clusters = n_clusters
        self.standardize = standardize
        self.seed = seed

    def fit(self, X: np.ndarray) -> Clustering:
        self.scaler_ = StandardScaler().fit(X) if self.standardize else None
        self.kmeans_ = KMeans(self.n_clusters, random_state=self.seed, n_init=10)
        self.kmeans_.fit(self._features(X))
        return self

    def _features(self, X: np.ndarray) -> np.ndarray:
        return self.scaler_.transform(X) if self.scaler_ is not None else X

    def assign(self, X: np.ndarray) -> np.ndarray:
        return self.kmeans_.predict(self._features(X))


@dataclass
class Population:
    """The affected people of a run, in the model's encoded feature space."""

    X: np.ndarray
    groups: np.ndarray
    group_names: list[str]
    clusters: np.ndarray
    row_ids: np.ndarray
    """Each person's row in the validated dataset frame."""
    reachable: np.ndarray
    """Some feasible change flips the person (the ceiling, recourse/ceiling.py)."""
    ceiling_exact: bool = True
    """`reachable` is exact over the values tried, not a lower bound."""

    @property
    def n_clusters(self) -> int:
        return int(self.clusters.max()) + 1 if len(self.clusters) else 0

    def scope_names(self, level: str) -> list[str]:
        """The scopes a fairness level trains: the whole population, or each cluster."""
        if level == "group":
            return [WHOLE]
        return [cluster_scope(c) for c in range(self.n_clusters)]

    def members(self, scope: str) -> np.ndarray:
        if scope == WHOLE:
            return np.ones(len(self.X), dtype=bool)
        return self.clusters == int(scope.removeprefix("cluster-"))

    def scope(self, name: str) -> Scope:
        mask = self.members(name)
        return Scope(name, self.X[mask], self.groups[mask], self.group_names)

    def ceiling(self, mask: np.ndarray | None = None) -> dict[str, Any]:
        """The ceiling's SR, PD and per-group reachable shares over `mask`'s people."""
        return ceiling_figures(self.reachable, self.ceiling_exact, self.groups,
                               self.group_names, mask)

    def group_sizes(self, mask: np.ndarray | None = None) -> dict[str, int]:
        groups = self.groups if mask is None else self.groups[mask]
        counts = np.bincount(groups, minlength=len(self.group_names))
        return {name: int(count) for name, count in zip(self.group_names, counts, strict=True)}

    def save(self, folder: Path) -> None:
        np.savez_compressed(folder / "population.npz", X=self.X, groups=self.groups,
                            clusters=self.clusters, row_ids=self.row_ids,
                            reachable=self.reachable)
        (folder / "groups.json").write_text(json.dumps(
            {"groups": self.group_names, "ceiling_exact": self.ceiling_exact}))

    @classmethod
    def load(cls, folder: Path) -> Population:
        data = np.load(folder / "population.npz")
        meta = json.loads((folder / "groups.json").read_text())
        return cls(data["X"], data["groups"], meta["groups"], data["clusters"], data["row_ids"],
                   data["reachable"], meta["ceiling_exact"])


@dataclass
class Prepared:
    """Everything later steps need, as saved under a run folder."""

    config: RunConfig
    schema: Schema
    """The dataset's schema: explanation validates new rows and finds their groups with it."""
    model: BlackBox
    population: Population
    clustering: Clustering
    plausibility: Detector
    """Outlier detector fitted on the favourable class (its protected columns left out): a
    counterfactual it accepts is plausible (recourse/plausibility.py)."""
    costs: CostModel
    """What a change costs a person: the schema's costs, or Gower (recourse/costs.py)."""
    summary: dict[str, Any]
    holdout: Population | None = None
    """Affected people of the other half of the test split, never searched on: final sets
    are also measured on them (`population.holdout`)."""

    def save(self, folder: str | Path) -> None:
        folder = Path(folder)
        (folder / "prepared").mkdir(parents=True, exist_ok=True)
        self.model.save(folder / "prepared" / "model")
        self.population.save(folder / "prepared")
        joblib.dump(self.clustering, folder / "prepared" / "clustering.joblib")
        joblib.dump(self.plausibility, folder / "prepared" / "plausibility.joblib")
        self.costs.save(folder / "prepared" / COSTS)
        self.config.to_yaml(folder / "prepared" / "config.yaml")
        self.schema.to_yaml(folder / "prepared" / "schema.yaml")
        (folder / "population.json").write_text(json.dumps(self.summary, indent=2))
        if self.holdout is not None:
            (folder / "prepared" / "holdout").mkdir(exist_ok=True)
            self.holdout.save(folder / "prepared" / "holdout")

    @classmethod
    def load(cls, folder: str | Path) -> Prepared:
        folder = Path(folder)
        return cls(
            RunConfig.from_yaml(folder / "prepared" / "config.yaml"),
            Schema.from_yaml(folder / "prepared" / "schema.yaml"),
            BlackBox.load(folder / "prepared" / "model"),
            Population.load(folder / "prepared"),
            joblib.load(folder / "prepared" / "clustering.joblib"),
            joblib.load(folder / "prepared" / "plausibility.joblib"),
            CostModel.load(folder / "prepared" / COSTS),
            json.loads((folder / "population.json").read_text()),
            Population.load(folder / "prepared" / "holdout")
            if (folder / "prepared" / "holdout").is_dir() else None,
        )

    def reclustered(self, n_clusters: int) -> Prepared:
        """The same people, model and data, clustered into another number of clusters."""
        p = self.population
        clustering = Clustering(n_clusters, self.config.population.standardize,
                                self.config.seed).fit(p.X)
        population = replace(p, clusters=clustering.assign(p.X))
        holdout = self.holdout
        if holdout is not None:
            holdout = replace(holdout, clusters=clustering.assign(holdout.X))
        config = replace(self.config, population=replace(self.config.population,
                                                         clusters=n_clusters))
        return replace(self, config=config, population=population, clustering=clustering,
                       holdout=holdout)

    @staticmethod
    def exists(folder: str | Path) -> bool:
        return (Path(folder) / "population.json").is_file() and (
            Path(folder) / "prepared" / "population.npz"
        ).is_file()


PREPARATION = ("dataset", "model", "population", "seed")
"""Config sections that decide the prepared population; a run folder's must match."""


def prepared_for(config: RunConfig, output: Path, stage: Stage = None) -> Prepared:
    """Reuse the population saved in `output` (prepared from the same data, model and
    clustering settings), or prepare and save it."""
    if not Prepared.exists(output):
        prepared = prepare(config, stage=stage)
        prepared.save(output)
        return prepared
    prepared = Prepared.load(output)
    saved, wanted = prepared.config.to_dict(), config.to_dict()
    differ = [key for key in PREPARATION if saved[key] != wanted[key]]
    if differ:
        raise ConfigError(
            f"{output} holds a population prepared with other {differ} settings; "
            "use a new --output folder"
        )
    return prepared


def split(config: RunConfig, y: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The rows the model is trained on and the test rows (stratified by the label y)."""
    return train_test_split(
        np.arange(len(y)), test_size=config.model.test_size, stratify=y, random_state=config.seed
    )


def prepare(config: RunConfig, dataset: Dataset | None = None, stage: Stage = None) -> Prepared:
    """Load the data, train (or load) the model, find the affected people, their ceiling and
    their clusters. `stage(text)` hears what it is doing (a console shows it)."""
    stage = stage or (lambda text: None)
    data = config.dataset
    stage(f"loading {data.name}")
    dataset = dataset or load_dataset(data.name, data.path, data.schema, data.sep, data.where)
    X, y = dataset.X, dataset.favourable
    labels = dataset.groups.to_numpy()
    group_names = sorted(set(labels))
    groups = np.searchsorted(group_names, labels)
    train, test = split(config, y)
    stage(f"training the {config.model.kind} model on {len(train):,} rows")
    model = train_model(config.model, dataset.space, X[train], y[train], config.seed,
                        dataset.schema.favourable)
    predicted = model.favourable(X[test])
    audit = fairness_report(predicted, y[test], groups[test], group_names)
    model.metadata.update(dataset=dataset.schema.name, features=dataset.space.columns,
                          metrics={k: v for k, v in audit.items() if k != "groups"})

    affected = test[~predicted]
    sampler = np.random.default_rng(config.seed)
    held = np.array([], dtype=np.int64)
    if config.population.holdout:
        half = sampler.random(len(affected)) < 0.5
        affected, held = affected[half], affected[~half]
    if config.population.max_affected and len(affected) > config.population.max_affected:
        affected = np.sort(sampler.choice(affected, config.population.max_affected, replace=False))
    clustering = Clustering(config.population.clusters, config.population.standardize,
                            config.seed).fit(X[affected])

    actions = ActionSpace(dataset.space.actionable, 1)
    stage(f"the ceiling: who any feasible change flips, of {len(affected):,} affected people")

    def people(rows: np.ndarray) -> Population:
        ceiling = reachable_people(actions, X[rows], model.favourable, seed=config.seed)
        return Population(X[rows], groups[rows], group_names, clustering.assign(X[rows]), rows,
                          ceiling.reachable, ceiling.exact)

    population = people(affected)
    holdout = people(held) if config.population.holdout else None
    protected = [dataset.space.columns.index(c) for c in dataset.schema.protected.columns
                 if c in dataset.space.columns]
    plausibility = fit_detector(X[train][y[train]], protected, config.seed)
    costs = CostModel.fit(dataset.schema, dataset.space, X[train])

    summary = {
        "dataset": dataset.schema.name,
        "n_rows": len(X),
        "n_test": len(test),
        "data": dataset.report(),
        "model": {"kind": config.model.kind, **audit},
        "affected": {"n": len(affected), "groups": population.group_sizes(),
                     "ceiling": population.ceiling()},
        "clusters": {
            cluster_scope(c): {
                "n": int((population.clusters == c).sum()),
                "groups": population.group_sizes(population.clusters == c),
                "ceiling": population.ceiling(population.clusters == c),
            }
            for c in range(config.population.clusters)
        },
    }
    if holdout is not None:
        summary["holdout"] = {"n": len(held), "groups": holdout.group_sizes(),
                              "ceiling": holdout.ceiling()}
    return Prepared(config, dataset.schema, model, population, clustering, plausibility, costs,
                    summary, holdout)
