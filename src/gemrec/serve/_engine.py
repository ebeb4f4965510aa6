"""The serving engine: one loaded model composed with its catalogue, history and online state.

An :class:`Engine` is built once per model version (at start-up and on reload) and then only grows
(items added online). Its parts, each in its own module:

- :class:`~gemrec.serve._catalogue.Catalogue`: item ids, side information, availability;
- :class:`~gemrec.serve._history.History`: what each user already has offline;
- :class:`~gemrec.serve._online.OnlineState`: a user's online events -> query or score vector;
- :class:`~gemrec.serve._cold_start.ColdStart`: lists for users, embeddings for items, without
  history;
- :class:`~gemrec.serve._explain.Explainer`: reasons and explanation paths.

The engine answers the service's questions (a user's list, an item's neighbours) by composing them.
"""

from __future__ import annotations

import hashlib
import json
import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from gemrec.analysis.interests import InterestModel
from gemrec.data.store import Dataset
from gemrec.errors import DataError
from gemrec.fusion.fusion import Fusion
from gemrec.models.ann import ItemIndex, select_top
from gemrec.models.base import Recommender
from gemrec.serve._catalogue import Catalogue, NotFound
from gemrec.serve._cold_start import ColdStart
from gemrec.serve._explain import Explainer
from gemrec.serve._fusion import FusionScorer
from gemrec.serve._history import History
from gemrec.serve._online import OnlineState
from gemrec.serve._precomputed import PrecomputedLists, lists_bytes
from gemrec.serve._settings import ServeSettings
from gemrec.serve._store import Event, EventStore

__all__ = ["Engine", "NotFound", "Recommendation", "RecommendationList", "load_engine"]

