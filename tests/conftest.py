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
