"""A train run's folder built without Ray, as `recourse train` writes it: the prepared
population, and the RunResult that `engine.summarize` measures from the snapshot of a hub that
recorded a few rounds of hand-chosen sets (report and audit tests read it)."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import numpy as np

from distributed_recourse.config import RunConfig
from distributed_recourse.engine import no_change_tally, problems, summarize, write_run_files
from distributed_recourse.population import Prepared
from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.archive import archive_entry
from distributed_recourse.result import RunResult
from distributed_recourse.stats import StatsHub


def entry(prepared: Prepared, config: RunConfig, scope: str, action_set, step: int,
          met: bool = True) -> dict:
    """A set as the scope's search reports it (measured on the scope alone): `action_set` is
    an (N, m) array or a list of feature -> change dicts."""
    space = ActionSpace(prepared.model.space.actionable, config.reward.n_actions)
    people = prepared.population.scope(scope)
    state = np.array([space.from_description(a) if isinstance(a, dict) else a
                      for a in action_set], dtype=np.float64)
    outcome = M.evaluate_set(space, people.X, state, prepared.model.favourable)
    k, w = len(people.group_names), config.reward
    distinct = space.distinct(state)
    tally = M.tally(outcome.flipped, people.groups, k, distinct, w.phi)
    share = M.share_per_action(M.action_effectiveness(outcome.flipped, people.groups, k),
                               tally.people)
    active = M.active_actions(w.active_rule, outcome.flipped, share, distinct, w.phi,
                              w.macro_active)
    metrics = M.set_metrics(tally, w.effectiveness, active, outcome.gower.mean(axis=1))
    found = archive_entry(scope, space, state, metrics, tally, people.group_names, step, 100.0)
    people_ = M.person_outcome(outcome)  # what the pool's extras give a search's entries
    chosen_cost = float(people_.cost[people_.valid].mean()) if people_.valid.any() else 0.0
    return {**found, "model_calls": step - 20, "met": met, "chosen_cost": chosen_cost}


def run_folder(folder: Path, config: RunConfig, prepared: Prepared,
               rounds: dict[str, list[tuple[dict, list[dict]]]]) -> RunResult:
    """The run's files from a hub that recorded `rounds`: per scope, per round of 300 steps,
    its best set and the sets it archived that round; every scope then stops by its budget.
    The sets are reported as they are (no minimisation), so hand-written texts stay true."""
    config = replace(config, train=replace(config.train, minimize=False))
    hub = StatsHub(config.train.selection)
    for name, problem in problems(prepared, prepared.population.scope_names(config.level)).items():
        hub.register(name, no_change_tally(problem, config.reward.n_actions, config.reward.phi))
    for i in range(max(len(r) for r in rounds.values())):
        reports = {name: {"best": best, "key": float(i), "improved": True, "entries": entries,
                          "steps": 300 * (i + 1), "model_calls": 250 * (i + 1),
                          "train_s": 6.0 * (i + 1), "node_id": None}
                   for name, scope_rounds in rounds.items() if i < len(scope_rounds)
                   for best, entries in [scope_rounds[i]]}
        hub.record_round(reports, 15.0 * (i + 1))
    for name in rounds:
        hub.stop(name, "step budget")
    snapshot = hub.snapshot()
    prepared.save(folder)
    result = summarize(config, prepared, snapshot, snapshot["wall_s"])
    write_run_files(folder, result, snapshot)
    return result
