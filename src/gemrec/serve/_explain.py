"""Why an item is recommended: the one-line reasons of a list and the paths of ``/v1/explain``.

Both link a recommended item to the items the user touched: through the embedding cosine for
embedding models, through co-users (users of both items) otherwise.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np

from gemrec.analysis.interests import InterestModel
from gemrec.models.ann import ItemIndex
from gemrec.serve._catalogue import Catalogue
from gemrec.serve._history import History
from gemrec.serve._store import Event

__all__ = ["Explainer", "verb"]


class Explainer:
    """Reasons and explanation paths over one engine's catalogue and history.

    Parameters
    ----------
    catalogue : Catalogue
    history : History
        Users' offline items and each item's users.
    interests : InterestModel
        Weights of online events.
    index : ItemIndex or None
        Item vectors of an embedding model.
    """

    def __init__(
        self,
        catalogue: Catalogue,
        history: History,
        interests: InterestModel,
        index: ItemIndex | None,
    ) -> None:
        self.catalogue = catalogue
        self.history = history
        self.interests = interests
        self.index = index
        self.n_model_items = int(history.seen.shape[1])

    def _strength(self, event_type: str | None) -> float:
        """Rank of an event type: its weight in the one table; an unnamed interaction ranks last."""
        return -math.inf if event_type is None else self.interests.weight(event_type)

    def reasons(
        self, ids: np.ndarray, user: int | None, events: Sequence[Event]
    ) -> list[str | None]:
        """ "because you <event> X": the user's item most similar to each recommended one.

        Sources are the items of the user's 20 most recent online events, then offline items up
        to 20 items; each is named by the strongest event the user had with it (by the event
        weights), an unnamed offline interaction only where nothing else is known. Similarity:
        embedding cosine for embedding models, co-users (distinct users of both items) for the
        others; None where the user's items share nothing with the recommended one.
        """
        if not len(ids):
            return []
        cat, history = self.catalogue, self.history
        sources: dict[int, tuple[float, str | None]] = {}  # item -> strongest (weight, type)
        for e in events[-20:]:  # oldest first: a later event of equal weight names the item
            i, strength = cat.index[e.item_id], self._strength(e.event_type)
            if i not in sources or strength >= sources[i][0]:
                sources[i] = (strength, e.event_type)
        offline, codes = history.items(user), history.event_codes(user)
        if len(offline):
            online = np.fromiter(sources, np.int64, len(sources))
            # what the user did offline with the items of their online events counts too
            pos = np.minimum(np.searchsorted(offline, online), len(offline) - 1)
            for j in np.flatnonzero(offline[pos] == online).tolist():
                code = int(codes[pos[j]])
                if history.event_strength[code] > sources[int(online[j])][0]:
                    sources[int(online[j])] = (
                        history.event_strength[code],
                        history.event_names[code],
                    )
            # then offline items fill up to 20 (the last ones by id, as stored)
            room = 20 - len(sources)
            if room > 0:
                fill = np.flatnonzero(~np.isin(offline, online))[-room:]
                for i, code in zip(offline[fill].tolist(), codes[fill].tolist(), strict=True):
                    sources[i] = (0.0, history.event_names[code] if code >= 0 else None)
        if not sources:
            return [None] * len(ids)
        src = np.array(list(sources), dtype=np.int64)
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
                sims[np.ix_(ok_r, ok_s)] = history.co_users(ids[ok_r], src[ok_s])
        best = np.argmax(sims, axis=1)
        named = [verb(sources[int(i)][1] or OFFLINE) for i in src]
        return [
            f"because you {named[j]} {cat.item_ids[int(src[j])]}" if sims[r, j] > 0 else None
            for r, j in enumerate(best)
        ]

    def paths(
        self,
        user_id: str,
        user: int | None,
        y: int,
        events: Sequence[Event],
        max_paths: int = 10,
    ) -> dict[str, Any]:
        """Paths user -> item the user touched -> (co-users) -> target item ``y``, with weights.

        weight(path via x) = w_ux * sim(x, y) where ``w_ux`` is the user's offline weight of x plus
        the weights of their online events on it, and sim is the co-occurrence cosine
        ``|U(x) & U(y)| / sqrt(|U(x)| |U(y)|)`` over distinct users, in [0, 1] (for embedding
        models the embedding cosine is reported too). A path names the strongest event the user
        had with x.
        """
        cat, history = self.catalogue, self.history
        item_id = cat.item_ids[y]
        # item -> (user weight, strongest event type, its strength)
        sources: dict[int, tuple[float, str | None, float]] = {}
        if len(history.items(user)):
            assert user is not None
            row = history.seen[user]
            types = history.event_types(user)
            for x, w, t in zip(row.indices.tolist(), row.data.tolist(), types, strict=True):
                sources[x] = (float(w), t, self._strength(t))
        for e in events:  # oldest first: a later event of equal weight names the item
            x = cat.index[e.item_id]
            w0, t0, s0 = sources.get(x, (0.0, None, -math.inf))
            w = self.interests.weight(e.event_type)
            sources[x] = (w0 + w, e.event_type, w) if w >= s0 else (w0 + w, t0, s0)
        xs = np.array(list(sources), dtype=np.int64)
        m = self.n_model_items
        in_model = xs[xs < m]
        co = np.zeros(len(xs), np.float32)
        if y < m and len(in_model):
            counts = np.asarray(
                (history.item_users[in_model] @ history.item_users[y].T).todense()
            ).ravel()
            co[np.isin(xs, in_model)] = counts
        deg_x = np.array([history.item_degree[x] if x < m else 0.0 for x in xs], np.float32)
        deg_y = float(history.item_degree[y]) if y < m else 0.0
        sim = co / np.sqrt(np.maximum(deg_x * deg_y, 1.0))
        emb = None
        if self.index is not None:
            v = self.index.vectors
            a = v[xs] / (np.linalg.norm(v[xs], axis=1, keepdims=True) + 1e-12)
            emb = a @ (v[y] / (np.linalg.norm(v[y]) + 1e-12))
        same_cat = (cat.category[xs] == cat.category[y]) & (cat.category[y] >= 0)
        paths = []
        for j, x in enumerate(xs.tolist()):
            w_ux, named, _ = sources[x]
            event_type = named or OFFLINE
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
            text = f"you {verb(event_type)} {x_id}"
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
                "user_event": event_type,
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


#: how an offline pair whose data names no event type is described
OFFLINE = "interacted with"

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


def verb(event_type: str) -> str:
    """``event_type`` as a past-tense phrase ("bought")."""
    return _VERBS.get(event_type, event_type)
