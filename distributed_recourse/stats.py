"""The central statistics hub: each scope's per-group tally and the archive of successful sets.

`StatsHub` is plain Python (tests use it directly). In training it runs as a named Ray actor
(`start_actor`), and environments reach it through `RemoteStats`; this module is the only
place that knows the hub is remote.
"""

from __future__ import annotations

import json
import os
import time
from pathlib import Path
from typing import Any

import numpy as np

from distributed_recourse.recourse.archive import best_entry
from distributed_recourse.recourse.metrics import GroupTally

NAMESPACE = "distributed-recourse"


class StatsHub:
    """Per scope: the latest tally of its current set and its archive of successful sets.

    A scope's representative tally, the one the other scopes pool with, is that of its best
    archived set once it has one, and of its current set before. The state is saved to
    `checkpoint` (atomically) at most every `save_every_s` seconds and restored on start."""

    def __init__(
        self, checkpoint: str | None = None, selection: str = "sr_minus_pd",
        save_every_s: float = 5.0,
    ) -> None:
        self.checkpoint = Path(checkpoint) if checkpoint else None
        self.selection = selection
        self.save_every_s = save_every_s
        self.tallies: dict[str, dict] = {}
        self.archive: dict[str, list[dict[str, Any]]] = {}
        self.steps: dict[str, int] = {}
        self.best_seen: dict[str, dict[str, Any]] = {}
        self._best: dict[str, dict[str, Any]] = {}
        """Each scope's best archived entry, kept as entries arrive (read on every sync)."""
        self.syncs = 0
        self._keys: set[tuple[str, str]] = set()
        self._saved_at = 0.0
        if self.checkpoint and self.checkpoint.is_file():
            self._restore(json.loads(self.checkpoint.read_text()))

    # ----------------------------------------------------------------- what scopes send
    def register(self, scope: str, tally: dict) -> None:
        """The driver seeds each scope's no-change tally, so pooled terms count everyone
        before that scope's trainer has started."""
        self.tallies.setdefault(scope, tally)
        self.archive.setdefault(scope, [])

    def sync(
        self, scope: str, tally: dict, entries: list[dict[str, Any]], steps: int,
        best_seen: dict[str, Any] | None = None,
    ) -> dict | None:
        """Record a scope's tally, new archive entries and highest-reward set so far; return
        the other scopes' pooled tally (None if there are none)."""
        self.syncs += 1
        self.tallies[scope] = tally
        if best_seen and best_seen["reward"] > self.best_seen.get(scope, {}).get(
            "reward", -np.inf
        ):
            self.best_seen[scope] = best_seen
        self.steps[scope] = max(steps, self.steps.get(scope, 0))
        self._add(scope, entries)
        if time.time() - self._saved_at >= self.save_every_s:
            self.save()
        return self.others(scope)

    def _add(self, scope: str, entries: list[dict[str, Any]]) -> int:
        kept = self.archive.setdefault(scope, [])
        added = 0
        for entry in entries:
            key = (scope, json.dumps(entry["set"]))
            if key not in self._keys:
                self._keys.add(key)
                kept.append(entry)
                added += 1
        best = best_entry(entries + [self._best[scope]] if scope in self._best else entries,
                          self.selection)
        if best is not None:
            self._best[scope] = best
        return added

    # ----------------------------------------------------------------- what scopes read
    def representative(self, scope: str) -> dict:
        best = self._best.get(scope)
        return best["tally"] if best else self.tallies[scope]

    def others(self, scope: str) -> dict | None:
        pooled = None
        for other in self.tallies:
            if other != scope:
                tally = GroupTally.from_dict(self.representative(other))
                pooled = tally if pooled is None else pooled + tally
        return pooled.to_dict() if pooled is not None else None

    def best(self, scope: str) -> dict[str, Any] | None:
        return self._best.get(scope)

    def snapshot(self) -> dict[str, Any]:
        return {"tallies": self.tallies, "archive": self.archive, "steps": self.steps,
                "best_seen": self.best_seen, "syncs": self.syncs}

    # ----------------------------------------------------------------- persistence
    def save(self) -> None:
        if self.checkpoint is None:
            return
        self.checkpoint.parent.mkdir(parents=True, exist_ok=True)
        partial = self.checkpoint.with_suffix(".partial")
        partial.write_text(json.dumps(self.snapshot()))
        os.replace(partial, self.checkpoint)
        self._saved_at = time.time()

    def _restore(self, state: dict[str, Any]) -> None:
        self.tallies = state["tallies"]
        self.steps = state["steps"]
        self.best_seen = state.get("best_seen", {})
        self.syncs = state.get("syncs", 0)
        for scope, entries in state["archive"].items():
            self.archive[scope] = []
            self._add(scope, entries)

    def pid(self) -> int:
        """The process the hub lives in (fault tests kill it)."""
        return os.getpid()


def start_actor(name: str, checkpoint: str, selection: str, resources: dict | None = None):
    """The hub as a named, restartable Ray actor; a restarted actor restores its checkpoint.

    Without `resources` it lives on the caller's node, so that on a cluster it writes, and
    after a restart reads, the checkpoint where the caller's files are (Ray 2.60 places actors
    with a soft node affinity on any node, so the affinity is hard)."""
    import ray
    from ray.util.scheduling_strategies import NodeAffinitySchedulingStrategy

    placement = {"resources": resources} if resources else {
        "scheduling_strategy": NodeAffinitySchedulingStrategy(
            ray.get_runtime_context().get_node_id(), soft=False)}
    actor = ray.remote(StatsHub).options(
        name=name, namespace=NAMESPACE, num_cpus=0, **placement,
        max_restarts=-1, max_task_retries=-1, get_if_exists=True,
    )
    return actor.remote(checkpoint, selection)


class RemoteStats:
    """The environments' client of the hub actor, found by name (picklable into env configs)."""

    def __init__(self, name: str) -> None:
        self.name = name
        self._actor = None

    def __getstate__(self) -> dict:
        return {"name": self.name}

    def __setstate__(self, state: dict) -> None:
        self.__init__(state["name"])

    @property
    def actor(self):
        import ray

        if self._actor is None:
            self._actor = ray.get_actor(self.name, namespace=NAMESPACE)
        return self._actor

    def sync(
        self, scope: str, tally: dict, entries: list, steps: int, best_seen: dict | None = None
    ) -> dict | None:
        import ray

        return ray.get(self.actor.sync.remote(scope, tally, entries, steps, best_seen))
