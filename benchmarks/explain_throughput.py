"""Batch explanation throughput: rows resampled from Adult (default 1,000,000), Parquet in ->
Parquet out through `explain_batch` (a local Ray on this machine's CPUs); rows/s end to end
(Ray's start included) and peak memory of the whole process tree (this driver and every Ray
process: the sum of their proportional set sizes, sampled every 0.2 s).
Target: at least 50,000 rows/s on 2 cores, memory under 2 GiB.

For the physical limit (DESIGN.md section 7) it also measures, in this process without Ray, the
model rows predicted per input row and the cost of one predicted row.

Run: python benchmarks/explain_throughput.py [--run RUN] [--rows 1000000] [--files 10]
Without --run it trains a short Adult run first (see common.adult_run).
"""

import argparse
import json
import resource
import shutil
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from common import adult_run

from distributed_recourse.batch import explain_batch
from distributed_recourse.data.datasets import load_adult
from distributed_recourse.explain import Explainer

parser = argparse.ArgumentParser()
parser.add_argument("--run", default=None, help="a trained Adult run (default: train a short one)")
parser.add_argument("--rows", type=int, default=1_000_000)
parser.add_argument("--files", type=int, default=10, help="input Parquet files")
parser.add_argument("--block-rows", type=int, default=50_000)
args = parser.parse_args()


def process_tree_pss(root: int) -> int:
    """Bytes: the proportional set size of `root` and all its descendants (shared pages, e.g.
    Ray's object store, counted once overall)."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        todo += children.get(pid, [])
        try:
            for line in Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines():
                if line.startswith("Pss:"):
                    total += int(line.split()[1]) * 1024
        except OSError:
            continue
    return total


class PeakMemory(threading.Thread):
    def __init__(self, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.interval, self.peak, self.running = interval, 0, True

    def run(self) -> None:
        import os

        while self.running:
            self.peak = max(self.peak, process_tree_pss(os.getpid()))
            time.sleep(self.interval)


run = adult_run(args.run)
work = Path(tempfile.mkdtemp(prefix="explain_throughput_"))
frame = load_adult().frame
sample = frame.sample(args.rows, replace=True, random_state=0).reset_index(drop=True)
(work / "in").mkdir()
for i, part in enumerate(np.array_split(np.arange(args.rows), args.files)):
    sample.iloc[part].to_parquet(work / "in" / f"adult-{i:03d}.parquet", index=False)
print(f"input: {args.rows} rows in {args.files} Parquet files, "
      f"{sum(p.stat().st_size for p in (work / 'in').iterdir()) / 2**20:.0f} MiB", flush=True)

# Without Ray: model rows per input row, and the cost of a predicted row.
explainer = Explainer.open(run)
predict, predicted = explainer.model.favourable, []
explainer.model.favourable = lambda X: predicted.append(len(X)) or predict(X)
probe = sample.head(50_000)
started = time.perf_counter()
explainer.explain(probe)
in_process = time.perf_counter() - started
X = explainer.space.encode(probe)
started = time.perf_counter()
predict(X)
per_prediction = (time.perf_counter() - started) / len(X)
per_row = sum(predicted) / len(probe)

memory = PeakMemory()
memory.start()
manifest = explain_batch(run, work / "in", work / "out", block_rows=args.block_rows)
memory.running = False
memory.join()
driver = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
rate = manifest["rows_per_s"]
print(json.dumps(manifest, indent=2))
print(f"model rows predicted per input row   {per_row:8.2f}")
print(f"one predicted row (1 core)           {per_prediction * 1e6:8.2f} us")
print(f"in process, 1 core, no Ray           {len(probe) / in_process:8.0f} rows/s")
print(f"model-only limit on 2 cores          {2 / (per_row * per_prediction):8.0f} rows/s")
print(f"end to end (Ray start included)      {rate:8.0f} rows/s   (target >= 50,000)")
print(f"peak memory, whole process tree      {memory.peak / 2**30:8.2f} GiB (target < 2 GiB)")
print(f"peak memory, driver alone (max RSS)  {driver / 2**30:8.2f} GiB")
shutil.rmtree(work)
