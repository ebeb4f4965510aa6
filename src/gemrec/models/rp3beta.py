"""RP3beta: a three-step random walk on the user-item graph, re-ranked by item popularity."""

from __future__ import annotations

import numpy as np
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.graph.adjacency import degree_power, normalized_interactions
from gemrec.models._neighbourhood import ItemToItemModel, check_n_neighbors
from gemrec.models._topn import top_n_product

__all__ = ["RP3Beta"]


def _row_normalise(x: sp.csr_matrix) -> sp.csr_matrix:
    """``D^-1 X``: each row divided by its sum (a random-walk transition matrix)."""
    return normalized_interactions(x, user_exponent=1.0, item_exponent=0.0)


class RP3Beta(ItemToItemModel):
    """RP3beta (Paudel et al., 2016; as benchmarked by Dacrema et al., 2019).

    Parameters
    ----------
    alpha : float
        Exponent applied to the transition probabilities (1 = plain random walk).
    beta : float
        Popularity penalty: the walk's arrival probability at item j is divided by
        ``popularity_j ** beta``.
    n_neighbors : int
        Entries kept per row of the item-item matrix W.
    normalize : bool
        Re-normalise each row of the pruned W to sum to one.

    The defaults were chosen on a validation split carved from Gowalla's train part
    (docs/benchmarks/cf.md); dense, popularity-dominated data such as ML-1M wants a stronger
    popularity penalty, e.g. ``alpha=1.0, beta=0.6``.

    Notes
    -----
    With ``X`` the (n_users, n_items) interactions, :math:`P_{ui} = x_{ui} / \\sum_k x_{uk}`
    (weights) and :math:`P_{iu} = b_{ui} / \\sum_v b_{vi}` (``b`` the binary pattern), the
    item-item walk probability is

    .. math:: W_{ij} = \\frac{\\sum_u P_{iu}^{\\alpha} P_{uj}^{\\alpha}}{d_j^{\\beta}}

    where :math:`d_j` is the number of users of j. :math:`W_{ii}` is zeroed, each row keeps its
    ``n_neighbors`` largest entries, and ``scores = X @ W``. Rows are computed in blocks, so the
    dense item x item matrix never exists.

    Examples
    --------
    >>> from gemrec.data.interactions import Interactions
    >>> inter = Interactions.from_arrays([0, 0, 1, 1, 2], [0, 1, 0, 1, 0])
    >>> RP3Beta(alpha=1.0, beta=0.0).fit(inter).recommend([2], k=1)[0].tolist()
    [[1]]
    """

    name = "rp3beta"

    def __init__(
        self,
        *,
        alpha: float = 0.7,
        beta: float = 0.25,
        n_neighbors: int = 400,
        normalize: bool = False,
    ) -> None:
        self.alpha = alpha
        self.beta = beta
        self.n_neighbors = n_neighbors
        self.normalize = normalize

    def _validate_params(self) -> None:
        for pname in ("alpha", "beta"):
            v = getattr(self, pname)
            if isinstance(v, bool) or not isinstance(v, int | float | np.number) or not v >= 0:
                raise ParameterError.invalid(pname, "a number >= 0", v)
        check_n_neighbors(self.n_neighbors)
        if not isinstance(self.normalize, bool | np.bool_):
            raise ParameterError.invalid("normalize", "True or False", self.normalize)

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        x = sp.csr_matrix(interactions.matrix, dtype=np.float32)
        p_ui = _row_normalise(x)
        b_iu = sp.csr_matrix(x.T, dtype=np.float32)
        b_iu.data[:] = 1.0
        popularity = np.asarray(b_iu.sum(axis=1), dtype=np.float64).ravel()
        p_iu = _row_normalise(b_iu)
        alpha = float(self.alpha)
        if alpha != 1.0:
            p_ui.data **= np.float32(alpha)
            p_iu.data **= np.float32(alpha)
        penalty32 = degree_power(popularity, -float(self.beta))

        def transform(block: np.ndarray, rows: np.ndarray) -> np.ndarray:
            block *= penalty32[None, :]
            return block

        w = top_n_product(p_iu, p_ui, int(self.n_neighbors), transform=transform)
        if self.normalize:
            w = _row_normalise(w)
        self.similarity_ = w
        self._prepare()

    def _prepare(self) -> None:
        self._x = sp.csr_matrix(self.interactions_, dtype=np.float32)
        self._weights = self.similarity_
