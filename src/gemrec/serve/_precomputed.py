"""Known users' lists computed once, in the background, for models too slow to score per request.

A fitted user's scores without fresh online events depend on the model alone, so their top items
can be computed ahead of any request and stay exact until the model changes (a reload builds a
new engine and new lists). A fusion scores several channels and a learned ranker per request
(about 5 ms of CPU per list on Gowalla), several times what a single model costs; its service
reads a known user's list from here instead. Every other case is scored live as before: a user
with fresh events (each new event changes their next list at once), a user the model does not
know, a list the exclusions empty below ``k`` items, and a user the background thread has not
reached yet.
"""

from __future__ import annotations

import logging
import threading

import numpy as np

from gemrec.models.ann import select_top
from gemrec.models.base import Recommender

__all__ = ["LIST_LENGTH", "PrecomputedLists", "lists_bytes"]

log = logging.getLogger(__name__)

#: items kept per user: the longest list served from here (a longer ``k``, or exclusions that
#: leave fewer eligible items, is scored live)
LIST_LENGTH = 100
#: users scored per call of the model's ``recommend`` (one block's dense scores stay small)
BLOCK_USERS = 256


def lists_bytes(model: Recommender, width: int = LIST_LENGTH) -> int:
    """Memory :class:`PrecomputedLists` takes for ``model``: an int32 id and a float32 score per
    user and listed item."""
    return int(model.n_users) * min(width, int(model.n_items)) * 8


class PrecomputedLists:
    """The model's top ``width`` items of every fitted user, filled block by block in a daemon
    thread (the service answers at once, scoring live until a user is reached).

    Parameters
    ----------
    model : Recommender
        Fitted; read only (the service's requests share it).
    width : int
        Items kept per user (at most the catalogue).

    Notes
    -----
    Row ``u`` holds ``model.recommend([u], width)``: the user's highest fused scores with the
    items the model saw for them excluded, ties to the lower item id, padded with -1 / -inf.
    Blocks fill in user order, so users ``[0, ready)`` are done; the arrays are written before
    ``ready`` moves past them.
    """

    def __init__(self, model: Recommender, width: int = LIST_LENGTH) -> None:
        self.model = model
        self.n_users = model.n_users
        self.width = min(width, model.n_items)
        self.ids = np.full((self.n_users, self.width), -1, np.int32)
        self.scores = np.full((self.n_users, self.width), -np.inf, np.float32)
        self.ready = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._fill, name="gemrec-precompute", daemon=True)
        self._thread.start()

    def _fill(self) -> None:
        try:
            for start in range(0, self.n_users, BLOCK_USERS):
                if self._stop.is_set():
                    return
                stop = min(self.n_users, start + BLOCK_USERS)
                ids, scores = self.model.recommend(np.arange(start, stop), self.width)
                self.ids[start:stop, : ids.shape[1]] = ids
                self.scores[start:stop, : ids.shape[1]] = scores
                self.ready = stop
        except Exception:  # the service stays correct: these users are scored live
            log.exception(
                "precomputing lists stopped after %d of %d users", self.ready, self.n_users
            )

    def wait(self, timeout: float | None = None) -> bool:
        """Block until every list is filled (or ``timeout`` seconds pass); whether it finished."""
        self._thread.join(timeout)
        return self.ready == self.n_users

    def close(self) -> None:
        """Stop filling (the engine is being replaced); lists already filled stay readable."""
        self._stop.set()

    def top(
        self,
        user: int,
        k: int,
        excluded: np.ndarray,
        categories: np.ndarray | None = None,
        cap: int | None = None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """The user's top ``k`` as :func:`~gemrec.models.ann.select_top` picks it from the full
        scores, or None when the list cannot tell (not filled yet, or fewer than ``k`` eligible
        items in it).

        Every item outside the list scores below the list's last item, so whenever ``k`` items
        of the list survive the exclusions and the per-category cap, the greedy pick in score
        order is the one the full score vector gives.
        """
        if user >= self.ready:
            return None
        ids = self.ids[user]
        listed = ids >= 0
        ids = ids[listed].astype(np.int64)
        vals = self.scores[user][listed]
        cats = None if categories is None else categories[ids]
        picked, picked_vals = select_top(vals, k, excluded[ids], cats, cap)
        if len(picked) < k or not np.isfinite(picked_vals).all():
            return None
        return ids[picked], picked_vals
