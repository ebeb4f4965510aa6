"""Interest vectors: a user's model embedding fused with what they did recently.

Pure NumPy over arrays, no dataset dependency, so the service can update a user's interest state
event by event (:meth:`InterestModel.update`) and batch jobs can build every user's state at once
(:func:`interest_vectors`, :func:`category_affinities`).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from gemrec.errors import ParameterError

__all__ = [
    "DEFAULT_EVENT_WEIGHTS",
    "InterestModel",
    "InterestState",
    "category_affinities",
    "decay_weights",
    "interest_vectors",
]

#: behaviour strength of each event type (unknown types get ``default_weight``)
DEFAULT_EVENT_WEIGHTS: dict[str, float] = {
    "view": 1.0,
    "click": 1.0,
    "fav": 2.0,
    "cart": 3.0,
    "purchase": 4.0,
}


def decay_weights(age_seconds: np.ndarray | float, half_life_hours: float | None) -> np.ndarray:
    """``2 ** (-age / half_life)``; ages <= 0 give 1, ``half_life_hours=None`` disables decay."""
    age = np.maximum(np.asarray(age_seconds, dtype=np.float64), 0.0)
    if half_life_hours is None:
        return np.ones_like(age)
    out: np.ndarray = np.exp2(-age / (float(half_life_hours) * 3600.0))
    return out


@dataclass(frozen=True)
class InterestState:
    """What is kept per user between events (small: one vector, two floats, a few categories).

    Attributes
    ----------
    recent : ndarray of float32, shape (d,)
        Decayed, behaviour-weighted sum of the embeddings of the items the user touched, valued at
        time ``t``.
    mass : float
        The decayed sum of the weights, valued at time ``t``.
    t : float
        Time of the latest event folded in (epoch seconds), ``-inf`` when empty.
    categories : dict of int -> float
        Decayed behaviour weight per category code, valued at time ``t``.
    """

    recent: np.ndarray
    mass: float = 0.0
    t: float = float("-inf")
    categories: dict[int, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (for an online store)."""
        return {
            "recent": self.recent.astype(float).tolist(),
            "mass": self.mass,
            "t": None if not np.isfinite(self.t) else self.t,
            "categories": {str(k): v for k, v in self.categories.items()},
        }

    @classmethod
    def from_dict(cls, d: Mapping[str, Any]) -> InterestState:
        return cls(
            recent=np.asarray(d["recent"], dtype=np.float32),
            mass=float(d["mass"]),
            t=float("-inf") if d.get("t") is None else float(d["t"]),
            categories={int(k): float(v) for k, v in d.get("categories", {}).items()},
        )


