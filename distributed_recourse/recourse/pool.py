"""The candidate pool of a scope and the search for the best set of actions in it.

Every search (SAC, random, greedy) proposes actions; each proposed action is evaluated once
(one model call over the scope's people) and kept here with what it does: who it flips, how
many of each group, its mean Gower distance. A set of N actions is then a choice of N
candidates, and its metrics and reward (DESIGN.md sections 3 and 4) follow exactly from the
stored masks, without another model call. `best_set` builds a set greedily and improves it
one slot at a time, scoring every candidate for a slot at once, then pairs of slots while the
set misses its goal (a heuristic over exact scores: it can miss the best set a pool holds).

Sets hold candidate indices; `NO_CHANGE` (-1) is the action that changes nothing.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.rewards import Goal, RewardWeights, gain

NO_CHANGE = -1


class CandidatePool:
    """The distinct actions evaluated on one scope, with their flip masks (at most `capacity`:
    beyond it the least useful are forgotten, never those of a set still in use)."""

    def __init__(self, groups: np.ndarray, n_groups: int, n_features: int,
                 capacity: int = 4096) -> None:
        self.groups = np.asarray(groups, dtype=np.int64)
        self.n_groups = n_groups
        self.people = np.bincount(self.groups, minlength=n_groups)
        self.capacity = capacity
        self.onehot = np.zeros((len(self.groups), n_groups), dtype=np.float32)
        self.onehot[np.arange(len(self.groups)), self.groups] = 1.0
        self._size = 0
        self._actions = np.zeros((16, n_features))
        self._masks = np.zeros((16, len(self.groups)), dtype=bool)
        self._counts = np.zeros((16, n_groups), dtype=np.int64)
        self._gower = np.zeros(16)
        self._distance = np.zeros((16, len(self.groups)), dtype=np.float32)
        self._plausible = np.ones((16, len(self.groups)), dtype=bool)
        self._index: dict[bytes, int] = {}
        self.judged = False
        """Some counterfactual was judged implausible (else every share plausible is 1)."""

    # Storage grows by doubling, so that adding a candidate never copies the whole pool.
    actions = property(lambda self: self._actions[: self._size])
    masks = property(lambda self: self._masks[: self._size])
    counts = property(lambda self: self._counts[: self._size],
                      doc="(P, k) people of each group each candidate flips.")
    gower = property(lambda self: self._gower[: self._size],
                     doc="(P,) mean Gower distance of each candidate over the scope's people.")
    distance = property(lambda self: self._distance[: self._size],
                        doc="(P, n) what each candidate costs each person (Gower by default), "
                            "to float16's precision (3 digits) but held as float32: numpy's "
                            "float16 arithmetic runs element by element, 20x slower.")
    plausible = property(lambda self: self._plausible[: self._size],
                         doc="(P, n) each person's counterfactual under each candidate is "
                             "plausible (all True unless the search tracks plausibility).")

    def __len__(self) -> int:
        return self._size

    @staticmethod
    def key(action: np.ndarray) -> bytes:
        return np.asarray(action, dtype=np.float64).tobytes()

    def find(self, action: np.ndarray) -> int | None:
        return self._index.get(self.key(action))

    def add(self, action: np.ndarray, flipped: np.ndarray, distance: np.ndarray,
            plausible: np.ndarray | None = None, gower: float | None = None) -> int:
        """Keep an evaluated action (once) with who it flips, what it costs each person and
        whether each counterfactual is plausible; returns its index. `gower`: its mean cost
        when known more precisely than the stored per-person costs (a restored pool)."""
        known = self.find(action)
        if known is not None:
            return known
        if self._size == len(self._actions):
            grow = lambda a: np.concatenate([a, np.zeros_like(a)])  # noqa: E731
            self._actions, self._masks = grow(self._actions), grow(self._masks)
            self._counts, self._gower = grow(self._counts), grow(self._gower)
            self._distance = grow(self._distance)
            self._plausible = np.concatenate([self._plausible, np.ones_like(self._plausible)])
        i = self._size
        flipped = np.asarray(flipped, dtype=bool)
        self._actions[i], self._masks[i] = action, flipped
        self._gower[i] = float(np.mean(distance)) if gower is None else gower
        self._distance[i] = np.asarray(distance, dtype=np.float16)  # see `distance`
        self._plausible[i] = True if plausible is None else plausible
        self.judged = self.judged or not self._plausible[i].all()
        self._counts[i] = np.bincount(self.groups[flipped], minlength=self.n_groups)
        self._index[self.key(action)] = i
        self._size += 1
        return i

    def prune(self, keep: list[np.ndarray]) -> None:
        """Forget the least useful candidates beyond `capacity` (those flipping the smallest
        share of any group, ties by Gower; a mask seen before at a lower Gower first), never
        the actions in `keep`."""
        if len(self) <= self.capacity:
            return
        share = np.divide(self.counts, self.people, out=np.zeros(self.counts.shape),
                          where=self.people > 0).max(axis=1)
        packed = np.packbits(self.masks, axis=1)
        order = np.lexsort((self.gower, -share))
        _, first = np.unique(packed[order], axis=0, return_index=True)
        repeated = np.ones(len(self), dtype=bool)
        repeated[order[first]] = False
        score = np.where(repeated, -np.inf, share - 0.5 * self.gower)
        pinned = [i for i in (self.find(a) for a in keep) if i is not None]
        score[pinned] = np.inf
        kept = np.sort(np.argsort(-score, kind="stable")[: self.capacity])
        self._actions, self._masks = self._actions[kept], self._masks[kept]
        self._counts, self._gower = self._counts[kept], self._gower[kept]
        self._distance, self._plausible = self._distance[kept], self._plausible[kept]
        self._size = len(kept)
        self._index = {self.key(a): i for i, a in enumerate(self.actions)}

    def state(self) -> dict:
        return {"actions": self.actions, "masks": np.packbits(self.masks, axis=1),
                "distance": self.distance.astype(np.float16),
                "plausible": np.packbits(self.plausible, axis=1), "gower": self.gower}

    def restore(self, state: dict) -> None:
        n = len(self.groups)
        masks = np.unpackbits(state["masks"], axis=1, count=n).astype(bool)
        plausible = np.unpackbits(state["plausible"], axis=1, count=n).astype(bool)
        for action, mask, distance, fine, gower in zip(
                state["actions"], masks, state["distance"], plausible, state["gower"], strict=True):
            self.add(action, mask, distance, fine, float(gower))


@dataclass(frozen=True)
class Scored:
    """A batch of sets that differ in one slot: their metrics, tallies, reward levels (`gain`)
    and whether each meets the goal; row i is the set with the i-th candidate in the slot."""

    metrics: M.SetMetrics
    tally: M.GroupTally
    value: np.ndarray
    """The reward's level (`gain`): success, fairness and proximity terms."""
    chosen_cost: np.ndarray
    """Mean cost (Gower by default) of each flipped person's cheapest flipping action, their
    chosen counterfactual (0: nobody is flipped)."""
    plausibility: np.ndarray
    """Share of the chosen counterfactuals that are plausible (1: nobody is flipped)."""
    met: np.ndarray
    key: np.ndarray
    """What the search maximises: the level, minus the pull towards the goal, plus the bonus
    of a set that meets it."""

    def extras(self, i: int) -> dict[str, float]:
        """What the archive keeps of row i beyond its metrics."""
        return {"chosen_cost": float(self.chosen_cost[i]),
                "plausibility": float(self.plausibility[i]), "key": float(self.key[i])}

    def row(self, i: int) -> tuple[M.SetMetrics, M.GroupTally, float, bool]:
        """The scalar metrics, tally, reward level and goal of row i."""
        m, t = self.metrics, self.tally
        metrics = M.SetMetrics(
            effectiveness=m.effectiveness[i], sr=float(m.sr[i]), pd=float(m.pd[i]),
            choice=m.choice[i], effective=m.effective[i], ecr_gap=float(m.ecr_gap[i]),
            n_active=int(m.n_active[i]), n_actions=m.n_actions,
            gower_active=float(m.gower_active[i]), gower_nonactive=float(m.gower_nonactive[i]))
        tally = M.GroupTally(t.people, t.flipped_any[i], t.flipped_best[i], t.effective[i],
                             t.n_actions)
        return metrics, tally, float(self.value[i]), bool(self.met[i])


