"""Fair counterfactual recourse (individual, group and hybrid fairness) learned with RLlib SAC
and distributed on Ray."""

__version__ = "0.1.0"
