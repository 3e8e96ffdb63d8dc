"""Archived successful sets and the rule that picks a scope's final set among them."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.metrics import GroupTally, SetMetrics, mean_present, spread

SELECTION_RULES = ("sr_minus_pd", "gower", "cost", "plausibility")


def archive_entry(
    scope: str, space: ActionSpace, state: np.ndarray, metrics: SetMetrics,
    tally: GroupTally, group_names: list[str], step: int, reward: float,
) -> dict[str, Any]:
    """A successful set with its metrics, as stored in the archive (JSON-ready)."""
    return {
        "scope": scope,
        "step": step,
        "time": time.time(),
        "reward": reward,
        "SR": metrics.sr,
        "PD": metrics.pd,
        "ECR_gap": metrics.ecr_gap,
        "n_active": metrics.n_active,
        "gower_active": metrics.gower_active,
        "gower_nonactive": metrics.gower_nonactive,
        "effectiveness": dict(zip(group_names, map(float, metrics.effectiveness), strict=True)),
        "effective_actions": dict(zip(group_names, map(int, metrics.effective), strict=True)),
        "set": state.tolist(),
        "actions": [space.describe(action) for action in state],
        "tally": tally.to_dict(),
    }


def selection_key(entry: dict[str, Any], rule: str = "sr_minus_pd") -> tuple[float, ...]:
    """Larger is better. `sr_minus_pd`: highest SR - PD, ties by the smaller ECR gap (equal
    choice, the other fairness the method asks for; the hybrid joint choice breaks its ties
    the same way), then by the cheapest chosen counterfactuals (the Gower distance a person
    is handed, what the search's key weighs and the summary reports; their cost when the
    schema declares costs); `gower`: lowest Gower of the active actions, ties by higher
    SR - PD; `cost`: the cheapest chosen counterfactuals; `plausibility`: the largest share of
    plausible chosen counterfactuals, ties by SR - PD. Archived sets all meet the goal, so
    each rule picks among sets that do."""
    fairness = round(entry["SR"] - entry["PD"], 9)
    if rule == "sr_minus_pd":
        return (fairness, -round(entry["ECR_gap"], 9), -round(entry["chosen_cost"], 9))
    if rule == "gower":
        return (-entry["gower_active"], fairness)
    if rule == "cost":
        return (-round(entry["chosen_cost"], 9), fairness)
    if rule == "plausibility":
        return (round(entry["plausibility"], 9), fairness, -entry["chosen_cost"])
    raise ValueError(f"selection rule {rule!r}, expected one of {SELECTION_RULES}")


def best_entry(entries: list[dict[str, Any]], rule: str = "sr_minus_pd") -> dict[str, Any] | None:
    return max(entries, key=lambda e: selection_key(e, rule), default=None)


def best_combination(
    archives: dict[str, list[dict[str, Any]]], effectiveness: str, rule: str = "sr_minus_pd",
    rounds: int = 3,
) -> dict[str, dict[str, Any] | None]:
    """Hybrid fairness: one set per scope, chosen together so that the population's SR - PD
    (ties: smaller ECR gap, then the cheaper chosen counterfactuals over everyone flipped) is
    best. Starts from each scope's own best and improves one scope at a time with the others
    fixed; exact, from the stored tallies."""
    chosen = {scope: best_entry(entries, rule) for scope, entries in archives.items()}
    if any(entry is None for entry in chosen.values()) or len(chosen) < 2:
        return chosen

    def population_key(combination: dict[str, dict[str, Any]]) -> tuple[float, ...]:
        tallies = [GroupTally.from_dict(e["tally"]) for e in combination.values()]
        pooled = sum(tallies[1:], tallies[0])
        p = pooled.effectiveness(effectiveness)
        gap = spread(np.where(pooled.present, pooled.choice(), np.nan))
        flipped = np.array([sum(e["tally"]["flipped_any"]) for e in combination.values()])
        costs = np.array([e["chosen_cost"] for e in combination.values()])
        cost = float(costs @ flipped / flipped.sum()) if flipped.sum() else 0.0
        return (round(mean_present(p) - spread(p), 9), -round(gap, 9), -round(cost, 9))

    for _ in range(rounds):
        before = dict(chosen)
        for scope, entries in archives.items():
            chosen[scope] = max(entries, key=lambda e, s=scope: population_key({**chosen, s: e}))
        if all(chosen[s] is before[s] for s in chosen):
            break
    return chosen
