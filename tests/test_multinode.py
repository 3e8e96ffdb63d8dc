"""A real multi-node Ray cluster on this machine: a head and worker nodes started as separate
`ray start` processes, each worker offering one `trainer_slot`, one `shard_slot` and one
`explain_slot`. The commands run in their own processes against it (this test process may
hold a local Ray of its own): `recourse train --address` with one trainer per worker node, a
sweep whose every trial puts its two trainers on distinct nodes at once, a scope sharded over
both workers, and a worker node killed while the trainers run; `recourse explain --address`
explains on both worker nodes, and finishes every row exactly once though a worker node dies
midway."""

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import pytest
import yaml

from distributed_recourse.data.datasets import FILES, read_table

ROOT = Path(__file__).parent.parent
SLOT = {"trainer_slot": 1}
WORKER = {**SLOT, "shard_slot": 1, "explain_slot": 1}
EXPLAIN_SLOT = {"explain_slot": 1}

pytestmark = [pytest.mark.multinode,
              pytest.mark.skipif(sys.platform != "linux", reason="reads node processes from /proc")]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def process_table() -> dict[int, tuple[int, int]]:
    """pid -> (parent pid, process group) of every process on the machine."""
    table = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            table[int(entry.name)] = (int(fields[1]), int(fields[2]))
    return table


def command_line(pid: int) -> list[str]:
    """A process's arguments ([""] once it is gone)."""
    try:
        return Path(f"/proc/{pid}/cmdline").read_text().split("\0")
    except OSError:
        return [""]


class LocalCluster:
    """Ray nodes started with `ray start`, each in a session of its own so that one node can be
    killed alone: its process group (raylet, agents) and their descendants (the raylet's
    workers run in groups of their own). Only what this class started is ever stopped; `ray
    stop` would stop every Ray on the machine."""

    def __init__(self, temp_dir: str) -> None:
        self.temp_dir = temp_dir
        self.address = f"127.0.0.1:{free_port()}"
        self.env = {**os.environ, "RAY_ADDRESS": "", "RAY_AUTH_MODE": "disabled",
                    # a killed node is declared dead after about 3 s, not 15
                    "RAY_health_check_period_ms": "1000", "RAY_health_check_failure_threshold": "3"}
        self.groups: list[int] = []
        self.nodes: dict[str, int] = {}
        """node id -> the process group of its `ray start`"""
        self.head = ""

    def start(self, *options: str) -> str:
        """Start a node and return its id; a second try when a loaded machine makes the
        raylet miss Ray's 30 s start-up limit."""
        for _ in range(2):
            started = subprocess.Popen(
                ["ray", "start", f"--temp-dir={self.temp_dir}", "--disable-usage-stats",
                 "--object-store-memory=100000000", f"--dashboard-agent-listen-port={free_port()}",
                 *options],
                env=self.env, start_new_session=True, stdout=subprocess.PIPE,
                stderr=subprocess.STDOUT, text=True)
            self.groups.append(started.pid)
            output, _ = started.communicate(timeout=180)
            if started.returncode == 0:
                raylet = next(command_line(pid) for pid in self.processes(started.pid)
                              if command_line(pid)[0].endswith("raylet"))
                node_id = next(a.split("=", 1)[1] for a in raylet if a.startswith("--node_id="))
                self.nodes[node_id] = started.pid
                return node_id
            self.signal(self.processes(started.pid), signal.SIGKILL)
        raise AssertionError(output[-3000:])

    def start_head(self) -> None:
        port = self.address.split(":")[1]
        self.head = self.start("--head", f"--port={port}", "--num-cpus=0",
                               "--include-dashboard=false", f"--ray-client-server-port={free_port()}")

    def add_worker(self) -> str:
        """A worker node with 1 CPU, one trainer slot, one shard slot and one explaining slot."""
        return self.start(f"--address={self.address}", "--num-cpus=1",
                          f"--resources={json.dumps(WORKER)}")

    def processes(self, group: int) -> set[int]:
        table = process_table()
        members = {pid for pid, (_, pgid) in table.items() if pgid == group}
        while True:
            children = {pid for pid, (parent, _) in table.items() if parent in members} - members
            if not children:
                return members
            members |= children

    def find(self, node_id: str, title: str) -> int | None:
        """The pid of the actor process named `title` (e.g. `ray::StatsHub`) on a node. While
        the actor runs a method Ray titles it `title.method` (a Serve replica answering a
        health check: `ray::ServeReplica:app:Deployment.check_health`), so that counts too."""
        return next((pid for pid in self.processes(self.nodes[node_id])
                     if command_line(pid)[0].split(".", 1)[0] == title), None)

    def kill(self, node_id: str) -> None:
        """The node dies at once, as when its machine fails."""
        self.signal(self.processes(self.nodes.pop(node_id)), signal.SIGKILL)

    def stop(self) -> None:
        pids = set().union(*(self.processes(group) for group in self.groups))
        self.signal(pids, signal.SIGTERM)
        deadline = time.time() + 10
        while time.time() < deadline and any(Path(f"/proc/{pid}").exists() for pid in pids):
            time.sleep(0.5)
        self.signal(pids, signal.SIGKILL)

    @staticmethod
    def signal(pids: set[int], number: int) -> None:
        for pid in pids:
            with contextlib.suppress(ProcessLookupError):
                os.kill(pid, number)


