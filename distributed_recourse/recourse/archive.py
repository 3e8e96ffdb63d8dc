"""Archived successful sets and the rule that picks a scope's final set among them."""

from __future__ import annotations

import time
from typing import Any

import numpy as np

from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.metrics import MICRO, GroupTally, SetMetrics, mean_present, spread

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
    rounds: int = 10, shortlist: int = 512,
) -> dict[str, dict[str, Any] | None]:
    """Hybrid fairness: one set per scope, chosen together so that the population's SR - PD
    (ties: smaller ECR gap, then the cheaper chosen counterfactuals over everyone flipped) is
    best, exactly from the stored tallies. Starts from each scope's own best and changes one
    scope's set, then two scopes' at once (each among its `shortlist` best by `rule`), with
    the others fixed, while that improves the population. Two at once matters: the
    population's ECR gap pools the scopes' choices, and a cheaper set for one scope often
    keeps the gap at 0 only beside another scope's change."""
    chosen = {scope: best_entry(entries, rule) for scope, entries in archives.items()}
    if any(entry is None for entry in chosen.values()) or len(chosen) < 2:
        return chosen
    scopes = list(archives)
    tallies = {s: [GroupTally.from_dict(e["tally"]) for e in archives[s]] for s in scopes}
    flipped = {s: np.array([t.flipped_any if effectiveness == MICRO else t.flipped_best
                            for t in tallies[s]], dtype=np.float64) for s in scopes}
    effective = {s: np.array([t.effective for t in tallies[s]], dtype=np.float64) for s in scopes}
    reached = {s: np.array([t.flipped_any.sum() for t in tallies[s]], dtype=np.float64)
               for s in scopes}
    spent = {s: reached[s] * np.array([e["chosen_cost"] for e in archives[s]]) for s in scopes}
    people = sum(tallies[s][0].people for s in scopes)
    n_actions = sum(tallies[s][0].n_actions for s in scopes)
    present = people > 0

    def keys(flip: np.ndarray, eff: np.ndarray, reach: np.ndarray, spend: np.ndarray):
        """Population keys of a batch of combinations (the last axis of flip/eff: groups)."""
        p = np.where(present, flip / np.where(present, people, 1), np.nan)
        gap = spread(np.where(present, eff / n_actions, np.nan))
        cost = np.divide(spend, reach, out=np.zeros(np.shape(reach)), where=reach > 0)
        return (np.round(mean_present(p) - spread(p), 9), -np.round(gap, 9), -np.round(cost, 9))

    order = {s: np.array(sorted(range(len(archives[s])), key=lambda i, s=s: selection_key(
        archives[s][i], rule), reverse=True)[:shortlist]) for s in scopes}
    pick = {s: next(i for i, e in enumerate(archives[s]) if e is chosen[s]) for s in scopes}
    fields = (flipped, effective, reached, spent)

    def total(without: tuple[str, ...]) -> list[np.ndarray]:
        return [sum(f[s][pick[s]] for s in scopes if s not in without) for f in fields]

    best = tuple(float(k) for k in keys(*total(())))
    for _ in range(rounds):
        improved = False
        moves = [(s,) for s in scopes] + [(a, b) for n, a in enumerate(scopes)
                                           for b in scopes[n + 1:]]
        for move in moves:
            # every combination of the moved scopes' options (all of one scope's sets, or
            # the two shortlists crossed), one row each
            options = [np.arange(len(archives[move[0]]))] if len(move) == 1 else \
                [grid.reshape(-1) for grid in np.meshgrid(order[move[0]], order[move[1]],
                                                           indexing="ij")]
            batch = [r + sum(f[s][o] for s, o in zip(move, options, strict=True))
                     for r, f in zip(total(move), fields, strict=True)]
            k = keys(*batch)
            top = int(np.lexsort(k[::-1])[-1])  # the last key is lexsort's first
            found = tuple(float(key[top]) for key in k)
            if found > best:
                best, improved = found, True
                pick.update({s: int(o[top]) for s, o in zip(move, options, strict=True)})
        if not improved:
            break
    return {s: archives[s][pick[s]] for s in scopes}