log = logging.getLogger(__name__)


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
    A user's list is personalised when the user has offline history or online events (the
    interest rule is :class:`~gemrec.serve._online.OnlineState`'s), and otherwise comes from
    :class:`~gemrec.serve._cold_start.ColdStart`, which also reads the friends and attributes the
    user registered online. Filters (seen items, a category, banned items)
    and the diversity cap apply to both.
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
        self.history = History(dataset, model, user_ids, item_ids, self.interests.weight)
        self.catalogue = Catalogue.build(item_ids, dataset.items)
        self.is_embedding = model.tags.embeddings
        self.index: ItemIndex | None = None
        self._unit: np.ndarray | None = None
        if self.is_embedding:
            emb = np.asarray(model.item_embeddings_, dtype=np.float32)  # type: ignore[attr-defined]
            self.index = ItemIndex(
                emb,
                settings.ann_threshold,
                bias=model.tags.item_bias,
                ef_search=settings.ann_ef_search,
            )
        #: low-rank + sparse models (graphfilter): an ANN index over the low-rank item factors
        self.low_rank: ItemIndex | None = None
        if model.tags.low_rank_plus_sparse and model.n_items >= settings.ann_threshold:
            factors = np.asarray(model.item_embeddings_, dtype=np.float32)  # type: ignore[attr-defined]
            self.low_rank = ItemIndex(factors, settings.ann_threshold)
        #: a fusion: each channel proposes through its own fast path (an ANN index where it has one)
        self.fusion: FusionScorer | None = None
        if isinstance(model, Fusion):
            self.fusion = FusionScorer(model, settings.ann_threshold)
        #: known users' lists computed once in the background (``settings.precompute_lists``)
        self.precomputed: PrecomputedLists | None = None
        mode = settings.precompute_lists
        wanted = mode == "on" or (mode == "auto" and self.fusion is not None)
        size = lists_bytes(model)
        if wanted and mode == "auto" and size > settings.precompute_max_bytes:
            log.warning(
                "not precomputing the fusion's lists: %d users need %.1f MiB per worker, above "
                "precompute_max_bytes (%.1f MiB); every list is scored per request "
                "(--precompute-lists on computes them anyway)",
                model.n_users,
                size / 2**20,
                settings.precompute_max_bytes / 2**20,
            )
            wanted = False
        if wanted:
            self.precomputed = PrecomputedLists(model)
        self.online = OnlineState(
            model,
            self.catalogue,
            self.interests,
            self.index,
            folded_through_seq=self.folded_through_seq,
            history_limit=settings.history_limit,
            counts_max_age=settings.trending_cache_seconds,
            scorer=self.fusion,
        )
        self.cold_start = ColdStart(
            dataset,
            self.history.seen,
            self.catalogue,
            len(user_ids),
            trending_half_life_days=settings.trending_half_life_days,
        )
        self.explainer = Explainer(self.catalogue, self.history, self.interests, self.index)
        self.items_version = 0
        #: the store's blocklist version this engine's catalogue reflects
        self.blocklist_version = 0
        self._synced_at = -1e9

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

    # ------------------------------------------------------------------ items
    def sync_items(self, store: EventStore, max_age: float = 0.0) -> None:
        """Apply item additions/updates and blocklist changes other workers (or this one) wrote to
        the store.

        ``max_age``: skip the item query when the last one is younger (read paths pass a fraction
        of a second: another worker's item change then shows up within that delay; this worker's own
        changes are synced at once by the write path). The blocklist is synced on every call
        (:meth:`sync_blocklist`), so a blocked item is out of every worker's next answer.
        """
        self.sync_blocklist(store)
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
            described: list[int] = []  # online items whose side information changed
            for r in recs:
                i = cat.index.get(r.item_id)
                if i is not None:
                    before = _description(cat.attrs.get(i, {}))
                    cat.apply(i, r.attrs)
                    if i >= self.n_model_items and _description(cat.attrs[i]) != before:
                        described.append(i)
            if self.index is not None and described:
                # an online item's vector comes from its side information: follow the update
                vectors = self.cold_start.item_embeddings(described, self.model, self.index)
                for i, v in zip(described, vectors, strict=True):
                    self.index.set_vector(i, v)
                self._unit = None
            if new:
                added = cat.add([(r.item_id, r.attrs) for r in new])
                if self.index is not None:
                    self.index.add(self.cold_start.item_embeddings(added, self.model, self.index))
                    self._unit = None
            self.items_version = version

    def sync_blocklist(self, store: EventStore) -> None:
        """Apply the blocklist changes written to the store since the version this engine holds.

        One indexed store read when nothing changed (no full read); the changed ids otherwise.
        """
        version, changes = store.blocklist_changes(self.blocklist_version)
        if not changes:
            return
        with self._lock:
            if version <= self.blocklist_version:
                return  # another thread applied these changes, or later ones, meanwhile
            self.catalogue.block(changes)
            self.blocklist_version = version

    def close(self) -> None:
        """This engine is being replaced: stop its background work."""
        if self.precomputed is not None:
            self.precomputed.close()

    def item(self, item_id: str) -> int:
        return self.catalogue.item(item_id)

    def category_code(self, category: str) -> int:
        return self.catalogue.category_code(category)

    # ------------------------------------------------------------------ online state
    def online_events(self, store: EventStore, user_id: str) -> list[Event]:
        """The user's recent online events not yet folded into the model, on known items."""
        return self.online.events(store, user_id)

    def record_ingested(self, events: Sequence[Event]) -> None:
        """``events`` were stored: this worker's next trending list counts them."""
        self.online.record(events)

    def query_vector(self, user: int | None, events: Sequence[Event]) -> np.ndarray | None:
        """The interest vector ``q`` (:class:`~gemrec.serve._online.OnlineState` Notes)."""
        return self.online.query_vector(user, events)

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
        store: EventStore | None = None,
    ) -> RecommendationList:
        """Top-``k`` for ``user_id`` given their online ``events`` (oldest first).

        ``store``: where "trending now" counts events (cold-start lists, ties); without one only
        the dataset's time-decayed popularity counts.
        """
        cat = self.catalogue
        n = cat.n
        user = self.user_index.get(user_id)
        offline = self.history.items(user)
        excluded = cat.banned[:n].copy()
        if exclude_seen:
            excluded[offline] = True
            excluded[[cat.index[e.item_id] for e in events]] = True
        code = None
        if category is not None:
            code = cat.category_code(category)
            excluded |= cat.category[:n] != code
        cap = self.settings.diversity_cap if code is None else None
        categories = cat.category[:n]

        if len(offline) or events:
            strategy = "personalized" if len(offline) else "fold_in"
            model_user = user if len(offline) else None
            picked = self._personalized(model_user, events, k, excluded, categories, cap)
            if picked is not None:
                ids, scores = picked
                reasons = (
                    self.explainer.reasons(ids, model_user, events)
                    if with_reasons
                    else [None] * len(ids)
                )
                return self._as_list(user_id, ids, scores, reasons, strategy)
        friends, attributes = self._profile(user_id, store)
        strategy, base, reason = self.cold_start.strategy(
            user, code, friends=friends, attributes=attributes
        )
        trend = self.cold_start.trend_scores(n, self.online.item_counts(store))
        scores = base + 1e-3 * trend / (float(trend.max()) + 1.0)  # trending breaks ties, backfills
        ids, vals = select_top(scores, k, excluded, categories, cap)
        return self._as_list(user_id, ids, vals, [reason] * len(ids), strategy)

    def _profile(
        self, user_id: str, store: EventStore | None
    ) -> tuple[np.ndarray | None, dict[str, Any] | None]:
        """The engine indices of the users ``user_id`` follows and their attributes, as
        registered online (``POST /v1/users``); read only on the cold-start path."""
        profile = None if store is None else store.get_user(user_id)
        if profile is None:
            return None, None
        index = self.user_index
        friends = np.asarray([index[f] for f in profile.friends if f in index], dtype=np.int64)
        return friends, profile.attrs

    def _personalized(
        self,
        user: int | None,
        events: Sequence[Event],
        k: int,
        excluded: np.ndarray,
        categories: np.ndarray,
        cap: int | None,
    ) -> tuple[np.ndarray, np.ndarray] | None:
        """Top-k for the model's ``user`` (None: a user it does not know) and online events."""
        n = self.catalogue.n
        if self.index is not None:
            q = self.online.query_vector(user, events)
            if q is None:
                return None
            n_eligible = n - int(excluded.sum())
            if n_eligible < n // 4:  # a narrow filter (a category): score its items exactly
                items = np.flatnonzero(~excluded)
                ids, vals = select_top(self.index.scores(q, items), k, None, categories[items], cap)
                return items[ids], vals
            return self.index.search(q, k, excluded, categories, cap)
        m = self.n_model_items
        if self.low_rank is not None and m - int(excluded[:m].sum()) >= n // 4:
            # not a narrow filter (as above): the low-pass part from the ANN index, the sparse part
            # exact, the candidates re-scored exactly
            split = self.online.low_rank_split(user, events)
            if split is not None:
                q, extra = split
                return self.low_rank.search(q, k, excluded[:m], categories[:m], cap, extra=extra)
        if user is not None and not events and self.precomputed is not None:
            listed = self.precomputed.top(user, k, excluded[:m], categories[:m], cap)
            if listed is not None:
                return listed
        scores = self.online.scores(user, events)
        if scores is None:
            return None
        full = np.full(n, -np.inf, np.float32)
        full[: len(scores)] = scores
        return select_top(full, k, excluded, categories, cap)

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
    def similar(
        self, item_id: str, k: int, store: EventStore | None = None
    ) -> list[Recommendation]:
        """The ``k`` items most similar to ``item_id`` (``store`` as for :meth:`recommend`)."""
        cat = self.catalogue
        i = cat.item(item_id)
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
        elif i < self.n_model_items and self.history.item_degree[i] > 0:
            fetch = min(self.n_model_items, k + int(excluded.sum()) + 1)
            ids0, vals0 = self.model.similar_items(np.array([i]), k=fetch)
            keep = (ids0[0] >= 0) & ~excluded[np.maximum(ids0[0], 0)]
            ids, vals = ids0[0][keep][:k].astype(np.int64), vals0[0][keep][:k]
        else:
            trend = self.cold_start.trend_scores(n, self.online.item_counts(store))
            ids, vals = self.cold_start.attribute_neighbours(i, k, excluded, trend)
        return [
            Recommendation(cat.item_ids[int(j)], float(s)) for j, s in zip(ids, vals, strict=True)
        ]

    # ------------------------------------------------------------------ explain, history
    def explain(
        self, user_id: str, item_id: str, events: Sequence[Event], max_paths: int = 10
    ) -> dict[str, Any]:
        """Paths user -> item the user touched -> (co-users) -> target item, with weights
        (:meth:`~gemrec.serve._explain.Explainer.paths`)."""
        y = self.catalogue.item(item_id)
        user = self.user_index.get(user_id)
        if user is None and not events:
            raise NotFound(f"unknown user_id {user_id!r} (no offline history and no events)")
        return self.explainer.paths(user_id, user, y, events, max_paths)

    def offline_history(self, user_id: str, folded: Sequence[Event] = ()) -> list[dict[str, Any]]:
        """The user's offline history (:meth:`~gemrec.serve._history.History.records`); ``folded``:
        their store events a retrain folded into the model."""
        return self.history.records(self.user_index.get(user_id), folded)

    def info(self) -> dict[str, Any]:
        return {
            "model": self.model.name,
            "model_dir": str(self.model_dir),
            "model_version": self.version,
            "n_users": len(self.user_ids),
            "n_items": self.catalogue.n,
            "retrieval": "faiss-hnsw"
            if any(ix is not None and ix.ann for ix in (self.index, self.low_rank))
            or (self.fusion is not None and self.fusion.ann)
            else "exact",
            "embeddings": self.is_embedding,
            # known users whose list is precomputed so far (None: lists are scored per request)
            "precomputed_users": None if self.precomputed is None else self.precomputed.ready,
            "loaded_at": time.time(),
        }


def _description(attrs: dict[str, Any]) -> dict[str, Any]:
    """What an item is, as opposed to whether it is shown (availability, deletion)."""
    return {k: v for k, v in attrs.items() if k not in ("available", "deleted")}


def load_engine(settings: ServeSettings, model_dir: Path | None = None) -> Engine:
    """Load the model at ``model_dir`` (default ``settings.model_dir``) and the dataset."""
    model_dir = Path(model_dir or settings.model_dir)
    model = Recommender.load(model_dir)
    dataset = Dataset.open(settings.dataset_dir)
    return Engine(settings, model, dataset, model_dir)