class SetObjective:
    """The reward of DESIGN.md section 4 and the goal, for sets of pool candidates on one
    scope; under hybrid fairness the group terms pool the other scopes' tallies (`others`).
    `pull`: weight of the distance to the goal in the key; `closest`: weight of the mean cost
    of the people's chosen counterfactuals; `plausible`: weight of the share of them that is
    implausible (all 0: the paper's reward alone)."""

    def __init__(self, weights: RewardWeights, goal: Goal, hybrid: bool = False,
                 pull: float = 0.0, closest: float = 0.0, plausible: float = 0.0) -> None:
        self.weights = weights
        self.goal = goal
        self.hybrid = hybrid
        self.pull = pull
        self.closest = closest
        self.plausible = plausible
        self.others: M.GroupTally | None = None

    def slot(self, pool: CandidatePool, chosen: np.ndarray, j: int,
             candidates: np.ndarray | None = None) -> Scored:
        """The set `chosen` (N indices) with each of `candidates` in slot j (default: every
        candidate of the pool, then NO_CHANGE), scored all at once."""
        w = self.weights
        if candidates is None:
            candidates = np.append(np.arange(len(pool)), NO_CHANGE)
        candidates = np.asarray(candidates, dtype=np.int64)
        others = [int(i) for s, i in enumerate(chosen) if s != j and i != NO_CHANGE]
        n_actions, people, k = len(chosen), pool.people, pool.n_groups
        real = candidates != NO_CHANGE
        counts = np.zeros((len(candidates), k), dtype=np.int64)
        counts[real] = pool.counts[candidates[real]]
        gower = np.zeros(len(candidates))
        gower[real] = pool.gower[candidates[real]]
        covered = pool.masks[others].any(axis=0) if others else np.zeros(len(pool.groups), bool)
        newly = np.zeros((len(candidates), k), dtype=np.int64)
        if real.any():
            rows = pool.masks[candidates[real]][:, ~covered].astype(np.float32)
            newly[real] = np.rint(rows @ pool.onehot[~covered]).astype(np.int64)
        flipped_any = np.bincount(pool.groups[covered], minlength=k) + newly
        other_counts = pool.counts[others] if others else np.zeros((0, k), np.int64)
        flipped_best = np.maximum(other_counts.max(axis=0, initial=0), counts)

        share = M.share_per_action(counts, people)
        other_share = M.share_per_action(other_counts, people)
        distinct_other = np.zeros(len(others), dtype=bool)
        distinct_other[np.unique(others, return_index=True)[1]] = True
        distinct = ~np.isin(candidates, others)  # the same candidate twice is one choice
        effective = ((other_share >= w.phi) & distinct_other[:, None]).sum(axis=0) \
            + ((share >= w.phi) & distinct[:, None])

        def active(counts_: np.ndarray, share_: np.ndarray, distinct_: np.ndarray) -> np.ndarray:
            return M.active_actions(w.active_rule, counts_, share_, distinct_, w.phi,
                                    w.macro_active)

        active_other = active(other_counts, other_share, distinct_other)
        active_new = active(counts, share, distinct)
        n_active = active_other.sum() + active_new
        gower_other = pool.gower[others] if others else np.zeros(0)
        sum_active = gower_other[active_other].sum() + np.where(active_new, gower, 0.0)
        sum_rest = gower_other[~active_other].sum() + np.where(active_new, 0.0, gower)
        gower_active = np.divide(sum_active, n_active, out=np.zeros(len(candidates)),
                                 where=n_active > 0)
        rest = n_actions - n_active
        gower_nonactive = np.divide(sum_rest, rest, out=np.zeros(len(candidates)),
                                    where=rest > 0)

        chosen_cost, plausibility = self._chosen(pool, others, candidates)
        tally = M.GroupTally(people, flipped_any, flipped_best, effective, n_actions)
        metrics = M.metrics_of(tally, w.effectiveness, n_active, n_actions, gower_active,
                               gower_nonactive)
        if self.hybrid and self.others is not None:
            pooled = M.metrics_of(tally + self.others, w.effectiveness, n_active, n_actions,
                                  gower_active, gower_nonactive)
            metrics = metrics.with_group_terms(pooled)
        value = np.asarray(gain(metrics, w), dtype=np.float64)
        met = np.asarray(self.goal.met(metrics), dtype=bool)
        return Scored(metrics, tally, value, chosen_cost, plausibility, met,
                      self.rank(metrics, value, chosen_cost, plausibility, met))

    @staticmethod
    def _chosen(pool: CandidatePool, others: list[int], candidates: np.ndarray,
                chunk: int = 64) -> tuple[np.ndarray, np.ndarray]:
        """Per candidate in the slot, the mean cost of each person's chosen counterfactual (the
        cheapest flipping action of the set) and the share of them that is plausible. By
        chunks of candidates that fit the CPU's cache (3x faster than all at once on Adult)."""
        far, n = np.float32(np.inf), len(pool.groups)
        if others:
            costs = np.where(pool.masks[others], pool.distance[others], far)
            pick = costs.argmin(axis=0)
            nearest = costs[pick, np.arange(n)]
            fine = pool.plausible[others][pick, np.arange(n)]
        else:
            nearest, fine = np.full(n, far), np.ones(n, dtype=bool)
        near_valid = np.isfinite(nearest)  # people the other slots already flip
        counted = near_valid.sum()
        # NO_CHANGE in the slot leaves each person the others' counterfactual
        chosen_cost = np.full(len(candidates), np.where(near_valid, nearest, 0).sum(
            dtype=np.float64) / counted if counted else 0.0)
        plausibility = np.full(len(candidates), (near_valid & fine).sum() / counted
                               if counted else 1.0)
        real = np.flatnonzero(candidates != NO_CHANGE)
        for start in range(0, len(real), chunk):
            at = real[start:start + chunk]
            rows = candidates[at]
            masks = pool.masks[rows]
            reach = np.where(masks, pool.distance[rows], far)
            takes = reach < nearest
            np.minimum(reach, nearest, out=reach)
            valid = masks | near_valid
            np.copyto(reach, 0, where=~valid)
            counted = valid.sum(axis=1)
            chosen_cost[at] = np.divide(reach.sum(axis=1, dtype=np.float64), counted,
                                        out=np.zeros(len(at)), where=counted > 0)
            if pool.judged:
                fine_rows = np.where(takes, pool.plausible[rows], fine) & valid
                plausibility[at] = np.divide(fine_rows.sum(axis=1), counted,
                                             out=np.ones(len(at)), where=counted > 0)
        return chosen_cost, plausibility

    def rank(self, metrics: M.SetMetrics, value: np.ndarray, chosen_cost: np.ndarray,
             plausibility: np.ndarray, met: np.ndarray) -> np.ndarray:
        """The key: the reward's level, minus the pull towards the goal, the cost of the
        chosen counterfactuals and their implausibility, plus the bonus of a set meeting it."""
        w = self.weights
        return value - w.scale * (self.pull * np.asarray(self.goal.shortfall(metrics))
                                  + self.closest * chosen_cost
                                  + self.plausible * (1.0 - plausibility)) \
            + np.where(met, w.bonus, 0.0)

    def scored(self, pool: CandidatePool, chosen: np.ndarray) -> Scored:
        """One set, scored (row 0)."""
        return self.slot(pool, chosen, 0, candidates=np.asarray(chosen[:1]))

    def score(self, pool: CandidatePool, chosen: np.ndarray):
        """(metrics, tally, reward level, goal met) of one set."""
        return self.scored(pool, chosen).row(0)

    def key(self, pool: CandidatePool, chosen: np.ndarray) -> float:
        """What the search maximises, for one set."""
        return float(self.scored(pool, chosen).key[0])


