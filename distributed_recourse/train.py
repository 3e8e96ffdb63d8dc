"""`recourse train`: one configuration's scopes trained by the engine on Ray, as a Tune experiment
of one trial, so that it checkpoints, resumes and restarts failed trainers exactly as every sweep
trial does, and its run files written to OUTPUT.

Flow: prepare (or reuse) the population -> `run_trials` (one trial: the engine) -> the trial's
RunResult from its last checkpoint -> OUTPUT/summary.json, archive.csv, stats.json.
"""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

from distributed_recourse.config import RunConfig
from distributed_recourse.engine import trial_outcome
from distributed_recourse.population import Stage, prepared_for
from distributed_recourse.result import RunResult
from distributed_recourse.runtime import connect, limit_threads
from distributed_recourse.sweep import SweepSpec, run_trials

EXPERIMENT = "train"


def start_fresh(output: Path) -> None:
    """A run that is not a resume starts with no old trials or results."""
    shutil.rmtree(output / "tune" / EXPERIMENT, ignore_errors=True)
    for name in ("stats.json", "summary.json", "archive.csv"):
        (output / name).unlink(missing_ok=True)


def train(
    config: RunConfig, output: str | Path, address: str | None = None, resume: bool = False,
    callbacks: list | None = None, stage: Stage = None,
    starting: Callable[[list[str]], None] | None = None,
) -> RunResult:
    """Train every scope of the config's fairness level; write and return the RunResult (its
    `errors` name any scope whose trainer failed; the files hold what finished). `stage` hears
    what it is doing, `starting` the scopes about to train (a console shows them)."""
    output = Path(output).resolve()
    output.mkdir(parents=True, exist_ok=True)
    limit_threads()
    if not resume:
        start_fresh(output)
    prepared = prepared_for(config, output, stage)
    if stage:
        stage("starting Ray and the scopes' trainers")
    if starting:
        starting(prepared.population.scope_names(config.level))
    connect(address)
    storage = config.train.storage or str(output / "tune")
    grid = run_trials(SweepSpec.single(config), prepared, storage, EXPERIMENT, resume, callbacks)
    return trial_outcome(grid[0], config, prepared, into=output)
