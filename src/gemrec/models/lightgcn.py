"""LightGCN (He et al., SIGIR 2020) on PyTorch Geometric's ``LGConv``, trained with BPR.

The normalised adjacency is built once per fit as a ``torch.sparse`` CSR matrix (no per-call
renormalisation, no torch-sparse dependency), with the nodes renumbered once (reverse
Cuthill-McKee) so that sparse products read nearby rows; propagation runs through a PyG ``LGConv``
subclass. A training step computes the exact LightGCN gradient of the mini-batch but evaluates the
last layer only at the batch's rows, and its backward pass is written out (the model is linear in
the ego embeddings and ``Â`` is symmetric): four full sparse products per step instead of the six
of a reference implementation, and one gradient buffer instead of one dense tensor per gather and
per layer sum.
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from scipy.sparse.csgraph import reverse_cuthill_mckee
from torch import Tensor, nn
from torch_geometric.nn.conv import LGConv

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.eval.evaluate import validation
from gemrec.graph.adjacency import bipartite_adjacency, normalized_interactions
from gemrec.graph.spectral import truncated_svd
from gemrec.models.base import EmbeddingRecommender
from gemrec.models.training import (
    COMMON_CHECKS,
    BPRSampler,
    check_lr_decay,
    check_params,
    decaying_lr,
    fit_embeddings,
    minibatches,
)

__all__ = [
    "LightGCN",
    "LightGCNConv",
    "LightGCNNet",
    "TrainingGraph",
    "bpr_loss",
    "locality_order",
    "to_torch_csr",
]


# --------------------------------------------------------------------------- graph
def to_torch_csr(matrix: sp.csr_matrix) -> Tensor:
    """A scipy CSR matrix as a ``torch.sparse_csr_tensor`` (float32, int64 indices)."""
    m = sp.csr_matrix(matrix)
    with warnings.catch_warnings():  # "sparse CSR support is in beta"
        warnings.simplefilter("ignore", UserWarning)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data.astype(np.float32, copy=False)),
            size=m.shape,
            check_invariants=False,
        )


def locality_order(adj: sp.csr_matrix) -> tuple[sp.csr_matrix, np.ndarray]:
    """Renumber a symmetric graph's nodes so that neighbours get close numbers.

    Returns ``(adj[order][:, order], order)`` with ``order`` the reverse Cuthill-McKee
    permutation (``order[r]`` is the node that becomes node ``r``). A sparse product with the
    renumbered matrix reads embedding rows with far better cache locality; the result is the same
    up to the permutation.
    """
    order = reverse_cuthill_mckee(sp.csr_matrix(adj), symmetric_mode=True).astype(np.int64)
    permuted = sp.csr_matrix(adj[order][:, order])
    permuted.sort_indices()
    permuted.indices = permuted.indices.astype(np.int32)
    permuted.indptr = permuted.indptr.astype(adj.indptr.dtype)
    return permuted, order


# --------------------------------------------------------------------------- layers
class _SparseMM(torch.autograd.Function):
    """``Y = A X`` for a constant sparse ``A``; backward ``dX = A^T dY`` with ``A^T`` given."""

    @staticmethod
    def forward(ctx: Any, adj: Tensor, x: Tensor, adj_t: Tensor) -> Tensor:
        ctx.adj_t = adj_t
        out: Tensor = torch.sparse.mm(adj, x, reduce="sum")
        return out

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, None]:
        return None, torch.sparse.mm(ctx.adj_t, grad.contiguous(), reduce="sum"), None


def sparse_mm(adj: Tensor, x: Tensor, adj_t: Tensor | None = None) -> Tensor:
    """``adj @ x`` with a fast backward; ``adj_t`` is ``adj``'s transpose (``None``: symmetric)."""
    out: Tensor = _SparseMM.apply(adj, x, adj if adj_t is None else adj_t)  # type: ignore[no-untyped-call]
    return out


