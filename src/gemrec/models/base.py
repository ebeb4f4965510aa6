"""The one recommender interface every model implements.

Masking of seen items, candidate restriction and user batching are written once, here; top-k
selection is :func:`gemrec.ranking.topk`. A model implements ``_fit`` and ``_score_block`` (and,
for persistence, ``_get_state`` / ``_set_state``); embedding models subclass
:class:`EmbeddingRecommender` and only learn ``user_embeddings_`` / ``item_embeddings_``.
"""

from __future__ import annotations

import inspect
import json
from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp

from gemrec._optional import require
from gemrec.data.interactions import Interactions
from gemrec.data.side import SIDE_FIELDS, SideInformation
from gemrec.errors import GemrecError, NotFittedError, ParameterError
from gemrec.ranking import topk

__all__ = ["EmbeddingRecommender", "ModelTags", "Recommender"]

State = dict[str, Any]
FORMAT_VERSION = 1


@dataclass(frozen=True)
class ModelTags:
    """What a model consumes and offers, declared on the class as ``tags``.

    The fit path (:func:`gemrec.models.fitting.fit_model`), the CLI, fusion and the service read
    these instead of probing methods or signatures; the contract tests check that each class keeps
    its declaration.

    Parameters
    ----------
    validation : {"none", "early_stopping", "tuning"}
        What the model does with a validation split. "early_stopping": it stops at the best epoch
        on ``valid`` and records ``best_epoch_``; the fit path then refits it on train + valid for
        that many epochs. "tuning": it tunes itself on ``valid`` and refits on train + valid on
        its own (fusion). "none": the fit path trains it on train + valid directly.
    side_information : frozenset of str
        Fields of :class:`~gemrec.data.side.SideInformation` the model reads.
    timestamps : bool
        Reads ``Interactions.timestamps`` (recency, sequences, time holdouts).
    embeddings : bool
        Has ``user_embeddings_`` / ``item_embeddings_`` (and ``fold_in``).
    fold_in : bool
        ``score_new`` scores users unseen at fit time from their interactions.
    inner_product : bool
        ``score(users) == user_embeddings_[users] @ item_embeddings_.T``: an ANN index over the
        item embeddings ranks like the model (:class:`gemrec.models.ann.ANNRecommender`).
    item_bias : bool
        With ``inner_product``: the last coordinate of ``item_embeddings_`` is an item bias and
        the last of ``user_embeddings_`` the same weight for every user (item2vec's log prior).
        ANN indexes then hold the bias shifted to start at 0 and take the bias's best items as
        candidates as well (:class:`gemrec.models.ann.ItemIndex`).
    low_rank_plus_sparse : bool
        ``score(users) == user_embeddings_[users] @ item_embeddings_.T + sparse_scores(users)``
        (``sparse_part(users)``: the same sparse scores as a sparse matrix), and
        ``split_new(user_items)`` splits ``score_new`` the same way, and ``score_norms(queries,
        sparse, user_items)`` gives the norms of such score rows without the dense product: the
        service and ``gemrec recommend --ann`` retrieve candidates for the low-rank part from an
        ANN index.
    new_item_embedding : bool
        ``embed_new_items`` embeds catalogue items added after fitting from their attributes.
    progress : bool
        Takes a ``progress`` keyword that shows a per-epoch bar.
    fit_requires : tuple of str
        Optional modules that ``fit`` needs (each names its extra when missing); loading a saved
        model and scoring with it need NumPy and SciPy only.
    distributed : bool
        Trains data-parallel on ``torch.distributed`` (``gemrec train --nproc N``, torchrun) and
        takes a ``device`` keyword (``auto``, ``cpu``, ``cuda``).
    tune_by_default : bool
        Training-free, with a few knobs worth fitting to the data: ``gemrec train`` (and
        :func:`gemrec.models.commands.train_model`) search them on a validation split carved from
        train within about a fit's time before the final fit, unless told not to (``--no-tune``).
    """

    validation: Literal["none", "early_stopping", "tuning"] = "none"
    side_information: frozenset[str] = frozenset()
    timestamps: bool = False
    embeddings: bool = False
    fold_in: bool = False
    inner_product: bool = False
    item_bias: bool = False
    low_rank_plus_sparse: bool = False
    new_item_embedding: bool = False
    progress: bool = False
    fit_requires: tuple[str, ...] = ()
    distributed: bool = False
    tune_by_default: bool = False

    def __post_init__(self) -> None:
        unknown = set(self.side_information) - set(SIDE_FIELDS)
        if unknown:
            raise ValueError(f"unknown side information fields {sorted(unknown)}")


