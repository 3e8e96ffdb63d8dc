"""Batch explanation throughput: rows resampled from Adult (default 1,000,000), Parquet in ->
Parquet out through the `recourse explain` command (a local Ray on this machine's CPUs), run as
a user would: rows/s end to end (the command's wall time: Python, Ray's start, the job) and peak
memory of the command's whole process tree (it and every Ray process it starts: the sum of their
proportional set sizes, so pages shared with the object store count once, sampled every 0.2 s),
and its CPU time: on a machine shared with other jobs, rows per CPU-second times 2 says what the
command does on 2 cores of its own. Target: at least 50,000 rows/s on 2 cores, memory < 2 GiB.

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


def process_tree(root: int) -> list[int]:
    """`root` and all its descendants."""
    children: dict[int, list[int]] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        children.setdefault(int(fields[1]), []).append(int(stat.parent.name))
    tree, todo = [], [root]
    while todo:
        tree.append(todo.pop())
        todo += children.get(tree[-1], [])
    return tree


class TreeMonitor(threading.Thread):
    """Samples a process tree every `interval` s: the peak of its summed proportional set size
    (shared pages, e.g. Ray's object store, counted once overall), and the CPU seconds each of
    its processes used (a process's last fraction of a second before it ends is missed)."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval, self.running = root, interval, True
        self.peak, self.cpu = 0, {}
        self.tick = os.sysconf("SC_CLK_TCK")

    def run(self) -> None:
        while self.running:
            total = 0
            for pid in process_tree(self.root):
                try:
                    rollup = Path(f"/proc/{pid}/smaps_rollup").read_text().splitlines()
                    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
                except OSError:
                    continue
                total += sum(int(line.split()[1]) * 1024 for line in rollup if line.startswith("Pss:"))
                self.cpu[pid] = (int(fields[11]) + int(fields[12])) / self.tick  # utime + stime
            self.peak = max(self.peak, total)
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
monitor = TreeMonitor(job.pid)
monitor.start()
assert job.wait() == 0, "recourse explain failed"
seconds = time.perf_counter() - started
monitor.running = False
monitor.join()
cpu = sum(monitor.cpu.values())
manifest = json.loads((work / "out" / "manifest.json").read_text())
print(json.dumps(manifest, indent=2))
print(f"model rows predicted per input row   {per_row:8.2f}")
print(f"one predicted row (1 core)           {per_prediction * 1e6:8.2f} us")
print(f"in process, 1 core, no Ray           {len(probe) / in_process:8.0f} rows/s")
print(f"model-only limit on 2 cores          {2 / (per_row * per_prediction):8.0f} rows/s")
print(f"end to end, the whole command        {manifest['rows_read'] / seconds:8.0f} rows/s "
      f"({seconds:.1f} s; target >= 50,000)")
print(f"the job, after Ray's start           {manifest['rows_per_s']:8.0f} rows/s")
print(f"CPU time of the whole process tree   {cpu:8.0f} s: {manifest['rows_read'] / cpu:.0f} rows per "
      f"CPU-second, {2 * manifest['rows_read'] / cpu:.0f} rows/s on 2 cores of its own "
      f"(load average now {os.getloadavg()[0]:.1f})")
print(f"peak memory, whole process tree      {monitor.peak / 2**30:8.2f} GiB (target < 2 GiB)")
shutil.rmtree(work)
