"""The recourse MDP of DESIGN.md section 4 as a gymnasium environment.

State: the N x m action set (observed scaled to [-1, 1]). Action: (a0, a1); round(a0) picks one
entry, a1 moves it. Only the changed action is re-evaluated, and outcomes are cached by the
action's values, so a step costs at most one model call over the scope's people.

Group terms for hybrid fairness come from a `stats` object (see stats.py): the environment
sends its tally and newly archived sets every `sync_steps` steps and reads the other scopes'
tallies back, never once per step.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

import gymnasium as gym
import numpy as np

from distributed_recourse.data.schema import FeatureSpec
from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.archive import archive_entry
from distributed_recourse.recourse.evaluator import ScopeEvaluator
from distributed_recourse.recourse.rewards import RewardWeights, reward


@dataclass
class ScopeProblem:
    """Everything an environment needs, picklable so it can travel through Ray's object store."""

    scope: str
    X: np.ndarray
    groups: np.ndarray
    group_names: list[str]
    features: tuple[FeatureSpec, ...]
    model: Any
    """Anything with `favourable(X) -> bool array` (a BlackBox)."""


class RecourseEnv(gym.Env):
    """Search for one scope's action set. `config` keys: `problem` (a ScopeProblem), or
    `scope` with `problems` (scope -> [Ray ObjectRef of its ScopeProblem], as Tune passes
    them); `weights` (RewardWeights or dict), `hybrid` (bool), `stats` (an object with `sync`,
    or None), `sync_steps`, `cache_size`, `model_threads`, `shards` (split the people over
    this many Ray actors), `shard_resources`, `seed`."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, config: dict[str, Any]) -> None:
        problem = config.get("problem") or config["problems"][config["scope"]]
        if not isinstance(problem, ScopeProblem):
            import ray  # an ObjectRef: the only way Ray enters this module

            problem = ray.get(problem[0])
        weights = config.get("weights") or RewardWeights()
        self.weights = weights if isinstance(weights, RewardWeights) else RewardWeights(**weights)
        self.problem = problem
        self.scope = problem.scope
        self.n_groups = len(problem.group_names)
        self.created = time.time()
        self.space = ActionSpace(problem.features, self.weights.n_actions)
        self.evaluator = make_evaluator(problem, self.space, config)
        self.people = self.evaluator.people
        self.hybrid = bool(config.get("hybrid", False))
        self.stats = config.get("stats")
        if self.hybrid and self.stats is None:
            raise ValueError("hybrid fairness needs a `stats` object for the population's terms")
        self.sync_steps = int(config.get("sync_steps", 50))

        N, m = self.space.n_actions, self.space.n_features
        self.n_entries = N * m
        self.value_low, self.value_high = (
            np.tile(bound, N) for bound in self.space.value_bounds()
        )
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (self.n_entries,), np.float32)
        step = self.weights.step_size
        self.action_space = gym.spaces.Box(
            np.array([0.0, -step], np.float32),
            np.array([self.n_entries - 1, step], np.float32),
        )
        self.total_steps = 0
        self.archive: list[dict[str, Any]] = []
        self._archived_keys: set[bytes] = set()
        self._unsent: list[dict[str, Any]] = []
        self._others: M.GroupTally | None = None
        self.best_seen: dict[str, Any] | None = None
        """The highest-reward set so far: the fallback result of a search that met no goal."""
        self.action_space.seed(config.get("seed"))
        self._reset_state()

    # ----------------------------------------------------------------- evaluation
    @property
    def model_calls(self) -> int:
        return self.evaluator.model_calls

    def _evaluate_action(self, j: int) -> None:
        counts = self.evaluator.set_action(j, self.state[j])
        self.per_action[j] = counts.flipped
        self.flipped_any = counts.flipped_any
        self.gower[j] = counts.gower_sum / self.people.sum()

    def current_metrics(self) -> tuple[M.SetMetrics, M.GroupTally]:
        """Metrics of the current set; hybrid swaps in the population's group terms."""
        w = self.weights
        distinct = self.space.distinct(self.state)
        tally = M.tally_from_counts(self.per_action, self.flipped_any, self.people, distinct,
                                    w.phi)
        share = M.share_per_action(self.per_action, self.people)
        active = M.active_actions(w.active_rule, self.per_action, share, distinct, w.phi,
                                  w.macro_active)
        metrics = M.set_metrics(tally, w.effectiveness, active, self.gower)
        if self.hybrid and self._others is not None:
            pooled = M.set_metrics(tally + self._others, w.effectiveness, active, self.gower)
            metrics = metrics.with_group_terms(pooled)
        return metrics, tally

    # ----------------------------------------------------------------- gymnasium API
    def _reset_state(self) -> None:
        N = self.space.n_actions
        self.state = self.space.initial_set()
        self.gower = np.zeros(N)
        self.per_action = np.zeros((N, self.n_groups), dtype=np.int64)
        for j in range(N):
            self._evaluate_action(j)
        self.episode_steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._reset_state()
        if self.hybrid and self._others is None:
            self._sync(self.current_metrics()[1])
        return self.observation(), {}

    def observation(self) -> np.ndarray:
        flat = self.state.reshape(-1)
        scaled = 2.0 * (flat - self.value_low) / (self.value_high - self.value_low) - 1.0
        return scaled.astype(np.float32)

    def move(self, action: np.ndarray) -> tuple[int, int]:
        """Apply the agent's (a0, a1) to the state; return the (action, feature) it changed."""
        index = int(np.clip(np.round(action[0]), 0, self.n_entries - 1))
        j, f = divmod(index, self.space.n_features)
        step = float(np.clip(action[1], -self.weights.step_size, self.weights.step_size))
        low, high = self.value_low[index], self.value_high[index]
        value = self.state[j, f]
        if self.space.is_con[f]:
            res = self.weights.con_resolution
            scaled = -res + 2.0 * res * (value - low) / (high - low)
            scaled = np.clip(scaled + step, -res, res)
            moved = low + (scaled + res) / (2.0 * res) * (high - low)
            if self.space.integer[f] and step != 0.0:
                # at least one unit, or a small-range integer feature could never move
                moved = value + np.sign(step) * max(1.0, abs(np.round(moved - value)))
            value = moved
        else:
            value = value + np.sign(step)
        self.state[j, f] = np.clip(value, low, high)
        return j, f

    def step(self, action: np.ndarray):
        before = self.state.copy()
        j, _ = self.move(np.asarray(action, dtype=np.float64))
        if not np.array_equal(before[j], self.state[j]):
            self._evaluate_action(j)
        self.episode_steps += 1
        self.total_steps += 1
        metrics, tally = self.current_metrics()
        r, done = reward(metrics, self.weights)
        if done:
            self._archive(metrics, tally, r)
        if self.best_seen is None or r > self.best_seen["reward"]:
            self.best_seen = self._entry(metrics, tally, r)
        if self.stats is not None and self.total_steps % self.sync_steps == 0:
            self._sync(tally)
        w = self.weights
        truncated = not done and (
            self.episode_steps >= w.episode_step_limit
            or (self.episode_steps >= w.max_episode_steps
                and len(self.archive) >= w.truncate_after_archived)
        )
        info = {"sr": metrics.sr, "pd": metrics.pd, "ecr_gap": metrics.ecr_gap,
                "archived": len(self.archive)}
        return self.observation(), float(r), bool(done), bool(truncated), info

    # ----------------------------------------------------------------- archive and sync
    def _archive(self, metrics: M.SetMetrics, tally: M.GroupTally, r: float) -> None:
        key = self.state.tobytes()
        if key in self._archived_keys:
            return
        self._archived_keys.add(key)
        entry = self._entry(metrics, tally, r)
        self.archive.append(entry)
        self._unsent.append(entry)

    def _entry(self, metrics: M.SetMetrics, tally: M.GroupTally, r: float) -> dict[str, Any]:
        entry = archive_entry(self.scope, self.space, self.state, metrics, tally,
                              self.problem.group_names, self.total_steps, r)
        entry["elapsed_s"] = entry["time"] - self.created
        return entry

    def _sync(self, tally: M.GroupTally) -> None:
        others = self.stats.sync(self.scope, tally.to_dict(), self._unsent, self.total_steps,
                                 self.best_seen)
        self._unsent = []
        self._others = M.GroupTally.from_dict(others) if others else None

    def flush(self) -> None:
        """Send what is not yet sent (called when training stops)."""
        if self.stats is not None:
            self._sync(self.current_metrics()[1])


def make_evaluator(problem: ScopeProblem, space: ActionSpace, config: dict[str, Any]):
    """In-process for one shard; over Ray actors for more (a 400,000-person scope)."""
    cache_size = int(config.get("cache_size", 2048))
    shards = int(config.get("shards", 1))
    if shards > 1:
        from distributed_recourse.shards import ShardedEvaluator

        return ShardedEvaluator(problem, space, shards, cache_size,
                                config.get("shard_resources") or {"CPU": 1})
    if config.get("model_threads", 1) > 1:
        problem.model.use_threads(int(config["model_threads"]))
    return ScopeEvaluator(problem.X, problem.groups, len(problem.group_names), space,
                          problem.model.favourable, cache_size)