def _as_ids(values: Any, name: str, upper: int) -> np.ndarray:
    arr = np.asarray(values)
    if arr.ndim == 0:
        arr = arr.reshape(1)
    if arr.ndim != 1 or (arr.size and not np.issubdtype(arr.dtype, np.integer)):
        raise ParameterError.invalid(name, "a 1-d array of integer internal ids", values)
    arr = arr.astype(np.int64)
    if arr.size and (arr.min() < 0 or arr.max() >= upper):
        raise ParameterError(
            f"parameter '{name}' holds ids outside 0..{upper - 1}: min {arr.min()}, max {arr.max()}"
        )
    return arr


class Recommender(ABC):
    """Base class: ``fit``, ``score``, ``recommend``, ``similar_items``, ``save``/``load``.

    Subclasses store constructor keyword arguments unchanged (scikit-learn style), validate them in
    ``fit``, and name learned state with a trailing underscore.
    """

    #: name used by the CLI and in saved manifests
    name: ClassVar[str] = ""
    #: what the model consumes and offers
    tags: ClassVar[ModelTags] = ModelTags()
    #: most users scored at once by ``recommend``
    batch_size: ClassVar[int] = 2048
    #: bound on one block of scores in ``recommend`` (bytes): with many items the block holds
    #: fewer users, so 2,048 users x 4M items never asks for 32 GiB
    score_block_bytes: ClassVar[int] = 256 * 2**20

    interactions_: sp.csr_matrix

    # ----------------------------------------------------------------- parameters
    @classmethod
    def _param_names(cls) -> list[str]:
        sig = inspect.signature(cls.__init__)
        return [
            p.name for p in sig.parameters.values() if p.name != "self" and p.kind == p.KEYWORD_ONLY
        ]

    def get_params(self) -> dict[str, Any]:
        """Constructor keyword arguments as stored."""
        return {n: getattr(self, n) for n in self._param_names()}

    def set_params(self, **params: Any) -> Self:
        names = set(self._param_names())
        for key, value in params.items():
            if key not in names:
                raise ParameterError(
                    f"{type(self).__name__} has no parameter '{key}'; "
                    f"valid: {', '.join(sorted(names))}"
                )
            setattr(self, key, value)
        return self

    def __repr__(self) -> str:
        args = ", ".join(f"{k}={v!r}" for k, v in self.get_params().items())
        return f"{type(self).__name__}({args})"

    # ----------------------------------------------------------------- fitting
    def reusable_work(self, interactions: Interactions) -> Any:
        """Work on ``interactions`` that fits with other hyperparameters can share, or None.

        A hyperparameter search computes it from the defaults' model, fits each trial with
        :meth:`fit_reusing`, and computes it again at the costly end of every searched range
        the first time a trial needs more (:meth:`reuses`). The base class has nothing to share.
        """
        return None

    def reuses(self, work: Any) -> bool:
        """Whether :meth:`fit_reusing` can take ``work`` as it is (the base class ignores it)."""
        return True

    def fit_reusing(
        self, interactions: Interactions, work: Any, *, side: SideInformation | None = None
    ) -> Self:
        """:meth:`fit` reusing ``work`` from :meth:`reusable_work` (the base class ignores it)."""
        return self.fit(interactions, side=side)

    def fit(
        self,
        interactions: Interactions,
        *,
        valid: Interactions | None = None,
        side: SideInformation | None = None,
    ) -> Self:
        """Learn from ``interactions``.

        Parameters
        ----------
        interactions : Interactions
            The training interactions.
        valid : Interactions, optional
            A validation split, used only by models whose ``tags.validation`` is not "none".
            To fit a model from a dataset, with the validation split handled as the model
            declares, use :func:`gemrec.models.fitting.fit_model`.
        side : SideInformation, optional
            Item metadata; a model reads the fields named in ``tags.side_information``.

        Returns
        -------
        self
        """
        if not isinstance(interactions, Interactions):
            raise ParameterError.invalid(
                "interactions", "an Interactions object", type(interactions)
            )
        if interactions.nnz == 0:
            raise ParameterError("parameter 'interactions' is empty: nothing to learn from")
        if side is not None and not isinstance(side, SideInformation):
            raise ParameterError.invalid("side", "a SideInformation or None", type(side))
        for module in self.tags.fit_requires:
            require(module, f"training {self.name}")
        self._validate_params()
        self._side = (side or SideInformation()).check(interactions.n_items)
        try:
            self.interactions_ = interactions.matrix
            self._fit(interactions, valid if self.tags.validation != "none" else None)
        finally:
            del self._side
        return self

    def extended(
        self, interactions: Interactions, *, side: SideInformation | None = None
    ) -> Recommender:
        """A model like this one for ``interactions``: the data it was fit on plus more
        interactions between the same users and items.

        The base class fits a new model with the same hyperparameters. A model that can carry
        what it learned over to the larger data without training again overrides
        ``_extended`` (LightGCN propagates its trained ego embeddings over the larger graph). A
        fusion brings its channels from its tuning split to all of its data this way.

        Parameters
        ----------
        interactions : Interactions
            Same shape as the fitted data.
        side : SideInformation, optional

        Returns
        -------
        Recommender
            A new fitted model; this one is left as it is.
        """
        self._check_fitted()
        if interactions.matrix.shape != self.interactions_.shape:
            raise ParameterError.invalid(
                "interactions", f"shape {self.interactions_.shape}", interactions.matrix.shape
            )
        return self._extended(interactions, side)

    def _extended(self, interactions: Interactions, side: SideInformation | None) -> Recommender:
        """:meth:`extended` after its checks; the base class fits anew."""
        return type(self)(**self.get_params()).fit(interactions, side=side)

    def _validate_params(self) -> None:  # noqa: B027 - optional hook
        """Check hyperparameters; raise :class:`ParameterError` naming the bad one."""

    @abstractmethod
    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None: ...

    @property
    def is_fitted(self) -> bool:
        return hasattr(self, "interactions_")

    def _check_fitted(self) -> None:
        if not self.is_fitted:
            raise NotFittedError(
                f"{type(self).__name__} is not fitted yet: call fit() or load() first"
            )

    @property
    def n_users(self) -> int:
        self._check_fitted()
        return int(self.interactions_.shape[0])

    @property
    def n_items(self) -> int:
        self._check_fitted()
        return int(self.interactions_.shape[1])

    # ----------------------------------------------------------------- scoring
    @abstractmethod
    def _score_block(self, users: np.ndarray) -> np.ndarray:
        """Scores of all items for a block of users, shape (len(users), n_items), float32."""

    def score(self, users: Any, items: Any = None) -> np.ndarray:
        """Raw scores.

        Parameters
        ----------
        users : array of int, shape (n,)
        items : array of int, shape (m,), optional
            Defaults to all items.

        Returns
        -------
        ndarray of float32, shape (n, m) or (n, n_items)
        """
        self._check_fitted()
        users = _as_ids(users, "users", self.n_users)
        out = np.asarray(self._score_block(users), dtype=np.float32)
        if items is not None:
            out = out[:, _as_ids(items, "items", self.n_items)]
        return out

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Scores for users described only by their interactions (fold-in, no retraining).

        Parameters
        ----------
        user_items : csr_matrix, shape (n, n_items)

        Returns
        -------
        ndarray of float32, shape (n, n_items)
        """
        raise GemrecError(f"{type(self).__name__} cannot score users unseen at fit time")

    def recommend(
        self,
        users: Any,
        k: int = 10,
        *,
        exclude_seen: bool = True,
        exclude: sp.csr_matrix | None = None,
        candidates: Any = None,
        user_items: sp.csr_matrix | None = None,
    ) -> tuple[np.ndarray, np.ndarray]:
        """Top-k items for each user.

        Parameters
        ----------
        users : array of int, shape (n,)
            Internal user ids (ignored rows when ``user_items`` is given; pass ``arange(n)``).
        k : int
        exclude_seen : bool
            Drop the user's training items (``user_items`` rows when given).
        exclude : csr_matrix, shape (n, n_items), optional
            Extra items to drop, one row per entry of ``users`` (e.g. online events, validation
            items).
        candidates : array of int, optional
            Restrict the ranking to these items.
        user_items : csr_matrix, shape (n, n_items), optional
            Score users by fold-in from these interactions instead of their fitted state.

        Returns
        -------
        ids : ndarray of int32, shape (n, k), padded with -1
        scores : ndarray of float32, shape (n, k), padded with -inf
        """
        self._check_fitted()
        if not isinstance(k, int | np.integer) or k < 1:
            raise ParameterError.invalid("k", "a positive integer", k)
        if user_items is None:
            users = _as_ids(users, "users", self.n_users)
            seen_src = self.interactions_
            seen_rows = users
        else:
            users = np.arange(user_items.shape[0])
            seen_src = user_items.tocsr()
            seen_rows = users
        cand_mask = None
        if candidates is not None:
            cand = _as_ids(candidates, "candidates", self.n_items)
            cand_mask = np.ones(self.n_items, dtype=bool)
            cand_mask[cand] = False
        if exclude is not None:
            exclude = sp.csr_matrix(exclude)
            if exclude.shape != (len(users), self.n_items):
                raise ParameterError.invalid(
                    "exclude",
                    f"a sparse matrix of shape ({len(users)}, {self.n_items})",
                    exclude.shape,
                )
        all_ids, all_scores = [], []
        rows = self.block_rows()
        for start in range(0, len(users), rows):
            block = users[start : start + rows]
            if user_items is None:
                scores = self.score(block)
            else:
                scores = np.asarray(self.score_new(seen_src[block]), dtype=np.float32)
            if not (scores.flags.c_contiguous and scores.flags.writeable):
                scores = np.array(scores, dtype=np.float32, order="C", copy=True)
            if exclude_seen:
                _mask_rows(scores, seen_src, seen_rows[start : start + rows])
            if exclude is not None:
                _mask_rows(scores, exclude, np.arange(start, start + len(block)))
            if cand_mask is not None:
                scores[:, cand_mask] = -np.inf
            ids, vals = topk(scores, int(k))
            all_ids.append(ids)
            all_scores.append(vals)
        if not all_ids:
            return np.zeros((0, k), np.int32), np.zeros((0, k), np.float32)
        return np.vstack(all_ids), np.vstack(all_scores)

    def block_rows(self) -> int:
        """Users scored at once by ``recommend``: ``batch_size``, fewer when a block of
        ``batch_size x n_items`` float32 scores would exceed ``score_block_bytes``."""
        per_row = 4 * max(self.n_items, 1)
        return max(1, min(int(self.batch_size), int(self.score_block_bytes) // per_row))

    def similar_items(self, items: Any, k: int = 10) -> tuple[np.ndarray, np.ndarray]:
        """Most similar items to each query item (the item itself excluded).

        Returns
        -------
        ids : ndarray of int32, shape (n, k); scores : ndarray of float32, shape (n, k)
        """
        self._check_fitted()
        items = _as_ids(items, "items", self.n_items)
        sims = np.array(self._similar_block(items), dtype=np.float32, order="C", copy=True)
        sims[np.arange(len(items)), items] = -np.inf
        return topk(sims, int(k))

    def _similar_block(self, items: np.ndarray) -> np.ndarray:
        """Item-item similarity rows, shape (len(items), n_items). Default: co-occurrence cosine."""
        x = self.interactions_.T.tocsr().astype(np.float32)
        norms = np.sqrt(np.asarray(x.multiply(x).sum(axis=1)).ravel()) + 1e-12
        rows = x[items] @ x.T
        out: np.ndarray = np.asarray(rows.todense()) / norms[items, None] / norms[None, :]
        return out

    # ----------------------------------------------------------------- persistence
    def _get_state(self) -> State:
        """Learned arrays (ndarray or scipy sparse) to persist; the seen matrix is added here."""
        return {}

    def _set_state(self, state: State) -> None:  # noqa: B027 - optional hook
        """Restore learned arrays produced by ``_get_state``."""

    def save(self, path: str | Path) -> Path:
        """Write the model to directory ``path``: ``manifest.json`` + ``arrays.npz`` (no pickle)."""
        self._check_fitted()
        path = Path(path)
        path.mkdir(parents=True, exist_ok=True)
        state = dict(self._get_state())
        state["interactions_"] = self.interactions_
        arrays: dict[str, np.ndarray] = {}
        kinds: dict[str, str] = {}
        for key, value in state.items():
            if sp.issparse(value):
                csr = sp.csr_matrix(value)
                kinds[key] = "csr"
                arrays[f"{key}.data"] = csr.data
                arrays[f"{key}.indices"] = csr.indices
                arrays[f"{key}.indptr"] = csr.indptr
                arrays[f"{key}.shape"] = np.asarray(csr.shape, dtype=np.int64)
            else:
                kinds[key] = "ndarray"
                arrays[key] = np.asarray(value)
        np.savez(path / "arrays.npz", **arrays)  # type: ignore[arg-type]
        from gemrec import __version__

        manifest = {
            "format_version": FORMAT_VERSION,
            "gemrec_version": __version__,
            "model": self.name,
            "class": f"{type(self).__module__}.{type(self).__qualname__}",
            "params": _jsonable(self.get_params()),
            "n_users": self.n_users,
            "n_items": self.n_items,
            "arrays": kinds,
        }
        (path / "manifest.json").write_text(json.dumps(manifest, indent=2))
        self._save_artifacts(path)
        return path

    def _save_artifacts(self, path: Path) -> None:  # noqa: B027 - optional hook
        """Write non-array state (e.g. wrapped models in sub-directories) into ``path``."""

    def _load_artifacts(self, path: Path) -> None:  # noqa: B027 - optional hook
        """Read what :meth:`_save_artifacts` wrote; called by :meth:`load` after ``_set_state``."""

    @classmethod
    def load(cls, path: str | Path) -> Recommender:
        """Load a model saved by :meth:`save`; the base class dispatches on the manifest's name."""
        from gemrec.models import get_model_class

        path = Path(path)
        mf = path / "manifest.json"
        if not mf.is_file():
            raise GemrecError(f"{path}: not a gemrec model directory (no manifest.json)")
        try:
            manifest = json.loads(mf.read_text(encoding="utf-8"))
            model_name = manifest["model"]
            params, arrays = manifest["params"], manifest["arrays"]
        except (UnicodeDecodeError, json.JSONDecodeError, KeyError, TypeError) as exc:
            raise GemrecError(
                f"{mf}: not a valid gemrec model manifest ({type(exc).__name__}: {exc}); "
                "re-create the model with `gemrec train`"
            ) from None
        klass = get_model_class(model_name) if cls is Recommender or not cls.name else cls
        if klass.name != model_name:
            raise GemrecError(f"{path} holds a '{model_name}' model, not '{klass.name}'")
        # JSON has no tuples: give tuple-valued hyperparameters back their constructor type
        defaults = {
            p.name: p.default for p in inspect.signature(klass.__init__).parameters.values()
        }
        params = {
            k: tuple(v) if isinstance(v, list) and isinstance(defaults.get(k), tuple) else v
            for k, v in params.items()
        }
        model = klass(**params)
        if not (path / "arrays.npz").is_file():
            raise GemrecError(
                f"{path}: model directory lacks arrays.npz; re-create it with `gemrec train`"
            )
        with np.load(path / "arrays.npz", allow_pickle=False) as z:
            state: State = {}
            for key, kind in arrays.items():
                if kind == "csr":
                    shape = tuple(int(s) for s in z[f"{key}.shape"])
                    state[key] = sp.csr_matrix(
                        (z[f"{key}.data"], z[f"{key}.indices"], z[f"{key}.indptr"]), shape=shape
                    )
                else:
                    state[key] = z[key]
        model.interactions_ = state.pop("interactions_")
        model._set_state(state)
        model._load_artifacts(path)
        return model


