"""Holdouts of Interactions: exact partitions, no temporal leak, per-user shares, union."""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemrec.data.holdout import edge_timestamps, split_by_mask, time_holdout, union, user_holdout
from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError


@st.composite
def event_logs(draw: st.DrawFn) -> Interactions:
    """Random events (repeats of a pair allowed) with last and first event times per pair."""
    n_users = draw(st.integers(1, 8))
    n_items = draw(st.integers(1, 10))
    n = draw(st.integers(1, 60))
    seed = draw(st.integers(0, 2**31 - 1))
    rng = np.random.default_rng(seed)
    users = rng.integers(0, n_users, n)
    items = rng.integers(0, n_items, n)
    t = rng.integers(1, 40, n).astype(np.float64)  # coarse times: ties at the cut happen
    return Interactions.from_arrays(
        users, items, n_users=n_users, n_items=n_items, timestamps=t, first_timestamps=t
    )


def _pairs(inter: Interactions) -> set[tuple[int, int]]:
    return set(zip(*(x.tolist() for x in inter.matrix.nonzero()), strict=True))


def _times(inter: Interactions, which: str) -> dict[tuple[int, int], float]:
    t = getattr(inter, which).tocoo()
    return {(int(u), int(i)): float(v) for u, i, v in zip(t.row, t.col, t.data, strict=True)}


@settings(max_examples=80, deadline=None)
@given(event_logs(), st.floats(0.05, 0.95))
def test_time_holdout_never_leaks(inter: Interactions, fraction: float) -> None:
    """Every held-out pair is first seen after the cut, every kept pair at or before it, and the
    kept part carries no event time after the cut."""
    kept, held = time_holdout(inter, fraction)
    first = _times(inter, "first_timestamps")
    cut = float(np.quantile(list(first.values()), 1.0 - fraction))
    assert _pairs(kept) | _pairs(held) == _pairs(inter)
    assert not _pairs(kept) & _pairs(held)
    assert all(first[p] > cut for p in _pairs(held))
    assert all(first[p] <= cut for p in _pairs(kept))
    assert all(t <= cut for t in _times(kept, "timestamps").values())
    # weights travel whole with their pair
    assert (kept.matrix + held.matrix != inter.matrix).nnz == 0


@settings(max_examples=80, deadline=None)
@given(event_logs(), st.floats(0.05, 0.95), st.integers(0, 3))
def test_user_holdout_fraction_per_user_and_latest_items(
    inter: Interactions, fraction: float, seed: int
) -> None:
    kept, held = user_holdout(inter, fraction, seed=seed)
    n = np.diff(inter.matrix.indptr)
    n_held = np.diff(held.matrix.indptr)
    expected = np.where(n >= 3, np.maximum(1, np.floor(n * fraction)), 0)
    np.testing.assert_array_equal(n_held, expected)
    last = _times(inter, "timestamps")
    for u in range(inter.n_users):
        h = [last[(u, int(i))] for i in held.matrix[u].indices]
        k = [last[(u, int(i))] for i in kept.matrix[u].indices]
        if h and k:
            assert min(h) >= max(k)  # the user's latest items are the held-out ones


@settings(max_examples=60, deadline=None)
@given(event_logs(), st.floats(0.05, 0.95), st.integers(0, 3))
def test_union_of_a_user_holdout_gives_the_interactions_back(
    inter: Interactions, fraction: float, seed: int
) -> None:
    kept, held = user_holdout(inter, fraction, seed=seed)
    back = union(kept, held)
    assert (back.matrix != inter.matrix).nnz == 0
    assert _times(back, "timestamps") == _times(inter, "timestamps")
    assert _times(back, "first_timestamps") == _times(inter, "first_timestamps")
    assert back.user_ids is inter.user_ids and back.item_ids is inter.item_ids


def test_user_holdout_takes_each_users_latest_items() -> None:
    users = np.repeat(np.arange(3), [10, 2, 5])
    items = np.concatenate([np.arange(10), [0, 1], np.arange(5)])
    ts = np.concatenate([np.arange(10) * 10.0, [1.0, 2.0], [50, 40, 30, 20, 10]])
    inter = Interactions.from_arrays(users, items, n_users=3, n_items=10, timestamps=ts)
    train, held = user_holdout(inter, 0.2, seed=0)
    assert (train.matrix + held.matrix != inter.matrix).nnz == 0
    assert train.matrix.multiply(held.matrix).nnz == 0
    assert sorted(held.matrix[0].indices.tolist()) == [8, 9]  # latest two of ten
    assert held.matrix[1].nnz == 0  # too few items to hold out
    assert held.matrix[2].indices.tolist() == [0]  # item 0 is user 2's latest


