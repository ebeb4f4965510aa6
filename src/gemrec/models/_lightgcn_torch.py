"""The torch half of :class:`~gemrec.models.lightgcn.LightGCN`: layers, batch propagation, loss.

Imported only to train; a trained LightGCN is two embedding arrays and scores with NumPy. Every
tensor lives on the graph's device (``TrainingGraph.build(..., device=...)``): the CPU, or a CUDA
GPU, where ``torch.sparse`` CSR products run on cuSPARSE.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, overload

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn
from torch_geometric.nn.conv import LGConv

from gemrec.graph.adjacency import bipartite_adjacency, to_torch_sparse
from gemrec.models.lightgcn import locality_order
from gemrec.models.training import sample_negatives

__all__ = [
    "ClusterBatches",
    "LayerHistory",
    "LightGCNConv",
    "LightGCNNet",
    "RowBlock",
    "TrainingGraph",
    "bpr_loss",
    "cluster_bpr_loss",
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
        """Final embeddings of every node, shape (n_nodes, embedding_dim).

        The layers are summed into one buffer: besides the ego table, three tables are alive at
        any time (the sum, the last layer and the one being computed), whatever the depth.
        """
        x = self.embedding
        out = x.clone()
        for conv in self.convs:
            x = conv(x, adj)
            out.add_(x)
        return out.div_(len(self.convs) + 1)

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


@dataclass(frozen=True)
class RowBlock:
    """This worker's block of ``Â``'s rows, for row-partitioned propagation.

    The nodes, in the graph's locality order (reverse Cuthill-McKee), are cut into one contiguous
    block per worker of about equal degree (:meth:`ClusterBatches.part_bounds`), so each worker
    holds ``1/N`` of ``Â``'s entries and does ``1/N`` of every product: ``Â X`` is each worker's
    ``Â[block] X``, all-gathered. In a world of one worker the block is the whole graph and
    nothing is exchanged.
    """

    adj: Tensor
    sizes: tuple[int, ...]
    distributed: bool

    @classmethod
    def build(cls, tg: TrainingGraph, rank: int, size: int) -> RowBlock:
        bounds = ClusterBatches.part_bounds(tg.adj_sp, size)
        bounds = np.concatenate([bounds, np.full(size + 1 - len(bounds), bounds[-1])])
        block = tg.adj_sp[int(bounds[rank]) : int(bounds[rank + 1])]
        return cls(to_torch_csr(block).to(tg.device), tuple(np.diff(bounds).tolist()), size > 1)

    def product(self, x: Tensor) -> Tensor:
        """``Â x`` (every node's rows), each worker computing its block's."""
        local = spmm(self.adj, x)
        if not self.distributed:
            return local
        from gemrec.models._distributed import gather_rows

        return gather_rows(local, self.sizes)

    def scatter_all(self, nodes: Tensor, values: Tensor) -> Tensor:
        """Every worker's ``values`` added at its ``nodes``: a dense (n_nodes, d) tensor."""
        n_nodes = self.adj.shape[1]
        if not self.distributed:
            out = values.new_zeros(n_nodes, values.shape[1])
            return out.index_add_(0, nodes, values)
        from gemrec.models._distributed import gather_sparse

        local = torch.sparse_coo_tensor(
            nodes[None, :], values, (n_nodes, values.shape[1]), check_invariants=False
        )
        return gather_sparse(local, None).to_dense()


class _RowPartitionedPropagation(torch.autograd.Function):
    r"""Rows ``nodes`` of the layer mean ``\frac{1}{K+1}\sum_k Â^k E`` and of ``E``, with the
    products split by :class:`RowBlock` and the gradient summed over the workers.

    Forward: ``K`` full layers, each block's rows all-gathered. Backward: every worker's batch
    gradient ``g`` (its share of the global batch, already weighted) is gathered into one
    scattered ``S g``, and ``dE = sum_{k=0}^{K} Â^k S g / (K+1)`` (Horner: ``G <- Â G + S g``,
    ``Â`` symmetric) plus the gathered ego gradient, identical on every worker: the optimiser
    steps alike everywhere with no further exchange.
    """

    @staticmethod
    def forward(
        ctx: Any, emb: Tensor, nodes: Tensor, block: RowBlock, n_layers: int
    ) -> tuple[Tensor, Tensor]:
        ctx.save_for_backward(nodes)
        ctx.block, ctx.n_layers = block, n_layers
        ego = emb.index_select(0, nodes)
        x, total = emb, ego.clone()
        for _ in range(n_layers):
            x = block.product(x)
            total += x.index_select(0, nodes)
        return total / (n_layers + 1), ego

    @staticmethod
    def backward(ctx: Any, grad_final: Tensor, grad_ego: Tensor) -> tuple[Tensor, None, None, None]:
        (nodes,) = ctx.saved_tensors
        block, n_layers = ctx.block, ctx.n_layers
        # one exchange for both: the layer-mean gradient and the ego gradient side by side
        both = block.scatter_all(nodes, torch.cat([grad_final / (n_layers + 1), grad_ego], dim=1))
        scattered, ego = both.split(grad_final.shape[1], dim=1)
        grad = scattered
        for _ in range(n_layers):
            grad = block.product(grad) + scattered
        return grad + ego, None, None, None


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
    block: RowBlock | None = None,
) -> Tensor:
    """The LightGCN mini-batch loss: mean BPR plus ``reg/2`` times the batch's ego norms / b.

    ``users``, ``pos``, ``neg`` (external ids, shape (b,)) are int64 tensors on the graph's device
    (NumPy arrays are moved there). Every node of the batch is propagated once; on the CPU the
    last layer is computed only at the batch's rows while they are under a quarter of the graph.
    With ``block``, propagation is row-partitioned over the workers
    (:class:`_RowPartitionedPropagation`) and the backward pass leaves the global batch's
    gradient on every worker.
    """
    dev = tg.device
    users, pos, neg = _index(users, dev), _index(pos, dev), _index(neg, dev)
    b = len(users)
    nodes = tg.position_index[torch.cat([users, pos + tg.n_users, neg + tg.n_users])]
    uniq, inv, counts = torch.unique(nodes, sorted=True, return_inverse=True, return_counts=True)
    if block is not None:
        out, ego = _RowPartitionedPropagation.apply(  # type: ignore[no-untyped-call]
            net.embedding, uniq, block, len(net.convs)
        )
    elif tg.cut_last_layer and len(uniq) * 4 < tg.adj_sp.shape[0]:
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