@pytest.fixture(scope="module")
def cluster():
    # a short temp dir: Ray's socket paths under it must stay within 107 characters
    with tempfile.TemporaryDirectory(prefix="rmn", dir="/tmp", ignore_cleanup_errors=True) as temp:
        nodes = LocalCluster(temp)
        try:
            nodes.start_head()
            nodes.add_worker()
            nodes.add_worker()
            yield nodes
        finally:
            nodes.stop()


def config_file(tmp_path: Path, **train) -> Path:
    """tiny.yaml with one trainer per node (0.9 of a worker's CPU: the trial's own process and
    its hub need a little) and trials and checkpoints in a storage folder outside the output."""
    spec = yaml.safe_load((ROOT / "tune_configs" / "tiny.yaml").read_text())
    spec["train"] = {**spec["train"], "resources_per_trainer": SLOT, "cpus_per_trainer": 0.9,
                     "storage": str(tmp_path / "storage"), **train}
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(spec))
    return path


def recourse(cluster: LocalCluster, *args: str) -> list[str]:
    return [sys.executable, "-m", "distributed_recourse.cli", *args, "--address", cluster.address]


def records(path: Path) -> list[dict]:
    lines = path.read_text().splitlines() if path.exists() else []
    out = []
    for line in lines:
        try:
            out.append(json.loads(line))
        except json.JSONDecodeError:
            continue
    return out


