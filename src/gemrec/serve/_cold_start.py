"""Cold start: lists for users without history and embeddings for items without interactions.

A user with neither offline history nor online events is answered, in this order, from the
people they follow (``social``), from users with the same metadata (``similar_users``), from a
category's popularity (``popular_in_category``) or from what is trending (``trending``). An item
added online gets an embedding from its side information, and its similar items from shared
category and brand.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from typing import Any

import numpy as np
import scipy.sparse as sp

from gemrec.data.store import Dataset
from gemrec.data.user_groups import (
    UserAttributes,
    estimate_shrinkage,
    group_counts,
    item_shares,
    shrunk_group_scores,
)
from gemrec.errors import GemrecError
from gemrec.models.ann import ItemIndex, select_top
from gemrec.models.base import Recommender
from gemrec.models.social import SocialRecommender, normalized_ties, propagate
from gemrec.serve._catalogue import Catalogue

__all__ = ["ColdStart"]

_TOKEN = re.compile(r"[a-z0-9]+")
#: the social path propagates trust as the ``social`` model does with its defaults
_SOCIAL = SocialRecommender()


class ColdStart:
    """Cold-start lists and new-item embeddings.

    Parameters
    ----------
    dataset : Dataset
        Its timestamps (trending), social graph and user metadata.
    seen : csr_matrix, shape (n_users, n_model_items)
        Users' offline items (:class:`~gemrec.serve._history.History`).
    catalogue : Catalogue
    n_users : int
        Users in the engine's id map.
    trending_half_life_days : float
    """

    def __init__(
        self,
        dataset: Dataset,
        seen: sp.csr_matrix,
        catalogue: Catalogue,
        n_users: int,
        *,
        trending_half_life_days: float,
    ) -> None:
        self.seen = seen
        self.catalogue = catalogue
        self.n_model_items = int(seen.shape[1])
        self.trending_base = self._trending(dataset, trending_half_life_days)
        #: the dataset's ties, row-normalised (``T`` of :func:`~gemrec.models.social.propagate`)
        self.ties = (
            normalized_ties(dataset.social, n_users)
            if dataset.has_social and dataset.n_users <= n_users
            else None
        )
        self.attributes = UserAttributes.build(dataset.users, n_users)
        #: group code per dataset user (equal attributes, numbers binned), or None
        self.user_groups = None if self.attributes is None else self.attributes.groups
        self._group_cache = OrderedDict[tuple[tuple[int, int], ...], np.ndarray]()
        self._group_prior: tuple[np.ndarray, float] | None = None
        self._title_index: dict[str, list[int]] | None = None

    # ------------------------------------------------------------------ construction
    def _trending(self, dataset: Dataset, half_life_days: float) -> np.ndarray:
        """Time-decayed popularity (half-life ``half_life_days`` before the last event)."""
        m = self.seen.copy()
        m.data[:] = 1.0
        try:
            ts = dataset.interactions("train", "valid").timestamps
        except GemrecError:
            ts = None
        if ts is not None and ts.shape == m.shape and ts.nnz == m.nnz:
            age = (ts.data.max() - ts.data) / 86400.0
            m.data = np.exp2(-age / half_life_days).astype(np.float32)
        return np.asarray(m.sum(axis=0), dtype=np.float32).ravel()

    # ------------------------------------------------------------------ users
    def trend_scores(self, n: int, online_counts: np.ndarray) -> np.ndarray:
        """Trending score of the first ``n`` items: the dataset's time-decayed popularity plus
        ``online_counts``, the events stored online per item."""
        t = np.zeros(n, np.float32)
        t[: len(self.trending_base)] = self.trending_base[:n]
        t[: len(online_counts)] += online_counts[:n]
        return t

    def strategy(
        self,
        user: int | None,
        code: int | None,
        *,
        friends: np.ndarray | None = None,
        attributes: dict[str, Any] | None = None,
    ) -> tuple[str, np.ndarray, str]:
        """``(strategy, scores, reason)`` for a user without history.

        ``code``: the category filter, if any. ``friends`` (engine user indices) and
        ``attributes``: what the user registered online (``POST /v1/users``); they add to, and
        for attributes take the place of, what the dataset knows of a dataset user. Scores are
        zero for ``popular_in_category`` and ``trending``, which rank by :meth:`trend_scores`
        alone.
        """
        n = self.catalogue.n
        s = self._social_scores(user, friends)
        if s is not None and s.any():
            return "social", _pad(s, n), "popular among people you follow"
        key = None
        if self.attributes is not None:
            if attributes:
                key = self.attributes.key_of(attributes)
            elif user is not None and user < len(self.attributes.groups):
                key = self.attributes.key_of_user(user)
        if key:
            s = self._group_scores(key)
            if s.any():
                return "similar_users", _pad(s, n), "popular with users like you"
        if code is not None:
            return (
                "popular_in_category",
                np.zeros(n, np.float32),
                f"popular in {self.catalogue.category_names[code]}",
            )
        return "trending", np.zeros(n, np.float32), "trending now"

    def _social_scores(self, user: int | None, friends: np.ndarray | None) -> np.ndarray | None:
        """Items of the people the user follows, trust propagated as the ``social`` model does
        (:class:`~gemrec.models.social.SocialRecommender`'s defaults), or None without ties."""
        parts = [] if friends is None else [np.asarray(friends, dtype=np.int64)]
        if user is not None and self.ties is not None and user < self.ties.shape[0]:
            parts.append(self.ties.indices[self.ties.indptr[user] : self.ties.indptr[user + 1]])
        n_users = self.seen.shape[0] if self.ties is None else self.ties.shape[0]
        followed = np.unique(np.concatenate(parts)) if parts else np.zeros(0, np.int64)
        followed = followed[(followed < n_users) & (followed != (-1 if user is None else user))]
        if not len(followed):
            return None
        start = sp.csr_matrix(
            (
                np.full(len(followed), 1.0 / len(followed), np.float32),
                (np.zeros_like(followed), followed),
            ),
            shape=(1, n_users),
        )
        weights = (
            start if self.ties is None else propagate(start, self.ties, _SOCIAL.hops, _SOCIAL.decay)
        )
        users = weights.indices[weights.indices < self.seen.shape[0]]
        rows = sp.csr_matrix(self.seen[users])
        rows.data[:] = 1.0
        w = np.asarray(weights[0, users].toarray(), dtype=np.float32).ravel()
        return np.asarray(w @ rows, dtype=np.float32).ravel()

    def _group_scores(self, key: tuple[tuple[int, int], ...]) -> np.ndarray:
        """Each item's share among the users sharing the attribute codes ``key``, shrunk toward
        its share among all users as the ``similar-users`` model does
        (:func:`~gemrec.data.user_groups.shrunk_group_scores`); zeros when no such user has a
        history."""
        assert self.attributes is not None
        cached = self._group_cache.get(key)
        if cached is None:
            members = self.attributes.members(key)
            members = members[members < self.seen.shape[0]]
            rows = sp.csr_matrix(self.seen[members] > 0, dtype=np.float32)
            n_active = int((np.diff(rows.indptr) > 0).sum())
            cached = np.zeros(self.seen.shape[1], np.float32)
            if n_active:
                counts = np.asarray(rows.sum(axis=0), dtype=np.float32).ravel()
                share, shrinkage = self._prior()
                cached = shrunk_group_scores(counts, n_active, share, shrinkage)
            self._group_cache[key] = cached
            if len(self._group_cache) > 1024:
                self._group_cache.popitem(last=False)
        return cached

    def _prior(self) -> tuple[np.ndarray, float]:
        """Each item's share of the users with a history, and the shrinkage the dataset's
        attribute groups imply (:func:`~gemrec.data.user_groups.estimate_shrinkage`), computed
        once."""
        if self._group_prior is None:
            assert self.user_groups is not None
            binary = sp.csr_matrix(self.seen > 0, dtype=np.float32)
            counts, sizes = group_counts(binary, self.user_groups)
            self._group_prior = (item_shares(binary), estimate_shrinkage(counts, sizes))
        return self._group_prior

    # ------------------------------------------------------------------ items
    def attribute_neighbours(
        self, i: int, k: int, excluded: np.ndarray, trend: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """Items sharing ``i``'s category and brand, ties broken by ``trend``."""
        cat, n = self.catalogue, self.catalogue.n
        s = np.zeros(n, np.float32)
        if cat.category[i] >= 0:
            s += cat.category[:n] == cat.category[i]
        if cat.brand[i] >= 0:
            s += cat.brand[:n] == cat.brand[i]
        return select_top(s + 1e-3 * trend / (float(trend.max()) + 1.0), k, excluded)

    def item_embeddings(self, items: list[int], model: Recommender, index: ItemIndex) -> np.ndarray:
        """Embeddings of new items from their side information.

        A model whose tags declare ``new_item_embedding`` provides
        ``embed_new_items(list_of_attr_dicts) -> (n, d)`` (EGES-style side
        information embeddings, as :class:`~gemrec.models.item2vec.Item2Vec` does); rows it
        cannot embed (zero vectors, or a model fitted without side information) fall back to the
        mean embedding of model items sharing category and brand, then category, then brand, then
        title words, then all items.
        """
        cat = self.catalogue
        out = np.zeros((len(items), index.dim), np.float32)
        if model.tags.new_item_embedding:
            records = [{"item_id": cat.item_ids[i], **cat.attrs.get(i, {})} for i in items]
            try:
                embedded = model.embed_new_items(records)  # type: ignore[attr-defined]
                out = np.asarray(embedded, dtype=np.float32).reshape(len(items), -1)
            except GemrecError:
                pass
            if out.shape[1] != index.dim:
                out = np.zeros((len(items), index.dim), np.float32)
        todo = [j for j in range(len(items)) if not np.any(out[j])]
        if todo:
            out[todo] = self._attribute_embeddings([items[j] for j in todo], index)
        return out

    def _attribute_embeddings(self, items: list[int], index: ItemIndex) -> np.ndarray:
        cat = self.catalogue
        base = index.vectors[: self.n_model_items]
        mc, mb = cat.category[: self.n_model_items], cat.brand[: self.n_model_items]
        rows = []
        for i in items:
            c, b = cat.category[i], cat.brand[i]
            choice = np.zeros(0, np.int64)
            for mask in (
                (mc == c) & (mb == b) if c >= 0 and b >= 0 else None,
                mc == c if c >= 0 else None,
                mb == b if b >= 0 else None,
            ):
                if mask is not None and mask.any():
                    choice = np.flatnonzero(mask)
                    break
            if not len(choice):
                choice = self._title_neighbours(cat.titles[i])
            rows.append(base[choice].mean(axis=0) if len(choice) else base.mean(axis=0))
        return np.vstack(rows).astype(np.float32)

    def _title_neighbours(self, title: str) -> np.ndarray:
        if self._title_index is None:
            idx: dict[str, list[int]] = {}
            for i, t in enumerate(self.catalogue.titles[: self.n_model_items]):
                for tok in set(_TOKEN.findall(t.lower())):
                    idx.setdefault(tok, []).append(i)
            self._title_index = idx
        hits: list[int] = []
        for tok in set(_TOKEN.findall(title.lower())):
            hits.extend(self._title_index.get(tok, [])[:1000])
        return np.unique(np.asarray(hits, dtype=np.int64))


def _pad(s: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    out[: len(s)] = s[:n]
    return out
