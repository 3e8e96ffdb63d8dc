"""The package as a pip user gets it: the wheel built from this checkout, installed (not
editable) into a fresh virtual environment, runs `recourse prepare --config adult` from a
folder outside the checkout: the schemas, data files and configs ship inside the wheel."""

import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).parent.parent

pytestmark = pytest.mark.slow


def run(*command: str, cwd: Path, timeout: int = 1500) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(command, cwd=cwd, capture_output=True, text=True, timeout=timeout,
                          env={**env, "RAY_ADDRESS": ""})
    assert done.returncode == 0, " ".join(command) + "\n" + done.stdout[-3000:] + done.stderr[-3000:]
    return done


def test_the_wheel_runs_prepare_from_a_fresh_venv_outside_the_checkout(tmp_path):
    wheels = tmp_path / "wheels"
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", str(wheels), str(ROOT), cwd=tmp_path)
    wheel = next(wheels.glob("distributed_recourse-*.whl"))
    shipped = set(zipfile.ZipFile(wheel).namelist())
    for name in ("distributed_recourse/data/schemas/adult.yaml",
                 "distributed_recourse/data/files/adult.data",
                 "distributed_recourse/configs/adult.yaml",
                 "distributed_recourse/configs/quick_sweep.yaml"):
        assert name in shipped

    env_dir = tmp_path / "venv"
    venv.create(env_dir, with_pip=True)
    python = str(env_dir / "bin" / "python")
    run(python, "-m", "pip", "install", str(wheel), cwd=tmp_path)
    outside = tmp_path / "elsewhere"
    outside.mkdir()
    listed = run(str(env_dir / "bin" / "recourse"), "configs", cwd=outside)
    assert "adult" in listed.stdout
    run(str(env_dir / "bin" / "recourse"), "prepare", "--config", "adult", "--output", "run",
        cwd=outside)
    assert (outside / "run" / "population.json").is_file()
    where = run(python, "-c", "import distributed_recourse; print(distributed_recourse.__file__)",
                cwd=outside)
    assert str(env_dir) in where.stdout  # the installed wheel, not this checkout
