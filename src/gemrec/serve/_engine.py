"""The serving engine: one loaded model, its catalogue, retrieval, online fold-in and cold start.

An :class:`Engine` is built once per model version (at start-up and on reload) and then only grows
(items added online). Online *user* state is never cached here: it is the user's recent events in
the store, read per request, so every worker process sees the same state and an acknowledged
event is reflected by the very next request.
"""

from __future__ import annotations

import hashlib
import json
import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import scipy.sparse as sp

from gemrec.analysis.interests import InterestModel
from gemrec.data.store import Dataset
from gemrec.errors import DataError, GemrecError
from gemrec.models.base import Recommender
from gemrec.serve._retrieval import ItemIndex, select_top
from gemrec.serve._settings import ServeSettings
from gemrec.serve._store import Event, EventStore

__all__ = ["Engine", "NotFound", "Recommendation", "RecommendationList"]

#: item attributes understood by the service (others are stored and returned unchanged)
ITEM_FIELDS = ("category", "brand", "title", "price", "available")
_TOKEN = re.compile(r"[a-z0-9]+")


class NotFound(GemrecError):
    """An id the service does not know (answered with 404)."""


@dataclass
class Recommendation:
    item_id: str
    score: float
    reason: str | None = None


@dataclass
class RecommendationList:
    user_id: str
    items: list[Recommendation]
    strategy: str


@dataclass
class _Catalogue:
    """Item ids and side information; grows when items are added online."""

    item_ids: list[str]
    index: dict[str, int]
    category: np.ndarray  # int32 codes, -1 unknown
    brand: np.ndarray  # int32 codes, -1 unknown
    banned: np.ndarray  # bool: unavailable, deleted or blocklisted
    deleted: np.ndarray  # bool
    unavailable: np.ndarray  # bool
    attrs: dict[int, dict[str, Any]]  # side information of items touched online (and titles)
    category_names: list[str] = field(default_factory=list)
    category_codes: dict[str, int] = field(default_factory=dict)
    brand_codes: dict[str, int] = field(default_factory=dict)
    titles: list[str] = field(default_factory=list)

    @property
    def n(self) -> int:
        return len(self.item_ids)

    def code(self, table: dict[str, int], value: Any, names: list[str] | None = None) -> int:
        if value is None or (isinstance(value, float) and math.isnan(value)):
            return -1
        key = str(value)
        if key not in table:
            table[key] = len(table)
            if names is not None:
                names.append(key)
        return table[key]


def _grow(arr: np.ndarray, n: int, fill: Any) -> np.ndarray:
    if len(arr) >= n:
        return arr
    extra = np.full(n - len(arr), fill, dtype=arr.dtype)
    return np.concatenate([arr, extra])


def model_version(model_dir: Path) -> str:
    """A short content fingerprint of a model directory (manifest + array file size and mtime)."""
    h = hashlib.sha1((model_dir / "manifest.json").read_bytes())
    arrays = model_dir / "arrays.npz"
    if arrays.is_file():
        st = arrays.stat()
        h.update(f"{st.st_size}:{st.st_mtime_ns}".encode())
    return h.hexdigest()[:12]


