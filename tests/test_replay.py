"""SAC's array replay: what goes in comes out row-aligned, the ring forgets the oldest, and a
restored buffer draws what the original would have."""

import numpy as np
import pytest

from distributed_recourse.replay import TransitionReplay


def transitions(first: int, n: int) -> tuple[np.ndarray, ...]:
    """Rows numbered first..first+n-1, each field derived from the row's number."""
    ids = np.arange(first, first + n, dtype=np.float32)
    return (np.stack([ids, -ids], 1), ids[:, None] * 10, ids, np.stack([ids + 1, -ids], 1),
            ids % 2 == 0)


def test_sampled_rows_keep_their_fields_together():
    replay = TransitionReplay(capacity=100, seed=0)
    replay.add(*transitions(0, 5))
    replay.add(*transitions(5, 7))
    batch = replay.sample(64)
    ids = batch["rewards"]
    assert len(replay) == 12 and set(ids) <= set(range(12))
    np.testing.assert_array_equal(batch["obs"], np.stack([ids, -ids], 1))
    np.testing.assert_array_equal(batch["actions"][:, 0], ids * 10)
    np.testing.assert_array_equal(batch["new_obs"][:, 0], ids + 1)
    np.testing.assert_array_equal(batch["terminateds"], ids % 2 == 0)
    np.testing.assert_array_equal(batch["n_step"], np.ones(64))
    np.testing.assert_array_equal(batch["weights"], np.ones(64))


def test_a_full_ring_overwrites_the_oldest_rows():
    replay = TransitionReplay(capacity=8, seed=0)
    replay.add(*transitions(0, 6))
    replay.add(*transitions(6, 5))  # rows 0, 1 and 2 are overwritten by 8, 9 and 10
    assert len(replay) == 8 and replay.added == 11
    assert set(replay.sample(500)["rewards"]) == set(range(3, 11))


def test_a_restored_buffer_draws_the_same_batches():
    replay = TransitionReplay(capacity=1000, seed=3)
    replay.add(*transitions(0, 40))
    replay.sample(16)
    restored = TransitionReplay(capacity=1000, seed=99)
    restored.set_state(replay.get_state())
    replay.add(*transitions(40, 30))
    restored.add(*transitions(40, 30))
    np.testing.assert_array_equal(replay.sample(32)["rewards"], restored.sample(32)["rewards"])


def test_an_empty_buffer_says_so():
    with pytest.raises(ValueError, match="empty"):
        TransitionReplay(capacity=10, seed=0).sample(4)
