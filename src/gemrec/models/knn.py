"""Neighbourhood models: item-based and user-based k-nearest-neighbours with shrunk cosine."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.models._neighbourhood import ItemToItemModel, SimilarityModel, check_n_neighbors
from gemrec.models._topn import fold_in_rows, top_n_product

__all__ = ["ItemKNN", "UserKNN", "shrunk_cosine_top_n"]

WEIGHTINGS = ("none", "tfidf")


def _check_common(model: ItemKNN | UserKNN) -> None:
    check_n_neighbors(model.n_neighbors)
    s = model.shrink
    if isinstance(s, bool) or not isinstance(s, int | float | np.number) or not s >= 0:
        raise ParameterError.invalid("shrink", "a number >= 0", s)
    if model.weighting not in WEIGHTINGS:
        raise ParameterError.invalid("weighting", f"one of {WEIGHTINGS}", model.weighting)
    if not isinstance(model.binary, bool | np.bool_):
        raise ParameterError.invalid("binary", "True or False", model.binary)


def _features(x: sp.csr_matrix, binary: bool, weighting: str) -> sp.csr_matrix:
    """Rows are the objects to compare, columns their features (float32 CSR)."""
    x = sp.csr_matrix(x, dtype=np.float32, copy=True)
    if binary:
        x.data[:] = 1.0
    if weighting == "tfidf":
        x.data *= _idf(x)[x.indices]
        x.eliminate_zeros()
    return x


def _idf(x: sp.csr_matrix) -> np.ndarray:
    """Inverse frequency of each column (feature) over the rows of ``x``, shape (n_cols,), float32.

    A feature shared by many rows says little: idf_f = log(n_rows / df_f).
    """
    df = np.bincount(x.indices, minlength=x.shape[1]).astype(np.float64)
    idf: np.ndarray = np.log(x.shape[0] / np.maximum(df, 1.0)).astype(np.float32)
    return idf


def shrunk_cosine_top_n(
    rows: sp.csr_matrix,
    n_neighbors: int,
    shrink: float,
    others: sp.csr_matrix | None = None,
    asymmetry: float = 0.5,
    *,
    others_t: sp.csr_matrix | None = None,
    others_norms: np.ndarray | None = None,
) -> sp.csr_matrix:
    """Top-n shrunk cosine similarities between the rows of ``rows`` (or of ``rows`` vs ``others``).

    Parameters
    ----------
    rows : csr_matrix, shape (n, d)
    n_neighbors : int
    shrink : float
    others : csr_matrix, shape (m, d), optional
        Compare ``rows`` against these instead of against themselves (then no diagonal is dropped).
    asymmetry : float
        ``a`` in the asymmetric cosine below; 0.5 is the ordinary cosine.
    others_t : csr_matrix, shape (d, m), optional
        ``others`` transposed as CSR, when the caller keeps it (fold-in compares every request's
        rows with the same fitted rows: transposing them once saves the copy per call).
    others_norms : ndarray of float32, shape (m,), optional
        The Euclidean norms of the rows of ``others``, when the caller keeps them.

    Returns
    -------
    csr_matrix of float32, shape (n, n) or (n, m)
        Row r keeps its ``n_neighbors`` largest similarities, self-similarity excluded.

    Notes
    -----
    sim(x, y) = x . y / (|x|^(2a) |y|^(2(1-a)) + shrink), x a row of ``rows`` and y one of the
    compared rows; with a = 0.5 this is the shrunk cosine. Shrinkage damps similarities supported
    by few co-occurrences; a < 0.5 favours neighbours y that are themselves popular less harshly.
    """
    norms_r = row_norms(rows)
    other = rows if others is None else others
    norms_o = others_norms if others is not None else None
    if norms_o is None:
        norms_o = row_norms(other)
    shrink32 = np.float32(shrink) + np.float32(1e-9)
    if asymmetry != 0.5:
        norms_r = norms_r ** np.float32(2 * asymmetry)
        norms_o = norms_o ** np.float32(2 * (1 - asymmetry))

    def transform(block: np.ndarray, idx: np.ndarray) -> np.ndarray:
        denom = norms_r[idx, None] * norms_o[None, :]
        denom += shrink32
        block /= denom
        return block

    right = others_t if others is not None and others_t is not None else sp.csr_matrix(other.T)
    return top_n_product(
        rows, right, n_neighbors, transform=transform, drop_diagonal=others is None
    )


def row_norms(x: sp.csr_matrix) -> np.ndarray:
    """Euclidean norm of each row of ``x``, shape (n_rows,), float32."""
    return np.sqrt(np.asarray(x.multiply(x).sum(axis=1), dtype=np.float32).ravel())


class ItemKNN(ItemToItemModel):
    """Item-based collaborative filtering with shrunk cosine similarity and top-n neighbours.

    Parameters
    ----------
    n_neighbors : int
        Neighbours kept per item (the most similar items).
    shrink : float
        Shrinkage term added to the cosine denominator.
    weighting : {"none", "tfidf"}
        Re-weight users (the features of an item) by their inverse frequency before the cosine.
    binary : bool
        Use 1 for every interaction instead of its weight.
    asymmetry : float in [0, 1]
        Exponent split of the cosine denominator (0.5: the ordinary cosine; below 0.5 the target
        item's norm counts less, as in Aiolli's asymmetric cosine).

    The defaults were chosen on a validation split carved from Gowalla's train part
    (docs/benchmarks/cf.md).

    Notes
    -----
    With ``X`` the (n_users, n_items) interaction matrix and ``x_i`` its column i,

    .. math:: s_{ji} = x_j \\cdot x_i \\, / \\, (|x_j|^{2a} \\, |x_i|^{2(1-a)} + h)

    Only the ``n_neighbors`` largest :math:`s_{jk}` of each target item j are kept
    (:math:`N(j)`), and :math:`\\hat r_{uj} = \\sum_{i \\in N(j)} x_{ui} s_{ji}`, i.e.
    ``scores = X @ W`` with ``W[:, j]`` holding the neighbours of j. The similarity is computed in
    row blocks, so the dense item x item matrix never exists.

    Examples
    --------
    >>> from gemrec.data.interactions import Interactions
    >>> inter = Interactions.from_arrays([0, 0, 1, 1, 2], [0, 1, 0, 1, 0])
    >>> model = ItemKNN(n_neighbors=5, shrink=0.0).fit(inter)
    >>> model.recommend([2], k=1)[0].tolist()
    [[1]]
    """

    name = "itemknn"

    def __init__(
        self,
        *,
        n_neighbors: int = 200,
        shrink: float = 10.0,
        weighting: str = "none",
        binary: bool = False,
        asymmetry: float = 0.1,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.shrink = shrink
        self.weighting = weighting
        self.binary = binary
        self.asymmetry = asymmetry

    def _validate_params(self) -> None:
        _check_common(self)
        a = self.asymmetry
        if isinstance(a, bool) or not isinstance(a, int | float | np.number) or not 0 <= a <= 1:
            raise ParameterError.invalid("asymmetry", "a number in [0, 1]", a)

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        feats = _features(interactions.matrix.T.tocsr(), self.binary, self.weighting)
        # row j = the neighbours of item j
        self.similarity_ = shrunk_cosine_top_n(
            feats, int(self.n_neighbors), float(self.shrink), asymmetry=float(self.asymmetry)
        )
        self._prepare()

    def _prepare(self) -> None:
        self._weights = sp.csr_matrix(self.similarity_.T)
        x = sp.csr_matrix(self.interactions_, dtype=np.float32, copy=True)
        if self.binary:
            x.data[:] = 1.0
        self._x = x

    def _binary_input(self) -> bool:
        return bool(self.binary)


class UserKNN(SimilarityModel):
    """User-based collaborative filtering with shrunk cosine similarity and top-n neighbours.

    Parameters
    ----------
    n_neighbors : int
        Neighbours kept per user.
    shrink : float
        Shrinkage term added to the cosine denominator.
    weighting : {"none", "tfidf"}
        Re-weight items (the features of a user) by their inverse frequency before the cosine.
    binary : bool
        Use 1 for every interaction instead of its weight.

    Notes
    -----
    With ``x_u`` the row of user u,
    :math:`s_{uv} = x_u \\cdot x_v / (\\lVert x_u \\rVert \\lVert x_v \\rVert + h)`;
    the ``n_neighbors`` largest of each user u form :math:`N(u)`, and
    :math:`\\hat r_{ui} = \\sum_{v \\in N(u)} s_{uv} x_{vi}`, i.e. ``scores = S @ X``.
    """

    name = "userknn"

    def __init__(
        self,
        *,
        n_neighbors: int = 200,
        shrink: float = 50.0,
        weighting: str = "none",
        binary: bool = False,
    ) -> None:
        self.n_neighbors = n_neighbors
        self.shrink = shrink
        self.weighting = weighting
        self.binary = binary

    def _validate_params(self) -> None:
        _check_common(self)

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        self._prepare()
        self.similarity_ = shrunk_cosine_top_n(
            self._feats, int(self.n_neighbors), float(self.shrink)
        )

    def _prepare(self) -> None:
        x = sp.csr_matrix(self.interactions_, dtype=np.float32, copy=True)
        if self.binary:
            x.data[:] = 1.0
        self._x = x
        self._feats = _features(x, False, self.weighting)
        # fold-in compares each request's rows with these fitted rows: transposed and normed once
        self._feats_t = sp.csr_matrix(self._feats.T)
        self._feats_norms = row_norms(self._feats)

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        return np.asarray((self.similarity_[users] @ self._x).toarray(), dtype=np.float32)

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Fold-in: similarities of the new users to the fitted users, top-n, times ``X``."""
        self._check_fitted()
        x = fold_in_rows(user_items, self.n_items, binary=self.binary)
        feats = _features_like(x, self._feats, self._x, self.weighting)
        sim = shrunk_cosine_top_n(
            feats,
            int(self.n_neighbors),
            float(self.shrink),
            others=self._feats,
            others_t=self._feats_t,
            others_norms=self._feats_norms,
        )
        return np.asarray((sim @ self._x).toarray(), dtype=np.float32)


def _features_like(
    x: sp.csr_matrix, fitted_feats: sp.csr_matrix, fitted_x: sp.csr_matrix, weighting: str
) -> sp.csr_matrix:
    """Weight new rows with the idf learned on the fitted rows."""
    if weighting == "none":
        return x
    x = x.copy()
    x.data *= _idf(fitted_x)[x.indices]
    x.eliminate_zeros()
    return x
