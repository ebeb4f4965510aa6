"""Split functions: exact partitions, no temporal leakage, per-user shares, seeded."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemrec.data.splits import (
    carve_valid,
    cold_holdout,
    leave_last_n_out,
    random_holdout,
    temporal_cut,
)
from gemrec.errors import DataError, ParameterError

users_st = st.lists(st.integers(0, 6), min_size=1, max_size=120).map(np.array)


@settings(max_examples=80, deadline=None)
@given(st.lists(st.integers(0, 50), min_size=1, max_size=200), st.floats(0.01, 0.99))
def test_temporal_cut_never_leaks(times, fraction):
    ts = np.array(times, dtype=float)
    test, cut = temporal_cut(ts, fraction=fraction)
    if test.any() and (~test).any():
        assert ts[test].min() > ts[~test].max()
    assert (ts[test] > cut).all() and (ts[~test] <= cut).all()
    assert test.sum() <= np.floor(fraction * len(ts) + 0.5)  # ties at the cut stay in train


def test_temporal_cut_exact_share_without_ties_and_explicit_cut():
    ts = np.arange(100, dtype=float)
    test, cut = temporal_cut(ts, fraction=0.2)
    assert test.sum() == 20 and cut == 79.0
    test, cut = temporal_cut(ts, cut=89.5)
    assert test.sum() == 10
    with pytest.raises(DataError, match="timestamp"):
        temporal_cut(np.array([1.0, np.nan]), fraction=0.5)
    with pytest.raises(ParameterError, match="test_fraction"):
        temporal_cut(ts, fraction=1.5)


@settings(max_examples=80, deadline=None)
@given(users_st, st.floats(0.0, 0.9), st.integers(0, 3))
def test_random_holdout_per_user_share_and_keeps_a_train_edge(users, fraction, seed):
    test = random_holdout(users, fraction, seed=seed)
    for u in np.unique(users):
        m = users == u
        n = int(m.sum())
        expected = min(int(np.floor(fraction * n + 0.5)), n - 1)
        assert test[m].sum() == expected
    assert np.array_equal(test, random_holdout(users, fraction, seed=seed))


def test_random_holdout_depends_on_seed():
    users = np.zeros(1000, dtype=int)
    a = random_holdout(users, 0.3, seed=1)
    b = random_holdout(users, 0.3, seed=2)
    assert a.sum() == b.sum() == 300
    assert not np.array_equal(a, b)


@settings(max_examples=80, deadline=None)
@given(users_st, st.integers(1, 3), st.integers(0, 3))
def test_leave_last_n_out_holds_out_the_latest(users, n, seed):
    rng = np.random.default_rng(seed)
    ts = rng.permutation(len(users)).astype(float)  # distinct times
    test = leave_last_n_out(users, ts, n, seed=seed)
    for u in np.unique(users):
        m = users == u
        k = min(n, int(m.sum()) - 1)
        assert test[m].sum() == k
        if k:
            assert ts[m & test].min() > ts[m & ~test].max()


@settings(max_examples=80, deadline=None)
@given(users_st, st.floats(0.0, 0.9), st.floats(0.0, 0.9), st.booleans())
def test_every_edge_in_exactly_one_split_and_valid_inside_train(users, tf, vf, by_time):
    ts = np.arange(len(users), dtype=float)
    test = random_holdout(users, tf, seed=0)
    valid = carve_valid(users, ~test, vf, seed=0, timestamps=ts if by_time else None)
    assert not (valid & test).any()
    train = ~test & ~valid
    assert (train.astype(int) + valid + test == 1).all()
    for u in np.unique(users):  # every user keeps a training edge
        assert train[users == u].any()
    if by_time:
        for u in np.unique(users):
            m = users == u
            if valid[m].any():
                assert ts[m & valid].min() > ts[m & train].max()


def test_fraction_validation():
    with pytest.raises(ParameterError, match="valid_fraction"):
        carve_valid(np.zeros(3, int), np.ones(3, bool), 1.0)
    with pytest.raises(ParameterError, match="leave_n"):
        leave_last_n_out(np.zeros(3, int), np.zeros(3), 0)


# ------------------------------------------------------------------------------ cold start
keys_st = st.lists(st.integers(0, 30), min_size=1, max_size=150).map(np.array)


@settings(max_examples=100, deadline=None)
@given(keys_st, st.floats(0.01, 0.6), st.floats(0.0, 0.35), st.integers(0, 5))
def test_cold_holdout_holds_out_whole_keys_in_their_share(keys, tf, vf, seed):
    test, valid = cold_holdout(keys, tf, vf, seed=seed)
    train = ~test & ~valid
    assert not (test & valid).any()
    test_keys, valid_keys = set(keys[test].tolist()), set(keys[valid].tolist())
    # a held-out key has no edge anywhere else: not in train, not in the other held-out part
    assert not test_keys & set(keys[train].tolist())
    assert not valid_keys & set(keys[train].tolist())
    assert not test_keys & valid_keys
    n = len(np.unique(keys))
    n_test = min(int(np.floor(tf * n + 0.5)), n - 1)
    assert len(test_keys) == n_test
    assert len(valid_keys) == min(int(np.floor(vf * n + 0.5)), n - 1 - n_test)
    assert train.any()  # at least one key stays warm
    again = cold_holdout(keys, tf, vf, seed=seed)
    assert np.array_equal(test, again[0]) and np.array_equal(valid, again[1])


def test_cold_holdout_share_seed_and_test_keys_independent_of_valid():
    items = np.repeat(np.arange(1000), 3)
    test, valid = cold_holdout(items, 0.2, 0.1, seed=4)
    assert (len(np.unique(items[test])), len(np.unique(items[valid]))) == (200, 100)
    assert test.sum() == 600 and valid.sum() == 300
    only_test, none = cold_holdout(items, 0.2, seed=4)
    assert np.array_equal(only_test, test) and not none.any()
    other, _ = cold_holdout(items, 0.2, 0.1, seed=5)
    assert not np.array_equal(other, test)
    # every key is equally likely, whatever its number of edges: ids far apart both get drawn
    assert items[test].min() < 100 and items[test].max() > 900


def test_cold_holdout_checks_its_fractions():
    keys = np.arange(10)
    with pytest.raises(ParameterError, match="test_fraction"):
        cold_holdout(keys, 0.0)
    with pytest.raises(ParameterError, match="valid_fraction"):
        cold_holdout(keys, 0.2, -0.1)
    with pytest.raises(ParameterError, match="below 1"):
        cold_holdout(keys, 0.6, 0.4)
    test, valid = cold_holdout(np.array([3, 3, 3]), 0.9)  # a single key stays warm
    assert not test.any() and not valid.any()
