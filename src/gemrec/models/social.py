"""Social recommendation: what the people a user follows or trusts like."""

from __future__ import annotations

from typing import ClassVar

import numpy as np
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.models.base import ModelTags, Recommender, State

__all__ = ["SocialRecommender", "normalized_ties", "propagate", "trust_propagation"]


def normalized_ties(ties: sp.spmatrix, n_users: int) -> sp.csr_matrix:
    """The ties as a row-stochastic user x user matrix ``T`` (self-ties dropped).

    Parameters
    ----------
    ties : sparse matrix, shape (n, n)
        ``ties[u, v] > 0`` when ``u`` follows or trusts ``v``; users ``>= n`` (up to ``n_users``)
        have no ties, users beyond ``n_users`` are cut.
    n_users : int

    Returns
    -------
    csr_matrix of float32, shape (n_users, n_users)
    """
    t = sp.csr_matrix(ties, dtype=np.float32)
    t = sp.csr_matrix(t[: min(t.shape[0], n_users)][:, : min(t.shape[1], n_users)])
    t.resize((n_users, n_users))
    t.data[:] = 1.0
    t.setdiag(0.0)
    t.eliminate_zeros()
    degree = np.asarray(t.sum(axis=1), dtype=np.float32).ravel()
    return sp.csr_matrix(sp.diags(1.0 / np.maximum(degree, 1.0)) @ t, dtype=np.float32)


def propagate(start: sp.spmatrix, ties: sp.csr_matrix, hops: int, decay: float) -> sp.csr_matrix:
    """``sum_{h=0..hops-1} decay^h start T^h``: trust spread ``hops - 1`` further steps.

    Parameters
    ----------
    start : sparse matrix, shape (m, n_users)
        The first step's weights per row (a user's row of ``T``, or the people a new user
        follows, each ``1 / their number``).
    ties : csr_matrix, shape (n_users, n_users)
        ``T`` of :func:`normalized_ties`.
    hops, decay : int, float

    Returns
    -------
    csr_matrix of float32, shape (m, n_users)
    """
    out = sp.csr_matrix(start, dtype=np.float32)
    step = out
    for h in range(1, hops):
        step = sp.csr_matrix(step @ ties)
        out = out + np.float32(decay**h) * step
    out = sp.csr_matrix(out, dtype=np.float32)
    out.sum_duplicates()
    return out


def trust_propagation(ties: sp.spmatrix, n_users: int, hops: int, decay: float) -> sp.csr_matrix:
    """Row-normalised ties propagated ``hops`` steps, each step weighted ``decay`` times less.

    Parameters
    ----------
    ties : sparse matrix, shape (n, n)
        As :func:`normalized_ties` reads it.
    n_users, hops, decay : int, int, float

    Returns
    -------
    csr_matrix of float32, shape (n_users, n_users)
        ``S = sum_{h=1..hops} decay^(h-1) T^h`` with ``T`` the ties, each row divided by its sum.

    Examples
    --------
    >>> t = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 1], [0, 0, 0]], dtype=np.float32))
    >>> trust_propagation(t, 3, hops=2, decay=0.5).toarray()[0].tolist()
    [0.0, 1.0, 0.5]
    """
    t = normalized_ties(ties, n_users)
    return propagate(t, t, hops, decay)


class SocialRecommender(Recommender):
    """Items of the people a user follows or trusts, trust propagated through the graph.

    Parameters
    ----------
    hops : int
        Steps of trust propagation (1: direct ties only; 2: also the ties of ties, ...).
    decay : float
        Weight of each further step relative to the one before (0 < decay <= 1).

    Notes
    -----
    With ``T`` the user x user ties of ``SideInformation.social``, each row divided by its sum,
    ``S = sum_{h=1..H} decay^(h-1) T^h`` and ``R`` the binary user x item matrix,

        score(u, i) = (S R)[u, i] + 1e-6 * pop(i) / max pop

    where ``pop(i)`` is the number of users of item ``i``: popularity only breaks ties and ranks
    the lists of users without ties (or a model fit without a social graph, which is then global
    popularity). A user without history but with ties (a cold user) gets a personal list; this is
    what the service's ``social`` cold start serves from direct ties.

    Examples
    --------
    >>> from gemrec.data.side import SideInformation
    >>> x = Interactions.from_arrays([0, 1, 2], [0, 1, 2], n_users=3, n_items=3)
    >>> ties = sp.csr_matrix(np.array([[0, 1, 0], [0, 0, 0], [0, 0, 0]], dtype=np.float32))
    >>> m = SocialRecommender().fit(x, side=SideInformation(social=ties))
    >>> m.recommend(np.array([0]), k=1)[0].tolist()
    [[1]]
    """

    name = "social"
    tags: ClassVar[ModelTags] = ModelTags(side_information=frozenset({"social"}), fold_in=True)

    def __init__(self, *, hops: int = 2, decay: float = 0.5) -> None:
        self.hops = hops
        self.decay = decay

    def _validate_params(self) -> None:
        if isinstance(self.hops, bool) or not isinstance(self.hops, int) or not 1 <= self.hops <= 4:
            raise ParameterError.invalid("hops", "an int in 1..4", self.hops)
        if (
            isinstance(self.decay, bool)
            or not isinstance(self.decay, int | float)
            or not 0 < self.decay <= 1
        ):
            raise ParameterError.invalid("decay", "a number in (0, 1]", self.decay)

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        n = interactions.n_users
        social = self._side.social
        ties = sp.csr_matrix((n, n), dtype=np.float32) if social is None else social
        self.trust_ = trust_propagation(ties, n, int(self.hops), float(self.decay))
        pop = np.asarray(interactions.binary().sum(axis=0), dtype=np.float32).ravel()
        self.item_scores_ = (1e-6 * pop / max(float(pop.max()), 1.0)).astype(np.float32)

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        seen = self.interactions_.copy()
        seen.data[:] = 1.0
        social = np.asarray((self.trust_[users] @ seen).todense(), dtype=np.float32)
        out: np.ndarray = social + self.item_scores_[None, :]
        return out

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Users unseen at fit time have no ties in the graph: popularity (see Notes)."""
        n = sp.csr_matrix(user_items).shape[0]
        return np.broadcast_to(self.item_scores_, (n, self.n_items)).astype(np.float32)

    def _get_state(self) -> State:
        return {"trust_": self.trust_, "item_scores_": self.item_scores_}

    def _set_state(self, state: State) -> None:
        self.trust_ = sp.csr_matrix(state["trust_"])
        self.item_scores_ = state["item_scores_"]
