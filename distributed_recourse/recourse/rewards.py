"""The EE, ECR and EE-ECR rewards and their done conditions (DESIGN.md section 4).

Every coefficient and threshold is a field of `RewardWeights`, so that Tune can sweep it.
With two groups the formulas are the reference's to the letter; with k groups the sum
a_1 + a_2 becomes (2 / k) * sum_g a_g (the same weight as two groups) and |a_1 - a_2| the
largest gap between any two groups.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

import numpy as np

from distributed_recourse.recourse.metrics import ECR, MACRO, MICRO, SetMetrics, mean_present

REWARDS = ("EE", "ECR", "EE-ECR")


@dataclass(frozen=True)
class RewardWeights:
    """The reward of one training run; defaults are the reference's."""

    reward: str = "EE-ECR"
    """`EE` (equal effectiveness), `ECR` (equal choice of recourse) or `EE-ECR` (both)."""
    effectiveness: str = MICRO
    """`micro` (flipped by any action) or `macro` (by the group's best single action)."""
    n_actions: int = 4
    """N, the actions in a set."""
    phi: float = 0.6
    """An action is an effective choice for a group when it flips at least this share."""
    macro_active: float = 0.3
    """Under macro effectiveness an action is active when it flips this share of some group."""
    scale: float = 50.0
    """Multiplies every term (the reference's 50)."""
    sr: float = 1.1
    """Weight of the success rate in EE."""
    active: float = 1.0
    """Weight of n_active / N."""
    pd: float = 1.0
    """Weight of the proportion difference in EE."""
    gower_active: float = 1.0
    """Penalty weight of the mean Gower distance of active actions."""
    gower_nonactive: float = 0.8
    """Penalty weight of the mean Gower distance of non-active actions."""
    ecr_choice: float = 2.5
    """Weight of each group's a_g in the ECR reward."""
    ecr_gap: float = 1.0
    """Weight of the ECR gap in the ECR and EE-ECR rewards."""
    ee_ecr_choice: float = 1.5
    """Weight of each group's a_g in the ECR part of EE-ECR."""
    done_sr: float = 0.75
    """EE is met when SR reaches this..."""
    done_pd: float = 0.09
    """...and PD is at most this."""
    goal: float = 10.0
    """The default search's pull towards its goal: each unit of SR below the goal's (or of
    PD above its bound) costs `goal` x `scale` (the reference formulation has no such term)."""
    gower_chosen: float = 1.0
    """The default search's penalty weight of the mean cost (Gower unless the schema declares
    costs) of each person's chosen counterfactual, the cheapest flipping action: what a person
    is handed (the reference formulation has no such term)."""
    plausibility: float = 0.0
    """The default search's penalty weight of the share of chosen counterfactuals the outlier
    detector rejects (0: off; on, each proposal also asks the detector about every person)."""
    bonus: float = 1000.0
    """Added to the reward of a step that meets the done conditions."""
    max_episode_steps: int = 2000
    """Episodes are truncated after this many steps..."""
    truncate_after_archived: int = 10
    """...once at least this many distinct successful sets are archived."""
    episode_step_limit: int = 10_000
    """Hard cap on an episode's length whatever the archive holds (keeps metrics flowing)."""
    step_size: float = 3.0
    """The bound of the action's second component a1 in [-step_size, step_size]."""
    con_resolution: float = 100.0
    """`con` entries move on a [-con_resolution, con_resolution] rescaling of their range."""

    def __post_init__(self) -> None:
        if self.reward not in REWARDS:
            raise ValueError(f"reward {self.reward!r}, expected one of {REWARDS}")
        if self.effectiveness not in (MICRO, MACRO):
            raise ValueError(
                f"effectiveness {self.effectiveness!r}, expected one of {(MICRO, MACRO)}"
            )
        if self.n_actions < 1:
            raise ValueError(f"n_actions must be at least 1, got {self.n_actions}")

    @property
    def active_rule(self) -> str:
        """Which actions count as active: ECR counts effective choices, EE the mode's rule."""
        return ECR if self.reward == "ECR" else self.effectiveness

    @classmethod
    def from_dict(cls, spec: dict[str, Any] | None) -> RewardWeights:
        spec = dict(spec or {})
        known = {f.name for f in fields(cls)}
        unknown = set(spec) - known
        if unknown:
            raise ValueError(f"reward weights: unknown options {sorted(unknown)}; known: {sorted(known)}")
        return cls(**spec)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


