"""The affected people (test rows the model turns down), their protected groups and clusters,
and `prepare`, which builds and saves all of it with the model for the steps that follow."""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import joblib
import numpy as np
from sklearn.cluster import KMeans
from sklearn.ensemble import IsolationForest
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from distributed_recourse.config import RunConfig
from distributed_recourse.data import Dataset, Schema, load_dataset
from distributed_recourse.model import BlackBox, fairness_report, train_model

WHOLE = "all"
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

    def group_sizes(self, mask: np.ndarray | None = None) -> dict[str, int]:
        groups = self.groups if mask is None else self.groups[mask]
        counts = np.bincount(groups, minlength=len(self.group_names))
        return {name: int(count) for name, count in zip(self.group_names, counts, strict=True)}

    def save(self, folder: Path) -> None:
        np.savez_compressed(folder / "population.npz", X=self.X, groups=self.groups,
                            clusters=self.clusters, row_ids=self.row_ids)
        (folder / "groups.json").write_text(json.dumps(self.group_names))

    @classmethod
    def load(cls, folder: Path) -> Population:
        data = np.load(folder / "population.npz")
        names = json.loads((folder / "groups.json").read_text())
        return cls(data["X"], data["groups"], names, data["clusters"], data["row_ids"])


@dataclass
class Prepared:
    """Everything later steps need, as saved under a run folder."""

    config: RunConfig
    schema: Schema
    """The dataset's schema: explanation validates new rows and finds their groups with it."""
    model: BlackBox
    population: Population
    clustering: Clustering
    plausibility: IsolationForest
    """Outlier detector fitted on the favourable class: a counterfactual it accepts is plausible."""
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
            json.loads((folder / "population.json").read_text()),
            Population.load(folder / "prepared" / "holdout")
            if (folder / "prepared" / "holdout").is_dir() else None,
        )

    def reclustered(self, n_clusters: int) -> Prepared:
        """The same people, model and data, clustered into another number of clusters."""
        p = self.population
        clustering = Clustering(n_clusters, self.config.population.standardize,
                                self.config.seed).fit(p.X)
        population = Population(p.X, p.groups, p.group_names, clustering.assign(p.X), p.row_ids)
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


def prepare(config: RunConfig, dataset: Dataset | None = None) -> Prepared:
    """Load the data, train (or load) the model, find the affected people and cluster them."""
    data = config.dataset
    dataset = dataset or load_dataset(data.name, data.path, data.schema, data.sep, data.where)
    X, y = dataset.X, dataset.favourable
    labels = dataset.groups.to_numpy()
    group_names = sorted(set(labels))
    groups = np.searchsorted(group_names, labels)
    rows = np.arange(len(X))
    train, test = train_test_split(
        rows, test_size=config.model.test_size, stratify=y, random_state=config.seed
    )
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

    def people(rows: np.ndarray) -> Population:
        return Population(X[rows], groups[rows], group_names, clustering.assign(X[rows]), rows)

    population = people(affected)
    holdout = people(held) if config.population.holdout else None
    plausibility = IsolationForest(random_state=config.seed).fit(X[train][y[train]])

    summary = {
        "dataset": dataset.schema.name,
        "n_rows": len(X),
        "n_test": len(test),
        "data": dataset.report(),
        "model": {"kind": config.model.kind, **audit},
        "affected": {"n": len(affected), "groups": population.group_sizes()},
        "clusters": {
            cluster_scope(c): {
                "n": int((population.clusters == c).sum()),
                "groups": population.group_sizes(population.clusters == c),
            }
            for c in range(config.population.clusters)
        },
    }
    if holdout is not None:
        summary["holdout"] = {"n": len(held), "groups": holdout.group_sizes()}
    return Prepared(config, dataset.schema, model, population, clustering, plausibility, summary,
                    holdout)
