"""A bounded load test of `recourse serve`: latency of single-row requests at fixed rates, and
rows/s for 100-row requests. Target (2 cores, one replica): single-row p99 <= 25 ms at 50
requests/s, no request lost or failed.

It starts `recourse serve --replicas 1` on 127.0.0.1 (a local Ray of its own) as a user would,
then sends, open loop (each request at its scheduled time, whether or not earlier ones were
answered), a fixed number of requests at a fixed rate to 127.0.0.1 only, and stops by itself.
A request's latency runs from its scheduled time to the end of its answer, so a client or
server that falls behind shows in the figures. Rows are Adult's, as a client would send them.
Every answer is checked: HTTP 200 and one explained row per row sent.

Run (from benchmarks/, with `nice -n 5` on a shared machine):
    python serve_latency.py [--run RUN] [--port 8123]
Without --run it trains a short Adult run first (common.adult_run).
"""

import argparse
import asyncio
import json
import os
import signal
import subprocess
import sys
import time

import aiohttp
import numpy as np
from common import adult_run

from distributed_recourse.data.datasets import load_adult

parser = argparse.ArgumentParser()
parser.add_argument("--run", default=None, help="a trained Adult run (default: train a short one)")
parser.add_argument("--port", type=int, default=8123)
parser.add_argument("--seconds", type=float, default=10.0, help="length of each single-row phase")
args = parser.parse_args()
URL = f"http://127.0.0.1:{args.port}"

run = adult_run(args.run)
people = load_adult().frame.drop(columns=["income"]).sample(2_000, random_state=0)
rows = json.loads(people.to_json(orient="records"))


async def phase(session: aiohttp.ClientSession, rate: float, count: int, size: int) -> dict:
    """`count` requests of `size` rows, one every 1/rate s; latencies and failures."""
    latencies, failures = [], []

    async def send(i: int, due: float) -> None:
        await asyncio.sleep(max(0.0, due - time.perf_counter()))
        body = [rows[(i * size + k) % len(rows)] for k in range(size)]
        try:
            async with session.post(f"{URL}/recourse", json=body) as answer:
                payload = await answer.json()
                if answer.status != 200 or len(payload["rows"]) != size:
                    failures.append(f"HTTP {answer.status}")
        except (aiohttp.ClientError, asyncio.TimeoutError) as problem:
            failures.append(type(problem).__name__)
        latencies.append(time.perf_counter() - due)

    start = time.perf_counter() + 0.1
    await asyncio.gather(*(send(i, start + i / rate) for i in range(count)))
    seconds = time.perf_counter() - start
    return {"latencies": np.array(latencies) * 1e3, "failures": failures, "seconds": seconds}


async def load_test() -> None:
    timeout = aiohttp.ClientTimeout(total=60)
    async with aiohttp.ClientSession(timeout=timeout, connector=aiohttp.TCPConnector(limit=256)) as session:
        await phase(session, 20, 40, 1)  # warm-up, not reported
        for rate in (50, 200):
            result = await phase(session, rate, int(rate * args.seconds), 1)
            p50, p95, p99 = np.percentile(result["latencies"], [50, 95, 99])
            target = " (target p99 <= 25 ms)" if rate == 50 else ""
            print(f"1-row requests at {rate:3d}/s: {len(result['latencies'])} sent, "
                  f"{len(result['failures'])} failed; latency p50 {p50:.1f} ms, p95 {p95:.1f} ms, "
                  f"p99 {p99:.1f} ms{target}", flush=True)
        result = await phase(session, 50, 150, 100)  # 5,000 rows/s offered: more than it takes
        p50, p99 = np.percentile(result["latencies"], [50, 99])
        print(f"100-row requests at  50/s: {len(result['latencies'])} sent, "
              f"{len(result['failures'])} failed; {100 * len(result['latencies']) / result['seconds']:.0f} "
              f"rows/s; latency p50 {p50:.1f} ms, p99 {p99:.1f} ms", flush=True)


server = subprocess.Popen(
    [sys.executable, "-m", "distributed_recourse.cli", "serve", "--run", str(run), "--port",
     str(args.port), "--replicas", "1"],
    env={**os.environ, "RAY_ADDRESS": ""}, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
try:
    deadline = time.time() + 180
    while True:
        assert server.poll() is None, "recourse serve ended"
        assert time.time() < deadline, "recourse serve did not answer /healthz"
        try:
            import urllib.request

            with urllib.request.urlopen(f"{URL}/healthz", timeout=2) as health:
                if health.status == 200:
                    break
        except OSError:
            time.sleep(0.5)
    print(f"serving {run} on {URL}, one replica; load average {os.getloadavg()[0]:.1f} on "
          f"{os.cpu_count()} cores", flush=True)
    asyncio.run(load_test())
    print(f"load average after: {os.getloadavg()[0]:.1f}")
finally:
    server.send_signal(signal.SIGINT)
    server.wait(timeout=60)
