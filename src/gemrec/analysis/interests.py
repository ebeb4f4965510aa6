"""Interest vectors: a user's model embedding fused with what they did recently.

Pure NumPy over arrays, no dataset dependency. One weighting rule (:meth:`InterestModel.weights`:
behaviour weight from :mod:`gemrec.data.event_types`, time decay, recency decay) and one fusion
rule (:func:`blend_interest`) serve everyone: the service blends a user's embedding with the
fold-in of their online events per request, a stream can update a user's state event by event
(:meth:`InterestModel.update`), and batch jobs build every user's vector at once
(:func:`interest_vectors`, :func:`category_affinities`).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import scipy.sparse as sp

from gemrec.data.event_types import DEFAULT_WEIGHT, canonical_event_type, weight_table
from gemrec.errors import ParameterError

__all__ = [
    "InterestModel",
    "InterestState",
    "blend_coefficients",
    "blend_interest",
    "category_affinities",
    "decay_weights",
    "interest_vectors",
]


def decay_weights(age_seconds: np.ndarray | float, half_life_hours: float | None) -> np.ndarray:
    """``2 ** (-age / half_life)``; ages <= 0 give 1, ``half_life_hours=None`` disables decay."""
    age = np.maximum(np.asarray(age_seconds, dtype=np.float64), 0.0)
    if half_life_hours is None:
        return np.ones_like(age)
    out: np.ndarray = np.exp2(-age / (float(half_life_hours) * 3600.0))
    return out


def blend_interest(
    recent: np.ndarray,
    mass: np.ndarray | float,
    user_vectors: np.ndarray | None = None,
    *,
    recent_weight: float = 0.5,
    prior_mass: float = 1.0,
) -> np.ndarray:
    """Fuse users' learned vectors with their recent-activity vectors (the rule of Notes below).

    Parameters
    ----------
    recent : ndarray, shape (n, d) or (d,)
        ``r``: each user's recent activity in the learned space (e.g. the weighted mean of the
        embeddings of the items they touched, or a model's fold-in of those events).
    mass : ndarray of float, shape (n,), or float
        ``m``: the summed (decayed) weight behind ``r``.
    user_vectors : ndarray, shape like ``recent``, optional
        ``u``: the model's vectors of the users (None: users the model has never seen).
    recent_weight, prior_mass : float
        ``beta_0`` and ``m_0``.

    Returns
    -------
    ndarray of float32, shape like ``recent``

    Notes
    -----
    .. math::

        \\beta = \\beta_0 \\frac{m}{m + m_0}, \\qquad
        v = (1 - \\beta) u + \\beta \\frac{\\lVert u \\rVert}{\\lVert r \\rVert} r .

    ``v`` keeps the norm scale of ``u`` and its direction moves towards ``r`` as evidence ``m``
    accumulates; rankings by ``v . e_i`` only depend on that direction. Without ``u`` (or with
    ``u = 0``) ``v = r``; with ``r = 0`` (no activity) ``v = u``. The same rule blends score
    vectors of models without embeddings (``u`` = the model's scores of the user, ``r`` = its
    scores of the recent activity alone).
    """
    single = np.ndim(recent) == 1
    r = np.atleast_2d(np.asarray(recent, dtype=np.float64))
    if user_vectors is None:
        out_r: np.ndarray = r.astype(np.float32)
        return out_r[0] if single else out_r
    u = np.atleast_2d(np.asarray(user_vectors, dtype=np.float64))
    a, b = blend_coefficients(
        mass,
        np.linalg.norm(u, axis=1),
        np.linalg.norm(r, axis=1),
        recent_weight=recent_weight,
        prior_mass=prior_mass,
    )
    out = a[:, None] * u + b[:, None] * r
    result: np.ndarray = out.astype(np.float32)
    return result[0] if single else result


def blend_coefficients(
    mass: np.ndarray | float,
    user_norms: np.ndarray,
    recent_norms: np.ndarray,
    *,
    recent_weight: float = 0.5,
    prior_mass: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """``(a, b)`` with :func:`blend_interest`'s ``v = a u + b r``, from the norms of ``u``, ``r``.

    A model whose vectors are sums of parts blends each part with the same coefficients (the
    service's low-rank + sparse scores); shapes (n,) in and out, float64.
    """
    nu = np.asarray(user_norms, dtype=np.float64)
    nr = np.asarray(recent_norms, dtype=np.float64)
    m = np.broadcast_to(np.asarray(mass, dtype=np.float64), nu.shape)
    beta = float(recent_weight) * m / (m + float(prior_mass))
    scale = np.divide(nu, nr, out=np.zeros_like(nu), where=nr > 0)
    beta = np.where((nr > 0) & (nu > 0), beta, 0.0)
    a, b = 1.0 - beta, beta * scale
    no_u = nu == 0  # v = r
    return np.where(no_u, 0.0, a), np.where(no_u, 1.0, b)


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
    item_embeddings : ndarray, shape (n_items, d), or None
        E.g. ``model.item_embeddings_`` of an embedding recommender. None: the model only weighs
        events (:meth:`weights`) and blends vectors (:meth:`blend`), as the service does with its
        model's own fold-in; the state methods then raise.
    item_categories : ndarray of int, shape (n_items,), optional
        Category code per item (-1 unknown); enables category affinities.
    event_weights : mapping of str -> float, optional
        Weight of each event type, e.g. a dataset manifest's ``event_weights``; completed by
        :func:`gemrec.data.event_types.weight_table` (the import defaults and their aliases).
    default_weight : float
        Weight of event types missing from ``event_weights``.
    half_life_hours : float or None
        An event's weight halves every ``half_life_hours``; None: no time decay.
    half_life_events : float or None
        An event's weight also halves with every ``half_life_events`` events that came after it
        (recency by position, whatever the clock says); None: no such decay.
    recent_weight : float in [0, 1]
        How much the recent-activity vector can move the user embedding (beta below).
    prior_mass : float > 0
        Weight mass at which the recent vector gets half of ``recent_weight``; few recent events
        move the vector little.

    Notes
    -----
    With events (i_j, e_j, t_j), the j-th of n in arrival order, time decay ``d(a) = 2^(-a / h)``
    and recency decay ``g(k) = 2^(-k / h_e)`` (either may be switched off), at time t:

    .. math::

        w_j = w_{e_j} d(t - t_j) g(n - 1 - j), \\qquad m(t) = \\sum_j w_j, \\qquad
        r(t) = \\frac{1}{m(t)} \\sum_j w_j E_{i_j}

    and the interest vector fuses the model's user embedding u with r, rescaled to u's norm
    (:func:`blend_interest`):

    .. math::

        \\beta = \\beta_0 \\frac{m(t)}{m(t) + m_0}, \\qquad
        v = (1 - \\beta) u + \\beta \\frac{\\lVert u \\rVert}{\\lVert r \\rVert} r .

    Without u (a new user) v = r. The state stores the unnormalised sum and m valued at the last
    event, so one update costs O(d): both are decayed by ``d(t' - t) g(1)`` and the new event added.
    Category affinities are the same decayed weights summed per category, normalised to shares.

    Examples
    --------
    >>> E = np.eye(3, dtype=np.float32)
    >>> im = InterestModel(E, half_life_hours=1.0)
    >>> s = im.update(im.empty(), 0, "view", t=0.0)
    >>> s = im.update(s, 1, "purchase", t=3600.0)   # the view is one half-life old by now
    >>> [round(float(x), 3) for x in im.vector(s)]
    [0.091, 0.909, 0.0]
    """

    def __init__(
        self,
        item_embeddings: np.ndarray | None,
        *,
        item_categories: np.ndarray | None = None,
        event_weights: Mapping[str, float] | None = None,
        default_weight: float = DEFAULT_WEIGHT,
        half_life_hours: float | None = 24.0,
        half_life_events: float | None = None,
        recent_weight: float = 0.5,
        prior_mass: float = 1.0,
    ) -> None:
        emb = None if item_embeddings is None else np.asarray(item_embeddings, dtype=np.float32)
        if emb is not None and emb.ndim != 2:
            raise ParameterError.invalid("item_embeddings", "a 2-d array (n_items, d)", emb.shape)
        for name, half_life in (
            ("half_life_hours", half_life_hours),
            ("half_life_events", half_life_events),
        ):
            if half_life is not None and not half_life > 0:
                raise ParameterError.invalid(name, "a positive number or None", half_life)
        if not 0.0 <= recent_weight <= 1.0:
            raise ParameterError.invalid("recent_weight", "a number in [0, 1]", recent_weight)
        if not prior_mass > 0:
            raise ParameterError.invalid("prior_mass", "a positive number", prior_mass)
        if item_categories is not None and (emb is None or len(item_categories) != len(emb)):
            raise ParameterError.invalid(
                "item_categories",
                "an array of length n_items (with item_embeddings)",
                len(item_categories),
            )
        self.item_embeddings = emb
        self.item_categories = (
            None if item_categories is None else np.asarray(item_categories, np.int64)
        )
        self.event_weights = weight_table(event_weights)
        self.default_weight = float(default_weight)
        self.half_life_hours = half_life_hours
        self.half_life_events = half_life_events
        self.recent_weight = float(recent_weight)
        self.prior_mass = float(prior_mass)

    def _embeddings(self) -> np.ndarray:
        if self.item_embeddings is None:
            raise ParameterError(
                "this InterestModel has no item_embeddings: it weighs events and blends vectors "
                "only; pass item_embeddings to keep interest states"
            )
        return self.item_embeddings

    @property
    def n_items(self) -> int:
        return int(self._embeddings().shape[0])

    def empty(self) -> InterestState:
        """The state of a user with no events."""
        return InterestState(np.zeros(self._embeddings().shape[1], np.float32))

    def weight(self, event_type: str) -> float:
        """Behaviour weight of one event type (by its name, else its canonical name)."""
        w = self.event_weights.get(event_type)
        if w is None:
            w = self.event_weights.get(canonical_event_type(event_type), self.default_weight)
        return float(w)

    def weights(
        self,
        event_types: Sequence[str] | np.ndarray,
        timestamps: np.ndarray | None = None,
        now: float | None = None,
    ) -> np.ndarray:
        """Every event's weight ``w_j`` (see Notes of the class), in arrival order.

        Parameters
        ----------
        event_types : sequence of str, shape (n,)
            Oldest first: the last event is the most recent one for the recency decay.
        timestamps : ndarray of float, shape (n,), optional
            Epoch seconds; None (or NaN entries): no time decay for those events.
        now : float, optional
            Time the weights are valued at (default: the latest timestamp).

        Returns
        -------
        ndarray of float64, shape (n,)
        """
        w = np.array([self.weight(str(e)) for e in event_types], dtype=np.float64)
        if timestamps is not None and self.half_life_hours is not None and len(w):
            ts = np.asarray(timestamps, dtype=np.float64)
            ref = float(np.nanmax(ts)) if now is None else float(now)
            d = decay_weights(ref - ts, self.half_life_hours)
            w = w * np.where(np.isfinite(d), d, 1.0)
        if self.half_life_events is not None:
            w = w * np.exp2(-np.arange(len(w))[::-1] / float(self.half_life_events))
        return w

    def blend(
        self, recent: np.ndarray, mass: float, user_vector: np.ndarray | None = None
    ) -> np.ndarray:
        """:func:`blend_interest` with this model's ``recent_weight`` and ``prior_mass``."""
        return blend_interest(
            recent,
            mass,
            user_vector,
            recent_weight=self.recent_weight,
            prior_mass=self.prior_mass,
        )

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
        # every earlier event is one position older now
        older = 1.0 if self.half_life_events is None else 2.0 ** (-1.0 / self.half_life_events)
        if t >= state.t:
            keep = (
                float(decay_weights(t - state.t, self.half_life_hours)) * older
                if state.mass > 0
                else 0.0
            )
            add, t_new = w, float(t)
        else:  # a late event: decay it to the state's time instead
            keep, add, t_new = (
                older,
                w * float(decay_weights(state.t - t, self.half_life_hours)),
                state.t,
            )
        recent = (state.recent * keep + add * self._embeddings()[item]).astype(np.float32)
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
        """The state after folding in a whole history at once (same result as repeated updates).

        Events in arrival order (oldest first), as :meth:`update` would receive them.
        """
        items = np.asarray(items, dtype=np.int64)
        if len(items) == 0:
            return self.empty()
        ts = np.asarray(timestamps, dtype=np.float64)
        t = float(ts.max())
        w = self.weights(np.asarray(event_types), ts, t)
        recent = (w[:, None] * self._embeddings()[items]).sum(axis=0).astype(np.float32)
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
        if state.mass <= 0:
            r = np.zeros_like(state.recent)
        else:
            r = state.recent / np.float32(state.mass)
        mass = state.mass
        if t is not None and t > state.t:
            mass *= float(decay_weights(t - state.t, self.half_life_hours))
        return self.blend(r, mass, user_vector)

    def category_affinities(self, state: InterestState) -> dict[int, float]:
        """Shares of the decayed behaviour weight per category (sum to 1; {} without categories)."""
        total = sum(state.categories.values())
        return {c: v / total for c, v in state.categories.items()} if total > 0 else {}

    def scores(
        self, state: InterestState, user_vector: np.ndarray | None = None, t: float | None = None
    ) -> np.ndarray:
        """Inner products of the interest vector with every item embedding, shape (n_items,)."""
        out: np.ndarray = self._embeddings() @ self.vector(state, user_vector, t)
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
        Behaviour weight of each event (e.g. :meth:`InterestModel.weights` of their types).
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
    return blend_interest(
        r, mass, user_embeddings, recent_weight=recent_weight, prior_mass=prior_mass
    )


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
