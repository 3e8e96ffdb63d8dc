"""What a counterfactual costs the person who is asked to reach it.

Each actionable feature has a cost term per person, from the schema's optional `cost`:
- a number: that weight per unit of change (per change for a `cat` feature);
- `percentile`: the change in the feature's empirical CDF over the training rows, the
  maximum-percentile-shift term of Ustun et al.'s actionable recourse (2019): a move through
  values many people hold costs much, a move through a sparse range costs little;
- none: the feature's Gower term (|change| / span, or 1 if a category changed).
A person's cost is the mean of the terms, as Gower's distance is, so a schema without costs
gives exactly the Gower distance and nothing changes for existing configs.

A CostModel is plain data (JSON, no pickle), so a run folder can keep the one it used.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from distributed_recourse.data.schema import PERCENTILE, FeatureSpace, FeatureSpec, Schema, SchemaError
from distributed_recourse.recourse.actions import ActionSpace

GOWER = "gower"


@dataclass(frozen=True)
class CostModel:
    """Per actionable feature a rule (`gower`, `percentile` or a weight per unit), and for
    each `percentile` feature its empirical CDF as the training rows' distinct values and the
    share of rows at or below each."""

    features: tuple[FeatureSpec, ...]
    rules: tuple[float | str, ...]
    cdfs: Mapping[str, tuple[np.ndarray, np.ndarray]] = field(default_factory=dict)

    @classmethod
    def gower(cls, space: FeatureSpace) -> CostModel:
        """The default: every feature's Gower term."""
        return cls(space.actionable, (GOWER,) * len(space.actionable))

    @classmethod
    def fit(cls, schema: Schema, space: FeatureSpace, X_train: np.ndarray) -> CostModel:
        """The schema's costs on the model's encoded features; `percentile` CDFs from X_train
        (the rows the model was trained on)."""
        declared = {a.name: a.cost for a in schema.actionable}
        rules = tuple(GOWER if declared.get(f.name) is None else declared[f.name]
                      for f in space.actionable)
        cdfs = {}
        for spec, rule in zip(space.actionable, rules, strict=True):
            if rule == PERCENTILE:
                if not len(X_train):
                    raise SchemaError(f"actionable feature {spec.name!r}: cost `percentile` "
                                      "needs training rows for its CDF, got none")
                values, counts = np.unique(X_train[:, spec.column], return_counts=True)
                cdfs[spec.name] = (values, np.cumsum(counts) / len(X_train))
        return cls(space.actionable, rules, cdfs)

    @property
    def is_gower(self) -> bool:
        return all(rule == GOWER for rule in self.rules)

    def cdf(self, name: str, values: np.ndarray) -> np.ndarray:
        """The empirical CDF of feature `name`: the share of training rows at or below."""
        support, shares = self.cdfs[name]
        at = np.searchsorted(support, values, side="right")
        return np.where(at > 0, shares[np.maximum(at - 1, 0)], 0.0)

    def terms(self, X: np.ndarray, X_new: np.ndarray) -> np.ndarray:
        """(n, m) each actionable feature's cost term per person."""
        terms = ActionSpace(self.features, 1).feature_distance(X, X_new)
        for f, (spec, rule) in enumerate(zip(self.features, self.rules, strict=True)):
            before, after = X[:, spec.column], X_new[:, spec.column]
            if rule == PERCENTILE:
                terms[:, f] = np.abs(self.cdf(spec.name, after) - self.cdf(spec.name, before))
            elif rule != GOWER:
                change = (after != before) if spec.kind == "cat" else np.abs(after - before)
                terms[:, f] = float(rule) * change
        return terms

    def cost(self, X: np.ndarray, X_new: np.ndarray) -> np.ndarray:
        """(n,) what moving each person from X to X_new costs them."""
        return self.terms(X, X_new).mean(axis=1)

    # ----------------------------------------------------------------- persistence
    def to_dict(self) -> dict[str, Any]:
        return {
            "features": [asdict(f) for f in self.features],
            "rules": list(self.rules),
            "cdfs": {name: {"values": v.tolist(), "shares": s.tolist()}
                     for name, (v, s) in self.cdfs.items()},
        }

    @classmethod
    def from_dict(cls, spec: Mapping[str, Any]) -> CostModel:
        return cls(
            tuple(FeatureSpec(**f) for f in spec["features"]),
            tuple(spec["rules"]),
            {name: (np.asarray(c["values"], dtype=np.float64),
                    np.asarray(c["shares"], dtype=np.float64))
             for name, c in spec.get("cdfs", {}).items()},
        )

    def save(self, path: str | Path) -> None:
        Path(path).write_text(json.dumps(self.to_dict(), indent=2))

    @classmethod
    def load(cls, path: str | Path) -> CostModel:
        return cls.from_dict(json.loads(Path(path).read_text()))


def action_costs(
    costs: CostModel, space: ActionSpace, X: np.ndarray, action_set: np.ndarray
) -> np.ndarray:
    """(N, n) what each action of a set costs each person."""
    return np.array([costs.cost(X, space.apply(X, action)) for action in action_set])
