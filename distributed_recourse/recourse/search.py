"""The search state of one scope, shared by every way of searching it (SAC, random, greedy).

`ScopeSearch` owns what a search learns about its scope: every action it evaluated (the
candidate pool, through one evaluator that counts model calls), the best set of actions in
the pool under the scope's reward and goal, and the successful sets (those meeting the goal)
not yet reported. A searcher only proposes actions; `refresh` finds the best set among all
proposals so far, exactly, and `report` hands the news to the statistics hub.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from distributed_recourse.data.schema import FeatureSpec
from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.archive import archive_entry
from distributed_recourse.recourse.pool import (
    NO_CHANGE,
    CandidatePool,
    Scored,
    SelectionObjective,
    SetObjective,
    best_set,
)
from distributed_recourse.recourse.rewards import Goal, RewardWeights
from distributed_recourse.recourse.stopping import IMPROVEMENT


@dataclass
class ScopeProblem:
    """The people of one scope and the model, picklable so that it can travel through Ray's
    object store to wherever the scope's trainer runs."""

    scope: str
    X: np.ndarray
    groups: np.ndarray
    group_names: list[str]
    features: tuple[FeatureSpec, ...]
    model: Any
    """Anything with `favourable(X) -> bool array` (a BlackBox)."""
    costs: Any = None
    """What a change costs each person (a CostModel); None: Gower."""
    detector: Any = None
    """Tells plausible counterfactuals (`predict` 1 for an inlier); needed only when the search
    weighs plausibility."""


