"""Exact metrics of final action sets: per scope, and over the whole population with each person
under their own scope's set. These are the figures runs report (never the environment's
running estimates)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.plausibility import group_plausibility
from distributed_recourse.recourse.rewards import RewardWeights

Favourable = Callable[[np.ndarray], np.ndarray]


def evaluate_scope(
    space: ActionSpace, X: np.ndarray, groups: np.ndarray, group_names: list[str],
    action_set: np.ndarray, favourable: Favourable, weights: RewardWeights,
) -> tuple[dict[str, Any], M.Outcome, M.GroupTally]:
    """Metrics of one set on its scope, as summary.json reports them."""
    outcome = M.evaluate_set(space, X, action_set, favourable)
    k = len(group_names)
    distinct = space.distinct(action_set)
    per_action = M.action_effectiveness(outcome.flipped, groups, k)
    tally = M.tally(outcome.flipped, groups, k, distinct, weights.phi)
    share = M.share_per_action(per_action, tally.people)
    active = M.active_actions(weights.active_rule, per_action, share, distinct,
                              weights.phi, weights.macro_active)
    m = M.set_metrics(tally, weights.effectiveness, active, outcome.gower.mean(axis=1))
    summary = {
        "n": len(X),
        "SR": m.sr,
        "PD": m.pd,
        "ECR_gap": m.ecr_gap,
        "gower_active": m.gower_active,
        "gower_nonactive": m.gower_nonactive,
        "n_active": m.n_active,
        "actions": [space.describe(action) for action in action_set],
        "groups": {
            name: {"n": int(tally.people[g]), "effectiveness": nan_to_none(m.effectiveness[g]),
                   "effective_actions": int(tally.effective[g])}
            for g, name in enumerate(group_names)
        },
    }
    return summary, outcome, tally


def person_summary(
    outcome: M.PersonOutcome, groups: np.ndarray, group_names: list[str],
    plausible: np.ndarray | None = None, budget: float = 0.1, level: float = 0.5,
    chosen_cost: np.ndarray | None = None,
) -> dict[str, Any]:
    """Validity, proximity, sparsity and plausibility of each person's chosen counterfactual,
    and FACTS' equal mean recourse / effectiveness within budget / cost of effectiveness."""
    valid = outcome.valid
    return {
        "validity": float(valid.mean()),
        "gower_chosen": float(outcome.cost[valid].mean()) if valid.any() else None,
        "sparsity": float(outcome.sparsity[valid].mean()) if valid.any() else None,
        "plausibility": (float(plausible[valid].mean())
                         if plausible is not None and valid.any() else None),
        **group_costs(outcome.cost if chosen_cost is None else chosen_cost, groups, group_names,
                      level, budget),
    }


def group_costs(
    cost: np.ndarray, groups: np.ndarray, group_names: list[str], level: float, budget: float
) -> dict[str, Any]:
    """Per group, from each person's chosen counterfactual's cost (inf: none): the mean cost
    (FACTS' equal mean recourse), the budget at which a share `level` has recourse (equal cost
    of effectiveness) and the share with recourse within `budget`; each with its largest gap."""
    k = len(group_names)
    mean, mean_gap = M.mean_recourse_cost(cost, groups, k)
    needed, needed_gap = M.cost_of_effectiveness(cost, groups, k, level)
    within, within_gap = M.effectiveness_within_budget(cost, groups, k, budget)

    def by_group(values: np.ndarray, gap: float) -> dict[str, Any]:
        return {"gap": nan_to_none(gap),
                "groups": dict(zip(group_names, map(nan_to_none, values), strict=True))}

    return {"mean_cost": by_group(mean, mean_gap),
            "effectiveness_within_budget": {"budget": budget, **by_group(within, within_gap)},
            "cost_of_effectiveness": {"level": level, **by_group(needed, needed_gap)}}


def nan_to_none(value: float) -> float | None:
    """JSON has no NaN or infinity: absent or unattainable values are reported as null."""
    value = float(value)
    return value if np.isfinite(value) else None


def counterfactuals(
    space: ActionSpace, X: np.ndarray, action_set: np.ndarray, chosen: np.ndarray
) -> np.ndarray:
    """Each person's chosen counterfactual row (their own row where they have none)."""
    out = X.copy()
    for j, action in enumerate(action_set):
        mine = chosen == j
        if mine.any():
            out[mine] = space.apply(X[mine], action)
    return out


def population_summary(
    tallies: list[M.GroupTally], people: M.PersonOutcome, groups: np.ndarray,
    group_names: list[str], weights: RewardWeights, plausible: np.ndarray | None = None,
    chosen_cost: np.ndarray | None = None,
) -> dict[str, Any]:
    """The whole affected population, each person under their own scope's set. `people.cost` is
    the Gower distance of each chosen counterfactual; `chosen_cost` its cost (when the schema
    declares costs), which the FACTS cost figures use."""
    pooled = tallies[0]
    for tally in tallies[1:]:
        pooled = pooled + tally
    effectiveness = pooled.effectiveness(weights.effectiveness)
    choice = np.where(pooled.present, pooled.choice(), np.nan)
    if plausible is not None:
        share, _ = group_plausibility(plausible, people.valid, groups, len(group_names))
    return {
        "n": int(pooled.people.sum()),
        "SR": M.mean_present(effectiveness),
        "PD": M.spread(effectiveness),
        "ECR_gap": M.spread(choice),
        **person_summary(people, groups, group_names, plausible, chosen_cost=chosen_cost),
        "groups": {
            name: {"n": int(pooled.people[g]), "effectiveness": nan_to_none(effectiveness[g]),
                   "choice": nan_to_none(choice[g]),
                   "plausibility": nan_to_none(share[g]) if plausible is not None else None}
            for g, name in enumerate(group_names)
        },
    }
