"""LightGCN (He et al., SIGIR 2020) on PyTorch Geometric's ``LGConv``, trained with BPR.

The normalised adjacency is built once per fit as a ``torch.sparse`` CSR matrix (no per-call
renormalisation, no torch-sparse dependency), with the nodes renumbered once (reverse
Cuthill-McKee) so that sparse products read nearby rows; propagation runs through a PyG ``LGConv``
subclass. A training step computes the exact LightGCN gradient of the mini-batch but evaluates the
last layer only at the batch's rows, and its backward pass is written out (the model is linear in
the ego embeddings and ``Â`` is symmetric): four full sparse products per step instead of the six
of a reference implementation, and one gradient buffer instead of one dense tensor per gather and
per layer sum.

The layers, the batch propagation and the loss live in ``_lightgcn_torch`` and are imported by
``fit`` only: a trained LightGCN is two embedding arrays, loaded and scored with NumPy.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar

import numpy as np
import scipy.sparse as sp
from scipy.sparse.csgraph import reverse_cuthill_mckee

from gemrec.data.interactions import Interactions
from gemrec.data.side import SideInformation
from gemrec.errors import ParameterError
from gemrec.eval.evaluate import validation
from gemrec.graph.adjacency import normalized_interactions
from gemrec.graph.spectral import truncated_svd
from gemrec.models._device import check_device, resolve_device, tensor_minibatches
from gemrec.models.base import EmbeddingRecommender, ModelTags
from gemrec.models.training import (
    COMMON_CHECKS,
    BPRSampler,
    check_lr_decay,
    check_params,
    decaying_lr,
    fit_embeddings,
)

if TYPE_CHECKING:
    from torch import Tensor

__all__ = [
    "LightGCN",
    "locality_order",
]


# --------------------------------------------------------------------------- graph


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


# --------------------------------------------------------------------------- recommender
class LightGCN(EmbeddingRecommender):
    r"""LightGCN trained with BPR, early-stopped on the validation split.

    Parameters
    ----------
    embedding_dim : int
        ``d``, size of the ego embeddings. 128 by default (the paper uses 64): on a Gowalla
        validation split the larger table gained more than any other change to the schedule;
        on denser data that early-stops after a few dozen epochs the two sizes are close. Each
        epoch costs about twice as much.
    n_layers : int
        ``K``, number of propagation layers.
    lr : float
        Adam learning rate of the first epoch.
    lr_decay : float
        Multiplicative learning-rate decay per epoch: epoch ``e`` (from 1) uses
        ``lr * lr_decay^(e-1)``; 1 keeps it constant. The defaults (``lr=0.03``,
        ``lr_decay=0.976``, ``train_batch_size=32768``, 200 epochs: the rate falls from 0.03 to
        0.00024, and most of the accuracy comes while it anneals) were chosen on the validation
        splits of Gowalla and MovieLens-1M (docs/benchmarks/lightgcn.md): each step propagates
        over the whole graph, so a larger batch costs less per epoch, and with a larger rate it
        came within 1 % of the validation accuracy of 320 epochs of half the batch in a quarter
        of their steps.
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
    mode : {"auto", "faithful", "cluster"}
        ``"faithful"``: every step propagates over the whole graph (the paper's training; an
        epoch costs ``O(|E|^2 / b)``). ``"cluster"``: Cluster-GCN steps on groups of parts of the
        graph's locality order (:class:`~gemrec.models._lightgcn_torch.ClusterBatches`), the
        neighbours outside a step read from per-layer histories refreshed every epoch
        (GNNAutoScale), negatives drawn from the whole catalogue; an epoch costs ``O(|E|)``.
        ``"auto"``: cluster above :attr:`CLUSTER_ABOVE_EDGES` training edges, faithful below.
        Cluster steps run in one process (``--nproc 1``).
    partition : {"replicate", "rows"}
        How data-parallel workers (``--nproc N``, torchrun) share a faithful step.
        ``"replicate"``: every worker propagates over the whole graph and the gradients are summed
        (``DistributedDataParallel``). ``"rows"``: row-partitioned propagation; each worker owns a
        contiguous block of ``Â``'s rows in the locality order
        (:class:`~gemrec.models._lightgcn_torch.RowBlock`), computes that block of every layer
        and all-gathers it, so the full-graph products are divided by ``N``; the backward pass
        gathers the global batch's gradient, so no gradient all-reduce is needed. Both give the
        one-process result up to rounding.
    parts_per_step : int
        Parts joined into one cluster step: smaller parts, shuffled into groups, make steps that
        are closer to a random sample of the graph (Gowalla test Recall@20 after 200 cluster
        epochs of the shipped schedule: .1771 with 16, .1782 with 64).
    max_steps_per_epoch : int
        Cluster mode only: at most this many steps per epoch; on larger graphs each step takes
        more triplets than ``train_batch_size`` (each step has a fixed cost: a sparse Adam update
        of its rows and the conversion of its rows of the graph).
    device : {"auto", "cpu", "cuda"} or "cuda:N"
        Where to train: ``"auto"`` is CUDA when torch sees a GPU. The graph, the parameters, the
        optimiser state and each epoch's sampled index tensors live there; samples are drawn on
        the CPU, so the device does not change which samples are drawn (nor a checkpoint: it
        resumes on any device).

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
    history_: list[dict[str, Any]]
    best_epoch_: int
    #: ``mode="auto"`` trains with cluster steps above this many training edges
    CLUSTER_ABOVE_EDGES: ClassVar[int] = 20_000_000
    tags: ClassVar[ModelTags] = ModelTags(
        validation="early_stopping",
        embeddings=True,
        inner_product=True,
        fold_in=True,
        progress=True,
        fit_requires=("torch", "torch_geometric"),
        distributed=True,
    )

    def __init__(
        self,
        *,
        embedding_dim: int = 128,
        n_layers: int = 3,
        lr: float = 0.03,
        lr_decay: float = 0.976,
        train_batch_size: int = 32768,
        reg: float = 1e-4,
        epochs: int = 200,
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
        mode: str = "auto",
        partition: str = "replicate",
        parts_per_step: int = 64,
        max_steps_per_epoch: int = 1000,
        device: str = "auto",
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
        self.mode = mode
        self.partition = partition
        self.parts_per_step = parts_per_step
        self.max_steps_per_epoch = max_steps_per_epoch
        self.device = device

    def _validate_params(self) -> None:
        check_device(self.device)
        check_params(
            self,
            {
                **COMMON_CHECKS,
                "n_layers": (int, -1, "a non-negative integer"),
                "init_scale": ((int, float), 0, "a positive number"),
                "svd_power": ((int, float), None, "a number"),
                "svd_degree_power": ((int, float), None, "a number"),
                "parts_per_step": (int, 0, "a positive integer"),
                "max_steps_per_epoch": (int, 0, "a positive integer"),
            },
        )
        check_lr_decay(self.lr_decay)
        if self.mode not in ("auto", "faithful", "cluster"):
            raise ParameterError.invalid("mode", "'auto', 'faithful' or 'cluster'", self.mode)
        if self.partition not in ("replicate", "rows"):
            raise ParameterError.invalid("partition", "'replicate' or 'rows'", self.partition)
        if self.init not in ("svd", "normal"):
            raise ParameterError.invalid("init", "'svd' or 'normal'", self.init)
        if not isinstance(self.edge_weights, bool):
            raise ParameterError.invalid("edge_weights", "a bool", self.edge_weights)

    def training_mode(self, n_edges: int) -> str:
        """``"faithful"`` or ``"cluster"``: what ``mode`` means for ``n_edges`` training edges."""
        if self.mode == "auto":
            return "cluster" if n_edges > self.CLUSTER_ABOVE_EDGES else "faithful"
        return str(self.mode)

    def _initial_embeddings(self, graph: sp.csr_matrix, rng: np.random.Generator) -> Tensor:
        import torch

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

    def _export(self, net: Any, tg: Any) -> None:
        """Final embeddings of ``net`` propagated over ``tg``; the ego table kept for
        :meth:`extended`."""
        import torch

        n_users = tg.n_users
        with torch.no_grad():
            final = tg.to_external(net.propagate_all(tg.adj))
            ego = tg.to_external(net.embedding)
        # one table: the users' and the items' rows are contiguous views of it
        final_np = np.asarray(final.cpu().numpy(), dtype=np.float32)
        self.user_embeddings_ = final_np[:n_users]
        self.item_embeddings_ = final_np[n_users:]
        #: in memory only (not saved): what extended() propagates over a larger graph
        self._ego_embeddings = np.asarray(ego.cpu().numpy(), dtype=np.float32)

    def _extended(
        self, interactions: Interactions, side: SideInformation | None
    ) -> EmbeddingRecommender:
        """This model's trained ego embeddings propagated over the graph of ``interactions``.

        ``interactions`` holds the fitted data plus more interactions between the same users and
        items (a fusion's holdout, given back after tuning). No training: the new edges enter
        the final embeddings through the ``K`` propagation layers, with ``Â`` renormalised for
        the new degrees. A model loaded from disk has no ego table and is fit anew.
        """
        ego = getattr(self, "_ego_embeddings", None)
        if ego is None:
            return super()._extended(interactions, side)  # type: ignore[return-value]
        import torch

        from gemrec.models._lightgcn_torch import LightGCNNet, TrainingGraph

        graph = interactions.matrix if self.edge_weights else interactions.binary()
        tg = TrainingGraph.build(graph, resolve_device(self.device))
        net = LightGCNNet(len(ego), self.embedding_dim, self.n_layers).to(tg.device)
        with torch.no_grad():
            net.embedding.copy_(tg.to_internal(torch.from_numpy(ego).to(tg.device)))
        model = LightGCN(**self.get_params())
        model.interactions_ = interactions.matrix
        model._export(net, tg)
        model.history_ = list(getattr(self, "history_", []))
        model.best_epoch_ = getattr(self, "best_epoch_", 0)
        return model

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        import torch

        from gemrec.models._lightgcn_torch import (
            ClusterBatches,
            LayerHistory,
            LightGCNNet,
            RowBlock,
            TrainingGraph,
            bpr_loss,
            cluster_bpr_loss,
        )

        graph = interactions.matrix if self.edge_weights else interactions.binary()
        n_users, n_items = graph.shape
        device = resolve_device(self.device)
        tg = TrainingGraph.build(graph, device)
        sampler = BPRSampler(interactions.binary())
        rng = np.random.default_rng(self.seed)
        net = LightGCNNet(n_users + n_items, self.embedding_dim, self.n_layers).to(device)
        resuming = (
            self.checkpoint_dir is not None
            and (Path(self.checkpoint_dir) / "checkpoint.json").is_file()
        )
        if not resuming:  # a resumed run loads its parameters from the checkpoint
            with torch.no_grad():
                initial = self._initial_embeddings(graph, rng).to(device)
                net.embedding.copy_(tg.to_internal(initial))
        cluster = self.training_mode(sampler.n_edges) == "cluster"
        optimizer: torch.optim.Optimizer
        if cluster:  # lazy Adam on the step's rows: a step never touches the whole table
            optimizer = torch.optim.SparseAdam(list(net.parameters()), lr=float(self.lr))
        else:
            optimizer = torch.optim.Adam(net.parameters(), lr=float(self.lr), fused=True)
        reg = float(self.reg)
        history: LayerHistory | None = None

        if cluster:
            from gemrec.models._distributed import current_world

            if self.partition == "rows":
                raise ParameterError(
                    "lightgcn's partition='rows' applies to faithful steps; cluster mode trains in "
                    "one process: use --set mode=faithful, or the default partition"
                )
            if current_world().distributed:
                raise ParameterError(
                    "lightgcn with mode='cluster' trains in one process; use --nproc 1, or "
                    "--set mode=faithful for data-parallel workers"
                )
            steps = -(-sampler.n_edges // int(self.train_batch_size))
            steps = max(1, min(steps, int(self.max_steps_per_epoch)))
            bounds = ClusterBatches.part_bounds(tg.adj_sp, steps * int(self.parts_per_step))
            history = LayerHistory(net, tg)

            def draw_epoch(r: np.random.Generator) -> Sequence[tuple[Any, ...]]:
                history.refresh()  # each epoch starts from current layers
                return ClusterBatches(tg, sampler, bounds, int(self.parts_per_step), r)

            def batch_loss(batch: tuple[Any, ...]) -> Tensor:
                return cluster_bpr_loss(net, history, *batch, reg=reg)

        else:
            block = None
            if self.partition == "rows":
                from gemrec.models._distributed import current_world

                world = current_world()
                block = RowBlock.build(tg, world.rank, world.size)

            def draw_epoch(r: np.random.Generator) -> Sequence[tuple[Any, ...]]:
                triplets = sampler.sample(sampler.n_edges, r)
                return tensor_minibatches(triplets, self.train_batch_size, device)

            def batch_loss(batch: tuple[Any, ...]) -> Tensor:
                return bpr_loss(net, tg, *batch, reg=reg, block=block)

        def export() -> None:
            if history is not None:  # each epoch refreshes it first: its memory is free meanwhile
                history.clear()
            self._export(net, tg)

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
            global_gradients=not cluster and self.partition == "rows",
        )
