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
    """A run folder of the tiny config (Alzheimer) with hand-chosen sets, which is all that
    explaining reads of a run besides its prepared population: no training needed."""
    import json

    from distributed_recourse.population import prepare

    folder = tmp_path_factory.mktemp("hand") / "run"
    prepare(tiny_config).save(folder)
    sets = {"cluster-0": [[3, 0, 0], [0, 3, 0], [0, 0, 8], [2, 2, 3]],
            "cluster-1": [[5, 0, 0], [0, 5, 0], [0, 0, 10], [0, 0, 10]]}
    summary = {"level": "hybrid", "scopes": {name: {"set": s} for name, s in sets.items()}}
    (folder / "summary.json").write_text(json.dumps(summary))
    return folder