class ScopeSearch:
    """One scope's evaluated actions, its best set and its counters.

    `evaluator` answers `outcomes(actions) -> [flipped mask]` and counts
    `model_calls` (a ScopeEvaluator, or its sharded twin)."""

    def __init__(self, problem: ScopeProblem, evaluator, weights: RewardWeights, goal: Goal,
                 hybrid: bool = False, pool_size: int = 4096, pull: float = 0.0,
                 closest: float = 0.0, plausible: float = 0.0) -> None:
        self.problem = problem
        self.scope = problem.scope
        self.weights = weights
        self.space = ActionSpace(problem.features, weights.n_actions)
        self.evaluator = evaluator
        self.n = len(problem.X)
        self.pool = CandidatePool(problem.groups, len(problem.group_names),
                                  self.space.n_features, pool_size)
        self.objective = SetObjective(weights, goal, hybrid, pull, closest, plausible)
        self.best = np.full(weights.n_actions, NO_CHANGE, dtype=np.int64)
        self.best_actions = self.space.initial_set()
        self.steps = 0
        """Proposals made (an environment step or a baseline's candidate each)."""
        self._unsent: list[dict[str, Any]] = []
        self._archived: set[bytes] = set()
        self._refreshed_at = 0
        self._selected_at = -1
        """Model calls at the last `archive_selected` (-1: the others' tally has changed)."""
        self._scores: dict[bytes, Scored] = {}
        self._reported_key = self.key(self.best)
        """The best set's key at the last report, under the others' current tally."""
        self._record_key = self._reported_key
        """The highest key any report has shown, under whatever tally of the others."""

    @property
    def model_calls(self) -> int:
        return self.evaluator.model_calls

    @property
    def archived(self) -> int:
        """Distinct successful sets found (the reference's truncation rule reads it)."""
        return len(self._archived)

    # ----------------------------------------------------------------- evaluating
    def evaluate(self, actions: np.ndarray) -> np.ndarray:
        """Pool indices of the actions (NO_CHANGE for one that changes nothing), asking the
        model in one call about those not seen before. Actions are taken in their canonical
        form, so that one doing what a known one does is that one."""
        actions = self.space.canonical(np.atleast_2d(actions))
        changes = ~np.all(actions == self.space.no_change(), axis=1)
        index = np.full(len(actions), NO_CHANGE, dtype=np.int64)
        for i, flipped in zip(np.flatnonzero(changes),
                                   self.evaluator.outcomes(actions[changes]), strict=True):
            known = self.pool.find(actions[i])
            index[i] = known if known is not None else self.pool.add(
                actions[i], flipped, *self.per_person(actions[i]))
        if self.model_calls >= self._refreshed_at + max(16, len(self.pool) // 8):
            self.refresh(prune=False)  # often while the pool is small: early sets are found early
        return index

    def per_person(self, action: np.ndarray) -> tuple[np.ndarray, np.ndarray | None]:
        """What an action costs each person, and whether each counterfactual is plausible
        (None unless the search weighs plausibility): no model call."""
        X, p = self.problem.X, self.problem
        tracked = self.objective.plausible > 0 and p.detector is not None
        moved = self.space.apply(X, action) if p.costs is not None or tracked else None
        cost = p.costs.cost(X, moved) if p.costs is not None else self.space.action_distance(X, action)
        return cost, np.asarray(p.detector.predict(moved)) == 1 if tracked else None

    def actions_of(self, chosen: np.ndarray) -> np.ndarray:
        """The (N, m) action set a set of pool indices stands for."""
        return np.array([self.space.no_change() if i == NO_CHANGE else self.pool.actions[i]
                         for i in chosen])

    def scored(self, chosen: np.ndarray) -> Scored:
        """A set of pool indices, scored. Remembered: a step asks for the same sets' scores
        several times (its reward, the archive, the best set), and on Adult scoring a set
        costs a tenth of a model call. A set's scores change only when the pool is
        renumbered or the others' tally changes, which forget them."""
        index = np.asarray(chosen, dtype=np.int64).tobytes()
        found = self._scores.get(index)
        if found is None:
            if len(self._scores) >= 4096:
                self._scores.clear()
            found = self._scores[index] = self.objective.scored(self.pool, chosen)
        return found

    def score(self, chosen: np.ndarray):
        """(metrics, tally, reward level, goal met) of a set of pool indices."""
        return self.scored(chosen).row(0)

    def key(self, chosen: np.ndarray) -> float:
        """What the search maximises (`SetObjective`): larger is better."""
        return float(self.scored(chosen).key[0])

    # ----------------------------------------------------------------- the best set
    def offer(self, chosen: np.ndarray) -> None:
        """A set found by the searcher (e.g. an episode's): archived if it meets the goal,
        kept as the best if it beats it."""
        metrics, tally, value, met = self.score(chosen)
        if met:
            self._archive(chosen, metrics, tally, value, self.scored(chosen).extras(0))
        if self.key(chosen) > self.key(self.best) + 1e-9:
            self.best, self.best_actions = np.array(chosen), self.actions_of(chosen)

    def refresh(self, prune: bool = True) -> None:
        """The best set among every action evaluated so far, exactly (and it is offered).
        `prune` (at the end of a round) also archives the selection rule's own find
        (`archive_selected`) and forgets the least useful candidates beyond the pool's
        capacity, which renumbers the pool: callers hold actions, not indices, across rounds."""
        self._refreshed_at = self.model_calls
        self.best = self._indices(self.best_actions)
        self.offer(best_set(self.pool, self.objective, self.weights.n_actions, start=self.best))
        if not prune:
            return
        self.archive_selected()
        if len(self.pool) > self.pool.capacity:
            self.pool.prune(keep=list(self.best_actions))
            self._scores.clear()
            self.best = self._indices(self.best_actions)

    def archive_selected(self) -> None:
        """Archive the pool's best set under the default selection rule (`SelectionObjective`).
        The search's key trades SR, PD, choice and cost in its own way, and the sets it passes
        through are not the ones the final selection would pick from what the pool holds; this
        puts that one in the archive, once a round, whatever the searcher (and not again
        while the pool and the others' tally stay as they were)."""
        if self._selected_at == self.model_calls:
            return
        self._selected_at = self.model_calls
        chosen = best_set(self.pool, SelectionObjective(self.objective), self.weights.n_actions,
                          start=self.best)
        metrics, tally, value, met = self.score(chosen)
        if met:
            self._archive(chosen, metrics, tally, value, self.scored(chosen).extras(0))

    def set_others(self, tally: M.GroupTally | None) -> None:
        """The other scopes' pooled tally (hybrid fairness), fixed until the next round. The
        best set is judged again under it, so that a change of the others is never taken for
        an improvement (or a loss) of this scope's."""
        self.objective.others = tally
        self._scores.clear()
        self._selected_at = -1
        self._reported_key = self.key(self.best)

    def _indices(self, actions: np.ndarray) -> np.ndarray:
        found = [self.pool.find(a) for a in actions]
        return np.array([NO_CHANGE if i is None else i for i in found], dtype=np.int64)

    @staticmethod
    def set_key(actions: np.ndarray) -> bytes:
        """The same actions in any order are one set."""
        actions = np.asarray(actions, dtype=np.float64)
        return np.ascontiguousarray(actions[np.lexsort(actions.T[::-1])]).tobytes()

    def _archive(self, chosen: np.ndarray, metrics, tally, value: float,
                 extras: dict[str, float]) -> None:
        actions = self.actions_of(chosen)
        key = self.set_key(actions)
        if key in self._archived:
            return
        self._archived.add(key)
        self._unsent.append(self.entry(actions, metrics, tally, value, extras))

    def entry(self, actions: np.ndarray, metrics, tally, value: float,
              extras: dict[str, float]) -> dict[str, Any]:
        """An archive entry: the set, its metrics, when it was found (steps, model calls), and
        the cost and plausibility of its chosen counterfactuals (what selection rules read)."""
        entry = archive_entry(self.scope, self.space, actions, metrics, tally,
                              self.problem.group_names, self.steps, value)
        return {**entry, **extras, "model_calls": self.model_calls}

    # ----------------------------------------------------------------- reporting
    def report(self) -> dict[str, Any]:
        """What the hub records after a round: the best set (its tally is what other scopes
        pool under hybrid fairness), the sets archived since the last report, the counters."""
        metrics, tally, value, met = self.score(self.best)
        extras = self.scored(self.best).extras(0)
        entries, self._unsent = self._unsent, []
        key = self.key(self.best)
        # Better under the others' current tally, and better than ever: under hybrid fairness
        # scopes answering each other's moves can trade the same few points back and forth
        # for ever (on one unseen dataset, 35,000 steps per scope); a scope counts as
        # improving only while it sets new records.
        improved = key > self._reported_key + IMPROVEMENT and key > self._record_key + IMPROVEMENT
        self._reported_key, self._record_key = key, max(key, self._record_key)
        return {"best": {**self.entry(self.best_actions, metrics, tally, value, extras),
                         "met": met},
                "key": key, "improved": improved, "entries": entries,
                "steps": self.steps, "model_calls": self.model_calls}

    # ----------------------------------------------------------------- checkpoints
    def state(self) -> dict[str, Any]:
        """What a checkpoint keeps of the search (the counters and the archive are the hub's)."""
        return {"pool": self.pool.state(), "best_actions": self.best_actions,
                "record_key": self._record_key}

    def restore(self, state: dict[str, Any], steps: int, model_calls: int,
                archived: list[np.ndarray]) -> None:
        """Continue from a checkpoint, with the hub's counters and archived sets."""
        self.pool.restore(state["pool"])
        self._scores.clear()
        self.best_actions = np.asarray(state["best_actions"])
        self.best = self._indices(self.best_actions)
        self.steps = steps
        self.evaluator.model_calls = model_calls
        self._archived = {self.set_key(actions) for actions in archived}
        self._reported_key = self.key(self.best)
        self._record_key = max(self._reported_key, state.get("record_key", float("-inf")))
