"""The statistics hub (plain Python, no Ray): tallies, pooled terms, the archive, checkpoints."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from distributed_recourse import stats as stats_module
from distributed_recourse.stats import StatsHub


def tally(people, flipped_any, flipped_best, effective, n_actions=2) -> dict:
    return {"people": people, "flipped_any": flipped_any, "flipped_best": flipped_best,
            "effective": effective, "n_actions": n_actions}


A = tally([3, 3], [1, 0], [1, 0], [0, 0])
B = tally([2, 4], [2, 1], [1, 1], [1, 0])
C = tally([5, 0], [4, 0], [3, 0], [2, 0])


def entry(scope, set_, sr, pd, gower, tally_, reward=0.0) -> dict:
    return {"scope": scope, "set": set_, "SR": sr, "PD": pd, "gower_active": gower,
            "tally": tally_, "reward": reward}


# archived sets of scope b, each with its own tally
TB1 = tally([2, 4], [2, 3], [2, 3], [1, 1])
TB2 = tally([2, 4], [2, 4], [2, 4], [1, 1])
TB3 = tally([2, 4], [1, 3], [1, 3], [0, 1])
E1 = entry("b", [[1.0, 0.0]], 0.8, 0.1, 0.2, TB1, reward=50.0)  # SR - PD 0.7
E2 = entry("b", [[2.0, 0.0]], 0.9, 0.3, 0.1, TB2, reward=60.0)  # 0.6, nearest
E3 = entry("b", [[3.0, 0.0]], 0.75, 0.05, 0.15, TB3, reward=40.0)  # 0.7 (ties E1), nearer than E1


def hub_abc(**kwargs) -> StatsHub:
    hub = StatsHub(**kwargs)
    hub.register("a", A)
    hub.register("b", B)
    hub.register("c", C)
    return hub


def test_others_sums_the_other_scopes_tallies():
    hub = hub_abc()
    # B + C: people (7, 4), any (6, 1), best (4, 1), effective (3, 0), N 4
    assert hub.others("a") == tally([7, 4], [6, 1], [4, 1], [3, 0], 4)
    # A + C
    assert hub.others("b") == tally([8, 3], [5, 0], [4, 0], [2, 0], 4)
    # A + B
    assert hub.others("c") == tally([5, 7], [3, 1], [2, 1], [1, 0], 4)
    # a scope the hub does not know pools everyone
    assert hub.others("z") == tally([10, 7], [7, 1], [5, 1], [3, 0], 6)
    assert hub.archive == {"a": [], "b": [], "c": []}


def test_others_is_none_without_other_scopes():
    hub = StatsHub()
    assert hub.others("a") is None
    hub.register("a", A)
    assert hub.others("a") is None
    assert hub.sync("a", A, [], 1) is None


def test_register_does_not_overwrite_a_synced_tally():
    hub = StatsHub()
    hub.register("a", A)
    hub.sync("a", C, [], 5)
    hub.register("a", B)
    assert hub.tallies["a"] == C
    assert hub.representative("a") == C


def test_sync_records_tally_and_returns_the_others():
    hub = hub_abc()
    new_a = tally([3, 3], [3, 2], [2, 2], [1, 1])
    pooled = hub.sync("a", new_a, [], 10)
    assert pooled == tally([7, 4], [6, 1], [4, 1], [3, 0], 4)  # B + C
    assert hub.tallies["a"] == new_a
    # b now pools with the new tally of a: new_a + C
    assert hub.sync("b", B, [], 3) == tally([8, 3], [7, 2], [5, 2], [3, 1], 4)
    assert hub.syncs == 2
    assert hub.steps == {"a": 10, "b": 3}
    hub.sync("a", new_a, [], 7)  # steps never go back
    assert hub.steps["a"] == 10


def test_representative_is_the_best_archived_tally():
    hub = hub_abc()
    assert hub.representative("b") == B
    hub.sync("b", B, [E2], 5)
    assert hub.representative("b") == TB2
    hub.sync("b", B, [E1], 6)  # E1 (0.7) beats E2 (0.6)
    assert hub.representative("b") == TB1
    # the current tally of b is not what the others pool with once b has archived sets
    hub.sync("b", tally([2, 4], [0, 0], [0, 0], [0, 0]), [], 7)
    assert hub.representative("b") == TB1
    # others(a) = TB1 + C: people (7, 4), any (6, 3), best (5, 3), effective (3, 1)
    assert hub.others("a") == tally([7, 4], [6, 3], [5, 3], [3, 1], 4)
    # scopes without archived sets still pool their latest tally
    assert hub.others("b") == tally([8, 3], [5, 0], [4, 0], [2, 0], 4)


def test_duplicate_entries_are_archived_once():
    hub = hub_abc()
    hub.sync("b", B, [E1, E2], 1)
    hub.sync("b", B, [E1, dict(E2, reward=99.0)], 2)  # same sets again
    assert [e["set"] for e in hub.archive["b"]] == [[[1.0, 0.0]], [[2.0, 0.0]]]
    assert hub.archive["b"][1]["reward"] == 60.0
    # the same set in another scope is another entry
    hub.sync("a", A, [dict(E1, scope="a")], 1)
    assert len(hub.archive["a"]) == 1
    # and a duplicate within one batch counts once
    hub.sync("c", C, [dict(E3, scope="c"), dict(E3, scope="c")], 1)
    assert len(hub.archive["c"]) == 1


def test_best_under_sr_minus_pd():
    hub = hub_abc()
    assert hub.best("b") is None
    hub.sync("b", B, [E2], 1)
    assert hub.best("b")["set"] == E2["set"]
    hub.sync("b", B, [E1], 2)
    assert hub.best("b")["set"] == E1["set"]  # 0.7 > 0.6
    # E3: 0.75 - 0.05 ties 0.8 - 0.1 (both 0.7 after rounding), and its Gower 0.15 < 0.2
    hub.sync("b", B, [E3], 3)
    assert hub.best("b")["set"] == E3["set"]
    assert hub.representative("b") == TB3


def test_best_under_gower():
    hub = hub_abc(selection="gower")
    hub.sync("b", B, [E1, E2, E3], 1)
    assert hub.best("b")["set"] == E2["set"]  # lowest Gower 0.1
    # a tie on Gower goes to higher SR - PD
    e4 = entry("b", [[4.0, 0.0]], 0.95, 0.0, 0.1, TB1)
    hub.sync("b", B, [e4], 2)
    assert hub.best("b")["set"] == [[4.0, 0.0]]
    assert hub.representative("b") == TB1


def test_best_seen_keeps_the_highest_reward():
    hub = hub_abc()
    hub.sync("a", A, [], 1, {"set": [[1.0]], "reward": 5.0})
    hub.sync("a", A, [], 2, {"set": [[2.0]], "reward": 3.0})
    assert hub.best_seen["a"] == {"set": [[1.0]], "reward": 5.0}
    hub.sync("a", A, [], 3, None)
    assert hub.best_seen["a"]["reward"] == 5.0
    hub.sync("a", A, [], 4, {"set": [[3.0]], "reward": 7.0})
    assert hub.best_seen["a"] == {"set": [[3.0]], "reward": 7.0}
    hub.sync("b", B, [], 1, {"set": [[9.0]], "reward": -2.0})
    assert hub.best_seen["b"]["reward"] == -2.0
    assert hub.best_seen["a"]["reward"] == 7.0


def test_snapshot():
    hub = hub_abc()
    hub.sync("b", B, [E1], 4, {"set": [[1.0]], "reward": 5.0})
    snap = hub.snapshot()
    assert snap["tallies"] == {"a": A, "b": B, "c": C}
    assert snap["archive"] == {"a": [], "b": [E1], "c": []}
    assert snap["steps"] == {"b": 4}
    assert snap["best_seen"] == {"b": {"set": [[1.0]], "reward": 5.0}}
    assert snap["syncs"] == 1
    json.dumps(snap)


# ---------------------------------------------------------------- checkpoints
def test_save_is_atomic_and_restores(tmp_path, monkeypatch):
    path = tmp_path / "hub" / "stats.json"
    hub = hub_abc(checkpoint=str(path), save_every_s=3600.0)
    # the first added entry saves (nothing saved yet); the next within the hour does not
    hub.sync("b", B, [E1], 10, {"set": [[1.0]], "reward": 5.0})
    assert len(json.loads(path.read_text())["archive"]["b"]) == 1
    hub.sync("b", B, [E2], 12, {"set": [[2.0]], "reward": 8.0})
    assert len(json.loads(path.read_text())["archive"]["b"]) == 1

    # save() writes a partial file and renames it over the checkpoint
    replaced = []
    real_replace = stats_module.os.replace

    def replace(src, dst):
        # at rename time the partial file is complete and the checkpoint still the old one
        assert json.loads(Path(src).read_text())["archive"]["b"][1]["set"] == E2["set"]
        assert len(json.loads(Path(dst).read_text())["archive"]["b"]) == 1
        replaced.append((str(src), str(dst)))
        real_replace(src, dst)

    monkeypatch.setattr(stats_module.os, "replace", replace)
    hub.save()
    monkeypatch.undo()
    assert replaced == [(str(tmp_path / "hub" / "stats.partial"), str(path))]
    assert sorted(p.name for p in path.parent.iterdir()) == ["stats.json"]

    restored = StatsHub(checkpoint=str(path))
    assert restored.tallies == {"a": A, "b": B, "c": C}
    assert restored.archive == {"a": [], "b": [E1, E2], "c": []}
    assert restored.steps == {"b": 12}
    assert restored.best_seen == {"b": {"set": [[2.0]], "reward": 8.0}}
    assert restored.syncs == 2
    assert restored.best("b")["set"] == E1["set"]
    assert restored.others("a") == tally([7, 4], [6, 3], [5, 3], [3, 1], 4)  # TB1 + C
    # the driver registering again keeps the restored tallies
    restored.register("a", C)
    assert restored.tallies["a"] == A
    # entries re-sent after the restart are not archived twice; new ones are
    restored.sync("b", B, [E1, E2, E3], 13)
    assert [e["set"] for e in restored.archive["b"]] == [E1["set"], E2["set"], E3["set"]]
    restored.sync("b", B, [E3], 14)
    assert len(restored.archive["b"]) == 3
    # the restored hub saved the new entry (its first save since the start)
    assert [e["set"] for e in json.loads(path.read_text())["archive"]["b"]] == [
        E1["set"], E2["set"], E3["set"]]


def test_no_checkpoint_no_file(tmp_path):
    hub = hub_abc()
    hub.sync("b", B, [E1], 1)
    hub.save()  # nothing to write to
    assert list(tmp_path.iterdir()) == []
    missing = tmp_path / "none.json"
    fresh = StatsHub(checkpoint=str(missing))
    assert fresh.tallies == {} and fresh.archive == {} and fresh.steps == {}
    assert not missing.exists()


def test_sync_without_new_entries_is_checkpointed(tmp_path):
    """A search that archives nothing still has state worth keeping across a restart: each
    scope's tally (the pooled terms of hybrid fairness) and its best-reward set (the fallback
    result). With save_every_s = 0 every sync may save."""
    path = tmp_path / "stats.json"
    hub = hub_abc(checkpoint=str(path), save_every_s=0.0)
    new_a = tally([3, 3], [3, 2], [2, 2], [1, 1])
    hub.sync("a", new_a, [], 25, {"set": [[1.0]], "reward": 5.0})
    restored = StatsHub(checkpoint=str(path))
    assert restored.tallies.get("a") == new_a
    assert restored.steps == {"a": 25}
    assert restored.best_seen == {"a": {"set": [[1.0]], "reward": 5.0}}


@pytest.mark.parametrize("selection", ["sr_minus_pd", "gower"])
def test_restored_hub_keeps_nothing_but_its_checkpoint(tmp_path, selection):
    path = tmp_path / "stats.json"
    hub = hub_abc(checkpoint=str(path), selection=selection, save_every_s=0.0)
    hub.sync("b", B, [E1, E2], 3)
    restored = StatsHub(checkpoint=str(path), selection=selection)
    assert restored.best("b")["set"] == (E1 if selection == "sr_minus_pd" else E2)["set"]
    assert restored.best("a") is None