class SelectionObjective(SetObjective):
    """The default selection rule (`archive.selection_key`, sr_minus_pd) as a key: among the
    sets that meet the goal, the highest SR - PD, ties by the smaller ECR gap, then by the
    cheaper chosen counterfactuals; any set that meets the goal ranks above every set that
    does not (those by SR - PD less their shortfall, which leads a greedy build towards the
    goal). The scales make the order lexicographic in practice: one person more flipped in a
    group of 10,000 moves SR - PD by at most 1e-4 (1 here), a whole ECR gap weighs 0.1 and a whole
    unit of cost 0.001, well above the 1e-9 an improvement must beat."""

    def __init__(self, objective: SetObjective) -> None:
        super().__init__(objective.weights, objective.goal, objective.hybrid)
        self.others = objective.others

    def rank(self, metrics: M.SetMetrics, value: np.ndarray, chosen_cost: np.ndarray,
             plausibility: np.ndarray, met: np.ndarray) -> np.ndarray:
        fairness = np.asarray(metrics.sr) - np.asarray(metrics.pd)
        selected = 1e4 * fairness - 0.1 * np.asarray(metrics.ecr_gap) - 1e-3 * chosen_cost
        missed = 1e4 * (fairness - np.asarray(self.goal.shortfall(metrics))) - 3e4
        return np.where(met, selected, missed)