class LightGCNConv(LGConv):  # type: ignore[misc]
    r"""PyG's ``LGConv`` on a pre-normalised ``torch.sparse`` CSR adjacency.

    .. math::
        \mathbf{x}'_i = \sum_{j \in \mathcal{N}(i)} \hat{A}_{ij} \mathbf{x}_j,
        \qquad \hat{A} = D^{-1/2} A D^{-1/2} \text{ (computed once, outside the layer)}

    ``forward(x, adj, adj_transposed=None)``: ``adj`` (rows = targets) may be a row block of
    ``Â``; ``adj_transposed`` is its transpose, used by the backward pass (``None`` when ``adj``
    is symmetric).
    """

    def __init__(self) -> None:
        super().__init__(normalize=False)
        self._adj_transposed: Tensor | None = None

    def forward(self, x: Tensor, adj: Tensor, adj_transposed: Tensor | None = None) -> Tensor:
        self._adj_transposed = adj_transposed
        try:
            out: Tensor = self.propagate(adj, x=x, edge_weight=None)
        finally:
            self._adj_transposed = None
        return out

    def message_and_aggregate(self, adj_t: Tensor, x: Tensor) -> Tensor:
        return sparse_mm(adj_t, x, self._adj_transposed)


class LightGCNNet(nn.Module):
    r"""Ego embeddings plus ``n_layers`` parameter-free light graph convolutions.

    Parameters
    ----------
    n_nodes : int
        ``n_users + n_items``.
    embedding_dim : int
    n_layers : int

    Notes
    -----
    ``E^{(k+1)} = Â E^{(k)}`` and the final embedding is the layer mean
    ``E = \frac{1}{K+1} \sum_{k=0}^{K} E^{(k)}``.
    """

    def __init__(self, n_nodes: int, embedding_dim: int, n_layers: int) -> None:
        super().__init__()
        self.embedding = nn.Parameter(torch.empty(n_nodes, embedding_dim))
        self.convs = nn.ModuleList([LightGCNConv() for _ in range(n_layers)])

    def propagate_all(self, adj: Tensor) -> Tensor:
        """Final embeddings of every node, shape (n_nodes, embedding_dim)."""
        x = self.embedding
        out = x
        for conv in self.convs:
            x = conv(x, adj)
            out = out + x
        return out / (len(self.convs) + 1)

    def forward(
        self,
        nodes: Tensor,
        adj: Tensor,
        rows: Tensor | None = None,
        rows_t: Tensor | None = None,
    ) -> Tensor:
        """Final embeddings of ``nodes`` only, with the exact gradient.

        Parameters
        ----------
        nodes : LongTensor, shape (b,)
            Distinct node ids.
        adj : sparse CSR, shape (n_nodes, n_nodes)
            ``Â``.
        rows, rows_t : sparse CSR, shapes (b, n_nodes) and (n_nodes, b), optional
            ``Â[nodes]`` and its transpose: the last layer is then only computed at ``nodes``
            (worth it while ``nodes`` is a small part of the graph).

        Returns
        -------
        Tensor, shape (b, embedding_dim)
        """
        return self.forward_with_ego(nodes, adj, rows, rows_t)[0]

    def forward_with_ego(
        self,
        nodes: Tensor,
        adj: Tensor,
        rows: Tensor | None = None,
        rows_t: Tensor | None = None,
    ) -> tuple[Tensor, Tensor]:
        """``(final embeddings, ego embeddings)`` of ``nodes``, one fused exact backward.

        Same arguments as :meth:`forward`. The layers are the module's ``LightGCNConv``
        products; the backward pass is written out (the model is linear in the ego embeddings,
        so the gradient is ``K`` more products with the symmetric ``Â``) and accumulates every
        term in one buffer instead of one dense tensor per gather and per layer sum.
        """
        if (rows is None) != (rows_t is None):
            raise ValueError("rows and rows_t go together")
        out: tuple[Tensor, Tensor] = _BatchPropagation.apply(  # type: ignore[no-untyped-call]
            self.embedding, nodes, adj, rows, rows_t, self.convs
        )
        return out


