"""Batch explanation against its model-bound limit, both measured in the same run.

Rows resampled from Adult (default 1,000,000), Parquet in -> Parquet out through the
`recourse explain` command (a local Ray on this machine's CPUs), run as a user would.

The limit (DESIGN.md section 7): explaining a row costs the model `work` whole-model rows (the
favourable check, then the actions asked rank by rank; a forest's vote stops early, so its
rows count by the share of its trees that voted), measured by explaining a sample in this
process, in blocks as the pipeline does. The model alone predicts `rate` rows/s on one core,
in calls sized as the pipeline's (a block; for a frame model its own `predict` on ready frames
of PREDICT_ROWS rows; for a forest the faster of its own `predict` and a full vote through the
same tree traversal), measured before and after the job, the faster taken. The limit is
cores x rate / work. It is also measured with the model alone on every core at once (a
forked process per core, each with rows of its own): the workers share the machine's caches
and memory, and a model that streams its input (a wide one-hot Pipeline) does not reach cores
x its one-core speed; on a shared machine other jobs lower this one too. The ratios are the
achieved rows/s over both:
  - the whole command (Python and Ray start, the job, exit),
  - the job as its manifest times it (from the command's start of work, Ray's start included),
  - streaming: the rows committed after the first part, over the time to the last part.
Other jobs on a shared machine lower these wall-clock ratios, so it also gives them in CPU time:
rows per CPU-second of the command's whole process tree over the model's own on one core
(rate / work), what the command reaches on cores of its own. Ray's workers run at the command's
niceness (Ray's default is 15 steps nicer), as the model-alone measurement does.
Also the command's peak memory (summed proportional set size of its process tree, so pages
shared with the object store count once, sampled every 0.2 s) and CPU time. The rows repeat
(resampled) but nothing caches or deduplicates them.

Run (from benchmarks/, with `nice -n 5` on a shared machine):
    python explain_throughput.py [--run RUN] [--rows 1000000] [--files 10]
    python explain_throughput.py --model-file [PIPELINE.joblib] [--run RUN]
Without --run it trains a short Adult run first (common.adult_run). --model-file measures a
user's frame-reading Pipeline (`model: {kind: file, input: frame}`): the one given (fitted on
Adult's raw columns), or common.adult_pipeline's OneHotEncoder + HistGradientBoosting.
"""

import argparse
import json
import multiprocessing
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
from common import adult_pipeline, adult_run

from distributed_recourse.batch import PART
from distributed_recourse.data.datasets import load_adult
from distributed_recourse.explain import Explainer
from distributed_recourse.model import PREDICT_ROWS, ForestVote

parser = argparse.ArgumentParser()
parser.add_argument("--run", default=None, help="a trained Adult run (default: train a short one)")
parser.add_argument("--model-file", nargs="?", const="", default=None,
                    help="measure a frame-reading Pipeline (default: common.adult_pipeline's)")
