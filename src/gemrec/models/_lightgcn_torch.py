"""The torch half of :class:`~gemrec.models.lightgcn.LightGCN`: layers, batch propagation, loss.

Imported only to train; a trained LightGCN is two embedding arrays and scores with NumPy. Every
tensor lives on the graph's device (``TrainingGraph.build(..., device=...)``): the CPU, or a CUDA
GPU, where ``torch.sparse`` CSR products run on cuSPARSE.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn
from torch_geometric.nn.conv import LGConv

from gemrec.graph.adjacency import bipartite_adjacency, to_torch_sparse
from gemrec.models.lightgcn import locality_order

__all__ = [
    "LightGCNConv",
    "LightGCNNet",
    "TrainingGraph",
    "bpr_loss",
    "sparse_mm",
    "spmm",
    "to_torch_csr",
]


def to_torch_csr(matrix: sp.csr_matrix) -> Tensor:
    """A scipy CSR matrix as a ``torch.sparse_csr_tensor`` (float32, int64 indices)."""
    out: Tensor = to_torch_sparse(matrix, layout="csr")
    return out


def spmm(adj: Tensor, x: Tensor) -> Tensor:
    """``adj @ x`` for a sparse CSR ``adj``: torch's parallel CSR kernel on the CPU, cuSPARSE on
    CUDA (the ``reduce`` argument is a CPU-only option)."""
    if adj.device.type == "cpu":
        out: Tensor = torch.sparse.mm(adj, x, reduce="sum")
    else:
        out = torch.sparse.mm(adj, x)
    return out


# --------------------------------------------------------------------------- layers
class _SparseMM(torch.autograd.Function):
    """``Y = A X`` for a constant sparse ``A``; backward ``dX = A^T dY`` with ``A^T`` given."""

    @staticmethod
    def forward(ctx: Any, adj: Tensor, x: Tensor, adj_t: Tensor) -> Tensor:
        ctx.adj_t = adj_t
        return spmm(adj, x)

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[None, Tensor, None]:
        return None, spmm(ctx.adj_t, grad.contiguous()), None


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
            grad = g.new_zeros(n_nodes, g.shape[1])
        elif rows_t is not None:
            grad = spmm(rows_t, g)
        else:
            scattered = g.new_zeros(n_nodes, g.shape[1])
            scattered.index_add_(0, nodes, g)
            grad = spmm(adj, scattered)
        grad.index_add_(0, nodes, g)
        for _ in range(n_layers - 1):
            grad = spmm(adj, grad)
            grad.index_add_(0, nodes, g)
        grad.index_add_(0, nodes, grad_ego.contiguous())
        return grad, None, None, None, None, None


@dataclass(frozen=True)
class TrainingGraph:
    """``Â`` as used in training: nodes renumbered for locality, as scipy and torch CSR.

    Internal node ``r`` is external node ``order[r]`` (users ``0..n_users-1``, then items);
    ``position`` is the inverse permutation. Parameters live in the internal numbering. ``adj``
    and the index tensors are on the training device; ``cut_last_layer`` says whether a step
    cuts the batch's rows of ``Â`` on the host to compute the last layer at those rows only (worth
    it on the CPU; on a GPU the full product is cheaper than the host work and the transfer).
    """

    adj_sp: sp.csr_matrix
    adj: Tensor
    order: np.ndarray
    position: np.ndarray
    n_users: int
    position_index: Tensor
    order_index: Tensor
    cut_last_layer: bool

    @classmethod
    def build(
        cls,
        matrix: sp.csr_matrix,
        device: torch.device | str = "cpu",
        *,
        cut_last_layer: bool | None = None,
    ) -> TrainingGraph:
        """From the user-item matrix (edge weights as given), on ``device``.

        ``cut_last_layer`` defaults to True on the CPU and False elsewhere.
        """
        device = torch.device(device)
        adj_sp, order = locality_order(bipartite_adjacency(matrix))
        position = np.empty_like(order)
        position[order] = np.arange(len(order))
        if cut_last_layer is None:
            cut_last_layer = device.type == "cpu"
        return cls(
            adj_sp,
            to_torch_csr(adj_sp).to(device),
            order,
            position,
            int(matrix.shape[0]),
            torch.from_numpy(position).to(device),
            torch.from_numpy(order).to(device),
            bool(cut_last_layer),
        )

    @property
    def device(self) -> torch.device:
        return self.adj.device

    def to_internal(self, external: Tensor) -> Tensor:
        """Rows in external order -> internal order."""
        return external[self.order_index.to(external.device)]

    def to_external(self, internal: Tensor) -> Tensor:
        """Rows in internal order -> external order."""
        return internal[self.position_index.to(internal.device)]


def _index(values: Tensor | np.ndarray, device: torch.device) -> Tensor:
    return torch.as_tensor(values, dtype=torch.int64).to(device)


def bpr_loss(
    net: LightGCNNet,
    tg: TrainingGraph,
    users: Tensor | np.ndarray,
    pos: Tensor | np.ndarray,
    neg: Tensor | np.ndarray,
    *,
    reg: float,
) -> Tensor:
    """The LightGCN mini-batch loss: mean BPR plus ``reg/2`` times the batch's ego norms / b.

    ``users``, ``pos``, ``neg`` (external ids, shape (b,)) are int64 tensors on the graph's device
    (NumPy arrays are moved there). Every node of the batch is propagated once; on the CPU the
    last layer is computed only at the batch's rows while they are under a quarter of the graph.
    """
    dev = tg.device
    users, pos, neg = _index(users, dev), _index(pos, dev), _index(neg, dev)
    b = len(users)
    nodes = tg.position_index[torch.cat([users, pos + tg.n_users, neg + tg.n_users])]
    uniq, inv, counts = torch.unique(nodes, sorted=True, return_inverse=True, return_counts=True)
    if tg.cut_last_layer and len(uniq) * 4 < tg.adj_sp.shape[0]:
        rows = tg.adj_sp[uniq.cpu().numpy()]
        out, ego = net.forward_with_ego(
            uniq, tg.adj, to_torch_csr(rows).to(dev), to_torch_csr(rows.T.tocsr()).to(dev)
        )
    else:
        out, ego = net.forward_with_ego(uniq, tg.adj)
    # one gather (its backward is an index_add, cheaper than advanced indexing's index_put)
    u, p, n = out.index_select(0, inv.ravel()).view(3, b, -1).unbind(0)
    bpr = torch.nn.functional.softplus((u * n).sum(1) - (u * p).sum(1)).mean()
    # sum over the batch's (repeated) nodes of ||e^(0)||^2, computed on the distinct rows
    norms = (ego.pow(2).sum(1) * counts.to(ego.dtype)).sum()
    loss: Tensor = bpr + reg * 0.5 * norms / b
    return loss
