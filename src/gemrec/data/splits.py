"""Train / valid / test splits, seeded and reproducible.

All functions work on parallel arrays (internal ids, timestamps) and return boolean masks, so they
are usable from Python as well as by ``gemrec import``:

- :func:`random_holdout`: per user, a random ``fraction`` of the user's edges.
- :func:`temporal_cut`: one global time cut; everything after it is test (no leakage: every test
  event is later than every train event).
- :func:`leave_last_n_out`: per user, the ``n`` most recent edges.
- :func:`carve_valid`: a validation part taken out of train, per user (random or most recent),
  so tuning never sees test.
- :func:`cold_holdout`: cold start; a seeded share of the items (or users) is held out entirely,
  every edge of theirs going to test (and, optionally, of a second disjoint share to valid).

The per-user splits keep at least one training edge per user: a user with ``m`` edges gives at
most ``m - 1`` to a held-out part. The cold split is the opposite by design: a held-out item or
user has no training edge at all.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gemrec.errors import DataError, ParameterError

__all__ = [
    "SPLIT_METHODS",
    "carve_valid",
    "cold_holdout",
    "leave_last_n_out",
    "random_holdout",
    "temporal_cut",
]

SPLIT_METHODS = (
    "predefined",
    "random",
    "temporal",
    "leave-last",
    "cold-items",
    "cold-users",
    "none",
)
#: the cold-start methods and the edge column whose values they hold out
COLD_SPLITS = {"cold-items": "item", "cold-users": "user"}


def _check_fraction(name: str, fraction: float, allow_zero: bool = True) -> float:
    lo_ok = fraction >= 0 if allow_zero else fraction > 0
    if not (lo_ok and fraction < 1):
        raise ParameterError.invalid(
            name, "a fraction in [0, 1)" if allow_zero else "a fraction in (0, 1)", fraction
        )
    return float(fraction)


def _int_ids(users: Any) -> np.ndarray:
    """``users`` as an integer array, without a copy when it is one already."""
    out = np.asarray(users)
    return out if out.dtype.kind in "iu" else out.astype(np.int64)


def _rank_within_user(
    users: np.ndarray, order_key: np.ndarray | None, rng: np.random.Generator | None = None
) -> tuple[np.ndarray, np.ndarray]:
    """Rank (0 = first by ``order_key``) of each edge within its user, and each edge's user size.

    With ``order_key=None`` the order within a user is a random permutation drawn from ``rng``.
    """
    n = len(users)
    # positions and ranks in 32 bits where they fit: an import splits tens of millions of edges
    pos: type[np.signedinteger[Any]] = np.int32 if n < 2**31 else np.int64
    users = _int_ids(users)
    # two stable argsorts (the integer one is a radix sort) beat one lexsort on mixed keys
    if order_key is None:
        by_key = (rng or np.random.default_rng(0)).permutation(n).astype(pos)
    else:
        by_key = np.argsort(order_key, kind="stable").astype(pos)
    order = by_key[np.argsort(users[by_key], kind="stable")]
    del by_key
    su = users[order]
    start = np.ones(n, dtype=bool)
    start[1:] = su[1:] != su[:-1]
    del su
    group_start: np.ndarray = np.arange(n, dtype=pos)
    group_start[~start] = 0
    np.maximum.accumulate(group_start, out=group_start)
    rank = np.empty(n, dtype=pos)
    rank[order] = np.arange(n, dtype=pos) - group_start
    sizes = np.bincount(users, minlength=int(users.max(initial=-1)) + 1)
    return rank, sizes[users]


def _n_held(sizes: np.ndarray, fraction: float) -> np.ndarray:
    """Edges held out of a user with ``sizes`` edges: round(fraction * m), at most m - 1."""
    held: np.ndarray = np.minimum(np.floor(fraction * sizes + 0.5).astype(np.int64), sizes - 1)
    return held


def random_holdout(
    users: np.ndarray, fraction: float, *, seed: int = 0, eligible: np.ndarray | None = None
) -> np.ndarray:
    """Per-user random holdout.

    Parameters
    ----------
    users : numpy.ndarray of int, shape (n_edges,)
    fraction : float in [0, 1)
        Share of each user's (eligible) edges held out, rounded; each user keeps >= 1 edge.
    seed : int
    eligible : numpy.ndarray of bool, shape (n_edges,), optional
        Only these edges may be held out (and only they count towards a user's size).

    Returns
    -------
    numpy.ndarray of bool, shape (n_edges,)
        True for held-out edges.
    """
    fraction = _check_fraction("test_fraction", fraction)
    users = _int_ids(users)
    eligible = (
        np.ones(len(users), dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    )
    out = np.zeros(len(users), dtype=bool)
    idx = np.flatnonzero(eligible)
    if len(idx) == 0 or fraction == 0:
        return out
    rank, sizes = _rank_within_user(users[idx], None, np.random.default_rng(seed))
    out[idx] = rank < _n_held(sizes, fraction)
    return out


def leave_last_n_out(
    users: np.ndarray,
    timestamps: np.ndarray,
    n: int = 1,
    *,
    seed: int = 0,
    eligible: np.ndarray | None = None,
) -> np.ndarray:
    """Per user, hold out the ``n`` most recent edges (ties broken by a seeded shuffle).

    Users with ``n`` or fewer edges keep one in train. Edges without a timestamp count as oldest.
    """
    if n < 1:
        raise ParameterError.invalid("leave_n", "an integer >= 1", n)
    users = _int_ids(users)
    ts = np.asarray(timestamps, dtype=np.float64)
    eligible = (
        np.ones(len(users), dtype=bool) if eligible is None else np.asarray(eligible, dtype=bool)
    )
    out = np.zeros(len(users), dtype=bool)
    idx = np.flatnonzero(eligible)
    if len(idx) == 0:
        return out
    t = np.where(np.isnan(ts[idx]), -np.inf, ts[idx])
    tie = np.random.default_rng(seed).random(len(idx))
    # most recent first: rank by (-t, tie)
    order_key = np.lexsort((tie, -t))
    key = np.empty(len(idx), dtype=np.int64)
    key[order_key] = np.arange(len(idx))
    rank, sizes = _rank_within_user(users[idx], key)
    out[idx] = rank < np.minimum(n, sizes - 1)
    return out


def temporal_cut(
    timestamps: np.ndarray, *, fraction: float | None = None, cut: float | None = None
) -> tuple[np.ndarray, float]:
    """Global temporal split: test = events strictly after ``cut``.

    Parameters
    ----------
    timestamps : numpy.ndarray of float, shape (n,)
        Epoch seconds; NaN is not allowed.
    fraction : float, optional
        Choose the cut so that at most this share of events is later than it (ties at the cut
        stay in train, so every test event is later than every train event).
    cut : float, optional
        An explicit cut time (epoch seconds); overrides ``fraction``.

    Returns
    -------
    test : numpy.ndarray of bool, shape (n,)
    cut : float
    """
    ts = np.asarray(timestamps, dtype=np.float64)
    if len(ts) and np.isnan(ts).any():
        raise DataError(
            "a temporal split needs a timestamp on every event; "
            "this source has none or some missing"
        )
    if cut is None:
        if fraction is None:
            raise ParameterError.invalid(
                "test_fraction", "a fraction in (0, 1) or an explicit cut", None
            )
        fraction = _check_fraction("test_fraction", fraction, allow_zero=False)
        if len(ts) == 0:
            return np.zeros(0, dtype=bool), float("nan")
        s = np.sort(ts)
        n_test = int(np.floor(fraction * len(s) + 0.5))
        cut = float(s[max(len(s) - n_test - 1, 0)]) if n_test < len(s) else float(s[0])
    return ts > cut, float(cut)


def carve_valid(
    users: np.ndarray,
    train: np.ndarray,
    fraction: float,
    *,
    seed: int = 0,
    timestamps: np.ndarray | None = None,
) -> np.ndarray:
    """Take a validation part out of the training edges, per user.

    Parameters
    ----------
    users : numpy.ndarray of int, shape (n_edges,)
    train : numpy.ndarray of bool, shape (n_edges,)
        Edges currently in train; only these can move to valid.
    fraction : float in [0, 1)
    seed : int
    timestamps : numpy.ndarray of float, optional
        If given, each user's most recent training edges become valid (a temporal validation);
        otherwise a random share.

    Returns
    -------
    numpy.ndarray of bool, shape (n_edges,)
        True for edges moved to valid (always a subset of ``train``).
    """
    fraction = _check_fraction("valid_fraction", fraction)
    if fraction == 0:
        return np.zeros(len(users), dtype=bool)
    if timestamps is None:
        return random_holdout(users, fraction, seed=seed + 1, eligible=train)
    users = _int_ids(users)
    out = np.zeros(len(users), dtype=bool)
    idx = np.flatnonzero(train)
    if len(idx) == 0:
        return out
    ts = np.asarray(timestamps, dtype=np.float64)[idx]
    t = np.where(np.isnan(ts), -np.inf, ts)
    tie = np.random.default_rng(seed + 1).random(len(idx))
    order = np.lexsort((tie, -t))
    key = np.empty(len(idx), dtype=np.int64)
    key[order] = np.arange(len(idx))
    rank, sizes = _rank_within_user(users[idx], key)
    out[idx] = rank < _n_held(sizes, fraction)
    return out


def cold_holdout(
    keys: np.ndarray, test_fraction: float, valid_fraction: float = 0.0, *, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Cold-start holdout: every edge of a seeded random share of the keys (items or users).

    Parameters
    ----------
    keys : numpy.ndarray of int, shape (n_edges,)
        The item (cold items) or the user (cold users) of each edge.
    test_fraction : float in (0, 1)
        Share of the distinct keys held out for test, rounded: ``round(test_fraction * n_keys)``.
    valid_fraction : float in [0, 1)
        Share of the distinct keys held out for validation, disjoint from the test keys.
    seed : int
        One permutation of the distinct keys is drawn from it: the first ``n_test`` keys are
        test, the next ``n_valid`` valid. So the test keys do not depend on ``valid_fraction``.

    Returns
    -------
    test, valid : numpy.ndarray of bool, shape (n_edges,)
        The edges of the held-out keys; no held-out key has an edge outside its part.

    Notes
    -----
    Every key is equally likely to be held out, whatever its number of edges (so most cold items
    of a long-tailed catalogue are rare ones, as new items are). At least one key always stays
    warm; ``test_fraction + valid_fraction`` must be below 1.

    Examples
    --------
    >>> items = np.array([0, 0, 1, 2, 2, 3, 4])
    >>> test, valid = cold_holdout(items, 0.4, 0.2, seed=0)
    >>> np.unique(items[test]).size, np.unique(items[valid]).size
    (2, 1)
    >>> bool(np.isin(items[~test & ~valid], items[test | valid]).any())
    False
    """
    test_fraction = _check_fraction("test_fraction", test_fraction, allow_zero=False)
    valid_fraction = _check_fraction("valid_fraction", valid_fraction)
    if test_fraction + valid_fraction >= 1:
        raise ParameterError.invalid(
            "test_fraction + valid_fraction",
            "below 1 for a cold split (some items or users must stay warm)",
            test_fraction + valid_fraction,
        )
    keys = np.asarray(keys, dtype=np.int64)
    test = np.zeros(len(keys), dtype=bool)
    valid = np.zeros(len(keys), dtype=bool)
    pool = np.unique(keys)
    n = len(pool)
    if n == 0:
        return test, valid
    n_test = min(int(np.floor(test_fraction * n + 0.5)), n - 1)
    n_valid = min(int(np.floor(valid_fraction * n + 0.5)), n - 1 - n_test)
    order = pool[np.random.default_rng(seed).permutation(n)]
    part = np.zeros(int(pool[-1]) + 1, dtype=np.int8)
    part[order[:n_test]] = 1
    part[order[n_test : n_test + n_valid]] = 2
    test[:] = part[keys] == 1
    valid[:] = part[keys] == 2
    return test, valid
