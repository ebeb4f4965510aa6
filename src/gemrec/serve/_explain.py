"""Why an item is recommended: the one-line reasons of a list and the paths of ``/v1/explain``.

Both link a recommended item to the items the user touched: through the embedding cosine for
embedding models, through co-users (users of both items) otherwise.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from gemrec.analysis.interests import InterestModel
from gemrec.serve._catalogue import Catalogue
from gemrec.serve._history import History
from gemrec.serve._retrieval import ItemIndex
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

    def reasons(
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
            item_users = self.history.item_users
            sims = np.zeros((len(ids), len(src)), np.float32)
            ok_r, ok_s = np.flatnonzero(ids < m), np.flatnonzero(src < m)
            if len(ok_r) and len(ok_s):
                co = item_users[ids[ok_r]] @ item_users[src[ok_s]].T
                sims[np.ix_(ok_r, ok_s)] = np.asarray(co.todense(), dtype=np.float32)
        best = np.argmax(sims, axis=1)
        return [
            f"because you {verb(recent[j][1])} {cat.item_ids[recent[j][0]]}"
            if sims[r, j] > 0
            else None
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

        weight(path via x) = w_ux * sim(x, y) where sim is the co-occurrence cosine
        ``|U(x) & U(y)| / sqrt(|U(x)| |U(y)|)`` (plus, for embedding models, the embedding cosine
        is reported).
        """
        cat, history = self.catalogue, self.history
        item_id = cat.item_ids[y]
        sources: dict[int, tuple[float, str]] = {}
        if len(history.items(user)):
            assert user is not None
            row = history.seen[user]
            for x, w in zip(row.indices.tolist(), row.data.tolist(), strict=True):
                sources[x] = (float(w), "interacted with")
        for e in events:
            x = cat.index[e.item_id]
            w0, _ = sources.get(x, (0.0, ""))
            sources[x] = (w0 + self.interests.weight(e.event_type), e.event_type)
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
            w_ux, event_type = sources[x]
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
