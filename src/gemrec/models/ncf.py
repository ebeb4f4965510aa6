"""Neural Collaborative Filtering: NeuMF (He et al., WWW 2017), the ``ncf`` model."""

from __future__ import annotations

from collections.abc import Mapping
from typing import TYPE_CHECKING, ClassVar

import numpy as np
import scipy.sparse as sp

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.eval.evaluate import validation
from gemrec.models._device import check_device, resolve_device, tensor_minibatches
from gemrec.models.base import EmbeddingRecommender, ModelTags, State
from gemrec.models.training import (
    COMMON_CHECKS,
    BPRSampler,
    check_params,
    fit_embeddings,
    sample_negatives,
)

if TYPE_CHECKING:
    from torch import Tensor

    from gemrec.models._ncf_torch import NeuMFNet

__all__ = ["NeuMF", "neumf_scores"]


def neumf_scores(
    weights: Mapping[str, np.ndarray], users: np.ndarray, max_cells: int = 1 << 22
) -> np.ndarray:
    """Logits of every item for ``users`` from NeuMF's weights, shape (len(users), n_items).

    ``weights`` are the network's parameters by their torch names (``user_gmf``, ``first.weight``,
    ``hidden.0.bias``, ...). The first MLP layer is split into its user and item halves
    (``W_1 [p; q] = W_u p + W_i q``) so that it is computed once per user and once per item; the
    rest runs in blocks of about ``max_cells`` hidden activations.
    """
    user_gmf, item_gmf = weights["user_gmf"], weights["item_gmf"]
    user_mlp, item_mlp = weights["user_mlp"], weights["item_mlp"]
    first_w, first_b = weights["first.weight"], weights["first.bias"]
    out_w, out_b = weights["out.weight"], weights["out.bias"]
    n_hidden = sum(1 for key in weights if key.startswith("hidden.") and key.endswith(".weight"))
    hidden = [(weights[f"hidden.{i}.weight"], weights[f"hidden.{i}.bias"]) for i in range(n_hidden)]
    n_items, half, d = len(item_gmf), user_mlp.shape[1], user_gmf.shape[1]
    item_part = item_mlp @ first_w[:, half:].T + first_b  # (n_items, h1)
    user_part = user_mlp[users] @ first_w[:, :half].T  # (n, h1)
    gmf = (user_gmf[users] * out_w[0, :d]) @ item_gmf.T + out_b  # (n, n_items)
    h_mlp = out_w[0, d:]
    step = max(1, max_cells // max(1, n_items * item_part.shape[1]))
    out = np.empty((len(users), n_items), np.float32)
    for s in range(0, len(users), step):
        h = np.maximum(user_part[s : s + step, None, :] + item_part[None, :, :], 0.0)
        h = h.reshape(-1, h.shape[-1])
        for w, b in hidden:
            h = np.maximum(h @ w.T + b, 0.0)
        out[s : s + step] = gmf[s : s + step] + (h @ h_mlp).reshape(-1, n_items)
    return out


class NeuMF(EmbeddingRecommender):
    r"""NeuMF trained pointwise on sampled negatives (log loss) with Adam and early stopping.

    Parameters
    ----------
    embedding_dim : int
        GMF embedding size.
    layers : list of int
        MLP widths (the paper's ``[64, 32, 16, 8]`` style); MLP embeddings are ``layers[0] // 2``.
    n_negatives : int
        Sampled negatives per observed interaction (the paper uses 4).
    lr : float
    train_batch_size : int
        (user, item, label) rows per step.
    reg : float
        L2 weight on the batch's embeddings.
    epochs, patience, eval_every, eval_k, seed, checkpoint_dir, log_dir, progress, device
        As for :class:`~gemrec.models.lightgcn.LightGCN`.

    Attributes
    ----------
    user_embeddings_, item_embeddings_ : ndarray of float32
        The GMF part, ``h_G ⊙ p^G_u`` and ``q^G_i``, for retrieval (their inner product is the GMF
        term of the logit). Ranking uses the full network (``score``).
    weights_ : dict of str to ndarray of float32
        The network's parameters by their torch names; :meth:`score` evaluates the network from
        them with NumPy (:func:`neumf_scores`), so a trained model scores without torch.

    Notes
    -----
    The loss is ``-\sum y \ln σ(ŷ) + (1-y) \ln(1-σ(ŷ))`` over every observed pair (``y=1``) and
    ``n_negatives`` uniformly drawn unobserved items per pair (``y=0``). NCF is not an inner-product
    model: :meth:`score` runs the network blockwise over all items.
    """

    name = "ncf"
    tags: ClassVar[ModelTags] = ModelTags(
        validation="early_stopping",
        embeddings=True,
        fold_in=True,
        progress=True,
        fit_requires=("torch",),
        distributed=True,
    )
    #: fitted users are scored by the network, not by the GMF inner product
    inner_product_scores: ClassVar[bool] = False

    def __init__(
        self,
        *,
        embedding_dim: int = 32,
        layers: tuple[int, ...] | list[int] = (64, 32, 16),
        n_negatives: int = 4,
        lr: float = 0.001,
        train_batch_size: int = 4096,
        reg: float = 0.0,
        epochs: int = 20,
        patience: int = 3,
        eval_every: int = 1,
        eval_k: int = 20,
        seed: int = 0,
        checkpoint_dir: str | None = None,
        log_dir: str | None = None,
        progress: bool = True,
        device: str = "auto",
    ) -> None:
        self.embedding_dim = embedding_dim
        self.layers = layers
        self.n_negatives = n_negatives
        self.lr = lr
        self.train_batch_size = train_batch_size
        self.reg = reg
        self.epochs = epochs
        self.patience = patience
        self.eval_every = eval_every
        self.eval_k = eval_k
        self.seed = seed
        self.checkpoint_dir = checkpoint_dir
        self.log_dir = log_dir
        self.progress = progress
        self.device = device

    def _validate_params(self) -> None:
        check_device(self.device)
        check_params(self, {**COMMON_CHECKS, "n_negatives": (int, 0, "a positive integer")})
        layers = self.layers
        if (
            not isinstance(layers, list | tuple)
            or not layers
            or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 2 for w in layers)
        ):
            raise ParameterError.invalid("layers", "a non-empty list of integers >= 2", layers)

    def _network(self, n_users: int, n_items: int) -> NeuMFNet:
        from gemrec.models._ncf_torch import NeuMFNet

        return NeuMFNet(n_users, n_items, self.embedding_dim, list(self.layers))

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        import torch

        binary = interactions.binary()
        n_users, n_items = binary.shape
        sampler = BPRSampler(binary)
        rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(binary.indptr))
        cols = binary.indices.astype(np.int64)
        device = resolve_device(self.device)
        torch.manual_seed(self.seed)  # drawn on the CPU, then moved: the same on every device
        net = self._network(n_users, n_items).to(device)
        optimizer = torch.optim.Adam(net.parameters(), lr=float(self.lr))
        reg = float(self.reg)
        neg_per = int(self.n_negatives)

        def draw_epoch(r: np.random.Generator) -> list[tuple[Tensor, ...]]:
            users = np.concatenate([rows, np.repeat(rows, neg_per)])
            negs = sample_negatives(users[len(rows) :], sampler.keys, n_items, r)
            items = np.concatenate([cols, negs])
            labels = np.zeros(len(users), dtype=np.float32)
            labels[: len(rows)] = 1.0
            order = r.permutation(len(users))
            arrays = (users[order], items[order], labels[order])
            return tensor_minibatches(arrays, self.train_batch_size, device)

        def batch_loss(batch: tuple[Tensor, ...]) -> Tensor:
            users, items, labels = batch
            logits = net(users, items)
            loss = torch.nn.functional.binary_cross_entropy_with_logits(logits, labels)
            if reg > 0:
                l2 = (
                    net.user_gmf[users].pow(2).sum()
                    + net.item_gmf[items].pow(2).sum()
                    + net.user_mlp[users].pow(2).sum()
                    + net.item_mlp[items].pow(2).sum()
                )
                loss = loss + reg * 0.5 * l2 / len(users)
            return loss

        def export() -> None:
            weights = net.state_dict().items()
            self._set_weights({k: v.detach().cpu().numpy().copy() for k, v in weights})

        fit_embeddings(
            self,
            interactions,
            validation(valid, self.eval_k),
            module=net,
            optimizer=optimizer,
            draw_epoch=draw_epoch,
            batch_loss=batch_loss,
            export=export,
        )

    def _set_weights(self, weights: dict[str, np.ndarray]) -> None:
        self.weights_ = {k: np.asarray(v, dtype=np.float32) for k, v in weights.items()}
        h = self.weights_["out.weight"][0, : self.embedding_dim]
        self.user_embeddings_ = np.ascontiguousarray(self.weights_["user_gmf"] * h)
        self.item_embeddings_ = self.weights_["item_gmf"]

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        return neumf_scores(self.weights_, np.asarray(users, dtype=np.int64))

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Fold-in through the GMF embeddings only (the MLP needs a learned user vector)."""
        return super().score_new(user_items)

    def _get_state(self) -> State:
        state: State = {f"net.{k}": v for k, v in self.weights_.items()}
        state.update(super()._get_state())
        return state

    def _set_state(self, state: State) -> None:
        self._set_weights({k[4:]: v for k, v in state.items() if k.startswith("net.")})
