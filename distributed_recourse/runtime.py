"""Starting or joining Ray, and the thread limits every process of a run needs."""

from __future__ import annotations

import os


def limit_threads(threads: int = 1) -> None:
    """One thread per owned CPU: unset, torch and BLAS oversubscribe the cores and SAC runs
    tens of times slower. Ray sets this for its workers, not for the driver."""
    for variable in ("OMP_NUM_THREADS", "MKL_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        os.environ.setdefault(variable, str(threads))
    import torch

    torch.set_num_threads(threads)


WORKER_OUTPUT = {"log_to_driver": True}
"""Whether Ray forwards its workers' output to this process; a console turns it off, leaving it
in Ray's session logs (which it copies to OUTPUT/logs)."""


def connect(address: str | None = None, num_cpus: int | None = None):
    """Join the cluster at `address` (or RAY_ADDRESS), else start a local Ray; returns `ray`."""
    import ray

    if ray.is_initialized():
        return ray
    address = address or os.environ.get("RAY_ADDRESS")
    options = {"include_dashboard": False, **WORKER_OUTPUT}
    if address:
        ray.init(address=address, **options)
    else:
        ray.init(num_cpus=num_cpus, **options)
    return ray
