"""The recourse MDPs as gymnasium environments, on top of one scope's `ScopeSearch`.

- `RecourseEnv` (`mdp: reference`), DESIGN.md section 4 to the letter: the state is the N x m
  action set (observed scaled to [-1, 1]); an action (a0, a1) picks one entry by round(a0) and
  moves it by a1. Each step re-evaluates the one changed action (one model call, or none for
  an action seen before), and the reward is the paper's.
- `ProposalEnv` (`mdp: proposal`, the default): one step proposes a whole action. An episode
  fills the N slots of a set in turn; the observation is what the set covers so far (per group)
  and its actions; the reward is the change in the set's reward level, so an episode's return
  is the reward of the set it built. It is a gymnasium VectorEnv: the proposals of all its
  sub-environments go to the model in one call.

Both evaluate through the scope's `ScopeSearch`: every action they try lands in its candidate
pool, every successful set in its archive, and the hybrid group terms are its `others`, which
the engine sets once per round (never once per step).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from distributed_recourse.recourse.evaluator import ScopeEvaluator
from distributed_recourse.recourse.pool import NO_CHANGE
from distributed_recourse.recourse.rewards import Goal, RewardWeights
from distributed_recourse.recourse.search import ScopeProblem, ScopeSearch


def weights_of(config: dict[str, Any]) -> RewardWeights:
    weights = config.get("weights") or RewardWeights()
    return weights if isinstance(weights, RewardWeights) else RewardWeights(**weights)


def standalone_search(config: dict[str, Any]) -> ScopeSearch | None:
    """A search of its own for an environment built from a `problem` (tests, benchmarks);
    None when the trainer attaches the scope's shared search instead."""
    problem: ScopeProblem | None = config.get("problem")
    if problem is None:
        return None
    weights = weights_of(config)
    from distributed_recourse.recourse.actions import ActionSpace

    space = ActionSpace(problem.features, weights.n_actions)
    evaluator = ScopeEvaluator.local(problem.X, space, problem.model.favourable,
                                     int(config.get("cache_size", 4096)))
    goal = config.get("goal") or Goal.reference(weights)
    return ScopeSearch(problem, evaluator, weights, goal, bool(config.get("hybrid", False)))


class RecourseEnv(gym.Env):
    """The reference MDP for one scope. `config`: `n_actions`/`n_features` (the spaces), or a
    `problem` to search on its own; `weights` (RewardWeights or dict); `seed`."""

    metadata: dict[str, Any] = {"render_modes": []}

    def __init__(self, config: dict[str, Any]) -> None:
        self.weights = weights_of(config)
        self.search: ScopeSearch | None = None
        problem = config.get("problem")
        m = len(problem.features) if problem is not None else int(config["n_features"])
        self.n_entries = self.weights.n_actions * m
        self.observation_space = gym.spaces.Box(-1.0, 1.0, (self.n_entries,), np.float32)
        step = self.weights.step_size
        self.action_space = gym.spaces.Box(np.array([0.0, -step], np.float32),
                                           np.array([self.n_entries - 1, step], np.float32))
        self.action_space.seed(config.get("seed"))
        search = standalone_search(config)
        if search is not None:
            self.attach(search)

    def attach(self, search: ScopeSearch) -> None:
        """Search this scope: evaluate through it, archive in it."""
        self.search = search
        self.space = search.space
        N = self.space.n_actions
        self.value_low, self.value_high = (np.tile(b, N) for b in self.space.value_bounds())
        self._reset_state()

    # ----------------------------------------------------------------- gymnasium API
    def _reset_state(self) -> None:
        self.state = self.space.initial_set()
        self.chosen = np.full(self.space.n_actions, NO_CHANGE, dtype=np.int64)
        self.episode_steps = 0

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        super().reset(seed=seed)
        self._reset_state()
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
        search, w = self.search, self.weights
        j, _ = self.move(np.asarray(action, dtype=np.float64))
        self.chosen[j] = search.evaluate(self.state[j])[0]
        self.episode_steps += 1
        search.steps += 1
        metrics, tally, value, done = search.score(self.chosen)
        if done:
            search.offer(self.chosen)
        r = value + (w.bonus if done else 0.0)
        truncated = not done and (
            self.episode_steps >= w.episode_step_limit
            or (self.episode_steps >= w.max_episode_steps
                and search.archived >= w.truncate_after_archived)
        )
        info = {"sr": metrics.sr, "pd": metrics.pd, "ecr_gap": metrics.ecr_gap,
                "archived": search.archived}
        return self.observation(), float(r), bool(done), bool(truncated), info


