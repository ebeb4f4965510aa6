"""Training-free spectral graph filtering (GF-CF / BSPM / ChebyCF family)."""

from __future__ import annotations

import contextlib
import math
from dataclasses import dataclass
from typing import Any, ClassVar, Literal, Self

import numpy as np
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.errors import ParameterError
from gemrec.graph.adjacency import degree_power, degrees, item_gram, normalized_interactions
from gemrec.graph.kernels import accumulate_spmm, set_kernel_threads
from gemrec.graph.spectral import truncated_svd
from gemrec.models._recency import recency_weighted
from gemrec.models._topn import top_n_product
from gemrec.models.base import ModelTags, Recommender, State

__all__ = ["GraphFilter", "SpectralWork"]

ItemItem = Literal["auto", "dense", "sparse", "factored", "truncated"]


@dataclass(frozen=True)
class SpectralWork:
    """What every :class:`GraphFilter` fit of one interaction matrix shares, whatever its knobs.

    The normalised interactions, the item-item gram and a truncated SVD do not depend on
    ``beta`` or the item exponents (they do on ``user_exponent``), and an SVD of rank ``k``
    holds every smaller rank, so a search computes them once for many trials
    (:meth:`GraphFilter.reusable_work`; :meth:`GraphFilter.reuses` says whether a trial's rank
    and ``user_exponent`` fit) and each trial only re-weights and truncates
    (:meth:`GraphFilter.fit_reusing`).

    Attributes
    ----------
    shape : tuple of int
        ``(n_users, n_items)`` of the matrix the work was computed on.
    nnz : int
        Its stored interactions (with ``shape``, a check that a fit reuses the right work).
    item_degree : ndarray of float32, shape (n_items,)
    r_norm : csr_matrix of float32, shape (n_users, n_items)
        ``R~ = D_U^{-b} R D_I^{-1/2}``, divided by its largest singular value when ``b`` is not
        1/2 (for ``b = 1/2`` that value is 1).
    user_exponent : float
        ``b``, the user-degree normalisation the gram and the SVD were computed with.
    gram : csr_matrix of float32, shape (n_items, n_items), or None
        ``P~ = R~^T R~`` (None when the fit applies it factored).
    singular_values : ndarray of float32, shape (k,)
    right_vectors : ndarray of float32, shape (n_items, k)
        ``V_k``, the top right singular vectors of ``R~``.
    """

    shape: tuple[int, int]
    nnz: int
    item_degree: np.ndarray
    r_norm: sp.csr_matrix
    gram: sp.csr_matrix | None
    singular_values: np.ndarray
    right_vectors: np.ndarray
    user_exponent: float = 0.5


