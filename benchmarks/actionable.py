"""Recourse a person can act on (issue 12), from trained run folders.

Per scope and for the population: SR, PD and ECR gap, and the chosen counterfactuals' sparsity,
Gower distance and plausibility, before and after the exact minimisation of recourse/minimize.py,
with the model calls it spent (and its wall time as a multiple of one model call on the scope,
measured in the same run). Then the two plausibility detectors side by side (the run's
IsolationForest and the distance to the 5 nearest favourable training rows, per group) and
what `percentile` costs make of the changes the chosen counterfactuals ask for.

Targets: sparsity of chosen counterfactuals <= 1.2 features and their Gower <= 0.9x before,
at the same SR and PD.

Run: PYTHONPATH=$PWD nice -n 5 python benchmarks/actionable.py RUN_DIR [RUN_DIR ...]
(a run folder of `recourse train`, e.g. `--config adult --output /tmp/actionable/adult`)
"""

from __future__ import annotations

import argparse
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
from common import RunConfig  # noqa: F401 (sets the thread limits first)
from sklearn.ensemble import IsolationForest
from sklearn.neighbors import NearestNeighbors

from distributed_recourse.audit import fit_costs
from distributed_recourse.data import load_dataset
from distributed_recourse.data.schema import PERCENTILE
from distributed_recourse.explain import Explainer
from distributed_recourse.population import Prepared, split
from distributed_recourse.recourse import metrics as M
from distributed_recourse.recourse.describe import actions_text
from distributed_recourse.recourse.evaluation import (
    counterfactuals,
    evaluate_scope,
    person_summary,
    population_summary,
)
from distributed_recourse.recourse.minimize import minimize_set
from distributed_recourse.recourse.plausibility import fit_detector, group_plausibility, plausible

SPARSITY_TARGET, GOWER_RATIO_TARGET = 1.2, 0.9


def measure(
    prepared: Prepared, explainer: Explainer, sets: np.ndarray
) -> tuple[dict, dict, tuple[np.ndarray, np.ndarray]]:
    """Per scope and pooled: SR, PD, ECR gap, and the chosen counterfactuals' figures; and the
    chosen counterfactual rows with their people's groups."""
    space, population, weights = explainer.actions, prepared.population, prepared.config.reward
    favourable = explainer.model.favourable
    scopes, tallies, parts = {}, [], []
    n = len(population.X)
    chosen, cost = np.full(n, -1), np.full(n, np.inf)
    sparsity, inlier = np.zeros(n, dtype=np.int64), np.zeros(n, dtype=bool)
    for name, action_set in zip(explainer.scopes.names, sets, strict=True):
        mask = population.members(name)
        scope = population.scope(name)
        summary, outcome, tally = evaluate_scope(space, scope.X, scope.groups, scope.group_names,
                                                 action_set, favourable, weights)
        people = M.person_outcome(outcome)
        cf = counterfactuals(space, scope.X, action_set, people.chosen)
        inlier[mask] = plausible(prepared.plausibility, cf)
        chosen[mask], cost[mask], sparsity[mask] = people.chosen, people.cost, people.sparsity
        scopes[name] = {**summary, **person_summary(people, scope.groups, scope.group_names,
                                                    inlier[mask])}
        tallies.append(tally)
        parts.append((cf[people.valid], scope.groups[people.valid]))
    everyone = M.PersonOutcome(chosen >= 0, chosen, cost, sparsity)
    whole = population_summary(tallies, everyone, population.groups, population.group_names,
                               weights, inlier)
    return scopes, whole, (np.vstack([cf for cf, _ in parts]), np.concatenate([g for _, g in parts]))


def row(name: str, before: dict, after: dict, extra: str = "") -> str:
    def pair(key: str, digits: int = 3) -> str:
        return f"{before[key]:.{digits}f}->{after[key]:.{digits}f}"

    ratio = after["gower_chosen"] / before["gower_chosen"]
    return (f"{name:<11} {before['n']:>5}  SR {pair('SR')}  PD {pair('PD')}  ECR {pair('ECR_gap')}  "
            f"sparsity {pair('sparsity', 2)}  Gower {pair('gower_chosen', 4)} ({ratio:.2f}x)  "
            f"plausible {pair('plausibility')}{extra}")