def slot_keys(pool: CandidatePool, objective: SetObjective, chosen: np.ndarray,
              j: int) -> np.ndarray:
    """The set's key with each candidate (then NO_CHANGE) in slot j; -inf for a candidate
    already in another slot (a person is never handed one action twice)."""
    key = objective.slot(pool, chosen, j).key.copy()
    key[[int(i) for s, i in enumerate(chosen) if s != j and i != NO_CHANGE]] = -np.inf
    return key


def best_candidate(pool: CandidatePool, objective: SetObjective, chosen: np.ndarray,
                   j: int) -> tuple[int, float, float]:
    """The candidate (or NO_CHANGE) that makes slot j of `chosen` best, never one already in
    another slot; with its key and the key of the set as it is."""
    key = slot_keys(pool, objective, chosen, j)
    best = int(np.argmax(key))
    current = len(pool) if chosen[j] == NO_CHANGE else int(chosen[j])
    return (NO_CHANGE if best == len(pool) else best), float(key[best]), float(key[current])


def improve(pool: CandidatePool, objective: SetObjective, chosen: np.ndarray,
            rounds: int = 4) -> np.ndarray:
    """Best-improvement local search: replace one slot at a time with the candidate that most
    improves the set, until no slot improves or `rounds` passes are done."""
    chosen = np.array(chosen, dtype=np.int64)
    for _ in range(rounds):
        improved = False
        for j in range(len(chosen)):
            best, key, current = best_candidate(pool, objective, chosen, j)
            if key > current + 1e-9:
                chosen[j] = best
                improved = True
        if not improved:
            break
    return chosen