def test_time_holdout_holds_out_pairs_new_after_the_cut() -> None:
    """Like a temporal test split: a pair touched before the cut and again after it stays in
    train (dated by its first event); only pairs first seen after the cut are held out."""
    # events (user, item, time); the latest 40 % of the 5 pairs' first times lie after 30
    ev = np.array(
        [(0, 0, 10), (0, 0, 60), (0, 1, 20), (0, 2, 50), (1, 0, 30), (1, 3, 40), (1, 3, 45)],
        dtype=np.float64,
    )
    u, i, t = ev[:, 0].astype(int), ev[:, 1].astype(int), ev[:, 2]
    inter = Interactions.from_arrays(u, i, n_users=2, n_items=4, timestamps=t, first_timestamps=t)
    assert inter.matrix[0, 0] == 2 and inter.matrix[1, 3] == 2  # events summed per pair
    assert (
        _times(inter, "timestamps")[(0, 0)] == 60
        and _times(inter, "first_timestamps")[(0, 0)] == 10
    )
    train, held = time_holdout(inter, 0.4)
    assert sorted(_pairs(held)) == [(0, 2), (1, 3)]
    assert sorted(_pairs(train)) == [(0, 0), (0, 1), (1, 0)]
    assert train.matrix[0, 0] == 2  # kept whole
    assert _times(train, "timestamps") == {(0, 0): 10.0, (0, 1): 20.0, (1, 0): 30.0}
    assert _times(held, "timestamps") == {(0, 2): 50.0, (1, 3): 45.0}
    assert _times(held, "first_timestamps") == {(0, 2): 50.0, (1, 3): 40.0}
    # without first-event times the pair (0, 0) counts as after the cut (its last event, 60)
    last_only = Interactions.from_arrays(u, i, n_users=2, n_items=4, timestamps=t)
    _, held_last = time_holdout(last_only, 0.4)
    assert (0, 0) in _pairs(held_last)


def test_union_keeps_the_first_and_the_last_event_time() -> None:
    a = Interactions.from_arrays(
        [0, 0], [0, 1], n_users=1, n_items=3, timestamps=[5.0, 7.0], first_timestamps=[1.0, 7.0]
    )
    b = Interactions.from_arrays(
        [0, 0], [0, 2], n_users=1, n_items=3, timestamps=[9.0, 3.0], first_timestamps=[8.0, 2.0]
    )
    both = union(a, b)
    assert both.matrix.toarray().tolist() == [[2.0, 1.0, 1.0]]
    assert _times(both, "timestamps") == {(0, 0): 9.0, (0, 1): 7.0, (0, 2): 3.0}
    assert _times(both, "first_timestamps") == {(0, 0): 1.0, (0, 1): 7.0, (0, 2): 2.0}


def test_split_by_mask_and_edge_timestamps_follow_coo_order() -> None:
    inter = Interactions.from_arrays(
        [1, 0, 1], [2, 1, 0], n_users=2, n_items=3, timestamps=[30.0, 10.0, 20.0]
    )
    np.testing.assert_array_equal(edge_timestamps(inter.matrix, inter.timestamps), [10, 20, 30])
    kept, held = split_by_mask(inter, np.array([False, True, False]))
    assert _pairs(held) == {(1, 0)} and _pairs(kept) == {(0, 1), (1, 2)}
    assert _times(held, "timestamps") == {(1, 0): 20.0}


def test_bad_arguments_raise_clear_errors() -> None:
    inter = Interactions.from_arrays([0, 1], [0, 1])
    with pytest.raises(ParameterError, match="timestamps"):
        time_holdout(inter, 0.2)
    with pytest.raises(ParameterError, match="'fraction'"):
        user_holdout(inter, 1.0)
    with pytest.raises(ParameterError, match="'held'"):
        split_by_mask(inter, np.zeros(5, bool))


def test_without_users_keeps_every_other_edge_and_its_times() -> None:
    users = np.array([0, 0, 1, 2, 2])
    items = np.array([0, 1, 1, 0, 2])
    ts = np.array([0.0, 5.0, 3.0, 0.0, 7.0])  # a zero time is a time, not a missing entry
    x = Interactions.from_arrays(users, items, timestamps=ts, first_timestamps=ts)
    out = x.without_users(np.array([1]))
    assert out.matrix.shape == x.matrix.shape and out.nnz == 4
    assert out.matrix[1].nnz == 0
    for m in (out.timestamps, out.first_timestamps):
        assert m is not None and m.nnz == 4
        np.testing.assert_array_equal(m.indptr, out.matrix.indptr)
        np.testing.assert_array_equal(m.indices, out.matrix.indices)
    assert out.timestamps is not None
    assert out.timestamps[0, 0] == 0.0 and out.timestamps[2, 2] == 7.0


def test_a_source_order_goes_with_its_edges_through_splits_and_unions() -> None:
    inter = Interactions.from_arrays(
        [1, 0, 1, 0], [2, 1, 0, 0], n_users=2, n_items=3, order=[4.0, 2.0, 3.0, 1.0]
    )
    assert inter.timestamps is None
    kept, held = split_by_mask(inter, np.array([False, True, True, False]))  # (0, 1), (1, 0)
    assert _times(held, "order") == {(0, 1): 2.0, (1, 0): 3.0}
    assert _times(kept, "order") == {(0, 0): 1.0, (1, 2): 4.0}
    assert _times(union(kept, held), "order") == _times(inter, "order")
    assert _times(inter.without_users(np.array([0])), "order") == {(1, 0): 3.0, (1, 2): 4.0}
    grown = inter.grown(np.array(["0", "1", "2"]), np.array(["0", "1", "2", "3"]))
    assert grown.order is not None and grown.order.shape == (3, 4)
