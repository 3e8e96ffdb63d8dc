"""Hybrid EE-ECR quality on the paper's settings: population SR, PD and ECR gap, and wall time.

Targets: Adult (3 clusters) SR >= 0.97, PD <= 0.02, ECR gap 0 within 10 minutes on 2 cores;
Alzheimer SR >= 0.90, PD <= 0.05.

Run: python benchmarks/hybrid_quality.py [--dataset adult|alzheimer] [--budget SECONDS]
"""

import argparse
import tempfile
import time
from dataclasses import replace
from pathlib import Path

from common import RunConfig  # noqa: F401 (sets the thread limits first)

from distributed_recourse.config import RunConfig as Config
from distributed_recourse.report import summary_table
from distributed_recourse.train import train

TARGETS = {"adult": (0.97, 0.02), "alzheimer": (0.90, 0.05)}

parser = argparse.ArgumentParser()
parser.add_argument("--dataset", default="adult", choices=sorted(TARGETS))
parser.add_argument("--budget", type=float, default=540.0, help="training seconds per scope")
parser.add_argument("--steps", type=int, default=40_000, help="env steps per scope at most")
parser.add_argument("--output", default=None)
args = parser.parse_args()

config = Config.from_yaml(Path(__file__).parent.parent / "tune_configs" / f"{args.dataset}.yaml")
config = replace(config, train=replace(config.train, time_budget_s=args.budget,
                                       env_steps=args.steps))
output = Path(args.output or tempfile.mkdtemp(prefix=f"hybrid_{args.dataset}_"))
started = time.time()
summary = train(config, output, verbose=0)
wall = time.time() - started
print(summary_table(summary))
population = summary["population"]
sr_target, pd_target = TARGETS[args.dataset]
met = population["SR"] >= sr_target and population["PD"] <= pd_target and population["ECR_gap"] == 0
print(f"\n{args.dataset} hybrid EE-ECR: population SR {population['SR']:.4f}, PD {population['PD']:.4f}, "
      f"ECR gap {population['ECR_gap']:.4f}, validity {population['validity']:.4f}, "
      f"Gower {population['gower_chosen']}, wall {wall:.0f} s "
      f"-> {'meets' if met else 'misses'} the target (SR >= {sr_target}, PD <= {pd_target}, "
      f"ECR gap 0). Run folder: {output}")