# --------------------------------------------------------------------------- cluster batches
class ClusterBatches(Sequence[tuple[Any, ...]]):
    r"""One epoch of cluster steps: the BPR triplets of a few parts' users, propagated locally.

    The nodes, in the graph's locality order (reverse Cuthill-McKee, so that neighbours sit
    close), are cut into ``n_parts`` contiguous parts of about equal degree. An epoch shuffles the
    parts into groups of ``parts_per_step``; a step takes every training edge of the group's users
    as a positive (so an epoch takes each edge once, as the uniform sampler does on average) and a
    negative per positive drawn uniformly among the items the user has not interacted with.
    Propagation runs on the group's nodes only (:func:`cluster_bpr_loss`): their rows ``Â[G]``,
    with the neighbours outside the group read from :class:`LayerHistory`; a positive or negative
    outside the group takes its layers from the history too. The groups cover every node once, so
    an epoch costs ``O(K |E| d)``: linear in edges, with memory bounded by the largest step.

    Batches are built when indexed (the epoch's randomness is drawn up front from ``rng``). A batch
    is ``(users, positives, negatives, nodes, inside)``: ``nodes`` the internal ids of the step's
    nodes (the group's and the triplets' items; sorted, int64 tensor), ``inside`` whether each of
    them is in the group (bool tensor), and the triplets as positions in ``nodes`` (int64 tensors,
    shape (b,)).
    """

    def __init__(
        self,
        tg: TrainingGraph,
        sampler: Any,
        bounds: np.ndarray,
        parts_per_step: int,
        rng: np.random.Generator,
    ) -> None:
        self.tg = tg
        self.sampler = sampler
        self.bounds = bounds
        n_parts = len(bounds) - 1
        order = rng.permutation(n_parts)
        self.groups = [order[i : i + parts_per_step] for i in range(0, n_parts, parts_per_step)]
        self.seeds = rng.integers(0, 2**63 - 1, size=len(self.groups))

    @staticmethod
    def part_bounds(adj: sp.csr_matrix, n_parts: int) -> np.ndarray:
        """Boundaries ``(n_parts + 1,)`` cutting the node order into parts of about equal degree."""
        n_nodes = adj.shape[0]
        n_parts = max(1, min(int(n_parts), n_nodes))
        cum = np.cumsum(np.diff(adj.indptr))
        cuts = np.searchsorted(cum, np.linspace(0, cum[-1], n_parts + 1)[1:-1], side="right")
        out: np.ndarray = np.unique(np.concatenate([[0], cuts, [n_nodes]])).astype(np.int64)
        return out

    def __len__(self) -> int:
        return len(self.groups)

    @overload
    def __getitem__(self, index: int) -> tuple[Any, ...]: ...

    @overload
    def __getitem__(self, index: slice) -> Sequence[tuple[Any, ...]]: ...

    def __getitem__(self, index: int | slice) -> Any:
        if isinstance(index, slice):
            return [self[i] for i in range(*index.indices(len(self)))]
        tg, sampler = self.tg, self.sampler
        group = np.sort(self.groups[index])
        part_nodes = np.concatenate([np.arange(self.bounds[p], self.bounds[p + 1]) for p in group])
        external = tg.order[part_nodes]
        users = np.sort(external[external < tg.n_users]).astype(np.int64)
        deg = sampler.degree[users]
        users = users[(deg > 0) & (deg < sampler.n_items)]  # a positive and a negative exist
        starts, lengths = sampler.indptr[users], np.diff(sampler.indptr)[users]
        u = np.repeat(users, lengths)
        # positions of each user's edges in the CSR arrays, without a Python loop
        first = np.repeat(starts - np.cumsum(lengths) + lengths, lengths)
        p = sampler.indices[first + np.arange(len(u), dtype=np.int64)]
        n = sample_negatives(
            u, sampler.keys, sampler.n_items, np.random.default_rng(int(self.seeds[index]))
        )
        internal = np.concatenate(
            [part_nodes, tg.position[u], tg.position[p + tg.n_users], tg.position[n + tg.n_users]]
        )
        nodes = np.unique(internal)
        part_of = np.searchsorted(self.bounds, nodes, side="right") - 1
        inside = np.isin(part_of, group)
        dev = tg.device
        local = torch.from_numpy(np.searchsorted(nodes, internal[len(part_nodes) :])).to(dev)
        b = len(u)
        return (
            local[:b],
            local[b : 2 * b],
            local[2 * b :],
            torch.from_numpy(nodes).to(dev),
            torch.from_numpy(inside).to(dev),
        )