class InterestModel:
    """Time-decayed, behaviour-weighted interest vectors over fixed item embeddings.

    Parameters
    ----------
    item_embeddings : ndarray, shape (n_items, d)
        E.g. ``model.item_embeddings_`` of an embedding recommender.
    item_categories : ndarray of int, shape (n_items,), optional
        Category code per item (-1 unknown); enables category affinities.
    event_weights : mapping of str -> float, optional
        Weight of each event type; defaults to :data:`DEFAULT_EVENT_WEIGHTS`.
    default_weight : float
        Weight of event types missing from ``event_weights``.
    half_life_hours : float or None
        An event's weight halves every ``half_life_hours``; None: no decay.
    recent_weight : float in [0, 1]
        How much the recent-activity vector can move the user embedding (beta below).
    prior_mass : float > 0
        Weight mass at which the recent vector gets half of ``recent_weight``; few recent events
        move the vector little.

    Notes
    -----
    With events (i_j, e_j, t_j) and decay ``d(a) = 2^(-a / h)``, at time t:

    .. math::

        m(t) = \\sum_j w_{e_j} d(t - t_j), \\qquad
        r(t) = \\frac{1}{m(t)} \\sum_j w_{e_j} d(t - t_j) E_{i_j}

    and the interest vector fuses the model's user embedding u with r, rescaled to u's norm:

    .. math::

        \\beta = \\beta_0 \\frac{m(t)}{m(t) + m_0}, \\qquad
        v = (1 - \\beta) u + \\beta \\frac{\\lVert u \\rVert}{\\lVert r \\rVert} r .

    Without u (a new user) v = r. The state stores the unnormalised sum and m valued at the last
    event, so one update costs O(d): both are decayed by ``d(t' - t)`` and the new event added.
    Category affinities are the same decayed weights summed per category, normalised to shares.

    Examples
    --------
    >>> E = np.eye(3, dtype=np.float32)
    >>> im = InterestModel(E, half_life_hours=1.0)
    >>> s = im.update(im.empty(), 0, "view", t=0.0)
    >>> s = im.update(s, 1, "purchase", t=3600.0)   # the view is one half-life old by now
    >>> [round(float(x), 3) for x in im.vector(s)]
    [0.111, 0.889, 0.0]
    """

    def __init__(
        self,
        item_embeddings: np.ndarray,
        *,
        item_categories: np.ndarray | None = None,
        event_weights: Mapping[str, float] | None = None,
        default_weight: float = 1.0,
        half_life_hours: float | None = 24.0,
        recent_weight: float = 0.5,
        prior_mass: float = 1.0,
    ) -> None:
        emb = np.asarray(item_embeddings, dtype=np.float32)
        if emb.ndim != 2:
            raise ParameterError.invalid("item_embeddings", "a 2-d array (n_items, d)", emb.shape)
        if half_life_hours is not None and not half_life_hours > 0:
            raise ParameterError.invalid(
                "half_life_hours", "a positive number or None", half_life_hours
            )
        if not 0.0 <= recent_weight <= 1.0:
            raise ParameterError.invalid("recent_weight", "a number in [0, 1]", recent_weight)
        if not prior_mass > 0:
            raise ParameterError.invalid("prior_mass", "a positive number", prior_mass)
        if item_categories is not None and len(item_categories) != len(emb):
            raise ParameterError.invalid(
                "item_categories", f"an array of length n_items={len(emb)}", len(item_categories)
            )
        self.item_embeddings = emb
        self.item_categories = (
            None if item_categories is None else np.asarray(item_categories, np.int64)
        )
        self.event_weights = dict(DEFAULT_EVENT_WEIGHTS if event_weights is None else event_weights)
        self.default_weight = float(default_weight)
        self.half_life_hours = half_life_hours
        self.recent_weight = float(recent_weight)
        self.prior_mass = float(prior_mass)

    @property
    def n_items(self) -> int:
        return int(self.item_embeddings.shape[0])

    def empty(self) -> InterestState:
        """The state of a user with no events."""
        return InterestState(np.zeros(self.item_embeddings.shape[1], np.float32))

    def weight(self, event_type: str) -> float:
        return float(self.event_weights.get(event_type, self.default_weight))

    def _check_item(self, item: int) -> int:
        if not 0 <= int(item) < self.n_items:
            raise ParameterError.invalid(
                "item", f"an internal item id in 0..{self.n_items - 1}", item
            )
        return int(item)

    def update(self, state: InterestState, item: int, event_type: str, t: float) -> InterestState:
        """Fold one event into ``state`` (returns a new state; events may arrive out of order)."""
        item = self._check_item(item)
        w = self.weight(event_type)
        if t >= state.t:
            keep = (
                float(decay_weights(t - state.t, self.half_life_hours)) if state.mass > 0 else 0.0
            )
            add, t_new = w, float(t)
        else:  # a late event: decay it to the state's time instead
            keep, add, t_new = (
                1.0,
                w * float(decay_weights(state.t - t, self.half_life_hours)),
                state.t,
            )
        recent = (state.recent * keep + add * self.item_embeddings[item]).astype(np.float32)
        cats = {c: v * keep for c, v in state.categories.items()}
        if self.item_categories is not None and self.item_categories[item] >= 0:
            c = int(self.item_categories[item])
            cats[c] = cats.get(c, 0.0) + add
        return InterestState(recent, state.mass * keep + add, t_new, cats)

    def from_history(
        self,
        items: np.ndarray,
        event_types: np.ndarray,
        timestamps: np.ndarray,
    ) -> InterestState:
        """The state after folding in a whole history at once (same result as repeated updates)."""
        items = np.asarray(items, dtype=np.int64)
        if len(items) == 0:
            return self.empty()
        ts = np.asarray(timestamps, dtype=np.float64)
        t = float(ts.max())
        w = np.array([self.weight(str(e)) for e in np.asarray(event_types)], np.float64)
        w = w * decay_weights(t - ts, self.half_life_hours)
        recent = (w[:, None] * self.item_embeddings[items]).sum(axis=0).astype(np.float32)
        cats: dict[int, float] = {}
        if self.item_categories is not None:
            c = self.item_categories[items]
            ok = c >= 0
            sums = np.bincount(c[ok], weights=w[ok])
            cats = {int(k): float(sums[k]) for k in np.flatnonzero(sums)}
        return InterestState(recent, float(w.sum()), t, cats)

    def vector(
        self, state: InterestState, user_vector: np.ndarray | None = None, t: float | None = None
    ) -> np.ndarray:
        """The fused interest vector, shape (d,), float32 (see Notes of the class).

        Parameters
        ----------
        state : InterestState
        user_vector : ndarray, shape (d,), optional
            The model's user embedding; None for a user the model has never seen.
        t : float, optional
            Query time (default: the last event's); later times shrink the recent part.
        """
        u = None if user_vector is None else np.asarray(user_vector, dtype=np.float32)
        if state.mass <= 0:
            return np.zeros_like(state.recent) if u is None else u.copy()
        r = state.recent / np.float32(state.mass)
        if u is None:
            return r.astype(np.float32)
        mass = state.mass
        if t is not None and t > state.t:
            mass *= float(decay_weights(t - state.t, self.half_life_hours))
        beta = self.recent_weight * mass / (mass + self.prior_mass)
        nr = float(np.linalg.norm(r))
        nu = float(np.linalg.norm(u))
        if nr == 0.0 or nu == 0.0:
            return u.copy() if nu > 0 else r.astype(np.float32)
        return ((1.0 - beta) * u + beta * (nu / nr) * r).astype(np.float32)

    def category_affinities(self, state: InterestState) -> dict[int, float]:
        """Shares of the decayed behaviour weight per category (sum to 1; {} without categories)."""
        total = sum(state.categories.values())
        return {c: v / total for c, v in state.categories.items()} if total > 0 else {}

    def scores(
        self, state: InterestState, user_vector: np.ndarray | None = None, t: float | None = None
    ) -> np.ndarray:
        """Inner products of the interest vector with every item embedding, shape (n_items,)."""
        out: np.ndarray = self.item_embeddings @ self.vector(state, user_vector, t)
        return out