class _BatchPropagation(torch.autograd.Function):
    r"""Rows ``nodes`` of the layer mean ``\frac{1}{K+1}\sum_k Â^k E`` and of ``E``.

    Forward: ``K-1`` full products, the last layer only at ``nodes`` when ``rows``
    (``Â[nodes]``) is given. Backward, with ``S`` scattering rows to ``nodes`` and
    ``g = \bar{g} / (K+1)``: ``G_{K-1} = Â[nodes]^T g + S g`` and
    ``G_{k-1} = Â G_k + S g``, plus ``S g_{ego}`` on ``G_0``.
    """

    @staticmethod
    def forward(
        ctx: Any,
        emb: Tensor,
        nodes: Tensor,
        adj: Tensor,
        rows: Tensor | None,
        rows_t: Tensor | None,
        convs: nn.ModuleList,
    ) -> tuple[Tensor, Tensor]:
        n_layers = len(convs)
        ctx.save_for_backward(nodes)
        ctx.graph = (adj, rows_t)
        ctx.n_layers = n_layers
        # index_select: several times faster than advanced indexing for row gathers
        ego = emb.index_select(0, nodes)
        if n_layers == 0:
            return ego.clone(), ego
        x = emb
        total = ego.clone()
        for conv in convs[:-1]:
            x = conv(x, adj)
            total += x.index_select(0, nodes)
        total += (
            convs[-1](x, adj).index_select(0, nodes) if rows is None else convs[-1](x, rows, rows_t)
        )
        return total / (n_layers + 1), ego

    @staticmethod
    def backward(
        ctx: Any, grad_final: Tensor, grad_ego: Tensor
    ) -> tuple[Tensor, None, None, None, None, None]:
        (nodes,) = ctx.saved_tensors
        adj, rows_t = ctx.graph
        n_layers = ctx.n_layers
        g = grad_final.contiguous() / (n_layers + 1)
        n_nodes = adj.shape[0]
        if n_layers == 0:
            grad = torch.zeros(n_nodes, g.shape[1], dtype=g.dtype)
        elif rows_t is not None:
            grad = torch.sparse.mm(rows_t, g, reduce="sum")
        else:
            scattered = torch.zeros(n_nodes, g.shape[1], dtype=g.dtype)
            scattered.index_add_(0, nodes, g)
            grad = torch.sparse.mm(adj, scattered, reduce="sum")
        grad.index_add_(0, nodes, g)
        for _ in range(n_layers - 1):
            grad = torch.sparse.mm(adj, grad, reduce="sum")
            grad.index_add_(0, nodes, g)
        grad.index_add_(0, nodes, grad_ego.contiguous())
        return grad, None, None, None, None, None


@dataclass(frozen=True)
class TrainingGraph:
    """``Â`` as used in training: nodes renumbered for locality, as scipy and torch CSR.

    Internal node ``r`` is external node ``order[r]`` (users ``0..n_users-1``, then items);
    ``position`` is the inverse permutation. Parameters live in the internal numbering.
    """

    adj_sp: sp.csr_matrix
    adj: Tensor
    order: np.ndarray
    position: np.ndarray
    n_users: int

    @classmethod
    def build(cls, matrix: sp.csr_matrix) -> TrainingGraph:
        """From the user-item matrix (edge weights as given)."""
        adj_sp, order = locality_order(bipartite_adjacency(matrix))
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        return cls(adj_sp, to_torch_csr(adj_sp), order, position, int(matrix.shape[0]))

    def to_internal(self, external: Tensor) -> Tensor:
        """Rows in external order -> internal order."""
        return external[torch.from_numpy(self.order)]

    def to_external(self, internal: Tensor) -> Tensor:
        """Rows in internal order -> external order."""
        return internal[torch.from_numpy(self.position)]


