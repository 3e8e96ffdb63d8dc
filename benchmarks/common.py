"""Shared set-up of the benchmarks: the Adult affected population and a timer."""

from __future__ import annotations

import os
import time
from collections.abc import Callable

os.environ.setdefault("OMP_NUM_THREADS", "1")

from distributed_recourse.config import RunConfig  # noqa: E402
from distributed_recourse.env import RecourseEnv, ScopeProblem  # noqa: E402
from distributed_recourse.population import WHOLE, Prepared, prepare  # noqa: E402


def adult() -> Prepared:
    """The paper's Adult pipeline (RandomForest, 7,391 affected people)."""
    return prepare(RunConfig())


def whole_population_env(prepared: Prepared, **config) -> RecourseEnv:
    scope = prepared.population.scope(WHOLE)
    problem = ScopeProblem(WHOLE, scope.X, scope.groups, scope.group_names,
                           prepared.model.space.actionable, prepared.model)
    return RecourseEnv({"problem": problem, **config})


def seconds_per_call(function: Callable[[], object], repeats: int = 20) -> float:
    """Median wall time of one call, after one warm-up call."""
    function()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        function()
        times.append(time.perf_counter() - start)
    return sorted(times)[len(times) // 2]
