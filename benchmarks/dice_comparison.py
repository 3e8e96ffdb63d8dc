"""This project against DiCE (`dice-ml`, method `random`, one counterfactual per person) on the
same 100 affected Adult people (a seeded sample of the run's held-out affected people if it has
them, else of those its sets were searched on) and the same model: seconds per person,
validity (the counterfactual is favoured by the model), Gower distance of the counterfactual
(over the actionable features as DESIGN.md section 3 defines it, and over all features,
immutables contributing 0, as other tools report it) and sparsity.
Both may change only the actionable features within their bounds; education only up.
Target: at least 1,000x faster per person than DiCE random, validity at least as high.

Needs the `bench` extra (pip install -e ".[bench]").
Run: python benchmarks/dice_comparison.py [--run RUN] [--people 100]
Without --run it trains a short Adult run first (see common.adult_run).
"""

import argparse
import os
import time

import numpy as np
import pandas as pd
from common import adult_run

from distributed_recourse.data.datasets import load_adult
from distributed_recourse.explain import RECOURSE, Explainer
from distributed_recourse.population import Prepared

parser = argparse.ArgumentParser()
parser.add_argument("--run", default=None, help="a trained Adult run (default: train a short one)")
parser.add_argument("--people", type=int, default=100)
parser.add_argument("--repeats", type=int, default=20, help="timed repeats of this project's call")
args = parser.parse_args()

os.environ["TQDM_DISABLE"] = "1"  # DiCE's progress bar per person
import dice_ml  # noqa: E402  (after argparse: --help works without the bench extra)

run = adult_run(args.run)
explainer = Explainer.open(run)
space, model, actions = explainer.space, explainer.model, explainer.actions
prepared = Prepared.load(run)
population = prepared.holdout or prepared.population  # people never searched on, if the run has them
print(f"{args.people} people sampled from the run's "
      f"{'held-out' if prepared.holdout else 'searched'} affected population")
rows = np.sort(np.random.default_rng(0).choice(len(population.X), args.people, replace=False))
people = space.decode(population.X[rows])


class Predictor:
    """The run's model seen through the user's columns, as DiCE calls it."""

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        return model.estimator.predict_proba(space.encode(frame[space.columns]))

    def predict(self, frame: pd.DataFrame) -> np.ndarray:
        return self.predict_proba(frame).argmax(axis=1)


def figures(name: str, X: np.ndarray, found: np.ndarray, counterfactual: np.ndarray,
            seconds: float) -> dict:
    """Validity over all people; Gower and sparsity over those with a valid counterfactual."""
    valid = found.copy()
    valid[found] = model.favourable(counterfactual[found])
    gower = actions.distance(X[valid], counterfactual[valid])
    return {"method": name, "s/person": seconds / len(X), "validity": valid.mean(),
            "gower": gower.mean(), "gower_all_features": gower.mean() * len(actions.names) /
            len(space.columns), "sparsity": actions.n_changed(X[valid], counterfactual[valid]).mean()}


X = population.X[rows]
results = []

# this project: one call for all the people, best of `repeats`
times = []
for _ in range(args.repeats):
    started = time.perf_counter()
    data = explainer.explain(people, alternatives=0)
    times.append(time.perf_counter() - started)
found = (data["status"] == RECOURSE).to_numpy()
counterfactual = X.copy()
for name in actions.names:
    counterfactual[found, space.columns.index(name)] = space.encode(
        people.assign(**{name: data[f"cf_{name}"]})[found])[:, space.columns.index(name)]
results.append(figures("fair recourse (this project)", X, found, counterfactual, min(times)))

# DiCE random, one counterfactual per person
adult = load_adult()
training = space.decode(adult.X).assign(income=adult.favourable.astype(int))
continuous = [c for c in space.columns if c not in space.categories]
dice = dice_ml.Dice(dice_ml.Data(dataframe=training, continuous_features=continuous,
                                 outcome_name="income"),
                    dice_ml.Model(model=Predictor(), backend="sklearn"), method="random")
bounds = {f.name: [f.low, f.high] for f in space.actionable}
found = np.zeros(len(X), dtype=bool)
counterfactual = X.copy()
started = time.perf_counter()
for i in range(len(people)):
    person = people.iloc[[i]]
    permitted = dict(bounds)
    for f in space.actionable:
        if f.direction == "increase":
            permitted[f.name] = [float(person[f.name].iloc[0]), f.high]
    try:
        result = dice.generate_counterfactuals(
            person, total_CFs=1, desired_class="opposite", features_to_vary=actions.names,
            permitted_range=permitted, verbose=False)
    except Exception:  # DiCE raises when it finds no counterfactual
        continue
    cfs = result.cf_examples_list[0].final_cfs_df
    if cfs is not None and len(cfs):
        found[i] = True
        counterfactual[i] = space.encode(cfs[space.columns].iloc[[0]].astype(people.dtypes))[0]
results.append(figures("DiCE random (1 CF)", X, found, counterfactual, time.perf_counter() - started))

table = pd.DataFrame(results)
print(table.to_string(index=False, float_format=lambda v: f"{v:.4g}"))
ratio = table["s/person"].iloc[1] / table["s/person"].iloc[0]
print(f"\nthis project is {ratio:,.0f}x faster per person than DiCE random (target >= 1,000x); "
      f"validity {table['validity'].iloc[0]:.2f} vs {table['validity'].iloc[1]:.2f}")
