"""One Ray runtime for the whole session, and one thread per process (DESIGN.md section 9)."""

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")

import pytest  # noqa: E402


@pytest.fixture(scope="session")
def ray_session():
    """A real local Ray (2 CPUs), started once; tests that need Ray ask for this fixture."""
    from distributed_recourse.runtime import connect, limit_threads

    limit_threads()
    ray = connect(num_cpus=2)
    yield ray
    ray.shutdown()


@pytest.fixture(scope="session")
def tiny_config():
    """The small budget of tune_configs/tiny.yaml, which the training tests run."""
    from pathlib import Path

    from distributed_recourse.config import RunConfig

    return RunConfig.from_yaml(Path(__file__).parent.parent / "tune_configs" / "tiny.yaml")


@pytest.fixture(scope="session")
def hand_run(tiny_config, tmp_path_factory):
    """A run folder of the tiny config (Alzheimer) with hand-chosen sets, measured and saved as
    a training run saves its result: all that explaining reads of a run, no training needed."""
    from dataclasses import replace

    from distributed_recourse.engine import summarize
    from distributed_recourse.population import prepare
    from distributed_recourse.stats import StatsHub

    folder = tmp_path_factory.mktemp("hand") / "run"
    prepared = prepare(tiny_config)
    prepared.save(folder)
    hub = StatsHub(tiny_config.train.selection)
    hub.best_seen = {"cluster-0": {"set": [[3, 0, 0], [0, 3, 0], [0, 0, 8], [2, 2, 3]]},
                     "cluster-1": {"set": [[5, 0, 0], [0, 5, 0], [0, 0, 10], [0, 0, 10]]}}
    config = replace(tiny_config, train=replace(tiny_config.train, minimize=False))
    summarize(config, prepared, hub.snapshot(), wall_s=0.0).save(folder)
    return folder
