"""The central statistics hub: the one owner of a run's search state.

Per scope it keeps the tally of the scope's best set (what the other scopes pool under hybrid
fairness), the archive of distinct successful sets, the best set seen, and the counters the stop
rule reads (steps, model calls, training time, the step of the last improvement, why the scope
stopped). Scope trainers hold no copy: after each round the engine records their reports here,
and a restored run gets its counters back from here.

`StatsHub` is plain Python (tests use it directly); in a run it is a Ray actor (`start_hub`).
"""

from __future__ import annotations

import json
from typing import Any

from distributed_recourse.recourse.archive import best_entry
from distributed_recourse.recourse.metrics import GroupTally
from distributed_recourse.recourse.stopping import Progress


class StatsHub:
    def __init__(self, selection: str = "sr_minus_pd") -> None:
        self.selection = selection
        self.tallies: dict[str, dict] = {}
        self.archive: dict[str, list[dict[str, Any]]] = {}
        self.best_seen: dict[str, dict[str, Any]] = {}
        self.counters: dict[str, dict[str, Any]] = {}
        self._keys: set[tuple[str, str]] = set()
        self.rounds = 0
        self.wall_s = 0.0
        """Wall time of the run so far, over every attempt (a restored run goes on counting)."""

    # ----------------------------------------------------------------- what scopes send
    def register(self, scope: str, tally: dict) -> None:
        """The engine seeds each scope's no-change tally, so that pooled terms count everyone
        before that scope's first round."""
        self.tallies.setdefault(scope, tally)
        self.archive.setdefault(scope, [])
        self.counters.setdefault(scope, {"steps": 0, "model_calls": 0, "train_s": 0.0,
                                         "improved_at": 0, "key": float("-inf"),
                                         "stopped": None, "node_id": None,
                                         "shard_nodes": []})

    def record(self, scope: str, report: dict[str, Any]) -> None:
        """A trainer's report after a round: its best set, new archive entries, counters."""
        best, c = report["best"], self.counters[scope]
        self.tallies[scope] = best["tally"]
        self.best_seen[scope] = best
        for entry in report["entries"]:
            key = (scope, json.dumps(entry["set"]))
            if key not in self._keys:
                self._keys.add(key)
                self.archive[scope].append(entry)
        if report["improved"]:  # judged by the scope, under one tally of the others
            c["improved_at"] = report["steps"]
        c["key"] = report["key"]
        for name in ("steps", "model_calls", "train_s"):
            c[name] = report[name]
        for name in ("node_id", "shard_nodes", "handover"):  # what a trainer adds, if anything
            c[name] = report.get(name, c.get(name))

    def record_round(self, reports: dict[str, dict[str, Any]], wall_s: float) -> None:
        for scope, report in reports.items():
            self.record(scope, report)
        self.rounds += 1
        self.wall_s = wall_s

    def stop(self, scope: str, reason: str) -> None:
        self.counters[scope]["stopped"] = reason

    # ----------------------------------------------------------------- what scopes read
    def others(self, scope: str) -> dict | None:
        """The other scopes' pooled tally (None if there is no other scope). A scope that has
        stopped keeps serving the tally of its best set."""
        pooled = None
        for other, tally in self.tallies.items():
            if other != scope:
                t = GroupTally.from_dict(tally)
                pooled = t if pooled is None else pooled + t
        return pooled.to_dict() if pooled is not None else None

    def others_all(self) -> dict[str, dict | None]:
        return {scope: self.others(scope) for scope in self.tallies}

    def progress(self, scope: str) -> Progress:
        c = self.counters[scope]
        best = self.best_seen.get(scope, {})
        return Progress(c["steps"], c["model_calls"], c["improved_at"], bool(best.get("met")),
                        c["train_s"], len(self.archive[scope]))

    def best(self, scope: str) -> dict[str, Any] | None:
        """The scope's best archived set under the selection rule."""
        return best_entry(self.archive.get(scope, []), self.selection)

    def status(self) -> dict[str, dict[str, Any]]:
        """Per scope what a progress display shows: counters, the best set's figures."""
        out = {}
        for scope, c in self.counters.items():
            best = self.best_seen.get(scope, {})
            out[scope] = {**{k: v for k, v in c.items() if k != "key"},
                          "archived": len(self.archive[scope]),
                          **{k: best.get(k) for k in ("SR", "PD", "ECR_gap", "met")}}
        return out

    # ----------------------------------------------------------------- persistence
    def snapshot(self) -> dict[str, Any]:
        return {"selection": self.selection, "tallies": self.tallies, "archive": self.archive,
                "best_seen": self.best_seen, "counters": self.counters, "rounds": self.rounds,
                "wall_s": self.wall_s}

    @classmethod
    def from_snapshot(cls, state: dict[str, Any]) -> StatsHub:
        hub = cls(state["selection"])
        hub.tallies, hub.best_seen = state["tallies"], state["best_seen"]
        hub.counters, hub.rounds, hub.wall_s = state["counters"], state["rounds"], state["wall_s"]
        for scope, entries in state["archive"].items():
            hub.archive[scope] = entries
            hub._keys.update((scope, json.dumps(e["set"])) for e in entries)
        return hub

    def restore(self, state: dict[str, Any]) -> None:
        """Take over a checkpointed hub's state (the actor restores in place)."""
        self.__dict__.update(StatsHub.from_snapshot(state).__dict__)


def start_hub(selection: str, placement: dict[str, Any] | None = None):
    """The hub as a Ray actor (`placement`: Ray scheduling options, e.g. a placement group
    bundle). It lives as long as its handle; a run that loses it restarts from its last
    checkpoint, hub included."""
    import ray

    return ray.remote(StatsHub).options(num_cpus=0, **(placement or {})).remote(selection)
