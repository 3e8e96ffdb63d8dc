"""A user's model that works where it is loaded (prepare) and fails inside a scope trainer, to
check that a failed trainer ends the run with exit code 1 and a message naming its scope."""

import sys

import numpy as np


class FailsInTrainers:
    def predict(self, X) -> np.ndarray:
        if "ScopeTrainer" in " ".join(sys.argv) or _process_title().startswith("ray::ScopeTrainer"):
            raise RuntimeError("the model service is down")
        return (np.asarray(X)[:, 0] > np.median(np.asarray(X)[:, 0])).astype(int)


def _process_title() -> str:
    try:
        with open("/proc/self/cmdline") as f:
            return f.read().replace("\0", " ")
    except OSError:
        return ""
