"""How plausible recourse can be at all (issue 12), beside what a run reached.

The ceiling of recourse/ceiling.py asks who some feasible change flips; here the same
enumeration (every `ord`/`cat` level, a grid over each `con` feature, bounds and directions
kept) asks who some feasible change flips *into a profile the run's outlier detector accepts*.
With everyone flipped, the share of chosen counterfactuals that are plausible cannot exceed
that share (on the grid: a change between grid points may still reach an inlier, so the
figure is a lower bound of the plausible ceiling, as the ceiling itself is where it samples).

Run: python benchmarks/plausible_ceiling.py RUN_DIR [RUN_DIR ...]
(run folders of `recourse train`, e.g. `--config adult --output runs/adult`)
"""

import argparse

from common import RunConfig  # noqa: F401 (sets the thread limits first)

from distributed_recourse.population import Prepared
from distributed_recourse.recourse.actions import ActionSpace
from distributed_recourse.recourse.ceiling import reachable_people
from distributed_recourse.recourse.plausibility import plausible
from distributed_recourse.result import RunResult

parser = argparse.ArgumentParser()
parser.add_argument("runs", nargs="+")
args = parser.parse_args()

for run in args.runs:
    prepared, result = Prepared.load(run), RunResult.load(run)
    population, detector = prepared.population, prepared.plausibility
    space = ActionSpace(prepared.model.space.actionable, 1)

    def flipped_and_plausible(X, model=prepared.model, detector=detector):
        return model.favourable(X) & plausible(detector, X)

    reach = reachable_people(space, population.X, prepared.model.favourable)
    plausible_reach = reachable_people(space, population.X, flipped_and_plausible)
    print(f"{run}: {len(population.X):,} affected people, {result.dataset}")
    print(f"  inliers as they are                        {plausible(detector, population.X).mean():.3f}")
    print(f"  some feasible change flips them            {reach.reachable.mean():.3f}")
    print(f"  ... into a plausible profile (the bound)   {plausible_reach.reachable.mean():.3f}")
    print(f"  the run: SR {result.population.SR:.3f}, validity {result.population.validity:.3f}, "
          f"plausibility of chosen counterfactuals {result.population.plausibility:.3f}")
