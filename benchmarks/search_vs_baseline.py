"""The learned search beside its yardsticks (DESIGN.md section 8, issue 9): per dataset and
fairness level, the ceiling (what any feasible change could reach for these people), SAC, and
each non-learned search (random candidates, coordinate hill climbing) given SAC's model calls
and, separately, its training time; SR, PD, ECR gap, Gower of chosen counterfactuals, model
calls and time, all through the same engine, evaluator, pool and final evaluation.

Datasets: adult, alzheimer (shipped) and the unseen ones of benchmarks/unseen.py (credit,
justice, health6, scale, tinyscope, housing), generated into a temporary folder.

Run: python benchmarks/search_vs_baseline.py [--datasets alzheimer justice health6]
     [--levels individual hybrid] [--seeds 42 43 44] [--output DIR [--resume]]
     [--sac training_intensity=256]

With several seeds (each reseeds the whole run: the split, the clusters, SAC and the
baselines), a table says per row in how many seeds SAC was ahead or equal, and the means over
seeds: one seed's row is as much the seed's doing as the search's. The last table puts every
search, SAC's and each baseline's, against the best of the two others at equal model calls:
how often any search passes the test that SAC's column takes.
"""

import argparse
import dataclasses
import tempfile
from pathlib import Path

import pandas as pd
from common import RunConfig, with_sac_settings  # noqa: F401 (sets the thread limits first)
from unseen import config_for

from distributed_recourse.config import RunConfig as Config
from distributed_recourse.reproduce import LEVELS, compare_levels

SHIPPED = ("adult", "alzheimer")


def best_of(rows: pd.DataFrame) -> pd.Series:
    """The best search of some rows: the highest SR, then the lowest PD, then the lowest Gower."""
    return rows.sort_values(["SR", "PD", "gower_chosen"], ascending=[False, True, True]).iloc[0]


def ahead_or_equal(one: pd.Series, other: pd.Series) -> bool:
    """At least as good on SR, PD, ECR gap and Gower at once."""
    return bool(one.SR >= other.SR - 1e-9 and one.PD <= other.PD + 1e-9
                and one.ECR_gap <= other.ECR_gap + 1e-9
                and one.gower_chosen <= other.gower_chosen + 1e-9)


parser = argparse.ArgumentParser()
parser.add_argument("--datasets", nargs="+", default=["alzheimer", "justice", "health6",
                                                      "tinyscope", "credit"])
parser.add_argument("--levels", nargs="+", default=list(LEVELS), choices=LEVELS)
parser.add_argument("--seeds", nargs="+", type=int, default=None,
                    help="run each dataset under each of these seeds (default: its config's)")
parser.add_argument("--output", default=None)
parser.add_argument("--sac", nargs="+", default=[], metavar="FIELD=VALUE",
                    help="SAC settings to screen as a lever, e.g. training_intensity=256")
parser.add_argument("--resume", action="store_true",
                    help="continue an interrupted run in --output (finished trials are kept)")
args = parser.parse_args()

output = Path(args.output or tempfile.mkdtemp(prefix="search_vs_baseline_"))
data = output / "unseen"
tables = []
for name in args.datasets:
    config, _ = with_sac_settings(
        Config.from_yaml(name) if name in SHIPPED else config_for(name, data), args.sac)
    for seed in args.seeds or [config.seed]:
        folder = output / name / f"seed{seed}" if args.seeds else output / name
        table = compare_levels(dataclasses.replace(config, seed=seed), folder,
                               tuple(args.levels), resume=args.resume)
        tables.append(table.assign(dataset=name, seed=seed))
        print(f"\n{name}, seed {seed}\n"
              + table.to_string(index=False, float_format=lambda v: f"{v:.3f}"), flush=True)
everything = pd.concat(tables)
everything.to_csv(output / "search_vs_baseline.csv", index=False)

# SAC against the best baseline at equal model calls, per row and seed; and, as that test's
# yardstick, each search against the best of the two others
rows, yardstick = [], []
for (name, level, seed), group in everything.groupby(["dataset", "level", "seed"], sort=False):
    learned = group[group.budget == "-"].iloc[0]
    calls = group[group.budget == "equal model calls"]
    best = best_of(calls)
    rows.append({"dataset": name, "level": level, "seed": seed,
                 "ceiling SR": learned["ceiling SR"],
                 "SAC SR": learned.SR, "best baseline": best.search, "baseline SR": best.SR,
                 "SAC PD": learned.PD, "baseline PD": best.PD,
                 "SAC ECR gap": learned.ECR_gap, "baseline ECR gap": best.ECR_gap,
                 "SAC Gower": learned.gower_chosen, "baseline Gower": best.gower_chosen,
                 "SAC >= 0.98 ceiling": 0.98 * learned["ceiling SR"] - 1e-9 <= learned.SR,
                 "SAC ahead or equal": ahead_or_equal(learned, best)})
    searches = pd.concat([learned.to_frame().T, calls], ignore_index=True)
    for i, one in searches.iterrows():
        yardstick.append({"search": one.search, "ahead or equal of the best other":
                          ahead_or_equal(one, best_of(searches.drop(index=i)))})
versus = pd.DataFrame(rows)
print("\nSAC against the best baseline at equal model calls\n"
      + versus.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
if args.seeds and len(args.seeds) > 1:
    means = versus.groupby(["dataset", "level"], sort=False).agg(
        seeds=("seed", "size"), ahead_or_equal=("SAC ahead or equal", "sum"),
        reaches_098_ceiling=("SAC >= 0.98 ceiling", "sum"),
        **{f"{who} {what}": (f"{who} {what}", "mean") for what in ("SR", "PD", "ECR gap", "Gower")
           for who in ("SAC", "baseline")}).reset_index()
    print("\nOver the seeds (counts of seeds; means of the metrics)\n"
          + means.to_string(index=False, float_format=lambda v: f"{v:.3f}"))
    means.to_csv(output / "search_vs_baseline_seeds.csv", index=False)
yardstick = pd.DataFrame(yardstick).groupby("search", sort=False).agg(
    rows=("ahead or equal of the best other", "size"),
    ahead_or_equal=("ahead or equal of the best other", "sum")).reset_index()
print("\nEach search against the best of the two others at equal model calls (rows ahead or "
      "equal on all four)\n" + yardstick.to_string(index=False))
print(f"\nwritten {output / 'search_vs_baseline.csv'}")