@dataclass(frozen=True)
class Goal:
    """When a set is a success: SR and PD thresholds (Equal Effectiveness) and, for the ECR
    rewards, equal choice of recourse. The reference formulation reads them from the reward
    weights (`Goal.reference`); the default search sets them from the ceiling (`from_ceiling`)."""

    sr: float
    """SR at least this."""
    pd: float
    """PD at most this."""
    effectiveness: bool = True
    """The SR/PD thresholds apply (EE and EE-ECR rewards)."""
    choice: bool = False
    """Every present group has an effective action and all have the same share (ECR, EE-ECR)."""

    @classmethod
    def reference(cls, w: RewardWeights) -> Goal:
        """The reference's done condition: done_sr / done_pd, and ECR's for the ECR rewards."""
        return cls(w.done_sr, w.done_pd, w.reward != "ECR", w.reward != "EE")

    @classmethod
    def from_ceiling(cls, ceiling_sr: float, ceiling_pd: float, share: float = 0.98,
                     pd_margin: float = 0.01, pd_floor: float = 0.02) -> Goal:
        """SR >= `share` x the ceiling's SR and PD <= max(`pd_floor`, the ceiling's PD +
        `pd_margin`): a goal that follows what the model lets people reach. Equal choice is
        not part of it (equal shares of effective actions for every group, tiny ones
        included, may not exist); the ECR rewards still favour it among the sets that meet
        the goal."""
        return cls(share * ceiling_sr, max(pd_floor, ceiling_pd + pd_margin))

    def shortfall(self, m: SetMetrics) -> float | np.ndarray:
        """How far a set is from the goal's SR and PD (0 when it meets them)."""
        short = np.zeros(np.shape(m.sr))
        if self.effectiveness:
            short = short + np.maximum(0.0, self.sr - np.asarray(m.sr)) \
                + np.maximum(0.0, np.asarray(m.pd) - self.pd)
        return float(short) if short.ndim == 0 else short

    def met(self, m: SetMetrics) -> bool | np.ndarray:
        done = np.ones(np.shape(m.sr), dtype=bool)
        if self.effectiveness:
            done &= ee_met(m, self.sr, self.pd)
        if self.choice:
            done &= ecr_met(m)
        return bool(done) if done.ndim == 0 else done


def ee_met(m: SetMetrics, sr: float, pd: float) -> np.ndarray:
    # a hair of tolerance: the thresholds are products of shares, the SR a mean of counts
    return (np.asarray(m.sr) >= sr - 1e-12) & (np.asarray(m.pd) <= pd + 1e-12)


def ecr_met(m: SetMetrics) -> np.ndarray:
    """Every present group has an effective action, and all have the same share of choices."""
    present = ~np.isnan(m.effectiveness)
    return np.all((m.effective >= 1) | ~present, axis=-1) & (np.asarray(m.ecr_gap) == 0.0)


def is_done(m: SetMetrics, w: RewardWeights) -> bool:
    """The reference's done condition (`Goal.reference`)."""
    return Goal.reference(w).met(m)


def choice_sum(m: SetMetrics) -> float | np.ndarray:
    """a_1 + a_2 for two groups; (2 / k) * sum_g a_g for k present groups."""
    present = ~np.isnan(m.effectiveness)
    return 2.0 * mean_present(np.where(present, m.choice, np.nan))


def gain(m: SetMetrics, w: RewardWeights) -> float | np.ndarray:
    """The reward's level before the done bonus: its success and fairness terms minus the
    proximity penalty, times `scale` (scalars, or one per set of a batch)."""
    proximity = w.gower_nonactive * m.gower_nonactive + w.gower_active * m.gower_active
    active_share = np.asarray(m.n_active) / m.n_actions
    if w.reward == "ECR":
        terms = w.ecr_choice * choice_sum(m) + w.active * active_share - w.ecr_gap * m.ecr_gap
    else:
        terms = w.sr * m.sr + w.active * active_share - w.pd * m.pd
        if w.reward == "EE-ECR":
            terms = terms + w.ee_ecr_choice * choice_sum(m) - w.ecr_gap * m.ecr_gap
    return w.scale * (terms - proximity)


def reward(m: SetMetrics, w: RewardWeights, goal: Goal | None = None) -> tuple[float, bool]:
    """The step reward and whether the set meets the goal (the reference's by default)."""
    done = (goal or Goal.reference(w)).met(m)
    return float(gain(m, w)) + (w.bonus if done else 0.0), done