def _mask_rows(scores: np.ndarray, mat: sp.csr_matrix, rows: np.ndarray) -> None:
    sub = mat[rows]
    r = np.repeat(np.arange(len(rows)), np.diff(sub.indptr))
    scores[r, sub.indices] = -np.inf


def _jsonable(params: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for k, v in params.items():
        if isinstance(v, np.generic):
            v = v.item()
        elif isinstance(v, tuple):
            v = list(v)
        out[k] = v
    return out


class EmbeddingRecommender(Recommender):
    """A recommender whose scores are inner products of user and item embeddings.

    Subclasses set ``user_embeddings_`` (n_users, d) and ``item_embeddings_`` (n_items, d), float32.
    Retrieval, fusion and serving use these arrays and never need torch.
    """

    tags: ClassVar[ModelTags] = ModelTags(embeddings=True, fold_in=True, inner_product=True)

    user_embeddings_: np.ndarray
    item_embeddings_: np.ndarray

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        out: np.ndarray = self.user_embeddings_[users] @ self.item_embeddings_.T
        return out

    def fold_in(self, item_vectors: np.ndarray, weights: np.ndarray) -> np.ndarray:
        """One user's vector from the embeddings of the items they touched (online fold-in).

        Parameters
        ----------
        item_vectors : ndarray, shape (m, d)
            Rows of ``item_embeddings_`` (or of embeddings given to new items).
        weights : ndarray, shape (m,)
            Event weights (behaviour strength, recency).

        Returns
        -------
        ndarray of float32, shape (d,)
            The weighted mean; models whose embeddings carry extra terms (e.g. a popularity column)
            override this so that ``fold_in(...) @ item_embeddings_.T`` ranks like ``score_new``.
        """
        w = np.asarray(weights, dtype=np.float32)
        total = float(w.sum()) or 1.0
        return np.asarray((w[:, None] * item_vectors).sum(axis=0) / total, dtype=np.float32)

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Fold-in: ``queries_new(user_items) @ item_embeddings_.T``."""
        return np.asarray(self.queries_new(user_items) @ self.item_embeddings_.T, np.float32)

    def queries_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """The user vectors :meth:`score_new` scores with: the weighted mean of the embeddings of
        the items each user touched.

        Parameters
        ----------
        user_items : csr_matrix, shape (n, n_items)

        Returns
        -------
        ndarray of float32, shape (n, d)
        """
        x = sp.csr_matrix(user_items, dtype=np.float32)
        rs = np.asarray(x.sum(axis=1)).ravel()
        rs[rs == 0] = 1.0
        return np.asarray(sp.diags(1.0 / rs) @ x @ self.item_embeddings_, dtype=np.float32)

    def _similar_block(self, items: np.ndarray) -> np.ndarray:
        v = self.item_embeddings_
        norms = np.linalg.norm(v, axis=1) + 1e-12
        out: np.ndarray = (v[items] @ v.T) / norms[items, None] / norms[None, :]
        return out

    def _get_state(self) -> State:
        return {
            "user_embeddings_": self.user_embeddings_,
            "item_embeddings_": self.item_embeddings_,
        }

    def _set_state(self, state: State) -> None:
        self.user_embeddings_ = np.asarray(state["user_embeddings_"], dtype=np.float32)
        self.item_embeddings_ = np.asarray(state["item_embeddings_"], dtype=np.float32)
