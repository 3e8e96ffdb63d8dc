"""Exact post-hoc minimisation of recourse actions: drop every change no flipped person needs,
then make each remaining change as small as the flipped people allow.

The search ends with actions that work but often ask for more than they need
("duration +2; amount +288; status -> A11", where the first two flip nobody). DiCE's post-hoc
sparsity step does this per counterfactual and may lose the flip on the way; here one action is
reduced for a whole population, and a step is accepted only once a model call has shown that
every person the action flipped is still flipped. No surrogate and no approximation: the black
box decides each step.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np

from distributed_recourse.recourse.actions import ActionSpace

Favourable = Callable[[np.ndarray], np.ndarray]
Judge = Callable[[dict[str, np.ndarray]], tuple[float, ...]]
"""Scope -> action set, judged as a whole: larger is better."""


@dataclass(frozen=True)
class Minimized:
    """One action reduced on one population."""

    action: np.ndarray
    """(m,) the reduced action."""
    before: np.ndarray
    """(n,) people the original action flips."""
    after: np.ndarray
    """(n,) people the reduced action flips: every one of `before`, and maybe more."""
    changes_before: int
    changes_after: int
    """Features the action changes (entries that can move someone), before and after."""
    gower_before: float
    gower_after: float
    """Mean Gower distance of the people `before` flips, under each action (NaN: nobody)."""
    model_calls: int
    rows_evaluated: int
    """Rows sent to the model over all calls."""


def minimize_action(
    space: ActionSpace, X: np.ndarray, action: np.ndarray, favourable: Favourable,
    allow_new: bool = True, tol: float = 1e-4,
) -> Minimized:
    """Reduce one action on the people X (a scope's people), keeping every flip.

    1. Drop changes, the most expensive first (largest mean Gower term among the flipped
       people), whenever every flipped person stays flipped without it; repeat until no change
       can be dropped, so that every remaining change is needed by someone.
    2. Then, in the same order, shrink each remaining `con` change by bisection on its size
       (whole steps for integer features, else to `tol` x the feature's span), and move each
       `ord` target to the cheapest level for the flipped people that keeps every flip (levels
       are tried cheapest first, one model call each, so that level is the cheapest there is).
       `cat` changes can only be dropped.

    Bounds, whole numbers and directions are those of `space.apply`. A step is accepted only
    after a model call shows it keeps every flip, so the result never loses one; bisection finds
    the smallest step when flips are monotone in the step size (a forest may have pockets where
    they are not: bisection then stops at a boundary it verified).

    People newly flipped by a smaller action (a non-monotone model can flip someone at +10 but
    not at +20) keep that recourse: `after` contains them, so SR can only rise, and PD and ECR
    may move. With `allow_new=False` a step is accepted only if it flips exactly the same
    people, which keeps every action's per-group effectiveness, hence SR, PD and ECR, exactly
    (at more model rows: every call then sees all of X, not just the flipped people).
    An action that flips nobody loses every change (nobody needs them).
    """
    original = np.asarray(action, dtype=np.float64)
    action = original.copy()
    no_change = space.no_change()
    calls, rows = 0, 0

    def ask(X_new: np.ndarray) -> np.ndarray:
        nonlocal calls, rows
        calls += 1
        rows += len(X_new)
        return np.asarray(favourable(X_new), dtype=bool)

    if not len(X):
        empty = np.zeros(0, dtype=bool)
        return Minimized(no_change, empty, empty, int(space.moves(original).sum()), 0,
                         np.nan, np.nan, 0, 0)
    before = ask(space.apply(X, action))
    people = X[before]
    checked, wanted = (people, np.ones(len(people), dtype=bool)) if allow_new else (X, before)

    def keeps(candidate: np.ndarray) -> bool:
        if not len(checked):
            return True
        return bool(np.array_equal(ask(space.apply(checked, candidate)), wanted))

    basis = people if len(people) else X
    terms = space.feature_distance(basis, space.apply(basis, action)).mean(axis=0)

    def by_cost(features: np.ndarray) -> np.ndarray:
        return features[np.argsort(-terms[features], kind="stable")]

    dropped = True
    while dropped:
        dropped = False
        for f in by_cost(np.flatnonzero(space.moves(action))):
            candidate = action.copy()
            candidate[f] = no_change[f]
            if keeps(candidate):
                action, dropped = candidate, True

    for f in by_cost(np.flatnonzero(space.moves(action))):
        if space.is_con[f]:
            action[f] = _shrink(space, action, f, keeps, tol)
        elif not space.is_cat[f]:
            action[f] = _cheapest_level(space, action, f, keeps, people, checked)

    after = ask(space.apply(X, action))

    def gower(a: np.ndarray) -> float:
        return float(space.action_distance(people, a).mean()) if len(people) else np.nan

    return Minimized(action, before, after, int(space.moves(original).sum()),
                     int(space.moves(action).sum()), gower(original), gower(action), calls, rows)


def _shrink(
    space: ActionSpace, action: np.ndarray, f: int, keeps: Callable[[np.ndarray], bool], tol: float
) -> float:
    """The smallest size of `con` change f that keeps, by bisection over multiples of a grid
    step (whole units for integer features, else `tol` x the feature's span) below its size:
    actions that reach the same threshold from different sizes then end on the same value,
    the same choice for a person and for ECR, not near-twins that read alike."""
    sign, size = np.sign(action[f]), abs(float(action[f]))
    step = 1.0 if space.integer[f] else tol * space.span[f]
    lo, hi = 0, int(np.ceil(size / step))  # in steps; the size itself is known to keep
    best = size
    candidate = action.copy()
    while hi - lo > 1:
        mid = (lo + hi) // 2
        candidate[f] = sign * mid * step
        if keeps(candidate):
            hi, best = mid, mid * step
        else:
            lo = mid
    return sign * best


def _cheapest_level(
    space: ActionSpace, action: np.ndarray, f: int, keeps: Callable[[np.ndarray], bool],
    people: np.ndarray, checked: np.ndarray,
) -> float:
    """The `ord` target for feature f that costs the flipped people least and keeps every flip.

    Levels cheaper than the current target are tried cheapest first (ties: nearest the current
    target); a level that moves the checked rows exactly as a tried one did is not asked again."""
    column = space.columns[f]
    levels = np.arange(space.clip_low[f], space.clip_high[f] + 1)
    candidate = action.copy()

    def moved(rows: np.ndarray, level: float) -> np.ndarray:
        candidate[f] = level
        return space.apply(rows, candidate)[:, column]

    def cost(level: float) -> float:
        return float(np.abs(moved(people, level) - people[:, column]).mean()) if len(people) else 0.0

    current = cost(action[f])
    costs = np.array([cost(level) for level in levels])
    cheaper = np.flatnonzero(costs < current)
    order = cheaper[np.lexsort((np.abs(levels[cheaper] - action[f]), costs[cheaper]))]
    tried: list[np.ndarray] = []
    for level in levels[order]:
        column_after = moved(checked, level)
        if any(np.array_equal(column_after, seen) for seen in tried):
            continue
        tried.append(column_after)
        candidate[f] = level
        if keeps(candidate):
            return float(level)
    return float(action[f])


@dataclass(frozen=True)
class SetMinimized:
    """A set reduced action by action on one population; two actions may reduce to the same
    one, and ECR counts distinct actions, so a set's n_g can fall."""

    action_set: np.ndarray
    actions: tuple[Minimized, ...]

    @property
    def model_calls(self) -> int:
        return sum(a.model_calls for a in self.actions)

    @property
    def rows_evaluated(self) -> int:
        return sum(a.rows_evaluated for a in self.actions)

    @property
    def changes_before(self) -> int:
        return sum(a.changes_before for a in self.actions)

    @property
    def changes_after(self) -> int:
        return sum(a.changes_after for a in self.actions)

    def gower(self, which: str) -> float:
        """Mean Gower over every (action, person it flipped before) pair, `before` or `after`
        (NaN when the set flips nobody)."""
        weights = np.array([a.before.sum() for a in self.actions], dtype=np.float64)
        values = np.array([getattr(a, f"gower_{which}") for a in self.actions])
        return float(np.dot(weights, np.nan_to_num(values)) / weights.sum()) if weights.sum() else np.nan

    def to_dict(self) -> dict[str, Any]:
        def none_if_nan(value: float) -> float | None:
            return None if np.isnan(value) else value

        return {
            "changes": {"before": self.changes_before, "after": self.changes_after},
            "gower_flipped": {"before": none_if_nan(self.gower("before")),
                              "after": none_if_nan(self.gower("after"))},
            "flipped": {"before": int(sum(a.before.sum() for a in self.actions)),
                        "after": int(sum(a.after.sum() for a in self.actions))},
            "model_calls": self.model_calls,
            "rows_evaluated": self.rows_evaluated,
        }


def minimize_set(
    space: ActionSpace, X: np.ndarray, action_set: np.ndarray, favourable: Favourable,
    allow_new: bool = True, tol: float = 1e-4,
) -> SetMinimized:
    """Every action of a set reduced on the same people (see `minimize_action`)."""
    reduced = tuple(minimize_action(space, X, action, favourable, allow_new, tol)
                    for action in action_set)
    return SetMinimized(np.array([r.action for r in reduced]), reduced)


def distinct_or_nothing(space: ActionSpace, action_set: np.ndarray) -> np.ndarray:
    """A set whose actions minimisation reduced to the same one keeps it once; the others
    become "no change" (a person is never handed one action twice)."""
    out = action_set.copy()
    out[~space.distinct(action_set)] = space.no_change()
    return out


def minimize_sets(
    space: ActionSpace, people: dict[str, np.ndarray], sets: dict[str, np.ndarray],
    favourable: Favourable, judge: Judge, floor: tuple[float, ...], tol: float = 1e-4,
) -> tuple[dict[str, np.ndarray], dict[str, SetMinimized]]:
    """Every scope's set reduced on its people, but never to something `judge` finds worse
    than `floor` (the sets' own figure; the engine judges the population's SR - PD, then its
    ECR gap). A smaller action that newly flips someone can become an effective choice for one
    more group, which widens the ECR gap, or move PD; then every action is reduced so as to
    flip exactly the same people, which keeps each group's effectiveness and choices. Should
    even that be worse (two actions reduced to one choice), the sets stay as they were and
    nothing is reported as minimised."""
    for allow_new in (True, False):
        minimized = {name: minimize_set(space, people[name], action_set, favourable, allow_new,
                                        tol) for name, action_set in sets.items()}
        reduced = {name: distinct_or_nothing(space, m.action_set) for name, m in minimized.items()}
        if judge(reduced) >= floor:
            return reduced, minimized
    return sets, {}
