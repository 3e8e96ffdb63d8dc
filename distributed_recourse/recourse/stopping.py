"""When a scope's search is done (issue 9's stop rule): the first of

- its goal is met and its best set has not improved for `patience` steps;
- its best set has not improved for `stall` steps, goal met or not;
- its budget: `max_steps` steps, `max_model_calls` actions asked of the model,
  `time_budget_s` seconds of training, or `stop_archived` successful sets.

Plain Python over the counters the statistics hub keeps, so that it is tested without Ray.
"""

from __future__ import annotations

from dataclasses import dataclass

IMPROVEMENT = 0.25
"""A best set counts as better (for the stop rule) when the search's key rises by more than
this: half a percent of the reward's usual scale (50), e.g. 0.005 less Gower of chosen
counterfactuals or 0.0045 more SR. Smaller refinements still replace the best set; they just do
not keep a scope running."""
GOAL_MET, STALLED = "goal met, no better set since", "no better set since"
BUDGET_STEPS, BUDGET_CALLS = "step budget", "model-call budget"
BUDGET_TIME, BUDGET_ARCHIVE = "time budget", "archive budget"


@dataclass(frozen=True)
class Progress:
    """A scope's counters after a round."""

    steps: int
    model_calls: int
    improved_at: int
    """The step at which its best set last improved."""
    met: bool
    """Its best set meets the goal."""
    train_s: float
    archived: int


@dataclass(frozen=True)
class StopRule:
    patience: int = 500
    stall: int = 3000
    max_steps: int | None = None
    max_model_calls: int | None = None
    time_budget_s: float | None = None
    stop_archived: int | None = None

    def reason(self, p: Progress) -> str | None:
        """Why the scope is done, or None if it should go on."""
        quiet = p.steps - p.improved_at
        if p.met and quiet >= self.patience:
            return f"{GOAL_MET} step {p.improved_at:,}"
        if quiet >= self.stall:
            return f"{STALLED} step {p.improved_at:,}"
        if self.max_steps is not None and p.steps >= self.max_steps:
            return BUDGET_STEPS
        if self.max_model_calls is not None and p.model_calls >= self.max_model_calls:
            return BUDGET_CALLS
        if self.time_budget_s is not None and p.train_s >= self.time_budget_s:
            return BUDGET_TIME
        if self.stop_archived is not None and p.archived >= self.stop_archived:
            return BUDGET_ARCHIVE
        return None