def bpr_loss(
    net: LightGCNNet,
    tg: TrainingGraph,
    users: np.ndarray,
    pos: np.ndarray,
    neg: np.ndarray,
    *,
    reg: float,
) -> Tensor:
    """The LightGCN mini-batch loss: mean BPR plus ``reg/2`` times the batch's ego norms / b.

    Every node of the batch is propagated once; the last layer is computed only at the batch's
    rows while they are under a quarter of the graph.
    """
    b = len(users)
    nodes = tg.position[np.concatenate([users, pos + tg.n_users, neg + tg.n_users])]
    uniq, inv, counts = np.unique(nodes, return_inverse=True, return_counts=True)
    if len(uniq) * 4 < tg.adj_sp.shape[0]:
        rows = tg.adj_sp[uniq]
        out, ego = net.forward_with_ego(
            torch.from_numpy(uniq), tg.adj, to_torch_csr(rows), to_torch_csr(rows.T.tocsr())
        )
    else:
        out, ego = net.forward_with_ego(torch.from_numpy(uniq), tg.adj)
    # one gather (its backward is an index_add, cheaper than advanced indexing's index_put)
    u, p, n = out.index_select(0, torch.from_numpy(inv.ravel())).view(3, b, -1).unbind(0)
    bpr = torch.nn.functional.softplus((u * n).sum(1) - (u * p).sum(1)).mean()
    # sum over the batch's (repeated) nodes of ||e^(0)||^2, computed on the distinct rows
    norms = (ego.pow(2).sum(1) * torch.from_numpy(counts.astype(np.float32))).sum()
    return bpr + reg * 0.5 * norms / b


