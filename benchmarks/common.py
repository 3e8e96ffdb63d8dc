"""Shared set-up of the benchmarks: the Adult affected population and a timer."""

from __future__ import annotations

import dataclasses
import logging
import os
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import yaml

os.environ.setdefault("OMP_NUM_THREADS", "1")
ROOT = Path(__file__).parent.parent

import ray.rllib  # noqa: E402, F401 (Ray and RLlib set up their loggers on import; quieted after)

from distributed_recourse.config import RunConfig  # noqa: E402
from distributed_recourse.console import QUIET_LOGGERS  # noqa: E402
from distributed_recourse.env import RecourseEnv, ScopeProblem  # noqa: E402
from distributed_recourse.population import WHOLE, Prepared, prepare  # noqa: E402


def quiet_ray() -> None:
    """Ray's and RLlib's notices off (the benchmarks print their figures); again after
    `ray.init`, which sets Ray's logger up anew."""
    for name in QUIET_LOGGERS:
        logging.getLogger(name).setLevel(logging.ERROR)
    for handler in logging.getLogger("ray.rllib").handlers:  # an algorithm resets its level
        handler.setLevel(logging.ERROR)


quiet_ray()


def with_sac_settings(config: RunConfig, items: list[str]) -> tuple[RunConfig, dict]:
    """`config` with SacSettings fields set from FIELD=VALUE items (a lever to screen), and
    those settings (VALUE read as YAML: 256, [64, 64], null)."""
    if any("=" not in item for item in items):
        raise SystemExit(f"--sac: expected FIELD=VALUE items, got {items}")
    lever = {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in items)}
    known = {f.name for f in dataclasses.fields(config.sac)}
    if set(lever) - known:
        raise SystemExit(f"--sac: unknown SacSettings field(s) {sorted(set(lever) - known)}; "
                         f"known: {sorted(known)}")
    return dataclasses.replace(config, sac=dataclasses.replace(config.sac, **lever)), lever


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


def adult_run(run: str | None, steps: int = 600, model: dict | None = None) -> Path:
    """A trained Adult run: `run` if given, else a short one trained now in a temporary folder
    (tune_configs/adult.yaml with `steps` env steps per scope, and `model` as its model
    section if given), by `recourse train` in its own process so that the caller's
    measurements start from a fresh Ray."""
    if run:
        return Path(run)
    folder = Path(tempfile.mkdtemp(prefix="adult_run_"))
    spec = yaml.safe_load((ROOT / "tune_configs" / "adult.yaml").read_text())
    spec["train"] = {**spec.get("train", {}), "env_steps": steps, "time_budget_s": 180}
    if model:
        spec["model"] = model
    (folder / "config.yaml").write_text(yaml.safe_dump(spec))
    print(f"training a short Adult run ({steps} steps per scope) in {folder / 'run'} ...", flush=True)
    subprocess.run([sys.executable, "-m", "distributed_recourse.cli", "train", "--config",
                    str(folder / "config.yaml"), "--output", str(folder / "run")],
                   check=True, stdout=subprocess.DEVNULL, env={**os.environ, "RAY_ADDRESS": ""})
    return folder / "run"


def adult_pipeline(path: Path) -> Path:
    """The most common form of a user's model, fitted on Adult's raw frame and saved to
    `path` (joblib): a scikit-learn Pipeline of a OneHotEncoder over the categorical columns
    and a HistGradientBoostingClassifier, predicting the raw label (`>50K` is favourable).
    Use it as `model: {kind: file, path: PATH, input: frame}`."""
    import joblib
    from sklearn.compose import ColumnTransformer
    from sklearn.ensemble import HistGradientBoostingClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    from distributed_recourse.data.datasets import load_adult

    adult = load_adult()
    features = adult.frame[adult.space.columns]
    encode = ColumnTransformer([("categories", OneHotEncoder(handle_unknown="ignore", sparse_output=False),
                                 list(adult.space.categories))], remainder="passthrough")
    pipeline = make_pipeline(encode, HistGradientBoostingClassifier(random_state=0))
    joblib.dump(pipeline.fit(features, adult.frame[adult.schema.label]), path)
    return path
