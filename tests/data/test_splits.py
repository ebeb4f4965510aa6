"""Split functions: exact partitions, no temporal leakage, per-user shares, seeded."""

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from gemrec.data.splits import carve_valid, leave_last_n_out, random_holdout, temporal_cut
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