def test_trainers_run_one_per_worker_node_and_pool_through_the_central_actor(cluster, tmp_path):
    workers = set(cluster.nodes) - {cluster.head}
    done = subprocess.run(recourse(cluster, "train", "--config", str(config_file(tmp_path)),
                                   "--output", str(tmp_path / "run")),
                          env=cluster.env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    result = json.loads((tmp_path / "run" / "summary.json").read_text())
    nodes = {scope: s["node_id"] for scope, s in result["scopes"].items()}
    assert set(nodes) == {"cluster-0", "cluster-1"}
    assert set(nodes.values()) == workers  # different nodes, the two workers, not the head
    assert not (tmp_path / "run" / "tune").exists()  # Tune used train.storage
    stats = json.loads((tmp_path / "run" / "stats.json").read_text())
    for scope, tally in stats["tallies"].items():  # the hub pooled both scopes' tallies
        assert sum(tally["people"]) == result["scopes"][scope]["n"]
        assert stats["counters"][scope]["node_id"] == nodes[scope]


def test_every_sweep_trial_trains_its_scopes_on_distinct_nodes_at_once(cluster, tmp_path):
    base = yaml.safe_load(config_file(tmp_path, env_steps=300).read_text())
    sweep_file = tmp_path / "sweep.yaml"
    sweep_file.write_text(yaml.safe_dump({"base": base, "max_concurrent": 1,
                                          "search": {"reward.pd": {"grid": [0.5, 2.0]}}}))
    done = subprocess.run(recourse(cluster, "tune", "--config", str(sweep_file), "--output",
                                   str(tmp_path / "sweep")),
                          env=cluster.env, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    workers = set(cluster.nodes) - {cluster.head}
    trials = sorted((tmp_path / "storage" / "sweep").glob("run_trial_*"))
    assert len(trials) == 2
    for trial in trials:
        rows = records(trial / "result.json")
        nodes = {scope: s["node_id"] for scope, s in rows[-1]["scopes"].items()}
        assert set(nodes.values()) == workers  # its two trainers, each on a worker of its own
        # at once: a round in which both scopes had trained and neither had stopped
        assert any(all(s["steps"] > 0 and s["stopped"] is None for s in r["scopes"].values())
                   for r in rows)


def test_a_sharded_scope_runs_its_shards_on_both_worker_nodes(cluster, tmp_path):
    spec = yaml.safe_load(config_file(tmp_path, env_steps=100, cpus_per_trainer=0.4, shards=2,
                                      shard_resources={"shard_slot": 1, "CPU": 0.4}).read_text())
    spec["level"] = "group"
    config = tmp_path / "sharded.yaml"
    config.write_text(yaml.safe_dump(spec))
    done = subprocess.run(recourse(cluster, "train", "--config", str(config), "--output",
                                   str(tmp_path / "run")),
                          env=cluster.env, capture_output=True, text=True, timeout=400)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    scope = json.loads((tmp_path / "run" / "summary.json").read_text())["scopes"]["all"]
    workers = set(cluster.nodes) - {cluster.head}
    assert sorted(scope["shard_nodes"]) == sorted(workers)  # one shard on each worker
    assert scope["node_id"] in workers and scope["steps"] >= 100


def test_a_killed_worker_node_costs_only_the_steps_since_the_last_checkpoint(cluster, tmp_path):
    """Kill a worker node once the trial has a checkpoint: Tune retries the trial from that
    checkpoint (trainers and hub together) on the live nodes, the run completes, and the
    counters and archive go on from what the checkpoint held."""
    storage, run = tmp_path / "storage", tmp_path / "run"
    victim = sorted(set(cluster.nodes) - {cluster.head})[0]
    config = config_file(tmp_path, env_steps=1500, checkpoint_every_s=2)
    spec = yaml.safe_load(config.read_text())
    spec["search"] = {"patience": 10**6, "stall": 10**6}  # the step budget ends it
    config.write_text(yaml.safe_dump(spec))
    log = (tmp_path / "train.log").open("w")
    training = subprocess.Popen(recourse(cluster, "train", "--config", str(config), "--output",
                                         str(run)),
                                env=cluster.env, stdout=log, stderr=subprocess.STDOUT,
                                start_new_session=True)
    try:
        deadline = time.time() + 240
        while True:
            trials = list((storage / "train").glob("run_trial_*"))
            checkpoints = sorted(trials[0].glob("checkpoint_*")) if trials else []
            if checkpoints and (checkpoints[-1] / "hub.json").exists():
                break
            assert training.poll() is None, "training ended before the fault"
            assert time.time() < deadline, "no checkpoint appeared"
            time.sleep(0.5)
        saved = json.loads((checkpoints[-1] / "hub.json").read_text())
        cluster.kill(victim)
        cluster.add_worker()  # a replacement with the lost slots
        assert training.wait(timeout=400) == 0, (tmp_path / "train.log").read_text()[-3000:]
    finally:
        if training.poll() is None:
            os.killpg(training.pid, signal.SIGKILL)
        log.close()

    result = json.loads((run / "summary.json").read_text())
    assert result["errors"] == []
    assert all(s["steps"] >= 1500 for s in result["scopes"].values())
    rows = records(trials[0] / "result.json")
    assert rows[-1]["iterations_since_restore"] < rows[-1]["training_iteration"], \
        "the trial did not continue from its checkpoint"
    stats = json.loads((run / "stats.json").read_text())
    kept = {(scope, json.dumps(e["set"])) for scope, entries in stats["archive"].items()
            for e in entries}
    assert {(scope, json.dumps(e["set"])) for scope, entries in saved["archive"].items()
            for e in entries} <= kept
    for scope, counters in saved["counters"].items():
        assert stats["counters"][scope]["model_calls"] >= counters["model_calls"]


# --------------------------------------------------------------------- batch explanation
def explain_command(cluster: LocalCluster, run: Path, folder: Path, block_rows: int) -> list[str]:
    return [sys.executable, "-m", "distributed_recourse.cli", "explain", "--run", str(run),
            "--input", str(folder / "in"), "--output", str(folder / "out"), "--address", cluster.address,
            "--worker-resources", json.dumps(EXPLAIN_SLOT), "--block-rows", str(block_rows)]


def people(folder: Path, rows: int) -> int:
    """`rows` Alzheimer rows in two Parquet files under folder/in."""
    table = read_table(FILES / "alzheimers_disease_data.csv").sample(rows, replace=True, random_state=1)
    (folder / "in").mkdir()
    half = rows // 2
    table.iloc[:half].to_parquet(folder / "in" / "a.parquet", index=False, row_group_size=1000)
    table.iloc[half:].to_parquet(folder / "in" / "b.parquet", index=False, row_group_size=1000)
    return rows


def assert_every_row_once(output: Path, rows: int) -> dict:
    data = pd.read_parquet(output / "data", columns=["source", "row"])
    assert not (output / "rejected").exists() or not list((output / "rejected").glob("part-*"))
    assert not data.duplicated().any() and len(data) == rows
    assert sorted(data["row"][data["source"] == "a.parquet"]) == list(range(rows // 2))
    manifest = json.loads((output / "manifest.json").read_text())
    assert manifest["rows_read"] == manifest["rows_written"] == rows
    assert sum(manifest["nodes"].values()) == rows
    return manifest


def wait_until_free(cluster: LocalCluster, resource: str, count: float) -> None:
    """Until the cluster has `count` of `resource` free: an earlier test's actors release
    their CPUs a few seconds after its command ends, and `recourse explain` starts as many
    explaining workers as are free when it starts."""
    waiting = (f"import ray, time; ray.init(address={cluster.address!r}, logging_level='ERROR'); "
               f"deadline = time.time() + 120\n"
               f"while ray.available_resources().get({resource!r}, 0) < {count} "
               f"and time.time() < deadline: time.sleep(0.5)\n"
               f"print(ray.available_resources().get({resource!r}, 0))")
    done = subprocess.run([sys.executable, "-c", waiting], env=cluster.env, capture_output=True,
                          text=True, timeout=180)
    assert done.returncode == 0 and float(done.stdout.split()[-1]) >= count, done.stderr[-3000:]


def test_explaining_workers_start_one_per_worker_node_and_the_manifest_counts_their_rows(
        cluster, hand_run, tmp_path):
    """One explaining worker per worker node's slot, none on the head. Which of them explains
    a block is Ray Data's choice: it gives each block to the first idle worker, the same one
    each time when blocks are explained faster than the driver reads them (here a block of
    1,000 rows is explained in 0.08 s and read in 0.3 s), so the test does not require both
    nodes to explain."""
    rows = people(tmp_path, 12_000)
    wait_until_free(cluster, "CPU", 2)  # an explaining worker asks for a CPU and its slot
    done = subprocess.run(explain_command(cluster, hand_run, tmp_path, 1_000), env=cluster.env,
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    manifest = assert_every_row_once(tmp_path / "out", rows)
    assert manifest["workers"] == 2
    assert set(manifest["nodes"]) <= set(cluster.nodes) - {cluster.head}  # the head explains none


def test_a_worker_node_killed_mid_explain_loses_and_repeats_no_row(cluster, hand_run, tmp_path):
    """The surviving explaining worker takes over the killed node's blocks (Ray Data retries
    them) and the job finishes, the rows committed before the kill kept."""
    rows = people(tmp_path, 40_000)
    command = explain_command(cluster, hand_run, tmp_path, 500)
    log = (tmp_path / "explain.log").open("w")
    explaining = subprocess.Popen(command, env=cluster.env, stdout=log, stderr=subprocess.STDOUT,
                                  start_new_session=True)
    try:
        deadline = time.time() + 180
        while len(list((tmp_path / "out" / "data").glob("part-*.parquet"))) < 6:
            assert explaining.poll() is None, "the job ended before the fault"
            assert time.time() < deadline, "no parts were committed"
            time.sleep(0.2)
        victim, survivor = sorted(set(cluster.nodes) - {cluster.head})
        cluster.kill(victim)
        assert explaining.wait(timeout=300) == 0, (tmp_path / "explain.log").read_text()[-3000:]
    finally:
        if explaining.poll() is None:
            os.killpg(explaining.pid, signal.SIGKILL)
        log.close()
    manifest = assert_every_row_once(tmp_path / "out", rows)
    # the victim's rows are those it committed before the kill (none, if Ray Data gave the
    # survivor every block: see the test above)
    assert set(manifest["nodes"]) <= {victim, survivor} and manifest["nodes"][survivor] > rows // 2
    cluster.add_worker()  # back to two worker nodes


# --------------------------------------------------------------------- real-time recourse
def test_a_submitted_serve_job_answers_over_http_from_a_worker_node_until_stopped(hand_run, tmp_path):
    """`ray job submit -- recourse serve` on a cluster whose head runs no work: the replica
    runs on the worker node, the HTTP proxy on the head; `ray job stop` takes the app down."""
    import requests

    with tempfile.TemporaryDirectory(prefix="rsv", dir="/tmp", ignore_cleanup_errors=True) as temp:
        nodes = LocalCluster(temp)
        jobs = f"http://127.0.0.1:{free_port()}"
        try:
            port = nodes.address.split(":")[1]
            nodes.head = nodes.start("--head", f"--port={port}", "--num-cpus=0", "--include-dashboard=true",
                                     f"--dashboard-port={jobs.rsplit(':', 1)[1]}",
                                     f"--ray-client-server-port={free_port()}")
            worker = nodes.add_worker()
            (tmp_path / "token").write_text("t0ken")
            url = f"http://127.0.0.1:{free_port()}"
            submit = ["ray", "job", "submit", "--address", jobs, "--no-wait", "--submission-id", "serving",
                      "--", sys.executable, "-m", "distributed_recourse.cli", "serve", "--run", str(hand_run),
                      "--port", url.rsplit(":", 1)[1], "--replicas", "1",
                      "--token-file", str(tmp_path / "token")]
            subprocess.run(submit, env=nodes.env, check=True, capture_output=True, timeout=120)
            auth = {"Authorization": "Bearer t0ken"}
            deadline = time.time() + 180
            while True:
                with contextlib.suppress(requests.RequestException):  # not listening, or no app yet
                    if requests.get(f"{url}/healthz", headers=auth, timeout=5).status_code == 200:
                        break
                assert time.time() < deadline, "the submitted service never answered"
                time.sleep(1)
            row = read_table(FILES / "alzheimers_disease_data.csv").head(1).to_dict("records")
            answered = requests.post(f"{url}/recourse", json=row, headers=auth, timeout=30)
            assert answered.status_code == 200 and len(answered.json()["rows"]) == 1
            assert requests.post(f"{url}/recourse", json=row, timeout=30).status_code == 401
            assert nodes.find(worker, "ray::ServeReplica:recourse:RecourseService")
            assert nodes.find(nodes.head, "ray::ServeReplica:recourse:RecourseService") is None

            subprocess.run(["ray", "job", "stop", "--address", jobs, "serving"], env=nodes.env, check=True,
                           capture_output=True, timeout=120)
            deadline = time.time() + 60
            while True:
                try:
                    status = requests.get(f"{url}/healthz", headers=auth, timeout=5).status_code
                except requests.RequestException:
                    status = None
                if status != 200:
                    break
                assert time.time() < deadline, "the app still answers after `ray job stop`"
                time.sleep(1)
            assert status in (None, 404, 503)  # the app is gone: no route behind Serve's proxy
        finally:
            nodes.stop()