parser.add_argument("--rows", type=int, default=1_000_000)
parser.add_argument("--files", type=int, default=10, help="input Parquet files")
parser.add_argument("--block-rows", type=int, default=20_000)
parser.add_argument("--probe", type=int, default=50_000, help="rows explained in process for `work`")
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
    its processes used (a process's last fraction of a second before it ends is missed), also
    as a series of (time, CPU seconds so far)."""

    def __init__(self, root: int, interval: float = 0.2) -> None:
        super().__init__(daemon=True)
        self.root, self.interval, self.running = root, interval, True
        self.peak, self.cpu, self.series = 0, {}, []
        self.tick = os.sysconf("SC_CLK_TCK")

    def cpu_between(self, start: float, stop: float) -> float:
        times, used = zip(*self.series, strict=True)
        return float(np.interp(stop, times, used) - np.interp(start, times, used))

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
            self.series.append((time.time(), sum(self.cpu.values())))
            time.sleep(self.interval)


def best_seconds(call, repeats: int = 5) -> float:
    """Wall time of the fastest of `repeats` calls."""
    seconds = []
    for _ in range(repeats):
        started = time.perf_counter()
        call()
        seconds.append(time.perf_counter() - started)
    return min(seconds)


def model_calls(explainer: Explainer, X: np.ndarray) -> dict[str, object]:
    """Ways of asking the model alone for its whole answer on X, as the pipeline's calls are
    sized (a block; a frame model's own predict in frames of PREDICT_ROWS rows, as BlackBox
    asks it), each a function of nothing (its inputs are prepared, e.g. decoded, beforehand)."""
    model = explainer.model
    if model.input == "frame":
        frames = [explainer.space.decode(X[start:start + PREDICT_ROWS])
                  for start in range(0, len(X), PREDICT_ROWS)]
        return {"its own predict on frames": lambda: [model.estimator.predict(f) for f in frames]}
    calls = {"its own predict": lambda: model.estimator.predict(X)}
    vote = ForestVote.of(model.estimator)
    if vote is not None:
        X32 = np.ascontiguousarray(X, dtype=np.float32)

        def every_tree() -> np.ndarray:
            lead = np.zeros(len(X32))
            for tree, leads in zip(vote.trees, vote.leads, strict=True):
                lead += leads[tree.apply(X32)]
            return lead > 0

        calls["every tree, one traversal each"] = every_tree
    return calls


def model_rates(explainer: Explainer, X: np.ndarray, cores: int, rounds: int = 5) -> dict[str, tuple]:
    """Rows/s of the model alone, per way of asking it: on one core, and on every core at once
    (a forked process per core, each predicting its own rows `rounds` times after one warm-up
    call), which is what the explaining workers meet, sharing the machine's caches and memory.
    The processes share the model's pages, as the workers do not: a limit on the high side."""
    rates = {}
    fork = multiprocessing.get_context("fork")
    for name, call in model_calls(explainer, X).items():
        start = fork.Barrier(cores + 1)

        def predict(copy: np.ndarray, n=name, start=start) -> None:
            mine = model_calls(explainer, copy)[n]
            mine()
            start.wait()
            for _ in range(rounds):
                mine()

        workers = [fork.Process(target=predict, args=(X.copy(),)) for _ in range(cores)]
        for worker in workers:
            worker.start()
        start.wait()
        began = time.perf_counter()
        for worker in workers:
            worker.join()
        together = cores * rounds * len(X) / (time.perf_counter() - began)
        rates[name] = (len(X) / best_seconds(call), together)
    return rates


work = Path(tempfile.mkdtemp(prefix="explain_throughput_"))
if args.model_file is not None:
    pipeline = Path(args.model_file) if args.model_file else adult_pipeline(work / "pipeline.joblib")
    run = adult_run(args.run, model={"kind": "file", "path": str(pipeline.resolve()), "input": "frame"})
else:
    run = adult_run(args.run)
frame = load_adult().frame
sample = frame.sample(args.rows, replace=True, random_state=0).reset_index(drop=True)
(work / "in").mkdir()
for i, part in enumerate(np.array_split(np.arange(args.rows), args.files)):
    sample.iloc[part].to_parquet(work / "in" / f"adult-{i:03d}.parquet", index=False)
print(f"input: {args.rows} rows in {args.files} Parquet files, "
      f"{sum(p.stat().st_size for p in (work / 'in').iterdir()) / 2**20:.0f} MiB", flush=True)

# Without Ray: the model work per row, the model's own speed.
explainer = Explainer.open(run)
model = explainer.model
favourable, asked = model.favourable, []
model.favourable = lambda X: asked.append(len(X)) or favourable(X)
probe = sample.head(args.probe)
started = time.perf_counter()
for start in range(0, len(probe), args.block_rows):  # in blocks, as the pipeline asks the model
    explainer.explain(probe.iloc[start:start + args.block_rows])
in_process = len(probe) / (time.perf_counter() - started)
model.favourable = favourable
per_row = model.work / len(probe)
X = explainer.space.encode(sample.head(args.block_rows))
cores = os.cpu_count()
before = model_rates(explainer, X, cores)
load_before = os.getloadavg()[0]

command = [sys.executable, "-m", "distributed_recourse.cli", "explain", "--run", str(run),
           "--input", str(work / "in"), "--output", str(work / "out"),
           "--block-rows", str(args.block_rows)]
started = time.perf_counter()
job = subprocess.Popen(command, env={**os.environ, "RAY_ADDRESS": "", "RAY_worker_niceness": "0"},
                       stdout=subprocess.DEVNULL)
monitor = TreeMonitor(job.pid)
monitor.start()
assert job.wait() == 0, "recourse explain failed"
seconds = time.perf_counter() - started
monitor.running = False
monitor.join()
load_after = os.getloadavg()[0]
after = model_rates(explainer, X, cores)

cpu = sum(monitor.cpu.values())
manifest = json.loads((work / "out" / "manifest.json").read_text())
parts = sorted((p.stat().st_mtime, PART.fullmatch(p.name)) for p in (work / "out" / "data").glob("part-*"))
after_first = sum(int(m[3]) - int(m[2]) for _, m in parts[1:])
streamed = after_first / (parts[-1][0] - parts[0][0])
streamed_cpu = monitor.cpu_between(parts[0][0], parts[-1][0])
alone = max(rate[0] for rate in [*before.values(), *after.values()])
together = max(rate[1] for rate in [*before.values(), *after.values()])
limit, ceiling = cores * alone / per_row, together / per_row
rows = manifest["rows_read"]
print(json.dumps({k: manifest[k] for k in ("rows_read", "rows_written", "rows_rejected", "status",
                                           "nodes", "seconds")}, indent=2))
kind = type(model.estimator).__name__ + (f" ({len(model.estimator.estimators_)} trees)"
                                         if hasattr(model.estimator, "estimators_") else "")
print(f"model                                 {kind}, reads a {model.input}")
print(f"model rows asked per input row        {sum(asked) / len(probe):8.2f}")
print(f"model work per input row              {per_row:8.2f} whole-model rows")
for name in before:
    for i, where in enumerate(["1 core", f"{cores} cores at once"]):
        print(f"the model alone, {where}, {name}: {before[name][i]:.0f} rows/s before the job, "
              f"{after[name][i]:.0f} after")
print(f"model-bound limit on {cores} cores          {limit:8.0f} rows/s = {cores} x {alone:.0f} / "
      f"{per_row:.2f}")
print(f"  measured with {cores} cores at once       {ceiling:8.0f} rows/s = {together:.0f} / {per_row:.2f} "
      f"(shared caches and memory, and other jobs, if any)")
print(f"in process, 1 core, no Ray            {in_process:8.0f} rows/s: {in_process / (alone / per_row):.2f} "
      f"of the 1-core limit")
for name, achieved in [("the whole command", rows / seconds), ("the job (manifest, Ray start in)",
                                                               manifest["rows_per_s"]),
                       ("streaming (after the first part)", streamed)]:
    print(f"{name:<37} {achieved:8.0f} rows/s: {achieved / limit:.2f} of the limit, "
          f"{achieved / ceiling:.2f} of the measured one")
print(f"whole command wall time               {seconds:8.1f} s")
# On a machine shared with other jobs the wall-clock ratios fall with their load; CPU time
# says what the command would do on cores of its own: the model alone on one core explains
# alone / work rows per CPU-second, the command (every process it started) this many:
for name, count, used in [("the whole command", rows, cpu), ("streaming", after_first, streamed_cpu)]:
    print(f"CPU time, {name:<27} {used:8.1f} s: {count / used:.0f} rows per CPU-second, "
          f"{count / used / (alone / per_row):.2f} of the model's on one core")
print(f"load average (1 min) before / after   {load_before:8.1f} / {load_after:.1f} on {cores} cores")
print(f"peak memory, whole process tree       {monitor.peak / 2**30:8.2f} GiB (target < 2 GiB)")
shutil.rmtree(work)
