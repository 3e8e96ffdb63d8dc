"""Every recourse metric of DESIGN.md section 3, for two or more groups.

Group statistics are computed from a `GroupTally` of counts. Tallies of scopes that each have
their own set add up to the population-wide terms of hybrid fairness (each person under their
scope's set). Shards of one population under one set combine their per-action counts instead
(`action_effectiveness`), then make one tally.
Groups with nobody in a scope are left out of SR, PD and the ECR gap of that scope.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

MICRO, MACRO, ECR = "micro", "macro", "ecr"


@dataclass(frozen=True)
class Outcome:
    """What an action set does to a population: one row per action, one column per person."""

    flipped: np.ndarray
    """(N, n) bool: person i reaches the favourable outcome under action j."""
    gower: np.ndarray
    """(N, n) Gower distance over the actionable features between person i and their version
    under action j."""
    changed: np.ndarray
    """(N, n) how many features action j changes for person i."""


def evaluate_set(space, X: np.ndarray, action_set: np.ndarray, favourable) -> Outcome:
    """Apply every action of a set and ask the model once per action.

    `favourable(X) -> bool array` is the black box; `space` an ActionSpace."""
    flipped, gower, changed = [], [], []
    for action in action_set:
        X_new = space.apply(X, action)
        flipped.append(np.asarray(favourable(X_new), dtype=bool))
        gower.append(space.distance(X, X_new))
        changed.append(space.n_changed(X, X_new))
    return Outcome(np.array(flipped), np.array(gower), np.array(changed))


@dataclass(frozen=True)
class GroupTally:
    """Per-group counts from which SR, PD and ECR follow; adding tallies pools populations."""

    people: np.ndarray
    """(k,) people per group."""
    flipped_any: np.ndarray
    """(k,) people flipped by at least one action (micro)."""
    flipped_best: np.ndarray
    """(k,) people flipped by the group's single most effective action (macro)."""
    effective: np.ndarray
    """(k,) distinct actions with effectiveness >= phi in the group (ECR's n_g)."""
    n_actions: int
    """Actions in the set(s) tallied (N, summed over pooled scopes)."""

    def __add__(self, other: GroupTally) -> GroupTally:
        return GroupTally(
            self.people + other.people,
            self.flipped_any + other.flipped_any,
            self.flipped_best + other.flipped_best,
            self.effective + other.effective,
            self.n_actions + other.n_actions,
        )

    @property
    def present(self) -> np.ndarray:
        return self.people > 0

    def effectiveness(self, mode: str) -> np.ndarray:
        """p_g per group (NaN where the group is absent): micro or macro."""
        flipped = self.flipped_any if mode == MICRO else self.flipped_best
        people = np.broadcast_to(self.people, np.shape(flipped))
        return np.divide(flipped, people, out=np.full(people.shape, np.nan), where=people > 0)

    def choice(self) -> np.ndarray:
        """a_g = n_g / N: the share of the set that is an effective choice for the group."""
        return self.effective / self.n_actions

    def to_dict(self) -> dict:
        return {
            "people": self.people.tolist(),
            "flipped_any": self.flipped_any.tolist(),
            "flipped_best": self.flipped_best.tolist(),
            "effective": self.effective.tolist(),
            "n_actions": self.n_actions,
        }

    @classmethod
    def from_dict(cls, d: dict) -> GroupTally:
        return cls(
            *(np.asarray(d[key], dtype=np.int64) for key in
              ("people", "flipped_any", "flipped_best", "effective")),
            int(d["n_actions"]),
        )


