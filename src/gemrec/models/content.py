"""A content-aware recommender: a collaborative model's item space, extended to items by their text.

Needs the ``text`` extra to fit on item text (``pip install 'gemrec[text]'``); without item text it
is its base model. Loading and scoring a saved model needs NumPy and SciPy only; embedding items
added after fitting (:meth:`ContentModel.embed_new_items`) needs the extra again.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar

import numpy as np
import pandas as pd

from gemrec.data.interactions import Interactions
from gemrec.errors import GemrecError, ParameterError
from gemrec.models.base import EmbeddingRecommender, ModelTags, State

__all__ = ["ContentModel"]


class ContentModel(EmbeddingRecommender):
    """Collaborative factors for items with interactions, text-predicted factors for the rest.

    Parameters
    ----------
    base : str
        The collaborative model (a name of :data:`gemrec.models.MODELS` whose tags declare
        embeddings: ``svd``, ``mf``, ``lightgcn``, ``item2vec``).
    base_params : dict, optional
        Its hyperparameters.
    alpha : float
        Ridge penalty of the map from text embeddings to the base model's item vectors.
    text_weight : float
        Weight of the text channel next to the collaborative one (0: ridge map only).
    text_columns : sequence of str, optional
        Item-table columns forming an item's text (:func:`gemrec.text.item_texts`: ``text``, else
        title, description, categories, category, brand).
    text_model : str
        Sentence-embedding model (:class:`gemrec.text.TextEncoder`).
    cache_dir : str, optional
        Where text embeddings are cached (:func:`gemrec.text.default_cache_dir` by default).

    Attributes
    ----------
    user_embeddings_ : ndarray of float32, shape (n_users, d + t)
        ``[u_b, g p_u]``: the base model's user vector and the user's text profile.
    item_embeddings_ : ndarray of float32, shape (n_items, d + t)
        ``[v_i, g e_i]``; ``v_i`` is the base model's vector for an item with interactions and
        ``e_i W`` for an item without (``t = 0`` when the model saw no item text).
    text_map_ : ndarray of float32, shape (t, d)
        ``W``, the ridge map (empty without item text).
    text_mean_ : ndarray of float32, shape (t,)
        The mean sentence embedding of the catalogue, removed from every item's.
    text_scale_ : float
        ``g``.

    Notes
    -----
    With ``E`` the sentence embeddings of the item texts (t = 384 for MiniLM) less their mean over
    the catalogue (``text_mean_``), rows back to unit norm, ``V`` the
    base model's item vectors and ``S`` the items with interactions (warm), the map is the ridge
    regression

        W = argmin ||E_S W - V_S||^2 + alpha ||W||^2 = (E_S^T E_S + alpha I)^{-1} E_S^T V_S

    rescaled by ``mean_{i in S} ||v_i|| / mean_{i in S} ||e_i W||`` (ridge shrinks its predictions
    towards 0; a cold item's vector gets the norm of a typical warm one), and an item without
    interactions gets ``v_i = e_i W``. The text profile of a user is the mean
    text embedding of their items, ``p_u = sum_i x_ui e_i / sum_i x_ui``, so

        score(u, i) = u_b . v_i + g^2 p_u . e_i

    where ``g^2 = text_weight * mean_u ||U_b V^T||_u / mean_u ||P E^T||_u`` puts the two channels on
    the scale ``text_weight`` says. A cold item is ranked by its predicted collaborative vector and
    by how close its text is to what the user has bought.

    Examples
    --------
    >>> from gemrec.data.interactions import Interactions
    >>> inter = Interactions.from_arrays([0, 0, 1, 1, 2, 3], [0, 1, 0, 1, 0, 2])
    >>> ContentModel(base_params={"factors": 2}).fit(inter).recommend([2], k=1)[0].shape
    (1, 1)
    """

    name = "content"
    tags: ClassVar[ModelTags] = ModelTags(
        side_information=frozenset({"item_features"}),
        embeddings=True,
        inner_product=True,
        fold_in=True,
        new_item_embedding=True,
    )

    def __init__(
        self,
        *,
        base: str = "svd",
        base_params: dict[str, Any] | None = None,
        alpha: float = 10.0,
        text_weight: float = 2.0,
        text_columns: Sequence[str] | None = None,
        text_model: str = "all-MiniLM-L6-v2",
        cache_dir: str | None = None,
    ) -> None:
        self.base = base
        self.base_params = base_params
        self.alpha = alpha
        self.text_weight = text_weight
        self.text_columns = text_columns
        self.text_model = text_model
        self.cache_dir = cache_dir

    def _validate_params(self) -> None:
        from gemrec.models import MODELS, get_model_class

        if not isinstance(self.base, str) or self.base not in MODELS:
            raise ParameterError.invalid("base", f"one of {', '.join(sorted(MODELS))}", self.base)
        if not get_model_class(self.base).tags.embeddings:
            raise ParameterError.invalid(
                "base", "a model with embeddings (svd, mf, lightgcn, item2vec)", self.base
            )
        if self.base_params is not None and not isinstance(self.base_params, dict):
            raise ParameterError.invalid("base_params", "a dict or None", self.base_params)
        for key in ("alpha", "text_weight"):
            v = getattr(self, key)
            if isinstance(v, bool) or not isinstance(v, int | float) or not v >= 0:
                raise ParameterError.invalid(key, "a non-negative number", v)
        if self.text_columns is not None and (
            isinstance(self.text_columns, str)
            or not all(isinstance(c, str) for c in self.text_columns)
        ):
            raise ParameterError.invalid(
                "text_columns", "a list of column names or None", self.text_columns
            )

    # ------------------------------------------------------------------ fitting
    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        from gemrec.models import make_model

        base = make_model(self.base, **(self.base_params or {}))
        base.fit(interactions, side=self._side)
        users = np.asarray(base.user_embeddings_, np.float32)  # type: ignore[attr-defined]
        items = np.asarray(base.item_embeddings_, np.float32)  # type: ignore[attr-defined]
        texts = self._texts(interactions.n_items)
        self.text_map_ = np.zeros((0, items.shape[1]), np.float32)
        self.text_mean_ = np.zeros(0, np.float32)
        self.text_scale_ = 0.0
        if texts is None:
            self.user_embeddings_, self.item_embeddings_ = users, items
            return
        from gemrec.text import TextEncoder, embed_item_texts

        raw = embed_item_texts(
            texts, encoder=TextEncoder(self.text_model), cache_dir=self.cache_dir
        )
        has_text = np.abs(raw).sum(axis=1) > 0
        self.text_mean_ = raw[has_text].mean(axis=0).astype(np.float32)
        e = self._centred(raw).astype(np.float64)
        x = interactions.binary()
        warm = (np.asarray(x.sum(axis=0)).ravel() > 0) & has_text
        ew = e[warm]
        w = np.linalg.solve(
            ew.T @ ew + float(self.alpha) * np.eye(e.shape[1]),
            ew.T @ items[warm].astype(np.float64),
        )
        # ridge shrinks: give predictions the norm the warm items' own vectors have on average
        fitted = np.linalg.norm(ew @ w, axis=1).mean()
        if fitted > 0:
            w *= np.linalg.norm(items[warm], axis=1).mean() / fitted
        cold = ~(np.asarray(x.sum(axis=0)).ravel() > 0) & has_text
        items = items.copy()
        items[cold] = (e[cold] @ w).astype(np.float32)
        counts = np.asarray(x.sum(axis=1), dtype=np.float64).ravel()
        profile = (x @ e) / np.maximum(counts, 1.0)[:, None]
        cf = _mean_row_norm(users.astype(np.float64), items.astype(np.float64))
        tx = _mean_row_norm(profile, e)
        g = float(np.sqrt(float(self.text_weight) * cf / tx)) if tx > 0 else 0.0
        self.text_map_ = w.astype(np.float32)
        self.text_scale_ = g
        self.user_embeddings_ = np.hstack([users, g * profile]).astype(np.float32)
        self.item_embeddings_ = np.hstack([items, g * e]).astype(np.float32)

    def _centred(self, e: np.ndarray) -> np.ndarray:
        """Sentence embeddings less the catalogue's mean (:func:`gemrec.text.centred`)."""
        from gemrec.text import centred

        return centred(e, self.text_mean_)

    def _texts(self, n_items: int) -> list[str] | None:
        """The items' texts, or None when the side information has none."""
        table = self._side.item_features
        if table is None:
            return None
        from gemrec.models._side_info import align_features
        from gemrec.text import item_texts

        texts = item_texts(align_features(table, n_items), self.text_columns)
        return texts if any(texts) else None

    # ------------------------------------------------------------------ new items
    def embed_new_items(
        self, side_info: pd.DataFrame | Mapping[str, Any] | Sequence[Mapping[str, Any]]
    ) -> np.ndarray:
        """Vectors for items known only by their text (e.g. a title), laid out like
        ``item_embeddings_``.

        Parameters
        ----------
        side_info : DataFrame, dict or list of dicts
            One row per new item; its text comes from ``text`` or title, description, categories,
            category and brand (whichever it has).

        Returns
        -------
        ndarray of float32, shape (n_new, d + t)
            ``[e W, g e]`` with ``e`` the item's centred sentence embedding; a zero row for an
            item without text.
        """
        self._check_fitted()
        if not len(self.text_map_):
            raise GemrecError(
                "this content model was fitted without item text "
                "(fit(..., side=SideInformation(item_features=...)) with a title or text column): "
                "new items cannot be embedded"
            )
        from gemrec.models._side_info import as_frame
        from gemrec.text import TextEncoder, item_texts

        texts = item_texts(as_frame(side_info, "side_info"))
        e = self._centred(TextEncoder(self.text_model).encode(texts))
        return np.hstack([e @ self.text_map_, self.text_scale_ * e]).astype(np.float32)

    # ------------------------------------------------------------------ persistence
    def _get_state(self) -> State:
        return {
            **super()._get_state(),
            "text_map_": self.text_map_,
            "text_mean_": self.text_mean_,
            "text_scale_": np.float64(self.text_scale_),
        }

    def _set_state(self, state: State) -> None:
        super()._set_state(state)
        self.text_map_ = np.asarray(state["text_map_"], dtype=np.float32)
        self.text_mean_ = np.asarray(state["text_mean_"], dtype=np.float32)
        self.text_scale_ = float(state["text_scale_"])


def _mean_row_norm(a: np.ndarray, b: np.ndarray) -> float:
    """``mean_u ||a_u b^T||`` without forming ``a b^T``: ``||a_u b^T||^2 = a_u (b^T b) a_u^T``."""
    sq = np.einsum("ud,de,ue->u", a, b.T @ b, a)
    return float(np.sqrt(np.maximum(sq, 0.0)).mean())
