"""RLlib SAC as a scope's searcher: the algorithm runs in the scope trainer's own process (no env
runner or learner actors of its own), on `ProposalEnv` (the default) or the reference
`RecourseEnv`, and proposes actions into the scope's `ScopeSearch`.

The override surface into RLlib is small: a catalog that gives the Q networks the reference's
own sizes, a seeded replay sampler, and `attach`, which hands the environment its search.
"""

from __future__ import annotations

import pickle
import threading
from typing import Any

import numpy as np

from distributed_recourse.config import RunConfig
from distributed_recourse.env import ProposalEnv, RecourseEnv
from distributed_recourse.recourse.baselines import CoordinateSearch
from distributed_recourse.recourse.search import ScopeSearch


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


def on_algorithm_init(*, algorithm, **kwargs) -> None:
    # RLlib seeds torch and the env, not the replay buffer's sampler.
    algorithm.local_replay_buffer.rng = np.random.default_rng(algorithm.config.seed)


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
        SACConfig()
        .environment(env=ProposalEnv if proposal else RecourseEnv,
                     env_config=env_config(config, search, seed))
        .framework("torch")
        .env_runners(**runners)
        .training(
            replay_buffer_config={"type": "EpisodeReplayBuffer", "capacity": sac.buffer_size},
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
        .callbacks(on_algorithm_init=on_algorithm_init)
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
                "buffer": pickle.dumps(self.algorithm.local_replay_buffer.get_state()),
                "warm": self.warm.state() if self.warm is not None else None,
                "handover": self.handover}

    def restore(self, state: dict[str, Any]) -> None:
        self._building.join()
        self.algorithm.set_state(pickle.loads(state["algorithm"]))
        self.algorithm.local_replay_buffer.set_state(pickle.loads(state["buffer"]))
        self.handover = state["handover"]
        if state["warm"] is None:
            self.warm = None
        else:
            self.warm.restore(state["warm"])

    def stop(self) -> None:
        self._building.join()
        self.algorithm.stop()
