"""Batch explanation throughput: rows resampled from Adult (default 1,000,000), Parquet in ->
Parquet out through the `recourse explain` command (a local Ray on this machine's CPUs), run as
a user would: rows/s end to end (the command's wall time: Python, Ray's start, the job) and peak
memory of the command's whole process tree (it and every Ray process it starts: the sum of their
proportional set sizes, so pages shared with the object store count once, sampled every 0.2 s).
Target: at least 50,000 rows/s on 2 cores, memory under 2 GiB.

For the physical limit (DESIGN.md section 7) it also measures, in this process without Ray, the
model rows predicted per input row and the cost of one predicted row. The rows are resampled as
they are, so most occur many times; nothing in the pipeline caches or deduplicates rows.

Run: python benchmarks/explain_throughput.py [--run RUN] [--rows 1000000] [--files 10]
Without --run it trains a short Adult run first (see common.adult_run).
"""

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from common import adult_run

from distributed_recourse.data.datasets import load_adult
from distributed_recourse.explain import Explainer

parser = argparse.ArgumentParser()
parser.add_argument("--run", default=None, help="a trained Adult run (default: train a short one)")
parser.add_argument("--rows", type=int, default=1_000_000)
parser.add_argument("--files", type=int, default=10, help="input Parquet files")
parser.add_argument("--block-rows", type=int, default=20_000)
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
    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval, self.peak, self.running = root, interval, 0, True

    def run(self) -> None:
        while self.running:
            self.peak = max(self.peak, process_tree_pss(self.root))
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

command = [sys.executable, "-m", "distributed_recourse.cli", "explain", "--run", str(run),
           "--input", str(work / "in"), "--output", str(work / "out"),
           "--block-rows", str(args.block_rows)]
started = time.perf_counter()
job = subprocess.Popen(command, env={**os.environ, "RAY_ADDRESS": ""}, stdout=subprocess.DEVNULL)
memory = PeakMemory(job.pid)
memory.start()
assert job.wait() == 0, "recourse explain failed"
seconds = time.perf_counter() - started
memory.running = False
memory.join()
manifest = json.loads((work / "out" / "manifest.json").read_text())
print(json.dumps(manifest, indent=2))
print(f"model rows predicted per input row   {per_row:8.2f}")
print(f"one predicted row (1 core)           {per_prediction * 1e6:8.2f} us")
print(f"in process, 1 core, no Ray           {len(probe) / in_process:8.0f} rows/s")
print(f"model-only limit on 2 cores          {2 / (per_row * per_prediction):8.0f} rows/s")
print(f"end to end, the whole command        {manifest['rows_read'] / seconds:8.0f} rows/s "
      f"({seconds:.1f} s; target >= 50,000)")
print(f"the job, after Ray's start           {manifest['rows_per_s']:8.0f} rows/s")
print(f"peak memory, whole process tree      {memory.peak / 2**30:8.2f} GiB (target < 2 GiB)")
shutil.rmtree(work)