class Engine:
    """A loaded model with its catalogue, ready to answer requests.

    Parameters
    ----------
    settings : ServeSettings
    model : Recommender
    dataset : Dataset
    model_dir : Path
        Where ``model`` came from (for ``serve_ids.npz`` and ``training.json``).

    Notes
    -----
    Online interest is :class:`~gemrec.analysis.interests.InterestModel`'s rule, the one the
    behaviour analysis uses. With the user's model embedding ``u`` (absent for unseen users) and
    online events ``e`` of weight ``w_e = type_weight(e) * 2 ** (-rank_e / 10)`` (the dataset's
    own event weights, so an online event weighs what it weighed in training; rank 0 = most
    recent) on items with embeddings ``v_e``::

        m = fold_in(v, w)  (the weighted mean, as EmbeddingRecommender.score_new)
        alpha = W / (W + c),  W = sum_e w_e                (c = settings.online_pseudo_count)
        q = (1 - alpha) u + alpha |u| m / |m|              (known user)
        q = m                                              (unseen user)

    Ranking for one user only depends on the direction of ``q``, so mixing unit directions keeps
    the learned preference and the session intent on one scale (``q`` keeps the scale of ``u``).
    Models without embeddings mix scores the same way: ``s = (1 - alpha) s_u + alpha |s_u| s_e /
    |s_e|`` with ``s_u`` the model's scores of the user and ``s_e`` its fold-in of the online events
    alone (``score_new``, or the model's item-to-item similarities where it has no fold-in), so a
    few fresh events move a long history's list at once.
    """

    def __init__(
        self, settings: ServeSettings, model: Recommender, dataset: Dataset, model_dir: Path
    ) -> None:
        self.settings = settings
        self.model = model
        self.dataset = dataset
        self.model_dir = Path(model_dir)
        self.version = model_version(self.model_dir)
        self._lock = threading.Lock()
        training = self.model_dir / "training.json"
        record = json.loads(training.read_text()) if training.is_file() else {}
        #: online events up to this store seq are already inside the model (written by retrain)
        self.folded_through_seq = int(record.get("events_folded_through_seq", 0))
        self.interests = InterestModel(
            None,
            event_weights=dataset.manifest.get("event_weights"),
            half_life_hours=None,
            half_life_events=10.0,
            recent_weight=1.0,
            prior_mass=settings.online_pseudo_count,
        )

        user_ids, item_ids = self._id_maps()
        self.user_ids = user_ids
        self.user_index = {u: i for i, u in enumerate(user_ids)}
        self.n_model_items = model.n_items
        #: each user's history: the dataset's train + valid edges, and the online events a
        #: retrain folded into the model; never only what the model happened to train on
        history = dataset.interactions("train", "valid").grown(
            np.asarray(user_ids), np.asarray(item_ids)
        )
        self.seen: sp.csr_matrix = history.matrix.maximum(
            sp.csr_matrix(model.interactions_, dtype=np.float32)
        ).tocsr()
        self.item_users: sp.csr_matrix = self.seen.T.tocsr()
        self.item_degree = np.diff(self.item_users.indptr).astype(np.float32)
        self.catalogue = self._build_catalogue(item_ids)
        self.trending_base = self._trending(dataset)
        self.online_counts = np.zeros(self.catalogue.n, np.float32)
        self.is_embedding = model.tags.embeddings
        self.index: ItemIndex | None = None
        self._unit: np.ndarray | None = None
        if self.is_embedding:
            emb = np.asarray(model.item_embeddings_, dtype=np.float32)  # type: ignore[attr-defined]
            self.user_emb = np.asarray(model.user_embeddings_, dtype=np.float32)  # type: ignore[attr-defined]
            self.index = ItemIndex(emb, settings.ann_threshold)
        self._social = (
            dataset.social if dataset.has_social and dataset.n_users <= len(user_ids) else None
        )
        self._attr_groups, self._attr_cache = (
            self._user_attribute_groups(dataset),
            OrderedDict[int, np.ndarray](),
        )
        self._title_index: dict[str, list[int]] | None = None
        self.items_version = 0
        self._synced_at = -1e9

    # ------------------------------------------------------------------ construction
    def _id_maps(self) -> tuple[list[str], list[str]]:
        ids_file = self.model_dir / "serve_ids.npz"
        if ids_file.is_file():
            with np.load(ids_file, allow_pickle=False) as z:
                users, items = [str(u) for u in z["user_ids"]], [str(i) for i in z["item_ids"]]
        else:
            users = [str(u) for u in self.dataset.user_ids]
            items = [str(i) for i in self.dataset.item_ids]
        if len(users) != self.model.n_users or len(items) != self.model.n_items:
            raise DataError(
                f"the model has {self.model.n_users} users x {self.model.n_items} items but the "
                "id maps "
                f"have {len(users)} x {len(items)}; pass the dataset the model was trained on",
                path=str(self.dataset.path),
            )
        return users, items

    def _build_catalogue(self, item_ids: list[str]) -> _Catalogue:
        n = len(item_ids)
        cat = _Catalogue(
            item_ids=list(item_ids),
            index={i: k for k, i in enumerate(item_ids)},
            category=np.full(n, -1, np.int32),
            brand=np.full(n, -1, np.int32),
            banned=np.zeros(n, bool),
            deleted=np.zeros(n, bool),
            unavailable=np.zeros(n, bool),
            attrs={},
        )
        table = self.dataset.items
        if len(table) and "item_id" in table:
            rows = np.array([cat.index.get(str(i), -1) for i in table["item_id"]], dtype=np.int64)
            ok = rows >= 0
            if "category" in table:
                codes, uniques = pd.factorize(table["category"].astype("string"))
                cat.category_names = [str(u) for u in uniques]
                cat.category_codes = {c: k for k, c in enumerate(cat.category_names)}
                cat.category[rows[ok]] = codes[ok]
            if "brand" in table:
                codes, uniques = pd.factorize(table["brand"].astype("string"))
                cat.brand_codes = {str(b): k for k, b in enumerate(uniques)}
                cat.brand[rows[ok]] = codes[ok]
            if "available" in table:
                avail = table["available"].fillna(True).astype(bool).to_numpy()
                cat.unavailable[rows[ok & ~avail]] = True
                cat.banned[rows[ok & ~avail]] = True
            cat.titles = [""] * n
            if "title" in table:
                for r, t in zip(rows[ok], table["title"][ok], strict=True):
                    cat.titles[r] = (
                        "" if t is None or (isinstance(t, float) and math.isnan(t)) else str(t)
                    )
        else:
            cat.titles = [""] * n
        for b in self.settings.blocklist:
            if b in cat.index:
                cat.banned[cat.index[b]] = True
        return cat

    def _trending(self, dataset: Dataset) -> np.ndarray:
        """Time-decayed popularity (half-life ``trending_half_life_days`` before the last event)."""
        m = self.seen.copy()
        m.data[:] = 1.0
        try:
            ts = dataset.interactions("train", "valid").timestamps
        except GemrecError:
            ts = None
        if ts is not None and ts.shape == m.shape and ts.nnz == m.nnz:
            age = (ts.data.max() - ts.data) / 86400.0
            m.data = np.exp2(-age / self.settings.trending_half_life_days).astype(np.float32)
        return np.asarray(m.sum(axis=0), dtype=np.float32).ravel()

    def _user_attribute_groups(self, dataset: Dataset) -> np.ndarray | None:
        """Group code per user from user metadata (None when there is none).

        Users with equal values in every metadata column share a group; numeric columns with more
        than 10 distinct values (age, ...) are cut into 5 quantile bins first.
        """
        users = dataset.users
        cols = [c for c in users.columns if c not in ("user", "user_id")]
        if not cols or len(users) > len(self.user_ids):
            return None
        if "user" in users:
            users = users.sort_values("user")
        parts = {}
        for c in cols:
            col = users[c]
            if pd.api.types.is_numeric_dtype(col) and col.nunique() > 10:
                col = pd.qcut(col, 5, labels=False, duplicates="drop")
            parts[c] = pd.factorize(col, use_na_sentinel=False)[0]
        codes = pd.DataFrame(parts).groupby(cols, sort=False).ngroup()
        return np.asarray(codes, dtype=np.int64)

    # ------------------------------------------------------------------ items
    def sync_items(self, store: EventStore, max_age: float = 0.0) -> None:
        """Apply item additions/updates other workers (or this one) wrote to the store.

        ``max_age``: skip the store query when the last one is younger (read paths pass a fraction
        of a second: another worker's item change then shows up within that delay; this worker's own
        changes are synced at once by the write path).
        """
        now = time.monotonic()
        if max_age > 0 and now - self._synced_at < max_age:
            return
        self._synced_at = now
        version, recs = store.item_changes(self.items_version)
        if not recs:
            return
        with self._lock:
            if version <= self.items_version:
                return
            cat = self.catalogue
            new = sorted((r for r in recs if r.item_id not in cat.index), key=lambda r: r.seq)
            for r in recs:
                if r.item_id in cat.index:
                    self._apply_attrs(cat.index[r.item_id], r.attrs)
            if new:
                self._add_items([(r.item_id, r.attrs) for r in new])
            self.items_version = version

    def _apply_attrs(self, item: int, attrs: dict[str, Any]) -> None:
        cat = self.catalogue
        cat.attrs[item] = {**cat.attrs.get(item, {}), **attrs}
        if "category" in attrs:
            cat.category[item] = cat.code(cat.category_codes, attrs["category"], cat.category_names)
        if "brand" in attrs:
            cat.brand[item] = cat.code(cat.brand_codes, attrs["brand"])
        if "title" in attrs and attrs["title"] is not None:
            cat.titles[item] = str(attrs["title"])
        deleted = bool(attrs.get("deleted", cat.deleted[item]))
        cat.deleted[item] = deleted
        available = attrs.get("available")
        if available is not None:
            cat.unavailable[item] = not bool(available)
        blocked = cat.item_ids[item] in self.settings.blocklist
        cat.banned[item] = deleted or bool(cat.unavailable[item]) or blocked

    def _add_items(self, items: Sequence[tuple[str, dict[str, Any]]]) -> None:
        cat = self.catalogue
        start, n = cat.n, cat.n + len(items)
        cat.category = _grow(cat.category, n, -1)
        cat.brand = _grow(cat.brand, n, -1)
        cat.banned = _grow(cat.banned, n, False)
        cat.deleted = _grow(cat.deleted, n, False)
        cat.unavailable = _grow(cat.unavailable, n, False)
        self.online_counts = _grow(self.online_counts, n, 0.0)
        self.trending_base = _grow(self.trending_base, n, 0.0)
        for k, (item_id, attrs) in enumerate(items):
            cat.item_ids.append(item_id)
            cat.index[item_id] = start + k
            cat.titles.append("")
            self._apply_attrs(start + k, attrs)
        if self.index is not None:
            self.index.add(self._side_info_embeddings(list(range(start, n))))
            self._unit = None

    def _side_info_embeddings(self, items: list[int]) -> np.ndarray:
        """Embeddings of new items from their side information.

        A model whose tags declare ``new_item_embedding`` provides
        ``embed_new_items(list_of_attr_dicts) -> (n, d)`` (EGES-style side
        information embeddings, as :class:`~gemrec.models.item2vec.Item2Vec` does); rows it
        cannot embed (zero vectors, or a model fitted without side information) fall back to the
        mean embedding of model items sharing category and brand, then category, then brand, then
        title words, then all items.
        """
        assert self.index is not None
        cat = self.catalogue
        out = np.zeros((len(items), self.index.dim), np.float32)
        if self.model.tags.new_item_embedding:
            records = [{"item_id": cat.item_ids[i], **cat.attrs.get(i, {})} for i in items]
            try:
                embedded = self.model.embed_new_items(records)  # type: ignore[attr-defined]
                out = np.asarray(embedded, dtype=np.float32).reshape(len(items), -1)
            except GemrecError:
                pass
            if out.shape[1] != self.index.dim:
                out = np.zeros((len(items), self.index.dim), np.float32)
        todo = [j for j in range(len(items)) if not np.any(out[j])]
        if todo:
            out[todo] = self._attribute_embeddings([items[j] for j in todo])
        return out

    def _attribute_embeddings(self, items: list[int]) -> np.ndarray:
        assert self.index is not None
        cat = self.catalogue
        base = self.index.vectors[: self.n_model_items]
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

    def item(self, item_id: str) -> int:
        i = self.catalogue.index.get(item_id)
        if i is None:
            raise NotFound(f"unknown item_id {item_id!r}")
        return i

    def category_code(self, category: str) -> int:
        code = self.catalogue.category_codes.get(category)
        if code is None:
            raise NotFound(f"unknown category {category!r}")
        return code

    # ------------------------------------------------------------------ online state
    def online_events(self, store: EventStore, user_id: str) -> list[Event]:
        """The user's recent online events not yet folded into the model, on known items."""
        evs = store.user_events(user_id, self.settings.history_limit)
        idx = self.catalogue.index
        return [e for e in evs if e.seq > self.folded_through_seq and e.item_id in idx]

    def record_ingested(self, events: Sequence[Event]) -> None:
        """Count accepted events towards "trending now" (per process)."""
        idx = self.catalogue.index
        for e in events:
            i = idx.get(e.item_id)
            if i is not None and i < len(self.online_counts):
                self.online_counts[i] += 1.0

    def _weights(self, events: Sequence[Event]) -> tuple[np.ndarray, np.ndarray]:
        """Internal item ids of ``events`` (oldest first) and their weights (class Notes)."""
        items = np.array([self.catalogue.index[e.item_id] for e in events], dtype=np.int64)
        w = self.interests.weights([e.event_type for e in events]).astype(np.float32)
        return items, w

    def query_vector(self, user: int | None, events: Sequence[Event]) -> np.ndarray | None:
        """The interest vector ``q`` of the class Notes (None: no events and no model user)."""
        assert self.index is not None
        u = self.user_emb[user] if user is not None and user < len(self.user_emb) else None
        if not events:
            return u
        items, w = self._weights(events)
        m = self.model.fold_in(self.index.vectors[items], w)  # type: ignore[attr-defined]
        return self.interests.blend(m, float(w.sum()), u)

    # ------------------------------------------------------------------ recommend
    def recommend(
        self,
        user_id: str,
        k: int,
        events: Sequence[Event],
        *,
        exclude_seen: bool = True,
        category: str | None = None,
        with_reasons: bool = True,
    ) -> RecommendationList:
        cat = self.catalogue
        n = cat.n
        user = self.user_index.get(user_id)
        offline = self._offline_items(user)
        excluded = cat.banned[:n].copy()
        if exclude_seen:
            excluded[offline] = True
            excluded[[cat.index[e.item_id] for e in events]] = True
        code = None
        if category is not None:
            code = self.category_code(category)
            excluded |= cat.category[:n] != code
        cap = self.settings.diversity_cap if code is None else None
        categories = cat.category[:n]

        if len(offline) or events:
            strategy = "personalized" if len(offline) else "fold_in"
            picked = self._personalized(user, offline, events, k, excluded, categories, cap)
            if picked is not None:
                ids, scores = picked
                reasons = self._reasons(ids, offline, events) if with_reasons else [None] * len(ids)
                return self._as_list(user_id, ids, scores, reasons, strategy)
        strategy, base, reason = self._cold_start(user, code)
        trend = self._trend_scores(n)
        scores = base + 1e-3 * trend / (
            float(trend.max()) + 1.0
        )  # trending breaks ties / backfills
        ids, vals = select_top(scores, k, excluded, categories, cap)
        return self._as_list(user_id, ids, vals, [reason] * len(ids), strategy)

    def _offline_items(self, user: int | None) -> np.ndarray:
        if user is None or user >= self.seen.shape[0]:
            return np.zeros(0, np.int64)
        row = self.seen.indices[self.seen.indptr[user] : self.seen.indptr[user + 1]]
        return np.asarray(row, dtype=np.int64)

    def _personalized(
        self,
        user: int | None,
        offline: np.ndarray,
        events: Sequence[Event],
        k: int,
        excluded: np.ndarray,
        categories: np.ndarray,
        cap: int | None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        n = self.catalogue.n
        if self.index is not None:
            q = self.query_vector(user if len(offline) else None, events)
            if q is None:
                return None
            n_eligible = n - int(excluded.sum())
            if n_eligible < n // 4:  # a narrow filter (a category): score its items exactly
                items = np.flatnonzero(~excluded)
                ids, vals = select_top(self.index.scores(q, items), k, None, categories[items], cap)
                return items[ids], vals
            return self.index.search(q, k, excluded, categories, cap)
        scores = self._model_scores(user, offline, events)
        if scores is None:
            return None
        full = np.full(n, -np.inf, np.float32)
        full[: len(scores)] = scores
        return select_top(full, k, excluded, categories, cap)

    def _model_scores(
        self, user: int | None, offline: np.ndarray, events: Sequence[Event]
    ) -> np.ndarray | None:
        known = user is not None and len(offline) > 0
        learned = np.asarray(self.model.score(np.array([user]))[0], np.float32) if known else None
        online = [e for e in events if self.catalogue.index[e.item_id] < self.n_model_items]
        if not online:
            return learned
        items, w = self._weights(online)
        row = sp.csr_matrix(
            (w, (np.zeros(len(items), np.int64), items)),
            shape=(1, self.n_model_items),
            dtype=np.float32,
        )
        session: np.ndarray
        if self.model.tags.fold_in:
            session = np.asarray(self.model.score_new(row), np.float32)[0]
        else:  # no fold-in: the model's own item-to-item similarities
            session = self._item_to_item(items, w)
        if learned is None:
            return session
        # the session's share grows with its weight, as for embedding models (class Notes)
        return self.interests.blend(session, float(w.sum()), learned)

    def _item_to_item(self, items: np.ndarray, weights: np.ndarray, width: int = 200) -> np.ndarray:
        """Fold-in for models without ``score_new``: ``s = sum_e w_e sim(i_e, .)`` over each event
        item's ``width`` most similar items (the model's own ``similar_items``)."""
        k = min(width, self.n_model_items - 1)
        scores = np.zeros(self.n_model_items, np.float32)
        if k < 1:
            return scores
        ids, sims = self.model.similar_items(items, k=k)
        ok = ids >= 0
        np.add.at(scores, ids[ok], (weights[:, None] * np.maximum(sims, 0))[ok])
        return scores

    def _trend_scores(self, n: int) -> np.ndarray:
        t = np.zeros(n, np.float32)
        t[: len(self.trending_base)] = self.trending_base[:n]
        t[: len(self.online_counts)] += self.online_counts[:n]
        return t

    def _cold_start(self, user: int | None, code: int | None) -> tuple[str, np.ndarray, str]:
        n = self.catalogue.n
        if user is not None and self._social is not None and user < self._social.shape[0]:
            friends = self._social.indices[
                self._social.indptr[user] : self._social.indptr[user + 1]
            ]
            if len(friends):
                s = np.asarray(self.seen[friends].sum(axis=0), dtype=np.float32).ravel()
                if s.any():
                    return "social", _pad(s, n), "popular among people you follow"
        if user is not None and self._attr_groups is not None and user < len(self._attr_groups):
            s = self._attribute_scores(int(self._attr_groups[user]))
            if s.any():
                return "similar_users", _pad(s, n), "popular with users like you"
        if code is not None:
            return (
                "popular_in_category",
                np.zeros(n, np.float32),
                f"popular in {self.catalogue.category_names[code]}",
            )
        return "trending", np.zeros(n, np.float32), "trending now"

    def _attribute_scores(self, group: int) -> np.ndarray:
        assert self._attr_groups is not None
        cached = self._attr_cache.get(group)
        if cached is None:
            members = np.flatnonzero(self._attr_groups == group)
            members = members[members < self.seen.shape[0]]
            cached = np.asarray((self.seen[members] > 0).sum(axis=0), dtype=np.float32).ravel()
            self._attr_cache[group] = cached
            if len(self._attr_cache) > 1024:
                self._attr_cache.popitem(last=False)
        return cached

    def _reasons(
        self, ids: np.ndarray, offline: np.ndarray, events: Sequence[Event]
    ) -> list[str | None]:
        """ "because you <event> X": the user's item most similar to each recommended one.

        Similarity: embedding cosine for embedding models, co-occurrence (users in common) for the
        others; None where the user's recent items share nothing with the recommended one.
        """
        if not len(ids):
            return []
        cat = self.catalogue
        recent = [(cat.index[e.item_id], e.event_type) for e in events[-20:]]
        if len(recent) < 20:
            recent += [(int(i), "interacted with") for i in offline[-(20 - len(recent)) :]]
        if not recent:
            return [None] * len(ids)
        src = np.array([i for i, _ in recent])
        if self.index is not None:
            v = self.index.vectors
            a = v[ids] / (np.linalg.norm(v[ids], axis=1, keepdims=True) + 1e-12)
            b = v[src] / (np.linalg.norm(v[src], axis=1, keepdims=True) + 1e-12)
            sims = a @ b.T
        else:
            m = self.n_model_items
            sims = np.zeros((len(ids), len(src)), np.float32)
            ok_r, ok_s = np.flatnonzero(ids < m), np.flatnonzero(src < m)
            if len(ok_r) and len(ok_s):
                co = self.item_users[ids[ok_r]] @ self.item_users[src[ok_s]].T
                sims[np.ix_(ok_r, ok_s)] = np.asarray(co.todense(), dtype=np.float32)
        best = np.argmax(sims, axis=1)
        return [
            f"because you {_verb(recent[j][1])} {cat.item_ids[recent[j][0]]}"
            if sims[r, j] > 0
            else None
            for r, j in enumerate(best)
        ]

    def _as_list(
        self,
        user_id: str,
        ids: np.ndarray,
        scores: np.ndarray,
        reasons: Sequence[str | None],
        strategy: str,
    ) -> RecommendationList:
        names = self.catalogue.item_ids
        recs = [
            Recommendation(names[int(i)], float(s), r)
            for i, s, r in zip(ids, scores, reasons, strict=True)
        ]
        return RecommendationList(user_id, recs, strategy)

    # ------------------------------------------------------------------ similar items
    def similar(self, item_id: str, k: int) -> list[Recommendation]:
        cat = self.catalogue
        i = self.item(item_id)
        if cat.deleted[i]:
            raise NotFound(f"item_id {item_id!r} was deleted")
        n = cat.n
        excluded = cat.banned[:n].copy()
        excluded[i] = True
        if self.index is not None:
            if self._unit is None or len(self._unit) != n:
                v = self.index.vectors
                self._unit = v / (np.linalg.norm(v, axis=1, keepdims=True) + 1e-12)
            ids, vals = select_top(self._unit @ self._unit[i], k, excluded)
        elif i < self.n_model_items and self.item_degree[i] > 0:
            fetch = min(self.n_model_items, k + int(excluded.sum()) + 1)
            ids0, vals0 = self.model.similar_items(np.array([i]), k=fetch)
            keep = (ids0[0] >= 0) & ~excluded[np.maximum(ids0[0], 0)]
            ids, vals = ids0[0][keep][:k].astype(np.int64), vals0[0][keep][:k]
        else:
            ids, vals = self._attribute_neighbours(i, k, excluded)
        return [
            Recommendation(cat.item_ids[int(j)], float(s)) for j, s in zip(ids, vals, strict=True)
        ]

    def _attribute_neighbours(
        self, i: int, k: int, excluded: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        cat, n = self.catalogue, self.catalogue.n
        s = np.zeros(n, np.float32)
        if cat.category[i] >= 0:
            s += cat.category[:n] == cat.category[i]
        if cat.brand[i] >= 0:
            s += cat.brand[:n] == cat.brand[i]
        trend = self._trend_scores(n)
        return select_top(s + 1e-3 * trend / (float(trend.max()) + 1.0), k, excluded)

    # ------------------------------------------------------------------ explain
    def explain(
        self, user_id: str, item_id: str, events: Sequence[Event], max_paths: int = 10
    ) -> dict[str, Any]:
        """Paths user -> item the user touched -> (co-users) -> target item, with weights.

        weight(path via x) = w_ux * sim(x, y) where sim is the co-occurrence cosine
        ``|U(x) & U(y)| / sqrt(|U(x)| |U(y)|)`` (plus, for embedding models, the embedding cosine
        is reported).
        """
        cat = self.catalogue
        y = self.item(item_id)
        user = self.user_index.get(user_id)
        offline = self._offline_items(user)
        if user is None and not events:
            raise NotFound(f"unknown user_id {user_id!r} (no offline history and no events)")
        sources: dict[int, tuple[float, str]] = {}
        if len(offline):
            assert user is not None
            row = self.seen[user]
            for x, w in zip(row.indices.tolist(), row.data.tolist(), strict=True):
                sources[x] = (float(w), "interacted with")
        for e in events:
            x = cat.index[e.item_id]
            w0, _ = sources.get(x, (0.0, ""))
            sources[x] = (w0 + self.interests.weight(e.event_type), e.event_type)
        xs = np.array(list(sources), dtype=np.int64)
        in_model = xs[xs < self.n_model_items]
        co = np.zeros(len(xs), np.float32)
        if y < self.n_model_items and len(in_model):
            counts = np.asarray(
                (self.item_users[in_model] @ self.item_users[y].T).todense()
            ).ravel()
            co[np.isin(xs, in_model)] = counts
        deg_x = np.array(
            [self.item_degree[x] if x < self.n_model_items else 0.0 for x in xs], np.float32
        )
        deg_y = float(self.item_degree[y]) if y < self.n_model_items else 0.0
        sim = co / np.sqrt(np.maximum(deg_x * deg_y, 1.0))
        emb = None
        if self.index is not None:
            v = self.index.vectors
            a = v[xs] / (np.linalg.norm(v[xs], axis=1, keepdims=True) + 1e-12)
            emb = a @ (v[y] / (np.linalg.norm(v[y]) + 1e-12))
        same_cat = (cat.category[xs] == cat.category[y]) & (cat.category[y] >= 0)
        paths = []
        for j, x in enumerate(xs.tolist()):
            w_ux, verb = sources[x]
            if co[j] == 0 and not same_cat[j] and (emb is None or emb[j] <= 0):
                continue
            if x == y:
                continue
            weight = (
                w_ux * float(sim[j])
                if co[j] > 0
                else w_ux * 1e-3 * float(max(emb[j] if emb is not None else 0.0, same_cat[j]))
            )
            x_id = cat.item_ids[x]
            text = f"you {_verb(verb)} {x_id}"
            if co[j] > 0:
                text += (
                    f"; {int(co[j])} people who interacted with {x_id} "
                    f"also interacted with {item_id}"
                )
            elif same_cat[j]:
                text += (
                    f"; {item_id} is in the same category ({cat.category_names[cat.category[y]]})"
                )
            else:
                text += f"; {item_id} is close to it in the embedding space"
            path: dict[str, Any] = {
                "path": [user_id, x_id, item_id],
                "via_item_id": x_id,
                "user_event": verb,
                "user_weight": round(w_ux, 6),
                "co_users": int(co[j]),
                "similarity": round(float(sim[j]), 6),
                "weight": round(weight, 6),
                "description": text,
            }
            if emb is not None:
                path["embedding_similarity"] = round(float(emb[j]), 6)
            paths.append(path)
        paths.sort(key=lambda p: (-p["weight"], p["via_item_id"]))
        return {"user_id": user_id, "item_id": item_id, "paths": paths[:max_paths]}

    # ------------------------------------------------------------------ history
    def offline_history(self, user_id: str) -> list[dict[str, Any]]:
        user = self.user_index.get(user_id)
        if user is None or user >= self.seen.shape[0]:
            return []
        row = self.seen[user]
        names = self.catalogue.item_ids
        return [
            {
                "item_id": names[i],
                "event_type": "interaction",
                "value": float(w),
                "timestamp": None,
                "source": "offline",
            }
            for i, w in zip(row.indices.tolist(), row.data.tolist(), strict=True)
        ]

    def info(self) -> dict[str, Any]:
        return {
            "model": self.model.name,
            "model_dir": str(self.model_dir),
            "model_version": self.version,
            "n_users": len(self.user_ids),
            "n_items": self.catalogue.n,
            "retrieval": "faiss-hnsw" if self.index is not None and self.index.ann else "exact",
            "embeddings": self.is_embedding,
            "loaded_at": time.time(),
        }


def _pad(s: np.ndarray, n: int) -> np.ndarray:
    out = np.zeros(n, np.float32)
    out[: len(s)] = s[:n]
    return out


_VERBS = {
    "view": "viewed",
    "pv": "viewed",
    "click": "clicked",
    "buy": "bought",
    "purchase": "bought",
    "cart": "added to cart",
    "fav": "liked",
    "like": "liked",
    "play": "played",
    "checkin": "checked in at",
}


def _verb(event_type: str) -> str:
    return _VERBS.get(event_type, event_type)


def load_engine(settings: ServeSettings, model_dir: Path | None = None) -> Engine:
    """Load the model at ``model_dir`` (default ``settings.model_dir``) and the dataset."""
    model_dir = Path(model_dir or settings.model_dir)
    model = Recommender.load(model_dir)
    dataset = Dataset.open(settings.dataset_dir)
    return Engine(settings, model, dataset, model_dir)