def action_effectiveness(flipped: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(N, k) flipped counts per action and group."""
    one_hot = np.zeros((flipped.shape[1], n_groups))
    one_hot[np.arange(len(groups)), groups] = 1.0
    return (flipped.astype(np.float64) @ one_hot).astype(np.int64)


def tally(
    flipped: np.ndarray, groups: np.ndarray, n_groups: int, distinct: np.ndarray, phi: float
) -> GroupTally:
    """Counts for one population under one set; `distinct` marks the actions ECR counts
    (duplicates removed)."""
    any_flipped = flipped.any(axis=0)
    return tally_from_counts(
        action_effectiveness(flipped, groups, n_groups),
        np.bincount(groups, weights=any_flipped, minlength=n_groups).astype(np.int64),
        np.bincount(groups, minlength=n_groups),
        distinct, phi,
    )


def tally_from_counts(
    per_action: np.ndarray, flipped_any: np.ndarray, people: np.ndarray, distinct: np.ndarray,
    phi: float,
) -> GroupTally:
    """The tally from counts alone (N, k flipped per action and group; k flipped by any
    action; k people): what the environment keeps, summed over shards."""
    per_action = np.asarray(per_action, dtype=np.int64)
    effective = ((share_per_action(per_action, people) >= phi) & distinct[:, None]).sum(axis=0)
    return GroupTally(np.asarray(people, dtype=np.int64), np.asarray(flipped_any, dtype=np.int64),
                      per_action.max(axis=0), effective, len(per_action))


def share_per_action(per_action: np.ndarray, people: np.ndarray) -> np.ndarray:
    """(N, k) P_g(j), 0 where the group is absent."""
    return np.divide(per_action, people, out=np.zeros(per_action.shape), where=people > 0)


def active_actions(
    rule: str,
    per_action: np.ndarray,
    share: np.ndarray,
    distinct: np.ndarray,
    phi: float,
    macro_threshold: float,
) -> np.ndarray:
    """(N,) which actions count as active: `micro` flips anyone; `macro` reaches
    `macro_threshold` in some group; `ecr` is a distinct action effective (>= phi) somewhere.
    `per_action` is (N, k) flipped counts, `share` the same as shares of each group."""
    if rule == MICRO:
        return per_action.sum(axis=1) > 0
    if rule == MACRO:
        return (share >= macro_threshold).any(axis=1)
    if rule == ECR:
        return (share >= phi).any(axis=1) & distinct
    raise ValueError(f"active rule {rule!r}, expected one of {MICRO, MACRO, ECR}")


def spread(values: np.ndarray) -> float | np.ndarray:
    """Largest gap between any two present groups (0 with fewer than two), along the last
    axis: one figure for (k,) values, one per row for a batch (B, k)."""
    values = np.asarray(values, dtype=np.float64)
    present = ~np.isnan(values)
    high = np.where(present, values, -np.inf).max(axis=-1)
    low = np.where(present, values, np.inf).min(axis=-1)
    gap = np.where(present.sum(axis=-1) > 1, high - low, 0.0)
    return float(gap) if gap.ndim == 0 else gap


def mean_present(values: np.ndarray) -> float | np.ndarray:
    """Mean over the present (non-NaN) groups along the last axis (0 when none is present)."""
    present = ~np.isnan(values)
    total = np.where(present, values, 0.0).sum(axis=-1)
    mean = np.divide(total, present.sum(axis=-1), out=np.zeros(np.shape(total)),
                     where=present.sum(axis=-1) > 0)
    return float(mean) if mean.ndim == 0 else mean


@dataclass(frozen=True)
class SetMetrics:
    """The terms the rewards combine, for one action set on one population.

    Every field may also hold a batch (a leading axis B) of sets: the candidate-pool search
    scores all its candidates for a slot at once with the same arithmetic."""

    effectiveness: np.ndarray
    """(k,) p_g, NaN for absent groups."""
    sr: float
    """Success rate: mean p_g over present groups."""
    pd: float
    """Proportion difference: max p_g - min p_g (Equal Effectiveness)."""
    choice: np.ndarray
    """(k,) a_g = n_g / N."""
    effective: np.ndarray
    """(k,) n_g: distinct actions effective for the group."""
    ecr_gap: float
    """max a_g - min a_g over present groups (Equal Choice of Recourse)."""
    n_active: int
    n_actions: int
    gower_active: float
    """Mean Gower of the active actions (0 when none is active)."""
    gower_nonactive: float
    """Mean Gower of the other actions (0 when all are active)."""

    def with_group_terms(self, population: SetMetrics) -> SetMetrics:
        """Hybrid fairness: this scope's success and proximity, the population's group terms."""
        return SetMetrics(
            effectiveness=population.effectiveness,
            sr=self.sr,
            pd=population.pd,
            choice=population.choice,
            effective=population.effective,
            ecr_gap=population.ecr_gap,
            n_active=self.n_active,
            n_actions=self.n_actions,
            gower_active=self.gower_active,
            gower_nonactive=self.gower_nonactive,
        )


def set_metrics(
    tally_: GroupTally, mode: str, active: np.ndarray, mean_gower: np.ndarray
) -> SetMetrics:
    """Combine a tally with the per-action activity and mean Gower of the scope's own set."""
    n_active = int(active.sum())
    return metrics_of(
        tally_, mode, n_active, len(active),
        float(mean_gower[active].mean()) if n_active else 0.0,
        float(mean_gower[~active].mean()) if n_active < len(active) else 0.0,
    )


def metrics_of(
    tally_: GroupTally, mode: str, n_active, n_actions: int, gower_active, gower_nonactive
) -> SetMetrics:
    """`set_metrics` from the activity already summed (scalars, or one per set of a batch)."""
    effectiveness = tally_.effectiveness(mode)
    choice = tally_.choice()
    return SetMetrics(
        effectiveness=effectiveness,
        sr=mean_present(effectiveness),
        pd=spread(effectiveness),
        choice=choice,
        effective=tally_.effective,
        ecr_gap=spread(np.where(tally_.present, choice, np.nan)),
        n_active=n_active,
        n_actions=n_actions,
        gower_active=gower_active,
        gower_nonactive=gower_nonactive,
    )


# --------------------------------------------------------------------- per person
@dataclass(frozen=True)
class PersonOutcome:
    """Each person's recourse under a set: the closest flipping action."""

    valid: np.ndarray
    """(n,) at least one action flips the person."""
    chosen: np.ndarray
    """(n,) index of the flipping action with the smallest Gower distance, -1 if none."""
    cost: np.ndarray
    """(n,) Gower distance of the chosen counterfactual, inf if none."""
    sparsity: np.ndarray
    """(n,) features the chosen action changes, 0 if none."""


def person_outcome(outcome: Outcome, cost: np.ndarray | None = None) -> PersonOutcome:
    """Each person's cheapest flipping action: by Gower, or by `cost` ((N, n) what each action
    costs each person, e.g. from a CostModel)."""
    costs = np.where(outcome.flipped, outcome.gower if cost is None else cost, np.inf)
    chosen = costs.argmin(axis=0)
    cost = costs.min(axis=0)
    valid = np.isfinite(cost)
    people = np.arange(costs.shape[1])
    sparsity = np.where(valid, outcome.changed[chosen, people], 0)
    return PersonOutcome(valid, np.where(valid, chosen, -1), cost, sparsity)


def effectiveness_within_budget(
    cost: np.ndarray, groups: np.ndarray, n_groups: int, budget: float
) -> tuple[np.ndarray, float]:
    """FACTS' Equal Effectiveness within Budget: per group, the share with a counterfactual of
    Gower cost <= budget; and the largest gap between groups."""
    within = np.array(
        [np.mean(cost[groups == g] <= budget) if (groups == g).any() else np.nan
         for g in range(n_groups)]
    )
    return within, spread(within)


def cost_of_effectiveness(
    cost: np.ndarray, groups: np.ndarray, n_groups: int, level: float
) -> tuple[np.ndarray, float]:
    """FACTS' Equal Cost of Effectiveness: per group, the smallest budget at which a share
    `level` of the group has recourse (inf if never); and the largest gap between groups."""
    needed = np.full(n_groups, np.nan)
    for g in range(n_groups):
        group_cost = np.sort(cost[groups == g])
        if len(group_cost):
            # the first k with k / n >= level, compared as shares (ceil(0.55 * 100) is 56)
            reached = np.arange(1, len(group_cost) + 1) / len(group_cost) >= level
            needed[g] = group_cost[int(np.argmax(reached))]
    return needed, gap_or_inf(needed)


def gap_or_inf(values: np.ndarray) -> float:
    """`spread` of costs, infinite when a present group's cost is (it never gets there)."""
    present = values[~np.isnan(values)]
    return spread(values) if np.isfinite(present).all() else float("inf")


def mean_recourse_cost(
    cost: np.ndarray, groups: np.ndarray, n_groups: int
) -> tuple[np.ndarray, float]:
    """FACTS' Equal Mean Recourse: per group, the mean cost of the chosen counterfactuals of
    the people who have one (inf if nobody has, NaN if the group is absent); and the gap."""
    mean = np.full(n_groups, np.nan)
    for g in range(n_groups):
        group_cost = cost[groups == g]
        if len(group_cost):
            valid = np.isfinite(group_cost)
            mean[g] = group_cost[valid].mean() if valid.any() else np.inf
    return mean, gap_or_inf(mean)


def group_action_cost(cost: np.ndarray, groups: np.ndarray, n_groups: int) -> np.ndarray:
    """(N, k) what each action costs each group on average ((N, n) per person; NaN where the
    group is absent): the one cost per action and group that FACTS' measures take."""
    total = np.stack([np.bincount(groups, weights=row, minlength=n_groups) for row in cost])
    people = np.bincount(groups, minlength=n_groups)
    return np.divide(total, people, out=np.full(total.shape, np.nan), where=people > 0)


def best_within_budget(share: np.ndarray, action_cost: np.ndarray, budget: float) -> np.ndarray:
    """FACTS' Equal Effectiveness within Budget, macro: per group, the largest P_g(j) among
    actions costing the group at most `budget` (0 if none does); (N, k) shares and costs."""
    within = np.where(action_cost <= budget, share, -np.inf).max(axis=0)
    return np.where(absent(action_cost), np.nan, np.where(np.isfinite(within), within, 0.0))


def cheapest_effective(share: np.ndarray, action_cost: np.ndarray, phi: float) -> np.ndarray:
    """FACTS' Equal Cost of Effectiveness, macro: per group, the smallest cost of an action
    that flips at least `phi` of it (inf if none does)."""
    cheapest = np.where(share >= phi, action_cost, np.inf).min(axis=0)
    return np.where(absent(action_cost), np.nan, cheapest)


def absent(action_cost: np.ndarray) -> np.ndarray:
    """(k,) groups with nobody in the scope (their action costs are NaN)."""
    return np.isnan(action_cost).all(axis=0)


def cost_of_fairness(fair: dict, unconstrained: dict) -> dict[str, float]:
    """What fairness costs: the SR lost and the Gower added against an unconstrained run
    on the same population (dicts with `SR` and `gower_chosen`)."""
    return {
        "SR_drop": unconstrained["SR"] - fair["SR"],
        "gower_rise": fair["gower_chosen"] - unconstrained["gower_chosen"],
    }
