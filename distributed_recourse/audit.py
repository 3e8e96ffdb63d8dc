"""An audit of a run's final sets by FACTS' fairness-of-recourse measures (Kavouras et al.,
NeurIPS 2023), per protected group, for each scope and for the whole population.

FACTS looks at a subpopulation (its "if-group"; here a scope: a cluster, or everyone) and a list
of actions, each with its correctness in every protected group (the share it flips: P_g(j))
and its cost. Its measures, each a value per group and the largest gap between groups:
- equal effectiveness: macro max_j P_g(j); micro the share flipped by some action;
- equal choice for recourse (macro): how many distinct actions flip at least phi of the group;
- equal effectiveness within budget: macro the best P_g(j) among actions costing at most the
  budget (0 if none does; aif360 returns inf there); micro the share flipped by an action
  within the budget;
- equal cost of effectiveness: macro the cheapest action flipping phi of the group; micro the
  smallest budget at which phi of the group is flipped (inf: never);
- equal mean recourse (micro): the mean cost of each flipped person's cheapest flipping action.
An action has one cost per group, as in FACTS: its mean cost (the run's CostModel, Gower by
default) over the group's people in the scope; micro gives each person the cheapest action that
flips them at that cost. The population pools the scopes, each person under their own scope's
set: micro measures pool exactly; macro effectiveness and choice are the project's pooled terms
(sum of each scope's counts), and the macro budget/cost measures, which give one action to a
whole if-group, exist per scope only.
Every number comes from recourse/metrics.py; tests/test_audit.py checks them against aif360's
own FACTS functions to 1e-12.

Besides FACTS, each person's own chosen counterfactual (the cheapest flipping action by their
own cost): per group the share with one, its mean cost and the share the run's plausibility
detector accepts.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from distributed_recourse.explain import Explainer
from distributed_recourse.population import Population, Prepared
from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.costs import CostModel, action_costs
from distributed_recourse.recourse.evaluation import counterfactuals, nan_to_none
from distributed_recourse.recourse.plausibility import Detector, group_plausibility, plausible

EE, ECR, EWB, ECE, EMR = (
    "equal_effectiveness", "equal_choice_for_recourse", "equal_effectiveness_within_budget",
    "equal_cost_of_effectiveness", "equal_mean_recourse",
)
"""Under a run's prepared/: the CostModel the run used (if absent, the schema's costs are
fitted again on the training rows)."""


@dataclass(frozen=True)
class Measure:
    """A value per group (NaN: the group is absent) and the largest gap between groups."""

    values: np.ndarray
    gap: float

    @classmethod
    def of_shares(cls, values: np.ndarray) -> Measure:
        return cls(values, M.spread(values))

    @classmethod
    def of_costs(cls, values: np.ndarray) -> Measure:
        """Costs: the gap is infinite when a present group's cost is."""
        return cls(values, M.gap_or_inf(values))

    def to_dict(self, group_names: list[str]) -> dict[str, Any]:
        return {"groups": dict(zip(group_names, map(nan_to_none, self.values), strict=True)),
                "gap": nan_to_none(self.gap)}


def facts_measures(
    outcome: M.Outcome, groups: np.ndarray, n_groups: int, distinct: np.ndarray,
    cost: np.ndarray, phi: float, budget: float,
) -> tuple[dict[str, dict[str, Measure]], M.GroupTally, np.ndarray]:
    """FACTS' measures of one set on one scope (its if-group), macro and micro.

    `cost` is (N, n): each action's cost for each person; `distinct` marks the actions FACTS'
    list holds (duplicates removed). Also returns the scope's tally and each person's micro
    cost (their cheapest flipping action at its group cost; inf: none), which pool over scopes."""
    tally = M.tally(outcome.flipped, groups, n_groups, distinct, phi)
    share = M.share_per_action(M.action_effectiveness(outcome.flipped, groups, n_groups),
                               tally.people)[distinct]
    group_cost = M.group_action_cost(cost, groups, n_groups)
    cheapest = M.person_outcome(outcome, cost=group_cost[:, groups]).cost
    macro = {
        EE: Measure.of_shares(tally.effectiveness(M.MACRO)),
        ECR: Measure.of_shares(np.where(tally.present, tally.effective, np.nan)),
        EWB: Measure.of_shares(M.best_within_budget(share, group_cost[distinct], budget)),
        ECE: Measure.of_costs(M.cheapest_effective(share, group_cost[distinct], phi)),
    }
    micro = micro_measures(tally, cheapest, groups, phi, budget)
    return {"macro": macro, "micro": micro}, tally, cheapest


def micro_measures(
    tally: M.GroupTally, cheapest: np.ndarray, groups: np.ndarray, phi: float, budget: float
) -> dict[str, Measure]:
    """FACTS' micro measures from the flipped counts and each person's micro cost."""
    k = len(tally.people)
    return {
        EE: Measure.of_shares(tally.effectiveness(M.MICRO)),
        EWB: Measure.of_shares(M.effectiveness_within_budget(cheapest, groups, k, budget)[0]),
        ECE: Measure.of_costs(M.cost_of_effectiveness(cheapest, groups, k, phi)[0]),
        EMR: Measure.of_costs(M.mean_recourse_cost(cheapest, groups, k)[0]),
    }