def minimisation(prepared: Prepared, explainer: Explainer, allow_new: bool) -> tuple[dict, dict]:
    """Minimise every scope's set, print the figures before and after; return the pooled ones."""
    space, favourable = explainer.actions, explainer.model.favourable
    scopes_before, before, _ = measure(prepared, explainer, explainer.sets)
    reduced, notes = [], {}
    for name, action_set in zip(explainer.scopes.names, explainer.sets, strict=True):
        X = prepared.population.scope(name).X
        started = time.perf_counter()
        result = minimize_set(space, X, action_set, favourable, allow_new=allow_new)
        took = time.perf_counter() - started
        started = time.perf_counter()
        favourable(X)
        one_call = time.perf_counter() - started
        reduced.append(result.action_set)
        notes[name] = (f"  changes {result.changes_before}->{result.changes_after}  "
                       f"calls {result.model_calls} ({result.rows_evaluated:,} rows, "
                       f"{took:.1f} s = {took / one_call:.0f}x one call on the scope)")
    scopes_after, after, _ = measure(prepared, explainer, np.array(reduced))
    for name in explainer.scopes.names:
        print(row(name, scopes_before[name], scopes_after[name], notes[name]))
    print(row("population", before, after))
    features = explainer.space.describe_actionable()
    for name, action_set in zip(explainer.scopes.names, reduced, strict=True):
        print(f"  {name}: {actions_text([space.describe(a) for a in action_set], features)}")
    return before, after


def targets(before: dict, after: dict) -> str:
    checks = {
        f"sparsity {after['sparsity']:.2f} <= {SPARSITY_TARGET}": after["sparsity"] <= SPARSITY_TARGET,
        f"Gower {after['gower_chosen'] / before['gower_chosen']:.2f}x <= {GOWER_RATIO_TARGET}x":
            after["gower_chosen"] <= GOWER_RATIO_TARGET * before["gower_chosen"],
        "same SR": abs(after["SR"] - before["SR"]) <= 1e-12,
        "same PD": abs(after["PD"] - before["PD"]) <= 1e-12,
    }
    return "  ".join(f"{text}: {'met' if ok else 'NOT met'}" for text, ok in checks.items())


