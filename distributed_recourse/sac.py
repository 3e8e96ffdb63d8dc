"""RLlib SAC as a scope's searcher: the algorithm runs in the scope trainer's own process (no env
runner or learner actors of its own), on `ProposalEnv` (the default) or the reference
`RecourseEnv`, and proposes actions into the scope's `ScopeSearch`.

The override surface into RLlib is small: a catalog that gives the Q networks the reference's
own sizes, a training step that replays transitions from arrays (`TransitionReplay`) instead
of RLlib's episode buffer, and `attach`, which hands the environment its search.
"""

from __future__ import annotations

import functools
import pickle
import threading
from typing import Any

import numpy as np

from distributed_recourse.config import RunConfig
from distributed_recourse.env import ProposalEnv, RecourseEnv
from distributed_recourse.recourse.baselines import CoordinateSearch
from distributed_recourse.recourse.search import ScopeSearch
from distributed_recourse.replay import TransitionReplay


def recourse_catalog():
    """SAC catalog with the reference's separate sizes: the policy uses `fcnet_hiddens`, each
    Q network maps concat(obs, action) through `q_hiddens` (RLlib's default shares one size)."""
    import torch
    from ray.rllib.algorithms.sac.sac_catalog import SACCatalog
    from ray.rllib.core.columns import Columns
    from ray.rllib.core.models.base import ENCODER_OUT
    from ray.rllib.core.models.configs import MLPHeadConfig

    class ConcatEncoder(torch.nn.Module):
        def forward(self, batch, **kwargs):
            obs, actions = batch[Columns.OBS].float(), batch[Columns.ACTIONS].float()
            return {ENCODER_OUT: torch.cat([obs, actions], dim=-1)}

    class RecourseSACCatalog(SACCatalog):
        def build_qf_encoder(self, framework):
            return ConcatEncoder()

        def build_qf_head(self, framework):
            inputs = int(np.prod(self.observation_space.shape) + np.prod(self.action_space.shape))
            return MLPHeadConfig(
                input_dims=[inputs],
                hidden_layer_dims=list(self._model_config_dict["q_hiddens"]),
                hidden_layer_activation="relu",
                output_layer_dim=1,
            ).build(framework=framework)

    return RecourseSACCatalog


def transitions(episodes) -> tuple[np.ndarray, ...]:
    """The (obs, action, reward, next obs, terminated) rows of sampled episode chunks."""
    obs, actions, rewards, new_obs, terminateds = [], [], [], [], []
    for episode in episodes:
        seen = np.asarray(episode.get_observations())
        obs.append(seen[:-1])
        new_obs.append(seen[1:])
        actions.append(np.asarray(episode.get_actions()))
        rewards.append(np.asarray(episode.get_rewards(), np.float32))
        done = np.zeros(len(episode), bool)
        done[-1:] = episode.is_terminated
        terminateds.append(done)
    return tuple(np.concatenate(rows) for rows in (obs, actions, rewards, new_obs, terminateds))


@functools.cache
def recourse_sac():
    """RLlib's SAC, its replay drawn from `TransitionReplay`: RLlib's episode buffer spends 60 %
    of an update slicing one episode object per transition drawn."""
    from ray.rllib.algorithms.dqn.dqn import calculate_rr_weights
    from ray.rllib.algorithms.sac import SAC
    from ray.rllib.core import DEFAULT_MODULE_ID
    from ray.rllib.execution.rollout_ops import synchronous_parallel_sample
    from ray.rllib.policy.sample_batch import MultiAgentBatch, SampleBatch
    from ray.rllib.utils.metrics import (
        ENV_RUNNER_RESULTS,
        LEARNER_RESULTS,
        NUM_ENV_STEPS_SAMPLED_LIFETIME,
        TD_ERROR_KEY,
    )

    class RecourseSAC(SAC):
        def setup(self, config) -> None:
            super().setup(config)
            self.replay = TransitionReplay(self.config.replay_buffer_config["capacity"],
                                           self.config.seed)

        def training_step(self) -> None:
            # DQN's new-stack step with the replay as arrays (no priorities: uniform draws)
            store, updates = calculate_rr_weights(self.config)
            for _ in range(store):
                episodes, runner_results = synchronous_parallel_sample(
                    worker_set=self.env_runner_group, concat=True,
                    sample_timeout_s=self.config.sample_timeout_s,
                    _uses_new_env_runners=True, _return_metrics=True)
                self.metrics.aggregate(runner_results, key=ENV_RUNNER_RESULTS)
                self.replay.add(*transitions(episodes))
            if self.replay.added < self.config.num_steps_sampled_before_learning_starts:
                return
            sampled = self.metrics.peek((ENV_RUNNER_RESULTS, NUM_ENV_STEPS_SAMPLED_LIFETIME))
            size = self.config.total_train_batch_size
            for update in range(updates):
                batch = SampleBatch(self.replay.sample(size))
                results = self.learner_group.update(  # metrics reduced once, after the last
                    batch=MultiAgentBatch({DEFAULT_MODULE_ID: batch}, env_steps=size),
                    timesteps={NUM_ENV_STEPS_SAMPLED_LIFETIME: sampled},
                    _no_metrics_reduce=update < updates - 1)
            for result in results:  # per-transition TD errors feed priorities only
                for module_results in result.values():
                    module_results.pop(TD_ERROR_KEY, None)
            self.metrics.aggregate(results, key=LEARNER_RESULTS)
            self.env_runner_group.sync_weights(from_worker_or_learner_group=self.learner_group,
                                               policies={DEFAULT_MODULE_ID},
                                               inference_only=True)

    return RecourseSAC