def person_measures(
    person: M.PersonOutcome, inlier: np.ndarray, groups: np.ndarray, n_groups: int
) -> dict[str, Measure]:
    """Each person's own chosen counterfactual: per group the share with one, its mean cost
    and the share of these that are plausible."""
    people = np.bincount(groups, minlength=n_groups)
    valid = np.bincount(groups, weights=person.valid, minlength=n_groups)
    return {
        "validity": Measure.of_shares(
            np.divide(valid, people, out=np.full(n_groups, np.nan), where=people > 0)),
        "mean_cost": Measure.of_costs(M.mean_recourse_cost(person.cost, groups, n_groups)[0]),
        "plausibility": Measure.of_shares(
            group_plausibility(inlier, person.valid, groups, n_groups)[0]),
    }


def audit_population(
    space: ActionSpace, costs: CostModel, detector: Detector, population: Population,
    scope_names: list[str], sets: np.ndarray, favourable, phi: float, budget: float,
) -> dict[str, Any]:
    """FACTS' measures and the chosen counterfactuals' figures per scope and pooled."""
    names, k = population.group_names, len(population.group_names)
    scopes, tallies = {}, []
    n = len(population.X)
    cheapest, own_cost = np.full(n, np.inf), np.full(n, np.inf)
    chosen, inlier = np.full(n, -1), np.zeros(n, dtype=bool)
    for name, action_set in zip(scope_names, sets, strict=True):
        mask = population.members(name)
        scope = population.scope(name)
        outcome = M.evaluate_set(space, scope.X, action_set, favourable)
        cost = action_costs(costs, space, scope.X, action_set)
        measures, tally, cheapest[mask] = facts_measures(
            outcome, scope.groups, k, space.distinct(action_set), cost, phi, budget)
        person = M.person_outcome(outcome, cost=cost)
        own_cost[mask], chosen[mask] = person.cost, person.chosen
        cf = counterfactuals(space, scope.X, action_set, person.chosen)
        inlier[mask] = plausible(detector, cf)
        tallies.append(tally)
        scopes[name] = {
            "n": int(mask.sum()), "people": dict(zip(names, tally.people.tolist(), strict=True)),
            **{view: {key: m.to_dict(names) for key, m in ms.items()}
               for view, ms in measures.items()},
            "person": {key: m.to_dict(names) for key, m in
                       person_measures(person, inlier[mask], scope.groups, k).items()},
        }
    pooled = tallies[0]
    for tally in tallies[1:]:
        pooled = pooled + tally
    groups = population.groups
    everyone = M.PersonOutcome(chosen >= 0, chosen, own_cost, np.zeros(n, dtype=np.int64))
    macro = {EE: Measure.of_shares(pooled.effectiveness(M.MACRO)),
             ECR: Measure.of_shares(np.where(pooled.present, pooled.effective, np.nan))}
    whole = {
        "n": n, "people": dict(zip(names, pooled.people.tolist(), strict=True)),
        "macro": {key: m.to_dict(names) for key, m in macro.items()},
        "micro": {key: m.to_dict(names) for key, m in
                  micro_measures(pooled, cheapest, groups, phi, budget).items()},
        "person": {key: m.to_dict(names) for key, m in
                   person_measures(everyone, inlier, groups, k).items()},
    }
    return {"groups": names, "phi": phi, "budget": budget, "n_actions": int(sets.shape[1]),
            "costs": "gower" if costs.is_gower else
            dict(zip([f.name for f in costs.features], costs.rules, strict=True)),
            "scopes": scopes, "population": whole}


def audit_run(run_dir: str | Path, budget: float = 0.1, phi: float | None = None) -> dict[str, Any]:
    """The audit of a trained run folder (phi: the run's reward phi unless given)."""
    run = Path(run_dir)
    explainer = Explainer.from_run(run)
    prepared = Prepared.load(run)
    phi = prepared.config.reward.phi if phi is None else phi
    audit = audit_population(explainer.actions, prepared.costs, prepared.plausibility,
                             prepared.population, explainer.scopes.names, explainer.sets,
                             explainer.model.favourable, phi, budget)
    return {"run": str(run), "level": explainer.scopes.level, **audit}


def write_audit(run_dir: str | Path, audit: dict[str, Any]) -> Path:
    path = Path(run_dir) / "audit.json"
    path.write_text(json.dumps(audit, indent=2))
    return path


# --------------------------------------------------------------------- the report's section
TITLES = {
    EE: "equal effectiveness", ECR: "equal choice for recourse (actions >= phi)",
    EWB: "equal effectiveness within budget", ECE: "equal cost of effectiveness (phi)",
    EMR: "equal mean recourse (cost)", "validity": "has a counterfactual",
    "mean_cost": "mean cost of the chosen counterfactual",
    "plausibility": "chosen counterfactual plausible",
}


def audit_sections(audit: dict[str, Any]) -> list[tuple[str, list[str], list[list[str]]]]:
    """The audit as (heading, header, rows) tables for the report: the population first, then
    each scope; one row per measure and viewpoint, a column per group and the gap."""
    names = audit["groups"]
    header = ["measure", "viewpoint", *names, "gap"]

    def cell(value: float | None) -> str:
        return "-" if value is None else f"{value:.3f}"

    def rows(part: dict[str, Any]) -> list[list[str]]:
        return [[TITLES[key], view, *(cell(m["groups"][g]) for g in names), cell(m["gap"])]
                for view in ("macro", "micro", "person") for key, m in part[view].items()]

    budget = f"phi {audit['phi']:g}, budget {audit['budget']:g}"
    return [(f"Fairness of recourse (FACTS): population ({budget})", header,
             rows(audit["population"])),
            *((f"Fairness of recourse (FACTS): {name}", header, rows(part))
              for name, part in audit["scopes"].items())]