def detectors(prepared: Prepared, explainer: Explainer, k: int = 5, quantile: float = 0.95) -> None:
    """The run's IsolationForest; one whose threshold accepts the `quantile` of the favourable
    training rows (its contamination), with and without the protected columns among its
    features; and the mean distance (Gower over every feature) to the k nearest favourable
    training rows, accepting up to the `quantile` of the favourable rows' own distances.
    Share accepted and microseconds per row, overall and per group."""
    config = prepared.config
    dataset = load_dataset(config.dataset.name, config.dataset.path, config.dataset.schema)
    X, y = dataset.X, dataset.favourable
    train, test = split(config, y)
    labels = dataset.groups.to_numpy()
    groups = np.searchsorted(prepared.population.group_names, labels)
    space = dataset.space
    categorical = np.array([c in space.categories for c in space.columns])
    span = np.ptp(X[train], axis=0)
    span[span == 0] = 1.0

    def embed(A: np.ndarray) -> np.ndarray:
        """Rows whose L1 distance / d is the Gower distance: numbers over their range, each
        category one-hot at 1/2 (a changed category adds 1)."""
        parts = [A[:, ~categorical] / span[~categorical]]
        for i in np.flatnonzero(categorical):
            parts.append(0.5 * np.eye(len(space.categories[space.columns[i]]))[A[:, i].astype(int)])
        return np.hstack(parts) / len(space.columns)

    favourable_rows = X[train][y[train]]
    near = NearestNeighbors(n_neighbors=k + 1, metric="manhattan").fit(embed(favourable_rows))
    own = near.kneighbors(embed(favourable_rows))[0][:, 1:].mean(axis=1)  # leave self out
    threshold = np.quantile(own, quantile)
    _, _, chosen = measure(prepared, explainer, explainer.sets)
    samples = {"favourable test rows": (X[test][y[test]], groups[test][y[test]]),
               "affected people (no change)": (prepared.population.X, prepared.population.groups),
               "chosen counterfactuals": chosen}
    contamination = round(1 - quantile, 6)
    calibrated = IsolationForest(contamination=contamination, random_state=config.seed).fit(
        favourable_rows)
    blind = fit_detector(favourable_rows, [space.columns.index(c) for c in
                                           prepared.schema.protected.columns], config.seed,
                         contamination)
    for name, accept in (
        ("IsolationForest (the run's)", lambda A: plausible(prepared.plausibility, A)),
        (f"IF, contamination {contamination:g}", lambda A: plausible(calibrated, A)),
        ("  and no protected column", lambda A: plausible(blind, A)),
        (f"{k}-NN Gower <= q{quantile:g}", lambda A: near.kneighbors(embed(A), k)[0].mean(axis=1)
         <= threshold),
    ):
        for label, (rows, g) in samples.items():
            started = time.perf_counter()
            ok = accept(rows)
            per_row = (time.perf_counter() - started) / len(rows) * 1e6
            share, gap = group_plausibility(ok, np.ones(len(ok), dtype=bool), g,
                                            len(prepared.population.group_names))
            by_group = ", ".join(f"{n} {s:.3f}" for n, s in
                                 zip(prepared.population.group_names, share, strict=True))
            print(f"  {name:<28} {label:<28} {ok.mean():.3f} ({by_group}; gap {gap:.3f})  "
                  f"{per_row:.0f} us/row")


def percentile_costs(prepared: Prepared, explainer: Explainer) -> None:
    """Each con/ord feature's cost term under `percentile` against its Gower term, averaged over
    the chosen counterfactuals that change it."""
    schema = prepared.schema
    schema = replace(schema, actionable=tuple(
        replace(a, cost=PERCENTILE) if a.kind != "cat" else a for a in schema.actionable))
    costs = fit_costs(prepared.config, schema, explainer.space)
    space = explainer.actions
    rows, cfs = [], []
    for name, action_set in zip(explainer.scopes.names, explainer.sets, strict=True):
        scope = prepared.population.scope(name)
        people = M.person_outcome(M.evaluate_set(space, scope.X, action_set, explainer.model.favourable))
        rows.append(scope.X[people.valid])
        cfs.append(counterfactuals(space, scope.X, action_set, people.chosen)[people.valid])
    X, cf = np.vstack(rows), np.vstack(cfs)
    percentile, gower = costs.terms(X, cf), space.feature_distance(X, cf)
    for f, spec in enumerate(space.features):
        changed = X[:, spec.column] != cf[:, spec.column]
        if spec.kind == "cat" or not changed.any():
            continue
        change = np.median(cf[changed, spec.column] - X[changed, spec.column])
        print(f"  {spec.name:<22} changed for {changed.mean():.1%}; median change {change:+,.4g}; "
              f"term: percentile {percentile[changed, f].mean():.4f}, Gower {gower[changed, f].mean():.4f}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("runs", nargs="+", help="trained run folders")
    args = parser.parse_args()
    for run in map(Path, args.runs):
        prepared, explainer = Prepared.load(run), Explainer.from_run(run)
        print(f"\n== {prepared.summary['dataset']} ({explainer.scopes.level}, "
              f"{len(prepared.population.X):,} people): {run}")
        for allow_new in (True, False):
            print(f"-- minimised, {'new flips kept' if allow_new else 'exactly the same flips'}")
            before, after = minimisation(prepared, explainer, allow_new)
            print("targets: " + targets(before, after))
        print("-- plausibility detectors (the run's final sets, before minimisation)")
        detectors(prepared, explainer)
        print("-- percentile costs of the chosen counterfactuals' changes")
        percentile_costs(prepared, explainer)


if __name__ == "__main__":
    main()