def env_config(config: RunConfig, search: ScopeSearch, seed: int) -> dict[str, Any]:
    """The config of one scope's environment (its search is attached after it is built)."""
    return {"weights": config.reward.to_dict(), "n_features": search.space.n_features,
            "n_groups": len(search.problem.group_names), "seed": seed,
            "jump_share": config.search.jump_share,
            "keep_share": config.search.keep_share, "resolution": config.search.resolution}


def sac_config(config: RunConfig, search: ScopeSearch, seed: int):
    """The SACConfig of one scope's trainer (one process: no env runner or learner actors)."""
    from ray.rllib.algorithms.sac import SACConfig
    from ray.rllib.algorithms.sac.torch.default_sac_torch_rl_module import (
        DefaultSACTorchRLModule,
    )
    from ray.rllib.core.rl_module.rl_module import RLModuleSpec

    sac, proposal = config.sac, config.search.mdp == "proposal"
    runners = {"num_env_runners": 0, "rollout_fragment_length": sac.rollout_fragment_length}
    if proposal:
        runners.update(num_envs_per_env_runner=sac.num_envs,
                       gym_env_vectorize_mode="vector_entry_point")
    training = {"training_intensity": sac.training_intensity} if sac.training_intensity else {}
    return (
        SACConfig(algo_class=recourse_sac())
        .environment(env=ProposalEnv if proposal else RecourseEnv,
                     env_config=env_config(config, search, seed))
        .framework("torch")
        .env_runners(**runners)
        .training(
            replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": sac.buffer_size,
                                  "no_local_replay_buffer": True},  # `TransitionReplay`
            num_steps_sampled_before_learning_starts=sac.learning_starts,
            train_batch_size_per_learner=sac.batch_size,
            actor_lr=sac.actor_lr, critic_lr=sac.critic_lr, alpha_lr=sac.alpha_lr,
            tau=sac.tau, gamma=sac.gamma, **training,
        )
        .rl_module(
            model_config={"fcnet_hiddens": list(sac.actor_hidden), "fcnet_activation": "relu",
                          "head_fcnet_hiddens": [], "q_hiddens": list(sac.critic_hidden)},
            rl_module_spec=RLModuleSpec(module_class=DefaultSACTorchRLModule,
                                        catalog_class=recourse_catalog()),
        )
        .reporting(min_time_s_per_iteration=0,
                   min_sample_timesteps_per_iteration=0)  # `run` decides how many
        .learners(num_learners=0)
        .debugging(seed=seed)
    )


class SacSearch:
    """SAC proposing actions for one scope's search; `run(steps)` trains about `steps` env
    steps (whole RLlib training steps). With `search.warm_start` the coordinate search runs
    first, until a set meets the goal or its call budget is spent; `handover` keeps the set it
    handed over."""

    def __init__(self, search: ScopeSearch, config: RunConfig, seed: int) -> None:
        self.search = search
        s = config.search
        self.warm = CoordinateSearch(search, seed, s.keep_share, s.resolution) \
            if s.warm_start else None
        self.warm_calls = s.warm_calls or 25 * search.space.n_actions * search.space.n_features
        self.handover: dict[str, Any] | None = None
        """The warm start's result when SAC took over: its set and model calls."""
        self._config, self._seed = config, seed
        self.algorithm = None
        # RLlib and torch take seconds to start: built while the warm start searches
        self._building = threading.Thread(target=self._build, daemon=True)
        self._building.start()
        if self.warm is None:
            self._building.join()

    def _build(self) -> None:
        algorithm = sac_config(self._config, self.search, self._seed).build_algo()
        env = algorithm.env_runner.env.unwrapped
        envs = [env] if isinstance(env, ProposalEnv) else [e.unwrapped for e in env.envs]
        for e in envs:
            e.attach(self.search)
        self.algorithm = algorithm

    def run(self, steps: int) -> None:
        target = self.search.steps + steps
        while self.warm is not None and self.search.steps < target:
            self.warm.run(min(16, target - self.search.steps))
            if self.search.archived or self.search.model_calls >= self.warm_calls:
                self.search.refresh(prune=False)
                self.handover = {"set": self.search.best_actions.tolist(),
                                 "model_calls": self.search.model_calls,
                                 "steps": self.search.steps}
                self.warm = None
        if self.search.steps < target:
            self._building.join()
        while self.search.steps < target:
            self.algorithm.train()

    def state(self) -> dict[str, Any]:
        self._building.join()
        return {"algorithm": pickle.dumps(self.algorithm.get_state()),
                "buffer": pickle.dumps(self.algorithm.replay.get_state()),
                "warm": self.warm.state() if self.warm is not None else None,
                "handover": self.handover}

    def restore(self, state: dict[str, Any]) -> None:
        self._building.join()
        self.algorithm.set_state(pickle.loads(state["algorithm"]))
        self.algorithm.replay.set_state(pickle.loads(state["buffer"]))
        self.handover = state["handover"]
        if state["warm"] is None:
            self.warm = None
        else:
            self.warm.restore(state["warm"])

    def stop(self) -> None:
        self._building.join()
        self.algorithm.stop()