def _decayed_matrix(
    users: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    timestamps: np.ndarray | None,
    n_users: int,
    n_cols: int,
    half_life_hours: float | None,
    now: float | None,
) -> sp.csr_matrix:
    w = np.asarray(weights, dtype=np.float64)
    if timestamps is not None and half_life_hours is not None and len(w):
        ts = np.asarray(timestamps, dtype=np.float64)
        ref = float(np.nanmax(ts)) if now is None else float(now)
        d = decay_weights(ref - ts, half_life_hours)
        w = w * np.where(np.isfinite(d), d, 1.0)
    m = sp.csr_matrix((w, (np.asarray(users), np.asarray(items))), shape=(n_users, n_cols))
    m.sum_duplicates()
    return m


def interest_vectors(
    item_embeddings: np.ndarray,
    users: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    timestamps: np.ndarray | None = None,
    *,
    n_users: int,
    user_embeddings: np.ndarray | None = None,
    half_life_hours: float | None = 24.0,
    recent_weight: float = 0.5,
    prior_mass: float = 1.0,
    now: float | None = None,
) -> np.ndarray:
    """Every user's interest vector at time ``now`` in one sparse product.

    Parameters
    ----------
    item_embeddings : ndarray, shape (n_items, d)
    users, items : ndarray of int, shape (n_events,)
    weights : ndarray of float, shape (n_events,)
        Behaviour weight of each event (e.g. ``DEFAULT_EVENT_WEIGHTS`` mapped over event types).
    timestamps : ndarray of float, shape (n_events,), optional
    n_users : int
    user_embeddings : ndarray, shape (n_users, d), optional
    half_life_hours, recent_weight, prior_mass
        As in :class:`InterestModel`.
    now : float, optional
        Defaults to the latest timestamp (one clock for all users).

    Returns
    -------
    ndarray of float32, shape (n_users, d)
        Users without events keep their embedding (or zeros).
    """
    emb = np.asarray(item_embeddings, dtype=np.float32)
    w = _decayed_matrix(users, items, weights, timestamps, n_users, len(emb), half_life_hours, now)
    mass = np.asarray(w.sum(axis=1)).ravel()
    r = np.asarray(w @ emb, dtype=np.float64) / np.where(mass > 0, mass, 1.0)[:, None]
    if user_embeddings is None:
        return r.astype(np.float32)
    u = np.asarray(user_embeddings, dtype=np.float64)
    beta = recent_weight * mass / (mass + prior_mass)
    nu = np.linalg.norm(u, axis=1)
    nr = np.linalg.norm(r, axis=1)
    scale = np.divide(nu, nr, out=np.zeros_like(nu), where=nr > 0)
    beta = np.where((nr > 0) & (nu > 0), beta, 0.0)
    out = (1.0 - beta)[:, None] * u + (beta * scale)[:, None] * r
    no_u = nu == 0
    out[no_u] = r[no_u]
    result: np.ndarray = out.astype(np.float32)
    return result


def category_affinities(
    users: np.ndarray,
    items: np.ndarray,
    weights: np.ndarray,
    item_categories: np.ndarray,
    timestamps: np.ndarray | None = None,
    *,
    n_users: int,
    half_life_hours: float | None = None,
    now: float | None = None,
) -> sp.csr_matrix:
    """User x category shares of (decayed) behaviour weight.

    Returns
    -------
    csr_matrix of float32, shape (n_users, n_categories)
        Rows sum to 1 for users with categorised events; ``n_categories = max(code) + 1``.
    """
    cats = np.asarray(item_categories, dtype=np.int64)
    c = cats[np.asarray(items, dtype=np.int64)]
    ok = c >= 0
    n_cat = int(cats.max(initial=-1)) + 1
    ts = None if timestamps is None else np.asarray(timestamps)[ok]
    m = _decayed_matrix(
        np.asarray(users)[ok],
        c[ok],
        np.asarray(weights)[ok],
        ts,
        n_users,
        max(n_cat, 1),
        half_life_hours,
        now,
    )
    rs = np.asarray(m.sum(axis=1)).ravel()
    m = sp.diags(np.divide(1.0, rs, out=np.zeros_like(rs), where=rs > 0)) @ m
    return sp.csr_matrix(m, dtype=np.float32)
