"""The ceiling: who can be flipped by any feasible change at all (DESIGN.md section 8).

A person is *reachable* when some change of their actionable features, within bounds and
directions and with every immutable feature fixed, makes the model favour them. No set of
actions can do better than the reachable share of each group, so the ceiling tells a user
whether a low success rate is the model's doing or the search's.

Each person gets their own change here (the search looks for actions shared by a scope). The
values tried per feature are every level of an `ord`/`cat` feature and a grid of points over a
`con` feature's range; where the product of these is small enough it is enumerated in full
(`exact`: exact over that grid), else a seeded sample of it is tried and the result is a lower
bound. People stop being asked about once a change flips them, so the model sees mostly the
few who are hard to flip.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from itertools import product

import numpy as np

from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.metrics import spread

Favourable = Callable[[np.ndarray], np.ndarray]


@dataclass(frozen=True)
class Ceiling:
    """Reachability of each person and how it was established."""

    reachable: np.ndarray
    """(n,) some feasible change flips the person."""
    exact: bool
    """Every combination of the values tried was tried for every person (else: a lower bound)."""
    combinations: int
    """Combinations of feature values tried (of `space_size`)."""
    space_size: int
    """Combinations of the values per feature (levels of `ord`/`cat`, grid points of `con`, or
    the person's own value), leaving out the one that changes nothing."""
    model_rows: int
    """Rows the model predicted to establish it."""

    def figures(self, groups: np.ndarray, group_names: list[str],
                mask: np.ndarray | None = None) -> dict:
        return ceiling_figures(self.reachable, self.exact, groups, group_names, mask)


def ceiling_figures(reachable: np.ndarray, exact: bool, groups: np.ndarray,
                    group_names: list[str], mask: np.ndarray | None = None) -> dict:
    """The ceiling's SR (mean over present groups of the reachable share) and PD (largest gap
    between groups), over `mask`'s people, as population.json and summary.json report them."""
    mask = np.ones(len(groups), dtype=bool) if mask is None else mask
    k = len(group_names)
    people = np.bincount(groups[mask], minlength=k)
    reached = np.bincount(groups[mask], weights=reachable[mask], minlength=k)
    shares = np.divide(reached, people, out=np.full(k, np.nan), where=people > 0)
    present = people > 0
    return {
        "SR": float(shares[present].mean()) if present.any() else 0.0,
        "PD": spread(shares),
        "exact": bool(exact),
        "groups": {name: (float(s) if p else None)
                   for name, s, p in zip(group_names, shares, present, strict=True)},
    }


def feature_values(space: ActionSpace, grid_points: int, max_levels: int) -> list[np.ndarray]:
    """The values tried per feature: every whole level of an `ord`/`cat` feature (evenly
    thinned, ends kept, beyond `max_levels`), `grid_points` evenly spaced over a `con` range."""
    values = []
    for f, low, high in zip(space.features, space.clip_low, space.clip_high, strict=True):
        if f.kind == "con" and not f.integer:
            values.append(np.linspace(low, high, grid_points))
            continue
        levels = np.arange(low, high + 1.0)
        limit = grid_points if f.kind == "con" else max_levels
        if len(levels) > limit:
            levels = np.unique(np.round(np.linspace(low, high, limit)))
        values.append(levels)
    return values


def corners_first(sizes: list[int], rng: np.random.Generator, limit: int) -> list[tuple]:
    """Combinations of value indices (-1: keep the person's own value; never all -1, which
    changes nothing): the combinations of each feature's ends and `keep` first (most people
    flip at an extreme), then the rest in a seeded random order; at most `limit` of them."""
    keep_all = (-1,) * len(sizes)
    corners = []
    if 3 ** len(sizes) <= limit:
        corners = [c for c in product(*[sorted({-1, 0, size - 1}) for size in sizes])
                   if c != keep_all]
    if int(np.prod([size + 1 for size in sizes])) <= limit:
        seen = {*corners, keep_all}
        rest = [c for c in product(*[range(-1, size) for size in sizes]) if c not in seen]
        return corners + [rest[i] for i in rng.permutation(len(rest))]
    drawn = {tuple(int(rng.integers(-1, size)) for size in sizes) for _ in range(limit)}
    return (corners + sorted(drawn - {*corners, keep_all}))[:limit]


def reachable_people(
    space: ActionSpace, X: np.ndarray, favourable: Favourable, grid_points: int = 11,
    max_levels: int = 64, max_combinations: int = 4096, max_rows: int = 5_000_000,
    seed: int = 0,
) -> Ceiling:
    """Who some feasible change flips: up to `max_combinations` combinations of feature values
    (`feature_values`), each asked of the people not yet flipped, within `max_rows` predictions."""
    values = feature_values(space, grid_points, max_levels)
    sizes = [len(v) for v in values]
    space_size = int(np.prod([size + 1 for size in sizes])) - 1  # without "change nothing"
    combinations = corners_first(sizes, np.random.default_rng(seed), max_combinations)
    current = X[:, space.columns]
    reachable = np.zeros(len(X), dtype=bool)
    rows, tried = 0, 0
    for combination in combinations:
        todo = np.flatnonzero(~reachable)
        if not len(todo) or rows + len(todo) > max_rows:
            break
        moved = X[todo].copy()
        target = current[todo].copy()
        for f, index in enumerate(combination):
            if index >= 0:
                target[:, f] = values[f][index]
        # a one-way feature keeps the person's value where the target lies the wrong way
        target = np.where(space.increase_only, np.maximum(target, current[todo]), target)
        target = np.where(space.decrease_only, np.minimum(target, current[todo]), target)
        moved[:, space.columns] = target
        reachable[todo] = np.asarray(favourable(moved), dtype=bool)
        rows += len(todo)
        tried += 1
    exact = tried == space_size or bool(reachable.all())
    return Ceiling(reachable, exact, tried, space_size, rows)
