"""A run's outcome as one typed, versioned object: `RunResult`, written as summary.json and read
back through `RunResult.load` by the report, explanation, reproduction and sweeps (and tests
build it, not dicts)."""

from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

SCHEMA_VERSION = 2
"""Bumped whenever a field changes meaning; `load` refuses other versions by name."""
SUMMARY = "summary.json"


@dataclass
class GroupFigures:
    """One protected group in a scope or the population."""

    n: int
    effectiveness: float | None
    """p_g: share of the group the set gives recourse (micro or macro); None if absent."""
    effective_actions: int | None = None
    """n_g: distinct actions effective for at least phi of the group."""
    choice: float | None = None
    """a_g = n_g / N."""
    ceiling: float | None = None
    """Share of the group some feasible change flips."""
    plausibility: float | None = None
    """Share of the group's chosen counterfactuals the outlier detector accepts."""


@dataclass
class Ceiling:
    """What any feasible change could reach for these people (recourse/ceiling.py)."""

    SR: float
    PD: float
    exact: bool
    """Exact over the values tried (ord/cat levels, a grid over con); else a lower bound."""
    groups: dict[str, float | None] = field(default_factory=dict)


@dataclass
class ScopeResult:
    """A scope's final set, measured exactly on its people, and how its search went."""

    name: str
    n: int
    SR: float
    PD: float
    ECR_gap: float
    gower_active: float
    gower_nonactive: float
    n_active: int
    gower_chosen: float | None
    """Mean Gower distance of each person's chosen counterfactual (None: nobody flipped)."""
    actions: list[dict[str, float]]
    """The set's actions as feature -> change/target (`recourse/describe.py` reads them)."""
    set: list[list[float]]
    """The (N, m) action set, as the search holds it."""
    groups: dict[str, GroupFigures]
    ceiling: Ceiling
    goal: dict[str, float]
    """The SR and PD the search had to reach (`met_goal`)."""
    met_goal: bool
    archived: int
    steps: int
    model_calls: int
    train_s: float
    steps_per_s: float
    stop_reason: str | None = None
    error: str | None = None
    node_id: str | None = None
    """The node the scope's trainer ran on."""
    shard_nodes: list[str] = field(default_factory=list)
    """The nodes its shard actors ran on (a sharded scope)."""
    minimized: dict[str, Any] | None = None
    """Before and after the exact minimisation of its actions: features changed, Gower of the
    people flipped, flips, model calls (recourse/minimize.py); None without minimisation."""
    handover: dict[str, Any] | None = None
    """A warm-started search: the set the non-learned start handed over and its figures, so
    that what the learning added stays visible; None otherwise."""


@dataclass
class PopulationResult:
    """Every affected person under their own scope's final set."""

    n: int
    SR: float
    PD: float
    ECR_gap: float
    validity: float
    gower_chosen: float | None
    sparsity: float | None
    plausibility: float | None
    effectiveness_within_budget: dict[str, Any]
    """FACTS: per group the share with a counterfactual within `budget`, and the largest gap."""
    cost_of_effectiveness: dict[str, Any]
    """FACTS: per group the cost at which a share `level` has recourse, and the largest gap."""
    mean_cost: dict[str, Any]
    """FACTS' equal mean recourse: per group the mean cost of the chosen counterfactuals."""
    groups: dict[str, GroupFigures]
    ceiling: Ceiling | None = None
    before_minimizing: dict[str, Any] | None = None
    """The same figures of the sets before minimisation (validity, Gower of chosen
    counterfactuals, sparsity, plausibility); None without minimisation."""


@dataclass
class RunResult:
    dataset: str
    level: str
    reward: str
    effectiveness: str
    search: str
    """`sac` (with its mdp, e.g. `sac/proposal`), `random` or `greedy`."""
    features: dict[str, dict[str, Any]]
    """Actionable feature -> kind, direction, categories, labels: what reading an action needs."""
    wall_s: float
    scopes: dict[str, ScopeResult]
    population: PopulationResult
    config: dict[str, Any]
    heldout: PopulationResult | None = None
    errors: list[str] = field(default_factory=list)
    """One line per failed trainer or trial: the scope and the error."""
    schema_version: int = SCHEMA_VERSION

    @property
    def sets(self) -> dict[str, list[list[float]]]:
        return {name: s.set for name, s in self.scopes.items()}

    # ----------------------------------------------------------------- JSON
    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any], source: str = SUMMARY) -> RunResult:
        version = data.get("schema_version")
        if version != SCHEMA_VERSION:
            raise ValueError(f"{source}: summary schema version {version!r}, this version of "
                             f"distributed-recourse reads {SCHEMA_VERSION}; rerun the training")
        data = dict(data)
        data["scopes"] = {name: scope_from(s) for name, s in data["scopes"].items()}
        for key in ("population", "heldout"):
            if data.get(key) is not None:
                data[key] = population_from(data[key])
        return cls(**data)

    def save(self, folder: str | Path) -> Path:
        """summary.json in `folder`, written atomically."""
        path = Path(folder) / SUMMARY
        atomic_write(path, json.dumps(self.to_dict(), indent=2))
        return path

    @classmethod
    def load(cls, folder: str | Path) -> RunResult:
        path = Path(folder) / SUMMARY
        if not path.is_file():
            raise FileNotFoundError(f"{folder} holds no {SUMMARY}: not a finished run")
        return cls.from_dict(json.loads(path.read_text()), str(path))


def groups_from(data: dict[str, dict]) -> dict[str, GroupFigures]:
    return {name: GroupFigures(**g) for name, g in data.items()}


def scope_from(data: dict[str, Any]) -> ScopeResult:
    data = {**data, "groups": groups_from(data["groups"]), "ceiling": Ceiling(**data["ceiling"])}
    return ScopeResult(**data)


def population_from(data: dict[str, Any]) -> PopulationResult:
    data = {**data, "groups": groups_from(data["groups"])}
    if data.get("ceiling") is not None:
        data["ceiling"] = Ceiling(**data["ceiling"])
    return PopulationResult(**data)


def atomic_write(path: Path, text: str) -> None:
    """No reader ever sees a half-written file under its final name."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    os.replace(partial, path)
