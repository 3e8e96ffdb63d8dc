"""The recourse MDPs as gymnasium environments, on top of one scope's `ScopeSearch`.

- `RecourseEnv` (`mdp: reference`), DESIGN.md section 4 to the letter: the state is the N x m
  action set (observed scaled to [-1, 1]); an action (a0, a1) picks one entry by round(a0) and
  moves it by a1. Each step re-evaluates the one changed action (one model call, or none for
  an action seen before), and the reward is the paper's.
- `ProposalEnv` (`mdp: proposal`, the default): one step proposes a whole action for one slot
  of a working set that starts each episode at the best set found so far, as a coordinate
  move of the slot's action (kept when it makes the set better) or a jump to a fresh action
  (a restart); the reward is the change of the set's key. It is a gymnasium VectorEnv: the
  proposals of all its sub-environments go to the model in one call.

Both evaluate through the scope's `ScopeSearch`: every action they try lands in its candidate
pool, every successful set in its archive, and the hybrid group terms are its `others`, which
the engine sets once per round (never once per step).
"""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from distributed_recourse.recourse.baselines import FIRST_STEP
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


def attach_standalone(env: RecourseEnv | ProposalEnv, config: dict[str, Any]) -> None:
    """Seed the env's action sampling; give it a search of its own when built from a problem."""
    env.action_space.seed(config.get("seed"))
    search = standalone_search(config)
    if search is not None:
        env.attach(search)


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
        attach_standalone(self, config)

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
        self.move(np.asarray(action, dtype=np.float64))
        chosen = search.evaluate(self.state)  # only the moved action can be new to the model
        self.episode_steps += 1
        search.steps += 1
        metrics, tally, value, done = search.score(chosen)
        if done:
            search.offer(chosen)
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
    """`num_envs` episodes at once, each improving a working set of N actions that starts at
    the scope's best set so far; a step proposes a whole action for one slot (the slots in
    turn), as a move of the slot's current action or a fresh one.

    An action is a point u of [-1, 1]^(2m + 1); its last coordinate decides:
    - A *move* (the default): a coordinate move of a pattern search (`ActionSpace.stepped`).
      The feature f with the largest of the first m coordinates moves by the sign of
      u[m + f], over 2^-|u[m + f]| (between 1/2 and 1) of the step the episode keeps for
      that slot and feature, as a share of the entry's range. A step starts at `first_step`,
      halves after a move of its entry that did not help, and starts over once it falls
      below the grid (1 / `resolution`). A move is kept only when it makes the set better
      (the search's key).
    - A *jump* (above 1 - 2 `jump_share`): a fresh action anywhere (`from_unit` of the first
      2m coordinates, what the random baseline draws). It always takes the slot, and the
      episode's steps for the slot start over, so that the moves that follow climb from it:
      a pattern search restarted elsewhere, which is how a set leaves a local optimum.
    A policy that has learned nothing is thus a randomised coordinate search with restarts;
    the agent learns which entry to move, which way, and when a restart pays. The reward is
    the change of the key (divided by the weights' `scale`): the improvement of a move, what
    a jump gains or loses. The observation is the slot (one-hot), per group the share the
    working set flips in the scope and in the whole population (hybrid; the scope's
    otherwise) and the share of the set that is an effective choice, the set's actions, the
    episode's steps for the slot (log scale) and how far the episode is. An episode is
    `episode_length` proposals; sub-environments reset on the step after their episode ends
    (gymnasium's NEXT_STEP autoreset, which RLlib expects)."""

    metadata: dict[str, Any] = {"autoreset_mode": gym.vector.AutoresetMode.NEXT_STEP}

    def __init__(self, config: dict[str, Any]) -> None:
        self.weights = weights_of(config)
        self.num_envs = int(config.get("num_envs", 1))
        problem = config.get("problem")
        m = len(problem.features) if problem is not None else int(config["n_features"])
        k = len(problem.group_names) if problem is not None else int(config["n_groups"])
        N = self.weights.n_actions
        self.first_step = float(config.get("first_step", FIRST_STEP))
        self.jump_share = float(config.get("jump_share", 0.25))
        self.keep_share = float(config.get("keep_share", 0.6))
        self.resolution = int(config.get("resolution", 100))
        self.episode_length = int(config.get("episode_length", 6 * N))
        self.single_observation_space = gym.spaces.Box(
            -1.0, 1.0, (N + 3 * k + N * m + m + 1,), np.float32)
        self.single_action_space = gym.spaces.Box(-1.0, 1.0, (2 * m + 1,), np.float32)
        self.observation_space = gym.vector.utils.batch_space(self.single_observation_space,
                                                              self.num_envs)
        self.action_space = gym.vector.utils.batch_space(self.single_action_space, self.num_envs)
        self.search: ScopeSearch | None = None
        attach_standalone(self, config)

    def attach(self, search: ScopeSearch) -> None:
        self.search = search
        self.space = search.space
        self.working = np.repeat(self.space.initial_set()[None], self.num_envs, axis=0)
        """Each episode's working set, as actions (pool indices change when it is pruned)."""
        self.step_size = np.full((self.num_envs, self.space.n_actions, self.space.n_features),
                                 self.first_step)
        """Per episode, slot and feature, a move's size as a share of the entry's range."""
        self.t = np.zeros(self.num_envs, dtype=np.int64)
        self.ended = np.zeros(self.num_envs, dtype=bool)

    def _restart(self, i: int) -> None:
        self.working[i] = self.search.best_actions
        self.t[i] = 0

    def _observe(self, i: int) -> np.ndarray:
        N, w = self.weights.n_actions, self.weights
        metrics, tally, _, _ = self.search.score(self.search.evaluate(self.working[i]))
        j = self.t[i] % N
        slot = np.zeros(N)
        slot[j] = 1.0
        own = tally.effectiveness(w.effectiveness)
        halvings = np.log2(self.first_step / self.step_size[i, j])
        seen = [slot, np.nan_to_num(own, nan=-1.0), np.nan_to_num(metrics.effectiveness, nan=-1.0),
                np.asarray(metrics.choice, dtype=np.float64),
                self.space.to_unit(self.working[i]).reshape(-1),
                1.0 - 2.0 * halvings / np.log2(self.first_step * self.resolution),
                [2.0 * self.t[i] / self.episode_length - 1.0]]
        return np.clip(np.concatenate(seen), -1.0, 1.0).astype(np.float32)

    def reset(self, *, seed: int | None = None, options: dict | None = None):
        for i in range(self.num_envs):
            self._restart(i)
        self.ended[:] = False
        return np.stack([self._observe(i) for i in range(self.num_envs)]), {}

    def propose(self, u: np.ndarray, episodes: np.ndarray, slots: np.ndarray):
        """The actions that points u propose for `slots` of the `episodes`' working sets, and
        the feature each moves (-1 for a jump)."""
        m = self.space.n_features
        jump = u[:, -1] > 1.0 - 2.0 * self.jump_share
        feature = np.argmax(u[:, :m], axis=1)
        v = u[np.arange(len(u)), m + feature]
        steps = self.step_size[episodes, slots, feature]
        size = np.where(v < 0, -1.0, 1.0) * steps * 2.0 ** -np.abs(v)
        bases = self.working[episodes, slots]
        proposed = np.where(jump[:, None],
                            self.space.from_unit(u[:, :-1], self.keep_share, self.resolution),
                            self.space.stepped(bases, feature, size))
        return proposed, np.where(jump, -1, feature)

    def step(self, actions: np.ndarray):
        search, N = self.search, self.weights.n_actions
        restart = self.ended.copy()
        active = np.flatnonzero(~restart)
        slots = self.t[active] % N
        u = np.clip(np.asarray(actions, dtype=np.float64)[active], -1.0, 1.0)
        proposed, features = self.propose(u, active, slots)
        search.evaluate(proposed)  # the batch's new actions in one model call
        search.steps += len(active)
        rewards = np.zeros(self.num_envs)
        for n, (i, j, proposal) in enumerate(zip(active, slots, proposed, strict=True)):
            trial = self.working[i].copy()
            trial[j] = proposal
            before, after = search.evaluate(self.working[i]), search.evaluate(trial)
            repeated = after[j] != NO_CHANGE and after[j] in np.delete(after, j)
            gain = search.key(after) - search.key(before)
            f = features[n]
            if not repeated and (gain > 1e-9 or f < 0):
                rewards[i] = gain / self.weights.scale
                self.working[i] = trial
                search.offer(after)
                if f < 0:
                    self.step_size[i, j] = self.first_step
            elif f >= 0:  # a move that did not help: this entry's next moves are shorter
                self.step_size[i, j, f] /= 2.0
                if self.step_size[i, j, f] < 1.0 / self.resolution:
                    self.step_size[i, j, f] = self.first_step
            self.t[i] += 1
        for i in np.flatnonzero(restart):
            self._restart(i)
        terminated = np.zeros(self.num_envs, dtype=bool)
        terminated[active] = self.t[active] >= self.episode_length
        self.ended = terminated
        obs = np.stack([self._observe(i) for i in range(self.num_envs)])
        return obs, rewards, terminated, np.zeros(self.num_envs, dtype=bool), {}