class GraphFilter(Recommender):
    """A normalised item-item linear filter plus an ideal low-pass filter from a truncated SVD.

    Nothing is trained: ``fit`` normalises the interaction graph once, takes a truncated SVD and
    (depending on ``item_item``) builds the item-item operator. Scores are a linear function of the
    user's interaction row, so unseen users are scored by fold-in (:meth:`score_new`) exactly as
    fitted ones (whose rows are :meth:`fitted_rows`).

    Parameters
    ----------
    n_components : int or float
        Rank ``k`` of the ideal low-pass part. An int is the rank itself; a float in (0, 1) is a
        fraction of ``min(n_users, n_items)`` (the default, 0.02, gives 597 on Gowalla and 19 on
        MovieLens-100K: the best rank grows with the size of the graph). A fractional rank is
        capped at ``max_components`` and by ``max_factor_bytes``; every rank at
        ``min(n_users, n_items) - 1``.
    max_components : int
        Upper bound of a fractional rank (bounds SVD time and embedding memory on large graphs).
    max_factor_bytes : int
        Upper bound of a fractional rank's factor tables: ``(n_users + 2 n_items) k`` float32
        (user embeddings, item embeddings and projection; the SVD works on about three times as
        much). The default 2 GiB leaves Gowalla's rank alone (it would allow 4,801) and gives 664
        on a 100,000-user, 354,000-item shop and 59 at 1M users and 4M items.
    beta : float
        Weight of the ideal low-pass part (``0`` disables it).
    heat : float
        ``t``: the low-pass part keeps component ``j`` with weight ``exp(-t (1 - s_j^2))``, the
        heat kernel ``exp(-t L)`` of the normalised item Laplacian ``L = I - P~`` on the top-``k``
        subspace (BSPM's blurring). ``0`` is the ideal low-pass filter (GF-CF).
    flatness : float
        Shape of the spectral response ``f`` applied to ``P~`` (eigenvalues ``s_j^2``): the
        degree-``response_order`` Chebyshev interpolant of ChebyCF's plateau
        ``1/2 - 1/2 sign(x) |x|^flatness`` on ``x = 1 - 2 s^2``. ``1`` (the default) is the
        linear filter ``f(P~) = P~`` of GF-CF; larger values flatten the plateau, drawing the
        components between the strongest and the weakest towards 1/2 (ChebyCF: 1.5 on Gowalla,
        15 on Last.fm). The response is applied exactly on the top-``k`` subspace and linearly
        below it, where the published filter is a polynomial of ``P~`` over the whole spectrum
        (``2 response_order`` passes over ``R`` per user); docs/benchmarks/graphfilter.md
        compares the two on Gowalla.
    response_order : int
        Degree of the Chebyshev interpolant of the plateau (ChebyCF: 8).
    ideal_exponent : float
        ``e``: basis of the ideal low-pass part, ``D_I^{-e} V_k H V_k^T D_I^{e}`` inside the
        filter (ChebyCF: 0, the basis of ``P~``; GF-CF: 1/2).
    input_exponent : float
        ``a``: item-degree normalisation of the user's input signal (GF-CF: 1/2).
    output_exponent : float
        ``c``: item-degree normalisation of the output scores (GF-CF: 1/2); smaller values favour
        popular items.
    user_exponent : float
        ``b``: user-degree normalisation of the graph, ``R~ = D_U^{-b} R D_I^{-1/2}`` (GF-CF,
        the default: 1/2), rescaled so that its largest singular value is 1 (the spectrum the
        response and ``heat`` are defined on). Below 1/2 users with many interactions weigh
        more in the item-item part and the SVD, above it less. Fits with different values
        share no work.
    shrink : float
        ``lambda``: damps the item-item part where the two items' degrees are small, entry
        ``(i, j)`` of ``D^{1/2-a} P~ D^{1/2-c}`` taken times ``d_i^a d_j^c / (d_i^a d_j^c +
        lambda)``, the shrunk similarity of item-based neighbourhood models (a pair seen by few
        users says little). ``0`` (the default) leaves the filter as it is; on sparse product
        catalogues it lifts the filter to the neighbourhood models' level (``gemrec train``'s
        search starts from 20; docs/benchmarks/graphfilter.md). With
        ``item_item="truncated"`` each row keeps its largest entries before they are shrunk;
        ``"factored"`` cannot apply it. A shrunk (or ``user_exponent != 1/2``) sparse part is
        no longer two thin factors, so the service's one-time ``L E`` for the score norms
        multiplies its entries by the low-rank factors (about 15 s per worker at Gowalla's 42M
        entries and rank 597, where the thin factors take about a second).
    recency : float
        Weighs each fitted user's interactions by their place in the user's history:
        ``exp(-recency (1 - q))`` with ``q`` the interaction's time rank over the user's count
        (the latest weighs about 1, the first ``exp(-recency)``). Only the user's signal ``x`` is
        weighted, not the graph. It needs the interactions' timestamps or their source's order
        (``Interactions.order``; without either the fit ignores it) and suits data whose
        held-out part follows the training part in time: on Amazon Scientific's leave-one-out
        split ``recency=1`` lifts test Recall@20 / NDCG@20 from .1553 / .0964 to .1586 / .1004,
        on its random 20 % split it lowers them. ``0`` (the default) weighs interactions as the
        data does; ``gemrec train`` searches it where the validation split holds each user's
        latest edges (a temporal or leave-last import, or ``gemrec import --valid-latest``).
        Rows given to :meth:`score_new` are used as given.
    item_item : {"auto", "dense", "sparse", "factored", "truncated"}
        How the linear part ``P~ = R~^T R~`` is applied. ``"dense"`` builds the ``n_items x
        n_items`` filter (small catalogues only); ``"sparse"`` keeps ``P~`` as a sparse matrix
        (``nnz`` = co-occurring item pairs) and scores with a dense-accumulator kernel;
        ``"factored"`` never builds ``P~`` and applies ``(x R~^T) R~`` per user block (exact, but
        a user's cost grows with the degrees of their items' users: on a Taobao-shaped shop of
        100M events a user reaches about 195,000 co-users); ``"truncated"`` keeps the
        ``item_neighbours`` largest entries of each row of the scaled ``P~`` (an approximation
        of the linear part; a user costs ``item_neighbours`` per interaction), built from the
        factors without forming ``P~`` (cost ``sum_u deg(u)^2``). ``"auto"`` picks dense when
        ``n_items <= max_dense_items``, else sparse when ``P~`` needs at most
        ``max_gram_bytes``, else truncated.
    item_neighbours : int
        Entries kept per item by ``item_item="truncated"``. On Gowalla (where "auto" keeps the
        exact sparse ``P~``) 200 keep Recall@20 at .1894 against the exact .1912 (100: .1871,
        400: .1909) and 93 % of the exact top-20 lists (docs/benchmarks/graphfilter.md).
    max_dense_items : int
        Catalogue size up to which ``"auto"`` builds the dense item-item filter.
    max_gram_bytes : int
        Memory bound for the sparse ``P~`` under ``"auto"`` (estimated from ``sum_u deg(u)^2``).
    svd_method : {"auto", "randomized", "arpack", "dense"}
        Truncated SVD of ``R~``. ``"auto"``: exact (LAPACK, the top-``k`` eigenpairs of the
        smaller side's Gram matrix) when ``min(n_users, n_items) <= 1024``, randomized otherwise.
    svd_n_iter : int
        Power iterations of the randomized SVD. 4 (the default) resolves the components near
        rank ``k`` better than 2 at about 15 % more fit time on Gowalla, and scores higher on
        most datasets (MovieLens-1M test Recall@20 .2461 -> .2500, Gowalla .1907 -> .1912).
    seed : int
        Seed of the randomized SVD.
    num_threads : int or None
        Threads for BLAS and the scoring kernel. None: all cores while fitting; while scoring,
        whatever the process has set (``gemrec serve`` sets ``blas_threads`` once per worker).

    Attributes
    ----------
    user_embeddings_ : ndarray of float32, shape (n_users, k)
        ``(x_u D_I^{1/2-a-e}) V_k``: the user's signal in the low-pass subspace.
    item_embeddings_ : ndarray of float32, shape (n_items, k)
        ``beta D_I^{e+1/2-c} V_k H`` for the linear response (``(n_items, 2 k)`` with the
        response's correction beside it, see :meth:`low_rank_factors`);
        ``user_embeddings_ @ item_embeddings_.T`` is the low-rank part of the scores. Full
        scores add the linear part (:meth:`score`), so retrieval on these embeddings alone is an
        approximation (a good candidate generator).
    singular_values_ : ndarray of float32, shape (k,)
    item_projection_ : ndarray of float32, shape (n_items, k)
        ``D_I^{1/2-a-e} V_k``: maps an interaction row to its user embedding (fold-in).
    n_components_ : int
        The rank actually used.
    item_item_ : str
        The strategy ``"auto"`` resolved to.
    profiles_ : csr_matrix of float32 or None
        The fitted users' rows weighted by ``recency`` (None when they are ``interactions_``).

    Notes
    -----
    With ``R~ = D_U^{-b} R D_I^{-1/2}`` (``b = 1/2``, the default; otherwise rescaled to a
    largest singular value of 1), ``P~ = R~^T R~`` and ``R~ ~= U_k S_k V_k^T``, the score of a
    user with interaction row ``x`` (shape ``(1, n_items)``) is

    .. math::

        s(x) = (x D_I^{1/2-a}) [P~ + V_k (f(S_k^2) - S_k^2) V_k^T
               + \beta D_I^{-e} V_k H V_k^T D_I^{e}] D_I^{1/2-c}

    with ``f`` the response (``f(s^2) = s^2`` for ``flatness=1``) and
    ``H = diag(exp(-t (1 - s_j^2)))`` (``H = I`` for ``heat=0``); ``shrink`` multiplies the
    entries of the item-item part ``D_I^{1/2-a} P~ D_I^{1/2-c}`` by ``d_i^a d_j^c / (d_i^a
    d_j^c + lambda)``.
    With ``a = c = e = 1/2`` and the linear response this is GF-CF (Shen et al., CIKM 2021): the
    linear low-pass filter ``P~`` (eigenvalues ``s_j^2`` in [0, 1]) plus the ideal low-pass filter
    that keeps the top-``k`` spectral components of the item graph. With ``flatness != 1``,
    ``e = 0`` and ``a = 1 - c`` it is ChebyCF (Kim et al., SIGIR 2025), its polynomial filter
    exact on the top-``k`` subspace and linear below (its Gowalla setting: ``flatness=1.5,
    beta=0.2, ideal_exponent=0, input_exponent=0.9, output_exponent=0.1``). The cost of scoring a
    user is ``sum_{i in x} nnz(P~_i)`` for the sparse part plus ``k * n_items`` for the low-rank
    part (``2 k`` when both ``flatness != 1`` and an ideal part with ``e != 0`` are used); no
    ``n_items x n_items`` matrix is formed unless ``item_item="dense"``.

    Examples
    --------
    >>> import numpy as np
    >>> from gemrec.data.interactions import Interactions
    >>> rng = np.random.default_rng(0)
    >>> inter = Interactions.from_arrays(rng.integers(0, 30, 200), rng.integers(0, 20, 200))
    >>> model = GraphFilter(n_components=4).fit(inter)
    >>> ids, scores = model.recommend(np.arange(3), k=5)
    >>> ids.shape, model.item_embeddings_.shape
    ((3, 5), (20, 4))
    """

    name: ClassVar[str] = "graphfilter"
    tags: ClassVar[ModelTags] = ModelTags(
        fold_in=True, tune_by_default=True, low_rank_plus_sparse=True
    )

    user_embeddings_: np.ndarray
    item_embeddings_: np.ndarray
    singular_values_: np.ndarray
    item_projection_: np.ndarray
    item_item_: str
    linear_: Any
    left_: sp.csr_matrix
    right_: sp.csr_matrix
    #: work shared with other fits of the same matrix, set for one fit by :meth:`fit_reusing`
    _work: SpectralWork | None = None
    profiles_: sp.csr_matrix | None = None
    #: :meth:`score_norms`' cache of E^T E, for the fitted factors
    _gram: np.ndarray | None = None
    #: :meth:`score_norms`' cache of L E, for the fitted filter
    _linear_emb: np.ndarray | None = None

    def __init__(
        self,
        *,
        n_components: int | float = 0.02,
        max_components: int = 1024,
        max_factor_bytes: int = 2**31,
        beta: float = 0.15,
        heat: float = 0.0,
        flatness: float = 1.0,
        response_order: int = 8,
        ideal_exponent: float = 0.5,
        input_exponent: float = 0.6,
        output_exponent: float = 0.4,
        user_exponent: float = 0.5,
        shrink: float = 0.0,
        recency: float = 0.0,
        item_item: ItemItem = "auto",
        item_neighbours: int = 200,
        max_dense_items: int = 8192,
        max_gram_bytes: int = 4 * 2**30,
        svd_method: Literal["auto", "randomized", "arpack", "dense"] = "auto",
        svd_n_iter: int = 4,
        seed: int = 0,
        num_threads: int | None = None,
    ) -> None:
        self.n_components = n_components
        self.max_components = max_components
        self.max_factor_bytes = max_factor_bytes
        self.beta = beta
        self.heat = heat
        self.flatness = flatness
        self.response_order = response_order
        self.ideal_exponent = ideal_exponent
        self.input_exponent = input_exponent
        self.output_exponent = output_exponent
        self.user_exponent = user_exponent
        self.shrink = shrink
        self.recency = recency
        self.item_item = item_item
        self.item_neighbours = item_neighbours
        self.max_dense_items = max_dense_items
        self.max_gram_bytes = max_gram_bytes
        self.svd_method = svd_method
        self.svd_n_iter = svd_n_iter
        self.seed = seed
        self.num_threads = num_threads

    # ----------------------------------------------------------------- validation
    def _validate_params(self) -> None:
        def _int(name: str, low: int) -> None:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int | np.integer) or v < low:
                raise ParameterError.invalid(name, f"an integer >= {low}", v)

        def _real(name: str, low: float | None = None) -> None:
            v = getattr(self, name)
            if (
                isinstance(v, bool)
                or not isinstance(v, int | float | np.floating)
                or not np.isfinite(v)
            ):
                raise ParameterError.invalid(name, "a finite number", v)
            if low is not None and v < low:
                raise ParameterError.invalid(name, f"a number >= {low}", v)

        k = self.n_components
        if isinstance(k, float):
            if not 0.0 < k < 1.0:
                raise ParameterError.invalid("n_components", "an int >= 1 or a float in (0, 1)", k)
        elif isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
            raise ParameterError.invalid("n_components", "an int >= 1 or a float in (0, 1)", k)
        _int("max_components", 1)
        _int("max_factor_bytes", 1)
        _real("beta", 0.0)
        _real("heat", 0.0)
        _real("flatness")
        if not self.flatness > 0:
            raise ParameterError.invalid("flatness", "a number > 0", self.flatness)
        _int("response_order", 1)
        _real("ideal_exponent")
        _real("input_exponent")
        _real("output_exponent")
        _real("user_exponent", 0.0)
        _real("shrink", 0.0)
        _real("recency", 0.0)
        if self.shrink > 0 and self.item_item == "factored":
            raise ParameterError.invalid(
                "shrink", "0 with item_item='factored' (it never forms P~'s entries)", self.shrink
            )
        _int("item_neighbours", 1)
        _int("max_dense_items", 0)
        _int("max_gram_bytes", 0)
        _int("svd_n_iter", 0)
        _int("seed", 0)
        if self.item_item not in ("auto", "dense", "sparse", "factored", "truncated"):
            raise ParameterError.invalid(
                "item_item",
                "one of 'auto', 'dense', 'sparse', 'factored', 'truncated'",
                self.item_item,
            )
        if self.svd_method not in ("auto", "randomized", "arpack", "dense"):
            raise ParameterError.invalid(
                "svd_method", "one of 'auto', 'randomized', 'arpack', 'dense'", self.svd_method
            )
        if self.num_threads is not None:
            _int("num_threads", 1)

    # ----------------------------------------------------------------- fitting
    def _threads(self) -> Any:
        from threadpoolctl import threadpool_limits

        set_kernel_threads(self.num_threads)
        if self.num_threads is None:
            return threadpool_limits(limits=None)
        return threadpool_limits(limits=int(self.num_threads))

    def _scoring_threads(self) -> Any:
        """Thread pools while scoring: ``num_threads`` when set; otherwise the process's own
        settings, untouched (a service decides them once per worker; entering thread-pool limits
        costs about a millisecond, more than scoring one user's sparse part)."""
        return contextlib.nullcontext() if self.num_threads is None else self._threads()

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        self.profiles_ = recency_weighted(interactions, float(self.recency))
        with self._threads():
            self._fit_arrays(interactions.matrix, self._work, self.profiles_)

    def reusable_work(self, interactions: Interactions) -> SpectralWork:
        """The normalisation, gram and SVD (at this model's rank) that other fits can reuse.

        Parameters
        ----------
        interactions : Interactions
            The matrix later passed to :meth:`fit_reusing`.

        Returns
        -------
        SpectralWork
            Reusable by any ``GraphFilter`` of the same ``item_item`` strategy whose rank is at
            most this model's.
        """
        self._validate_params()
        R = interactions.matrix
        with self._threads():
            return self._compute_work(R, self._rank(*R.shape))

    def reuses(self, work: Any) -> bool:
        """Whether :meth:`fit_reusing` can take ``work``: it holds this model's rank and the
        gram its item-item strategy needs."""
        return isinstance(work, SpectralWork) and self._work_shortfall(work) is None

    def _work_shortfall(self, work: SpectralWork) -> str | None:
        """What ``work`` lacks for this model (None: nothing)."""
        if work.user_exponent != float(self.user_exponent):
            return (
                f"parameter 'work' was computed with user_exponent={work.user_exponent}, not "
                f"{self.user_exponent}: compute it with the same user_exponent"
            )
        k = self._rank(*work.shape)
        if self._needs_svd() and work.right_vectors.shape[1] < k:
            return (
                f"parameter 'work' holds {work.right_vectors.shape[1]} singular vectors, fewer "
                f"than this model's rank {k}: compute it with a model of rank >= {k}"
            )
        strategy = self._resolve_item_item(work.r_norm)
        if strategy in ("dense", "sparse") and work.gram is None:
            return (
                f"parameter 'work' has no item-item gram, which item_item={strategy!r} needs: "
                "compute it with the same item_item setting"
            )
        return None

    def fit_reusing(
        self,
        interactions: Interactions,
        work: Any,
        *,
        side: SideInformation | None = None,
    ) -> Self:
        """:meth:`fit` with the normalisation, gram and SVD taken from ``work``.

        The result equals a fit whose SVD is ``work``'s truncated to this model's rank.

        Parameters
        ----------
        interactions : Interactions
            The matrix ``work`` was computed on.
        work : SpectralWork
            From :meth:`reusable_work` of a model of rank >= this model's.
        side : SideInformation, optional
            Passed to :meth:`fit` (graphfilter reads none).
        """
        if not isinstance(work, SpectralWork):
            raise ParameterError.invalid("work", "a SpectralWork", type(work))
        R = interactions.matrix
        if work.shape != R.shape or work.nnz != R.nnz:
            raise ParameterError(
                f"parameter 'work' was computed on a {work.shape} matrix with {work.nnz} "
                f"interactions, not on these {R.shape} with {R.nnz}: call reusable_work on the "
                "same interactions"
            )
        self._work = work
        try:
            return self.fit(interactions, side=side)
        finally:
            self._work = None

    def _compute_work(self, R: sp.csr_matrix, k: int) -> SpectralWork:
        n_users, n_items = R.shape
        _, item_degree = degrees(R)
        b = float(self.user_exponent)
        r_norm = normalized_interactions(R, user_exponent=b)
        if self._needs_svd():
            method = self.svd_method
            if method == "auto":
                method = "dense" if min(n_users, n_items) <= 1024 else "randomized"
            _, s, v = truncated_svd(
                r_norm,
                k,
                method=method,
                n_iter=int(self.svd_n_iter),
                seed=int(self.seed),
                dtype=np.float32,
            )
        else:
            s, v = np.zeros(0, np.float32), np.zeros((n_items, 0), np.float32)
        s = self.unit_spectrum(r_norm, s)
        gram = None
        if self._resolve_item_item(R) in ("dense", "sparse"):
            gram = item_gram(r_norm)
        return SpectralWork(
            (n_users, n_items), int(R.nnz), item_degree, r_norm, gram, s, np.asarray(v), b
        )

    def unit_spectrum(self, r_norm: sp.csr_matrix, singular_values: np.ndarray) -> np.ndarray:
        """Divide ``R~`` (in place) and its singular values by its largest singular value when
        ``user_exponent`` is not 1/2, putting the spectrum back on [0, 1], where the response
        and the heat kernel are defined (for 1/2 that value is already 1).

        Parameters
        ----------
        r_norm : csr_matrix of float32
            ``D_U^{-b} R D_I^{-1/2}``.
        singular_values : ndarray, shape (k,)
            Its top singular values (``k = 0`` when the fit needs no SVD: the largest is then
            computed here).

        Returns
        -------
        ndarray of float32, shape (k,)
        """
        s = np.asarray(singular_values, dtype=np.float32)
        if float(self.user_exponent) == 0.5 or not r_norm.nnz:
            return s
        top = float(s[0]) if len(s) else float(truncated_svd(r_norm, 1, method="arpack")[1][0])
        r_norm.data /= np.float32(top)
        return np.asarray(s / np.float32(top), dtype=np.float32)

    def _fit_arrays(
        self,
        R: sp.csr_matrix,
        work: SpectralWork | None = None,
        profiles: sp.csr_matrix | None = None,
    ) -> None:
        self._gram = self._linear_emb = None
        n_users, n_items = R.shape
        self.n_components_ = k = self._rank(n_users, n_items)
        strategy = self._resolve_item_item(R)
        if work is None:
            work = self._compute_work(R, k)
        elif (shortfall := self._work_shortfall(work)) is not None:
            raise ParameterError(shortfall)
        item_degree, r_norm = work.item_degree, work.r_norm
        in_scale, out_scale = self._scales(item_degree)
        if self._needs_svd():
            s, v = work.singular_values[:k], work.right_vectors[:, :k]
        else:
            s, v = np.zeros(0, np.float32), np.zeros((n_items, 0), np.float32)
        self.singular_values_ = np.ascontiguousarray(s, dtype=np.float32)
        self.item_projection_, self.item_embeddings_ = self.low_rank_factors(s, v, item_degree)
        rows = R if profiles is None else profiles
        self.user_embeddings_ = np.ascontiguousarray(
            sp.csr_matrix(rows, dtype=np.float32) @ self.item_projection_, dtype=np.float32
        )

        self.item_item_ = strategy
        if strategy in ("factored", "truncated"):
            self.linear_ = None
            for name, value in self.item_item_from_factors(r_norm, item_degree).items():
                setattr(self, name, value)
        else:
            # D^{in} P~ D^{out}, scaled entry by entry in place of two sparse products; new
            # values on the shared gram's structure, which stays as it is for the next fit
            gram = work.gram
            assert gram is not None  # computed for this strategy, or checked above
            data = gram.data * out_scale[gram.indices]
            data *= np.repeat(in_scale, np.diff(gram.indptr))
            self._shrink_entries(data, gram.indptr, gram.indices, item_degree)
            linear = sp.csr_matrix((data, gram.indices, gram.indptr), shape=gram.shape)
            linear.has_sorted_indices = gram.has_sorted_indices
            if strategy == "dense":
                # the whole filter as one dense matrix: linear part plus low-pass part
                dense = linear.toarray()
                dense += self.item_projection_ @ self.item_embeddings_.T
                self.linear_ = dense
            else:
                self.linear_ = linear

    def _needs_svd(self) -> bool:
        return bool(self.beta > 0 or self._nonlinear())

    def _nonlinear(self) -> bool:
        return float(self.flatness) != 1.0

    def response_polynomial(self) -> np.polynomial.Chebyshev:
        """The response ``f`` as a Chebyshev series in ``x = 1 - 2 s^2``, the eigenvalue of the
        rescaled item Laplacian ``I - 2 P~``.

        ``f`` is the interpolant of degree ``response_order`` (numpy's, at Chebyshev points of
        the first kind) of ChebyCF's plateau ``g(x) = 1/2 - 1/2 sign(x) |x|^flatness``
        (``flatness=1`` gives the line ``f = s^2``). ChebyCF's reference implementation pairs
        samples of the plateau at the Chebyshev extreme points with the first-kind nodes, a
        slightly different polynomial (``bench_graphfilter.py chebycf`` compares both).
        """
        phi = float(self.flatness)

        def plateau(x: np.ndarray) -> np.ndarray:
            return np.asarray(0.5 - 0.5 * np.sign(x) * np.abs(x) ** phi)

        return np.polynomial.Chebyshev.interpolate(plateau, int(self.response_order))

    def response_correction(self, singular_values: np.ndarray) -> np.ndarray:
        """``f(s^2) - s^2`` for each component: what the response ``f``
        (:meth:`response_polynomial`) adds to the linear filter ``P~`` on the top-``k`` subspace
        (zeros for ``flatness=1``).

        Parameters
        ----------
        singular_values : ndarray, shape (k,)
            ``s_j``, singular values of ``R~`` (so ``s_j^2`` are eigenvalues of ``P~``).

        Returns
        -------
        ndarray of float64, shape (k,)
        """
        s2 = np.asarray(singular_values, dtype=np.float64) ** 2
        if not self._nonlinear():
            return np.zeros_like(s2)
        return np.asarray(self.response_polynomial()(1.0 - 2.0 * s2) - s2, dtype=np.float64)

    def low_rank_factors(
        self, singular_values: np.ndarray, right_vectors: np.ndarray, item_degree: np.ndarray
    ) -> tuple[np.ndarray, np.ndarray]:
        """``(item_projection_, item_embeddings_)`` from the top-``k`` SVD of ``R~``.

        ``x @ projection @ embeddings.T`` is the low-rank part of the scores: the ideal
        low-pass part ``beta (x D^{1/2-a-e}) V_k H V_k^T D^{e+1/2-c}`` plus the response's
        correction on the top-``k`` subspace, ``(x D^{1/2-a}) V_k (f(S^2) - S^2) V_k^T
        D^{1/2-c}``. The two share ``k`` columns when their bases agree (``e = 0``, or only one
        of them present); otherwise they take ``k`` each.

        Parameters
        ----------
        singular_values : ndarray, shape (k,)
        right_vectors : ndarray, shape (n_items, k)
            ``V_k``.
        item_degree : ndarray, shape (n_items,)

        Returns
        -------
        projection, embeddings : ndarray of float32, shape (n_items, k or 2 k)
        """
        s = np.asarray(singular_values, dtype=np.float64)
        v = np.asarray(right_vectors)
        in_scale, out_scale = self._scales(item_degree)
        ideal = float(self.beta) * np.exp(-float(self.heat) * (1.0 - s**2))
        correction = self.response_correction(s)
        # (basis exponent, weight per component) of each part
        parts: list[tuple[float, np.ndarray]] = []
        if self.beta > 0:
            parts.append((float(self.ideal_exponent), ideal))
        if self._nonlinear():
            parts.append((0.0, correction))
        if len(parts) == 2 and parts[0][0] == 0.0:
            parts = [(0.0, ideal + correction)]
        if not parts:
            empty = np.zeros((len(item_degree), 0), np.float32)
            return empty, empty.copy()
        projection = np.hstack(
            [v * (in_scale * degree_power(item_degree, -e))[:, None] for e, _ in parts]
        )
        embeddings = np.hstack(
            [
                v * (out_scale * degree_power(item_degree, e))[:, None] * w.astype(np.float32)
                for e, w in parts
            ]
        )
        return (
            np.ascontiguousarray(projection, dtype=np.float32),
            np.ascontiguousarray(embeddings, dtype=np.float32),
        )

    def _scales(self, item_degree: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """``x -> x D^{1/2-a}`` on input, ``scores -> scores D^{1/2-c}`` on output."""
        return (
            degree_power(item_degree, 0.5 - float(self.input_exponent)),
            degree_power(item_degree, 0.5 - float(self.output_exponent)),
        )

    def item_item_from_factors(
        self, r_norm: sp.csr_matrix, item_degree: np.ndarray
    ) -> dict[str, sp.csr_matrix]:
        """The fitted item-item state of the ``"factored"`` or ``"truncated"`` strategy
        (``item_item_`` already resolved): ``{"left_", "right_"}`` or ``{"linear_"}``.

        Parameters
        ----------
        r_norm : csr_matrix
            ``R~`` (:class:`SpectralWork`).
        item_degree : ndarray
            Item degrees of ``R``.
        """
        left, right = self._factors(r_norm, item_degree)
        if self.item_item_ == "factored":
            return {"left_": left, "right_": right}
        # row i of D^{in} P~ D^{out}: what item i adds to each item's score; its diagonal entry
        # only ever scores an item the user already has
        linear = top_n_product(left, right, int(self.item_neighbours))
        self._shrink_entries(linear.data, linear.indptr, linear.indices, item_degree)
        return {"linear_": linear}

    def _shrink_entries(
        self, data: np.ndarray, indptr: np.ndarray, indices: np.ndarray, item_degree: np.ndarray
    ) -> None:
        """Multiply the stored entries of a CSR item-item operator (row = input item, column =
        scored item) by ``d_i^a d_j^c / (d_i^a d_j^c + shrink)``, in place."""
        shrink = float(self.shrink)
        if shrink <= 0:
            return
        factor = degree_power(item_degree, float(self.output_exponent))[indices]
        factor *= np.repeat(degree_power(item_degree, float(self.input_exponent)), np.diff(indptr))
        # d / (d + lambda) = 1 - lambda / (d + lambda), with no array besides ``factor``
        factor += np.float32(shrink)
        np.divide(np.float32(shrink), factor, out=factor)
        np.subtract(np.float32(1.0), factor, out=factor)
        data *= factor

    def _factors(
        self, r_norm: sp.csr_matrix, item_degree: np.ndarray
    ) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """``P^ = D^{in} R~^T R~ D^{out}`` as ``(D^{in} R~^T, R~ D^{out})``, float32 CSR."""
        in_scale, out_scale = self._scales(item_degree)
        left = (sp.diags(in_scale) @ r_norm.T).tocsr().astype(np.float32)
        return left, (r_norm @ sp.diags(out_scale)).tocsr().astype(np.float32)

    def _rank(self, n_users: int, n_items: int) -> int:
        small = min(n_users, n_items)
        k = self.n_components
        if isinstance(k, float):
            by_memory = int(self.max_factor_bytes) // (4 * (n_users + 2 * n_items))
            rank = min(round(k * small), int(self.max_components), by_memory)
        else:
            rank = int(k)
        return max(1, min(rank, small - 1))

    def _resolve_item_item(self, R: sp.csr_matrix) -> str:
        if self.item_item != "auto":
            return str(self.item_item)
        n_items = R.shape[1]
        if n_items <= int(self.max_dense_items):
            return "dense"
        row_nnz = np.diff(R.indptr).astype(np.float64)
        # upper bound on nnz(R^T R); 4 bytes value + 4 bytes index each, twice during the product
        est = min(float((row_nnz**2).sum()), float(n_items) ** 2) * 16
        return "sparse" if est <= int(self.max_gram_bytes) else "truncated"

    # ----------------------------------------------------------------- scoring
    def _score_rows(self, x: sp.csr_matrix) -> np.ndarray:
        """Scores for interaction rows ``x`` (shape (n, n_items)), float32 (n, n_items)."""
        x = sp.csr_matrix(x, dtype=np.float32)
        with self._scoring_threads():
            if self.item_item_ == "dense":
                return np.asarray(x @ self.linear_, dtype=np.float32)
            user_emb = np.asarray(x @ self.item_projection_, dtype=np.float32)
            out = np.ascontiguousarray(user_emb @ self.item_embeddings_.T, dtype=np.float32)
        self._add_item_item(x, out)
        return out

    def fitted_rows(self, users: np.ndarray) -> sp.csr_matrix:
        """The rows fitted ``users`` are scored from: ``interactions_``, or ``profiles_`` when
        ``recency`` weighted them; ``score(users) == score_new(fitted_rows(users))``."""
        rows = self.interactions_ if self.profiles_ is None else self.profiles_
        return sp.csr_matrix(rows[np.asarray(users, dtype=np.int64)])

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        if self.item_item_ == "dense":
            return self._score_rows(self.fitted_rows(users))
        out = np.ascontiguousarray(
            self.user_embeddings_[users] @ self.item_embeddings_.T, dtype=np.float32
        )
        self._add_item_item(self.fitted_rows(users), out)
        return out

    def _add_item_item(self, x: sp.csr_matrix, out: np.ndarray) -> None:
        """``out += `` the item-item part of the filter applied to rows ``x`` (sparse or factored
        strategies), in place."""
        with self._scoring_threads():
            if self.item_item_ in ("sparse", "truncated"):
                accumulate_spmm(x, self.linear_, out)
            else:
                accumulate_spmm((x @ self.left_).tocsr(), self.right_, out)

    def sparse_scores(self, users: np.ndarray) -> np.ndarray:
        """The scores of fitted ``users`` without their low-pass part, shape (len(users), n_items).

        ``score(users) == user_embeddings_[users] @ item_embeddings_.T + sparse_scores(users)``:
        a service ranks the low-pass part through an ANN index over ``item_embeddings_`` and adds
        these (cheap: a sparse product) to the candidates.
        """
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        return self._sparse_rows(self.fitted_rows(users), self.user_embeddings_[users])

    def sparse_part(self, users: np.ndarray) -> sp.csr_matrix:
        """:meth:`sparse_scores` as a sparse matrix: only the items the linear part reaches.

        Returns
        -------
        csr_matrix of float32, shape (len(users), n_items)
        """
        X, P = self.sparse_operands(users)
        out = sp.csr_matrix(X @ P, dtype=np.float32)
        out.sort_indices()
        return out

    def sparse_operands(self, users: np.ndarray) -> tuple[sp.csr_matrix, sp.csr_matrix]:
        """``(X, P)``, CSR, with ``X @ P == sparse_part(users)``, never formed.

        Batch ANN retrieval (:class:`gemrec.models.ann.ANNRecommender`) reads the product row by
        row (:func:`gemrec.models._ann_kernels.sparse_candidates`) instead of a dense
        ``len(users) x n_items`` block, whose size alone would dominate at millions of items.
        ``X`` is the users' interactions (``item_item="sparse"`` or ``"truncated"``), their co-users
        (``"factored"``: ``x L``, with ``P = R``), or the dense sparse part itself (``"dense"``,
        small catalogues, with ``P`` the identity).
        """
        self._check_fitted()
        users = np.asarray(users, dtype=np.int64)
        if self.item_item_ == "dense":
            eye = sp.identity(self.n_items, dtype=np.float32, format="csr")
            return sp.csr_matrix(self.sparse_scores(users)), eye
        x = sp.csr_matrix(self.fitted_rows(users), dtype=np.float32)
        if self.item_item_ in ("sparse", "truncated"):
            return x, sp.csr_matrix(self.linear_)
        return sp.csr_matrix(x @ self.left_, dtype=np.float32), self.right_

    def split_new(self, user_items: sp.csr_matrix) -> tuple[np.ndarray, np.ndarray]:
        """Fold-in split like :meth:`sparse_scores`: ``(queries, sparse)`` with
        ``score_new(user_items) == queries @ item_embeddings_.T + sparse``.

        Returns
        -------
        queries : ndarray of float32, shape (n, k)
        sparse : ndarray of float32, shape (n, n_items)
        """
        self._check_fitted()
        x = sp.csr_matrix(user_items, dtype=np.float32)
        if x.shape[1] != self.n_items:
            raise ParameterError.invalid(
                "user_items", f"a sparse matrix with {self.n_items} columns", x.shape
            )
        queries = np.asarray(x @ self.item_projection_, dtype=np.float32)
        return queries, self._sparse_rows(x, queries)

    def score_norms(
        self,
        queries: np.ndarray,
        sparse: np.ndarray,
        user_items: sp.csr_matrix | None = None,
    ) -> np.ndarray:
        """Euclidean norms of the rows of ``queries @ item_embeddings_.T + sparse`` (the scores
        :meth:`split_new` splits), without the dense product.

        Parameters
        ----------
        queries : ndarray of float32, shape (n, k)
        sparse : ndarray of float32, shape (n, n_items)
        user_items : csr_matrix, shape (n, n_items), optional
            The interaction rows the split came from (:meth:`split_new`'s input, or fitted users'
            rows, :meth:`fitted_rows`, for :meth:`sparse_scores`); with them the
            cross term reads ``k`` numbers per interaction instead of the items the sparse part
            reaches.

        Returns
        -------
        ndarray of float64, shape (n,)

        Notes
        -----
        ``|q E^T + s|^2 = q (E^T E) q^T + 2 s E q^T + |s|^2``: the Gram matrix ``E^T E`` (k x k,
        computed once) replaces the pass over every item. The cross term is either read over the
        items the sparse part reaches, ``sum_{i: s_i != 0} s_i (E_i . q)``, or, given the rows
        ``x`` with ``s = x L`` (``L`` the item-item part of the filter), as ``x (L E) q^T`` from
        ``L E`` (n_items x k, computed once; the service uses it):
        a few items' rows instead of a pass over the large share of the catalogue that the
        sparse part of a typical user reaches.
        """
        self._check_fitted()
        emb = self.item_embeddings_
        gram = self._gram
        if gram is None:  # float32 BLAS, a few times faster; summed in float64 afterwards
            gram = self._gram = np.asarray(emb.T @ emb, np.float64)
        through_rows = user_items is not None and self.item_item_ != "dense"
        linear_emb = self._linear_embeddings() if through_rows else None
        x = sp.csr_matrix(user_items, dtype=np.float32) if through_rows else None
        out = np.zeros(len(queries), np.float64)
        for r in range(len(queries)):
            q = np.asarray(queries[r], dtype=np.float64)
            if x is not None and linear_emb is not None:
                row = x[r]
                cross = float(row.data @ (linear_emb[row.indices] @ queries[r]))
                s = sparse[r].astype(np.float64)
            else:
                nz = np.flatnonzero(sparse[r])
                s = sparse[r, nz].astype(np.float64)
                cross = float(s @ (emb[nz] @ queries[r]).astype(np.float64))
            out[r] = math.sqrt(max(float(q @ gram @ q) + 2.0 * cross + float(s @ s), 0.0))
        return out

    def _linear_embeddings(self) -> np.ndarray:
        """``L E``: the item-item part of the filter applied to the low-pass item factors
        (sparse, factored and truncated strategies), float32 (n_items, k), computed once."""
        if self._linear_emb is None:
            if self.item_item_ == "truncated":  # L is stored, with few entries per row
                product = self.linear_ @ self.item_embeddings_
                self._linear_emb = np.ascontiguousarray(product, dtype=np.float32)
                return self._linear_emb
            if self.item_item_ == "factored":
                left, right = self.left_, self.right_
            elif self.shrink > 0 or self.user_exponent != 0.5:  # L is not R~^T R~ scaled
                product = self.linear_ @ self.item_embeddings_
                self._linear_emb = np.ascontiguousarray(product, dtype=np.float32)
                return self._linear_emb
            else:  # L = R~^T R~ scaled: two thin products instead of one over L's many entries
                R = self.interactions_
                left, right = self._factors(normalized_interactions(R), degrees(R)[1])
            product = left @ np.asarray(right @ self.item_embeddings_, np.float32)
            self._linear_emb = np.ascontiguousarray(product, dtype=np.float32)
        return self._linear_emb

    def _sparse_rows(self, x: sp.csr_matrix, queries: np.ndarray) -> np.ndarray:
        """The non-low-pass scores of interaction rows ``x`` whose low-pass queries are given."""
        if self.item_item_ == "dense":  # the low-pass part is inside the dense filter
            low = queries @ self.item_embeddings_.T
            return np.asarray(self._score_rows(x) - low, dtype=np.float32)
        out = np.zeros((x.shape[0], self.n_items), np.float32)
        self._add_item_item(x, out)
        return out

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Fold-in: the filter applied to new interaction rows (identical to fitted users).

        Shapes as in :meth:`Recommender.score_new`: (n, n_items) in, (n, n_items) float32 out.
        """
        self._check_fitted()
        x = sp.csr_matrix(user_items, dtype=np.float32)
        if x.shape[1] != self.n_items:
            raise ParameterError.invalid(
                "user_items", f"a sparse matrix with {self.n_items} columns", x.shape
            )
        return self._score_rows(x)

    def _similar_block(self, items: np.ndarray) -> np.ndarray:
        """Filter response to a single item: row ``i`` of the item-item filter."""
        onehot = sp.csr_matrix(
            (np.ones(len(items), np.float32), (np.arange(len(items)), items)),
            shape=(len(items), self.n_items),
        )
        return self._score_rows(onehot)

    # ----------------------------------------------------------------- persistence
    def _get_state(self) -> State:
        state: State = {
            "user_embeddings_": self.user_embeddings_,
            "item_embeddings_": self.item_embeddings_,
            "item_projection_": self.item_projection_,
            "singular_values_": self.singular_values_,
            "item_item_": np.array(self.item_item_),
        }
        if self.item_item_ == "factored":
            state["left_"] = self.left_
            state["right_"] = self.right_
        else:
            state["linear_"] = self.linear_
        if self.profiles_ is not None:
            state["profiles_"] = self.profiles_
        return state

    def _set_state(self, state: State) -> None:
        self._gram = self._linear_emb = None
        self.user_embeddings_ = np.asarray(state["user_embeddings_"], dtype=np.float32)
        self.item_embeddings_ = np.asarray(state["item_embeddings_"], dtype=np.float32)
        self.item_projection_ = np.asarray(state["item_projection_"], dtype=np.float32)
        self.singular_values_ = np.asarray(state["singular_values_"], dtype=np.float32)
        self.n_components_ = len(self.singular_values_)
        self.item_item_ = str(state["item_item_"])
        profiles = state.get("profiles_")
        self.profiles_ = None if profiles is None else sp.csr_matrix(profiles, dtype=np.float32)
        if self.item_item_ == "factored":
            self.left_ = sp.csr_matrix(state["left_"], dtype=np.float32)
            self.right_ = sp.csr_matrix(state["right_"], dtype=np.float32)
            self.linear_ = None
        elif self.item_item_ == "dense":
            self.linear_ = np.ascontiguousarray(state["linear_"], dtype=np.float32)
        else:
            self.linear_ = sp.csr_matrix(state["linear_"], dtype=np.float32)