class LayerHistory:
    r"""Every node's embedding after each layer, as last computed: what a cluster step reads for
    the neighbours outside its nodes (GNNAutoScale's historical embeddings, Fey et al. 2021).

    :meth:`refresh` recomputes all layers from the current ego embeddings (``K`` full products, no
    gradient: one epoch's cost is linear in edges); each step writes back the layers it computed
    for its nodes. A history is thus at most one refresh old.
    """

    def __init__(self, net: LightGCNNet, tg: TrainingGraph) -> None:
        self.net = net
        self.tg = tg
        self.layers: list[Tensor] = []

    def refresh(self) -> None:
        self.clear()
        with torch.no_grad():
            x = self.net.embedding.detach()
            for conv in self.net.convs:
                x = conv(x, self.tg.adj)
                self.layers.append(x)

    def clear(self) -> None:
        """Release the layers (``K`` tables of every node) until the next :meth:`refresh`."""
        self.layers = []


def cluster_bpr_loss(
    net: LightGCNNet,
    history: LayerHistory,
    users: Tensor,
    pos: Tensor,
    neg: Tensor,
    nodes: Tensor,
    inside: Tensor,
    *,
    reg: float,
) -> Tensor:
    r"""The LightGCN loss of :func:`bpr_loss` for one step of :class:`ClusterBatches`.

    With ``G`` the step's group (``nodes[inside]``), ``O`` every other node and ``H^{(k)}`` the
    layer history, ``E^{(k+1)}_G = Â_{GG} E^{(k)}_G + Â_{GO} H^{(k)}_O`` (``H^{(0)} = E^{(0)}``,
    current), and a triplet item outside ``G`` has the layers ``H^{(k)}`` (its own embedding,
    current, as layer 0). Exact when the history is current. The gradient flows through
    ``Â_{GG}``, every step node's own embedding and the first hop from outside, ``Â_{GO}
    E^{(0)}_O``; the deeper terms through ``O`` are constants of the step, as in GNNAutoScale.
    Letting the first hop carry its gradient to the outside neighbours halved the gap to the
    faithful mode on Gowalla. The layers computed for ``G`` are written back to the history.
    The gradient is sparse (rows of the step's nodes and their outside neighbours only): train
    with ``torch.optim.SparseAdam``.
    """
    tg = history.tg
    n_layers = len(net.convs)
    inside_np = inside.cpu().numpy()
    idx = nodes.cpu().numpy()
    group = idx[inside_np]
    rows = tg.adj_sp[group]
    # which stored columns are group nodes (group is sorted), without an array over every node
    local_cols = np.minimum(np.searchsorted(group, rows.indices), len(group) - 1)
    keep = group[local_cols] == rows.indices
    a_in = sp.csr_matrix(
        (rows.data * keep, np.where(keep, local_cols, 0), rows.indptr.copy()),
        shape=(len(group), len(group)),
    )
    a_in.eliminate_zeros()  # its arrays are its own: eliminate_zeros works in place
    a_out = sp.csr_matrix(
        (rows.data * ~keep, rows.indices.copy(), rows.indptr.copy()), shape=rows.shape
    )
    a_out.eliminate_zeros()
    dev = net.embedding.device
    a_in_t, a_out_t = to_torch_csr(a_in).to(dev), to_torch_csr(a_out).to(dev)
    # a sparse gradient: only the step's rows are updated (lazy Adam), so a step costs its own
    # nodes and edges, not the whole embedding table
    ego = torch.nn.functional.embedding(nodes, net.embedding, sparse=True)
    in_pos = torch.from_numpy(np.flatnonzero(inside_np)).to(dev)
    out_pos = torch.from_numpy(np.flatnonzero(~inside_np)).to(dev)
    group_t = nodes.index_select(0, in_pos)
    with torch.no_grad():
        outside = [net.embedding.detach(), *history.layers[:-1]]
        others = nodes.index_select(0, out_pos)
        # the outside triplet items: every layer from the history
        out_layers = sum((h.index_select(0, others) for h in history.layers), torch.zeros(()))
    x = ego.index_select(0, in_pos)
    total = x
    # the first hop from outside reads the outside neighbours' current embeddings with their
    # gradient (a sparse lookup of just those rows); later hops read the history as constants
    cols, remapped = np.unique(a_out.indices, return_inverse=True)
    a_hop = sp.csr_matrix(
        (a_out.data, remapped.reshape(-1), a_out.indptr), shape=(len(group), len(cols))
    )
    a_hop_t, a_hop_tt = to_torch_csr(a_hop).to(dev), to_torch_csr(a_hop.T.tocsr()).to(dev)
    hop_rows = torch.nn.functional.embedding(
        torch.from_numpy(cols.astype(np.int64)).to(dev), net.embedding, sparse=True
    )
    for k in range(n_layers):
        if k == 0:
            out_k = sparse_mm(a_hop_t, hop_rows, a_hop_tt)
        else:
            with torch.no_grad():
                out_k = spmm(a_out_t, outside[k])
        x = sparse_mm(a_in_t, x) + out_k
        history.layers[k][group_t] = x.detach()
        total = total + x
    final = torch.empty_like(ego).index_copy(0, in_pos, total).index_copy(
        0, out_pos, ego.index_select(0, out_pos) + out_layers
    ) / (n_layers + 1)
    b = len(users)
    u, p, n = final.index_select(0, users), final.index_select(0, pos), final.index_select(0, neg)
    e_u, e_p, e_n = ego.index_select(0, users), ego.index_select(0, pos), ego.index_select(0, neg)
    norms = e_u.pow(2).sum() + e_p.pow(2).sum() + e_n.pow(2).sum()
    if b == 0:  # a group of items only: nothing to rank, the history is still refreshed
        return norms * 0.0
    bpr = torch.nn.functional.softplus((u * n).sum(1) - (u * p).sum(1)).mean()
    loss: Tensor = bpr + reg * 0.5 * norms / b
    return loss