# --------------------------------------------------------------------------- recommender
class LightGCN(EmbeddingRecommender):
    r"""LightGCN trained with BPR, early-stopped on the validation split.

    Parameters
    ----------
    embedding_dim : int
        ``d``, size of the ego embeddings. 128 by default: on the Gowalla validation split it
        beat the paper's 64 by more than the rest of the schedule search did (.1877 vs .1771 at
        epoch 80); on Last.fm and MovieLens, which early-stop after 10-40 epochs, the two sizes
        are within 2% of each other. Each epoch costs about twice as much.
    n_layers : int
        ``K``, number of propagation layers.
    lr : float
        Adam learning rate of the first epoch.
    lr_decay : float
        Multiplicative learning-rate decay per epoch: epoch ``e`` (from 1) uses
        ``lr * lr_decay^(e-1)``; 1 keeps it constant. The defaults (``lr=0.02``,
        ``lr_decay=0.985``, ``train_batch_size=16384``, 320 epochs: the rate falls from 0.02 to
        0.00016, and most of the accuracy comes while it anneals) were chosen on a Gowalla
        validation split and checked on MovieLens and Last.fm (docs/benchmarks/lightgcn.md).
    train_batch_size : int
        BPR triplets per step; an epoch draws as many triplets as there are training edges.
        (``batch_size`` is the base class's number of users scored per ``recommend`` block.)
    reg : float
        ``λ``, weight of the L2 penalty on the batch's ego embeddings.
    epochs : int
        Maximum number of epochs.
    init : {"svd", "normal"}
        ``"normal"``: ``N(0, init_scale^2)`` as in the paper's code (``init_scale=0.1``). ``"svd"``:
        spectral warm start from the top-``d`` singular vectors of the normalised interaction matrix
        (see Notes).
    init_scale : float
        Root-mean-square of the initial ego embedding entries: the standard deviation of the
        normal init (the paper's code uses 0.1), or the scale ``c`` of the spectral warm start.
    svd_power : float
        ``γ`` in the spectral warm start.
    svd_degree_power : float
        ``β`` in the spectral warm start (rows scaled by degree^β).
    edge_weights : bool
        Use the interaction weights (behaviour strengths) as edge weights of the graph instead of 1.
    patience : int
        Validations without improvement before stopping (only when ``valid`` is given to ``fit``).
    eval_every : int
        Validate every this many epochs.
    eval_k : int
        Cut-off of the monitored validation Recall@K (NDCG@K is logged too).
    seed : int
    checkpoint_dir : str, optional
        Checkpoint after every epoch; a later ``fit`` with the same data and hyperparameters
        resumes from it.
    log_dir : str, optional
        TensorBoard log directory (loss, validation recall and NDCG).
    progress : bool
        Progress bar with ETA on stderr.

    Attributes
    ----------
    user_embeddings_ : ndarray of float32, shape (n_users, d)
        Final (layer-averaged) user embeddings of the best epoch.
    item_embeddings_ : ndarray of float32, shape (n_items, d)
    history_ : list of dict
        Per-epoch loss, seconds and validation metrics.
    best_epoch_ : int

    Notes
    -----
    With ``R`` the user-item matrix, ``A = [[0, R], [R^T, 0]]`` and ``Â = D^{-1/2} A D^{-1/2}``,
    the embeddings after layer ``k`` are ``E^{(k)} = Â^k E^{(0)}`` and the final embeddings are

    .. math::
        E = \frac{1}{K+1} \sum_{k=0}^{K} \hat{A}^k E^{(0)}, \qquad \hat{y}_{ui} = e_u^\top e_i.

    Training minimises, over mini-batches ``B`` of triplets (user, positive, sampled negative),

    .. math:: L = \frac{1}{|B|} \sum_{(u,i,j) \in B} \big[ -\ln \sigma(\hat{y}_{ui} - \hat{y}_{uj})
              + \frac{\lambda}{2} (\|e^{(0)}_u\|^2 + \|e^{(0)}_i\|^2 + \|e^{(0)}_j\|^2) \big]

    with Adam. The spectral warm start uses the top-``d`` singular triplets
    ``R̃ ≈ U Σ V^T`` of ``R̃ = D_u^{-1/2} R D_i^{-1/2}`` and sets ``E^{(0)}_U = c D_u^β U Σ^γ``,
    ``E^{(0)}_I = c D_i^β V Σ^γ`` (``c`` sets the entries' root-mean-square to ``init_scale``).
    For ``β = 0``, since ``Â [u_k; v_k] = σ_k [u_k; v_k]``, the model starts at the low-pass
    filter ``ŷ_{ui} = c^2 \sum_k g(σ_k)^2 σ_k^{2γ} u_{uk} v_{ik}`` with
    ``g(σ) = \frac{1}{K+1} \sum_{k=0}^K σ^k``; ``β > 0`` tilts it towards popular items (chosen
    on validation data). BPR training then proceeds as usual.

    Examples
    --------
    >>> model = LightGCN(epochs=5, embedding_dim=16).fit(train)     # doctest: +SKIP
    >>> ids, scores = model.recommend([0, 1], k=10)                 # doctest: +SKIP
    """

    name = "lightgcn"
    uses_validation: ClassVar[bool] = True

    def __init__(
        self,
        *,
        embedding_dim: int = 128,
        n_layers: int = 3,
        lr: float = 0.02,
        lr_decay: float = 0.985,
        train_batch_size: int = 16384,
        reg: float = 1e-4,
        epochs: int = 320,
        init: str = "svd",
        init_scale: float = 0.1,
        svd_power: float = 0.5,
        svd_degree_power: float = 0.5,
        edge_weights: bool = False,
        patience: int = 5,
        eval_every: int = 10,
        eval_k: int = 20,
        seed: int = 0,
        checkpoint_dir: str | None = None,
        log_dir: str | None = None,
        progress: bool = True,
    ) -> None:
        self.embedding_dim = embedding_dim
        self.n_layers = n_layers
        self.lr = lr
        self.lr_decay = lr_decay
        self.train_batch_size = train_batch_size
        self.reg = reg
        self.epochs = epochs
        self.init = init
        self.init_scale = init_scale
        self.svd_power = svd_power
        self.svd_degree_power = svd_degree_power
        self.edge_weights = edge_weights
        self.patience = patience
        self.eval_every = eval_every
        self.eval_k = eval_k
        self.seed = seed
        self.checkpoint_dir = checkpoint_dir
        self.log_dir = log_dir
        self.progress = progress

    def _validate_params(self) -> None:
        check_params(
            self,
            {
                **COMMON_CHECKS,
                "n_layers": (int, -1, "a non-negative integer"),
                "init_scale": ((int, float), 0, "a positive number"),
                "svd_power": ((int, float), None, "a number"),
                "svd_degree_power": ((int, float), None, "a number"),
            },
        )
        check_lr_decay(self.lr_decay)
        if self.init not in ("svd", "normal"):
            raise ParameterError.invalid("init", "'svd' or 'normal'", self.init)
        if not isinstance(self.edge_weights, bool):
            raise ParameterError.invalid("edge_weights", "a bool", self.edge_weights)

    def _initial_embeddings(self, graph: sp.csr_matrix, rng: np.random.Generator) -> Tensor:
        n_users, n_items = graph.shape
        d = self.embedding_dim
        if self.init == "normal":
            gen = torch.Generator().manual_seed(int(rng.integers(2**62)))
            return torch.randn(n_users + n_items, d, generator=gen) * float(self.init_scale)
        k = min(d, min(n_users, n_items) - 1) if min(n_users, n_items) > 1 else 0
        emb = np.zeros((n_users + n_items, d))
        if k > 0:
            norm = normalized_interactions(graph)
            u, s, v = truncated_svd(norm, k, n_oversamples=16, n_iter=4, seed=rng)
            u, s, v = u.astype(np.float64), s.astype(np.float64), v.astype(np.float64)
            w = np.power(np.maximum(s, 1e-12), float(self.svd_power))
            beta = float(self.svd_degree_power)
            du = np.maximum(np.asarray(graph.sum(axis=1)).ravel(), 1e-12) ** beta
            di = np.maximum(np.asarray(graph.sum(axis=0)).ravel(), 1e-12) ** beta
            emb[:n_users, :k] = u * w * du[:, None]
            emb[n_users:, :k] = v * w * di[:, None]
            emb[:, :k] *= float(self.init_scale) / np.sqrt(np.mean(emb[:, :k] ** 2))
        if k < d:  # a small random part so that every dimension can learn
            emb[:, k:] = rng.standard_normal((n_users + n_items, d - k)) * 0.01 * self.init_scale
        return torch.from_numpy(emb.astype(np.float32))

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        graph = interactions.matrix if self.edge_weights else interactions.binary()
        n_users, n_items = graph.shape
        tg = TrainingGraph.build(graph)
        sampler = BPRSampler(interactions.binary())
        rng = np.random.default_rng(self.seed)
        net = LightGCNNet(n_users + n_items, self.embedding_dim, self.n_layers)
        resuming = (
            self.checkpoint_dir is not None
            and (Path(self.checkpoint_dir) / "checkpoint.json").is_file()
        )
        if not resuming:  # a resumed run loads its parameters from the checkpoint
            with torch.no_grad():
                net.embedding.copy_(tg.to_internal(self._initial_embeddings(graph, rng)))
        optimizer = torch.optim.Adam(net.parameters(), lr=float(self.lr), fused=True)
        reg = float(self.reg)

        def draw_epoch(r: np.random.Generator) -> list[tuple[np.ndarray, ...]]:
            return minibatches(sampler.sample(sampler.n_edges, r), self.train_batch_size)

        def batch_loss(batch: tuple[np.ndarray, ...]) -> Tensor:
            return bpr_loss(net, tg, *batch, reg=reg)

        def export() -> None:
            with torch.no_grad():
                final = tg.to_external(net.propagate_all(tg.adj))
            final_np = final.numpy().astype(np.float32)
            self.user_embeddings_ = np.ascontiguousarray(final_np[:n_users])
            self.item_embeddings_ = np.ascontiguousarray(final_np[n_users:])

        fit_embeddings(
            self,
            interactions,
            validation(valid, self.eval_k),
            module=net,
            optimizer=optimizer,
            draw_epoch=draw_epoch,
            batch_loss=batch_loss,
            export=export,
            lr_schedule=decaying_lr(self.lr, self.lr_decay),
        )