def improve_pairs(pool: CandidatePool, objective: SetObjective, chosen: np.ndarray,
                  shortlist: int = 8) -> np.ndarray:
    """Change two slots at once: for each pair (j, k), each of slot j's `shortlist` best
    candidates with slot k's best given it. Finds the sets whose two actions only work
    together (each alone meets no goal), which one slot at a time never reaches."""
    chosen = np.array(chosen, dtype=np.int64)
    best_key = objective.key(pool, chosen)
    N = len(chosen)
    for j in range(N):
        for k in range(N):
            if j == k:
                continue
            key = slot_keys(pool, objective, chosen, j)
            for first in np.argsort(-key)[:shortlist]:
                trial = chosen.copy()
                trial[j] = NO_CHANGE if first == len(pool) else int(first)
                second, second_key, _ = best_candidate(pool, objective, trial, k)
                if second_key > best_key + 1e-9:
                    trial[k] = second
                    chosen, best_key = trial, second_key
    return chosen


def best_set(pool: CandidatePool, objective: SetObjective, n_actions: int,
             start: np.ndarray | None = None) -> np.ndarray:
    """The best set found in the pool: built greedily (each slot the best given the ones
    before), improved slot by slot, and also improved from `start` (the previous best, as
    indices into this pool); the better of the two; then, while it misses the goal, improved
    two slots at a time (and slot by slot again)."""
    chosen = np.full(n_actions, NO_CHANGE, dtype=np.int64)
    for j in range(n_actions):
        chosen[j] = best_candidate(pool, objective, chosen, j)[0]
    found = [improve(pool, objective, chosen)]
    if start is not None:
        found.append(improve(pool, objective, start))
    best = max(found, key=lambda c: objective.key(pool, c))
    if n_actions > 1 and not objective.score(pool, best)[3]:
        best = improve(pool, objective, improve_pairs(pool, objective, best))
    return best