class ProposalEnv(gym.vector.VectorEnv):
    """`num_envs` episodes at once, each building a set of N actions, one proposal per step.

    An action is a point of [-1, 1]^(2m) (`ActionSpace.from_unit`: per feature a gate and a
    value), so the uniform random policy is the random baseline. The observation is the slot
    being filled (one-hot), per group the share the set flips in the scope and in the whole
    population (hybrid; the scope's otherwise) and the share of the set that is an effective
    choice, and the set's actions so far. The reward of a step is the change in the set's reward
    level (divided by the weights' `scale`), plus `goal_bonus` when the finished set meets the
    goal. Sub-environments reset on the step after their episode ends (gymnasium's NEXT_STEP
    autoreset, which RLlib expects)."""

    metadata: dict[str, Any] = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, config: dict[str, Any]) -> None:
        self.weights = weights_of(config)
        self.num_envs = int(config.get("num_envs", 1))
        problem = config.get("problem")
        m = len(problem.features) if problem is not None else int(config["n_features"])
        k = len(problem.group_names) if problem is not None else int(config["n_groups"])
        N = self.weights.n_actions
        self.keep_share = float(config.get("keep_share", 0.6))
        self.resolution = int(config.get("resolution", 100))
        self.goal_bonus = float(config.get("goal_bonus", 1.0))
        self.single_observation_space = gym.spaces.Box(-1.0, 1.0, (N + 3 * k + N * m,),
                                                       np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (2 * m,), np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space,
                                                              self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.action_space.seed(config.get("seed"))
        self.search: ScopeSearch | None = None
        search = standalone_search(config)
        if search is not None:
            self.attach(search)

    def attach(self, search: ScopeSearch) -> None:
        self.search = search
        self.space = search.space
        self._reset_all()

    def _reset_all(self) -> None:
        N = self.weights.n_actions
        self.chosen = np.full((self.num_envs, N), NO_CHANGE, dtype=np.int64)
        self.slot = np.zeros(self.num_envs, dtype=np.int64)
        self.level = np.zeros(self.num_envs)
        self.ended = np.zeros(self.num_envs, dtype=bool)
        empty = self._level(self.chosen[0])[0]
        self.level[:] = empty

    def _level(self, chosen: np.ndarray) -> tuple[float, bool, np.ndarray]:
        """The set's reward level in units of `scale`, whether it meets the goal, and what
        an agent observes of it (without the slot)."""
        metrics, tally, value, met = self.search.score(chosen)
        value = self.search.key(chosen) - (self.weights.bonus if met else 0.0)
        own = tally.effectiveness(self.weights.effectiveness)
        seen = [np.nan_to_num(own, nan=-1.0), np.nan_to_num(metrics.effectiveness, nan=-1.0),
                np.asarray(metrics.choice, dtype=np.float64),
                self.space.to_unit(self.search.actions_of(chosen)).reshape(-1)]
        return value / self.weights.scale, met, np.concatenate(seen)

    def _observe(self, i: int, seen: np.ndarray) -> np.ndarray:
        slot = np.zeros(self.weights.n_actions)
        slot[min(self.slot[i], self.weights.n_actions - 1)] = 1.0
        return np.clip(np.concatenate([slot, seen]), -1.0, 1.0).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        self._reset_all()
        seen = self._level(self.chosen[0])[2]
        obs = np.stack([self._observe(i, seen) for i in range(self.num_envs)])
        return obs, {}

    def step(self, actions: np.ndarray):
        search, N = self.search, self.weights.n_actions
        restart = self.ended.copy()
        active = np.flatnonzero(~restart)
        proposed = self.space.from_unit(np.asarray(actions, dtype=np.float64)[active],
                                        self.keep_share, self.resolution)
        index = search.evaluate(proposed)
        search.steps += len(active)
        obs = np.zeros((self.num_envs, self.single_observation_space.shape[0]), np.float32)
        rewards = np.zeros(self.num_envs)
        terminated = np.zeros(self.num_envs, dtype=bool)
        for i, proposal in zip(active, index, strict=True):
            self.chosen[i, self.slot[i]] = proposal
            level, met, seen = self._level(self.chosen[i])
            self.slot[i] += 1
            terminated[i] = self.slot[i] == N
            rewards[i] = level - self.level[i] + (self.goal_bonus if met and terminated[i] else 0.0)
            self.level[i] = level
            if terminated[i]:
                search.offer(self.chosen[i])
            obs[i] = self._observe(i, seen)
        if len(restart.nonzero()[0]):
            empty = np.full(N, NO_CHANGE, dtype=np.int64)
            level, _, seen = self._level(empty)
            for i in np.flatnonzero(restart):
                self.chosen[i], self.slot[i], self.level[i] = empty, 0, level
                obs[i] = self._observe(i, seen)
        self.ended = terminated
        return obs, rewards, terminated, np.zeros(self.num_envs, dtype=bool), {}
