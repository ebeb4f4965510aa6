"""Neural Collaborative Filtering: NeuMF (He et al., WWW 2017), the ``ncf`` model."""

from __future__ import annotations

import itertools
from typing import Any, ClassVar

import numpy as np
import scipy.sparse as sp
import torch
from torch import Tensor, nn

from gemrec.data.interactions import Interactions
from gemrec.errors import ParameterError
from gemrec.eval.evaluate import validation
from gemrec.models.base import EmbeddingRecommender, State
from gemrec.models.training import (
    COMMON_CHECKS,
    BPRSampler,
    check_params,
    fit_embeddings,
    minibatches,
    sample_negatives,
)

__all__ = ["NeuMF", "NeuMFNet"]


class NeuMFNet(nn.Module):
    r"""GMF and MLP towers fused by a final linear layer.

    Parameters
    ----------
    n_users, n_items : int
    embedding_dim : int
        Size of the GMF embeddings.
    layers : sequence of int
        MLP widths; the MLP embeddings have size ``layers[0] // 2`` each.

    Notes
    -----
    .. math::
        φ^{GMF} = p^G_u \odot q^G_i, \quad
        φ^{MLP} = a_L(W_L(\dots a_1(W_1 [p^M_u; q^M_i] + b_1)\dots)), \quad
        ŷ_{ui} = h^\top [φ^{GMF}; φ^{MLP}] + b.
    """

    def __init__(self, n_users: int, n_items: int, embedding_dim: int, layers: list[int]) -> None:
        super().__init__()
        half = layers[0] // 2
        self.user_gmf = nn.Parameter(torch.randn(n_users, embedding_dim) * 0.01)
        self.item_gmf = nn.Parameter(torch.randn(n_items, embedding_dim) * 0.01)
        self.user_mlp = nn.Parameter(torch.randn(n_users, half) * 0.01)
        self.item_mlp = nn.Parameter(torch.randn(n_items, half) * 0.01)
        self.first = nn.Linear(2 * half, layers[1] if len(layers) > 1 else layers[0])
        widths = layers[1:] if len(layers) > 1 else layers[:1]
        self.hidden = nn.ModuleList(nn.Linear(a, b) for a, b in itertools.pairwise(widths))
        self.out = nn.Linear(embedding_dim + widths[-1], 1)

    def _tower(self, h: Tensor) -> Tensor:
        h = torch.relu(h)
        for layer in self.hidden:
            h = torch.relu(layer(h))
        return h

    def forward(self, users: Tensor, items: Tensor) -> Tensor:
        """Logits ``ŷ_{ui}`` of the pairs, shape (n,)."""
        gmf = self.user_gmf[users] * self.item_gmf[items]
        mlp = self._tower(self.first(torch.cat([self.user_mlp[users], self.item_mlp[items]], 1)))
        logits: Tensor = self.out(torch.cat([gmf, mlp], 1)).squeeze(1)
        return logits

    @torch.no_grad()
    def score_users(self, users: Tensor, max_cells: int = 1 << 22) -> Tensor:
        """Logits of every item for ``users``, shape (len(users), n_items).

        The first MLP layer is split into its user and item halves (``W_1 [p; q] = W_u p + W_i q``)
        so that it is computed once per user and once per item; the rest runs blockwise.
        """
        n_items = self.item_gmf.shape[0]
        half = self.user_mlp.shape[1]
        w_u, w_i = self.first.weight[:, :half], self.first.weight[:, half:]
        item_part = self.item_mlp @ w_i.T + self.first.bias  # (n_items, h1)
        user_part = self.user_mlp[users] @ w_u.T  # (n, h1)
        h_gmf = self.out.weight[0, : self.user_gmf.shape[1]]
        h_mlp = self.out.weight[0, self.user_gmf.shape[1] :]
        gmf = (self.user_gmf[users] * h_gmf) @ self.item_gmf.T + self.out.bias  # (n, n_items)
        step = max(1, max_cells // max(1, n_items * item_part.shape[1]))
        out = torch.empty(len(users), n_items)
        for s in range(0, len(users), step):
            h = self._tower(user_part[s : s + step, None, :] + item_part[None, :, :])
            out[s : s + step] = gmf[s : s + step] + h @ h_mlp
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
    epochs, patience, eval_every, eval_k, seed, checkpoint_dir, log_dir, progress
        As for :class:`~gemrec.models.lightgcn.LightGCN`.

    Attributes
    ----------
    user_embeddings_, item_embeddings_ : ndarray of float32
        The GMF part, ``h_G ⊙ p^G_u`` and ``q^G_i``, for retrieval (their inner product is the GMF
        term of the logit). Ranking uses the full network (``score``).

    Notes
    -----
    The loss is ``-\sum y \ln σ(ŷ) + (1-y) \ln(1-σ(ŷ))`` over every observed pair (``y=1``) and
    ``n_negatives`` uniformly drawn unobserved items per pair (``y=0``). NCF is not an inner-product
    model: :meth:`score` runs the network blockwise over all items.
    """

    name = "ncf"
    uses_validation: ClassVar[bool] = True

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

    def _validate_params(self) -> None:
        check_params(self, {**COMMON_CHECKS, "n_negatives": (int, 0, "a positive integer")})
        layers = self.layers
        if (
            not isinstance(layers, list | tuple)
            or not layers
            or not all(isinstance(w, int) and not isinstance(w, bool) and w >= 2 for w in layers)
        ):
            raise ParameterError.invalid("layers", "a non-empty list of integers >= 2", layers)

    def _network(self, n_users: int, n_items: int) -> NeuMFNet:
        return NeuMFNet(n_users, n_items, self.embedding_dim, list(self.layers))

    def _fit(self, interactions: Interactions, valid: Interactions | None) -> None:
        binary = interactions.binary()
        n_users, n_items = binary.shape
        sampler = BPRSampler(binary)
        rows = np.repeat(np.arange(n_users, dtype=np.int64), np.diff(binary.indptr))
        cols = binary.indices.astype(np.int64)
        torch.manual_seed(self.seed)
        self.net_ = net = self._network(n_users, n_items)
        optimizer = torch.optim.Adam(net.parameters(), lr=float(self.lr))
        reg = float(self.reg)
        neg_per = int(self.n_negatives)

        def draw_epoch(r: np.random.Generator) -> list[tuple[np.ndarray, ...]]:
            users = np.concatenate([rows, np.repeat(rows, neg_per)])
            negs = sample_negatives(users[len(rows) :], sampler.keys, n_items, r)
            items = np.concatenate([cols, negs])
            labels = np.zeros(len(users), dtype=np.float32)
            labels[: len(rows)] = 1.0
            order = r.permutation(len(users))
            return minibatches((users[order], items[order], labels[order]), self.train_batch_size)

        def batch_loss(batch: tuple[np.ndarray, ...]) -> Tensor:
            users, items, labels = (torch.from_numpy(a) for a in batch)
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

        fit_embeddings(
            self,
            interactions,
            validation(valid, self.eval_k),
            module=net,
            optimizer=optimizer,
            draw_epoch=draw_epoch,
            batch_loss=batch_loss,
            export=self._export,
        )

    def _export(self) -> None:
        net = self.net_
        with torch.no_grad():
            h = net.out.weight[0, : self.embedding_dim]
            self.user_embeddings_ = (net.user_gmf * h).numpy().astype(np.float32, copy=True)
            self.item_embeddings_ = net.item_gmf.detach().numpy().astype(np.float32, copy=True)

    def _score_block(self, users: np.ndarray) -> np.ndarray:
        out = self.net_.score_users(torch.from_numpy(np.asarray(users, dtype=np.int64)))
        return out.numpy()

    def score_new(self, user_items: sp.csr_matrix) -> np.ndarray:
        """Fold-in through the GMF embeddings only (the MLP needs a learned user vector)."""
        return super().score_new(user_items)

    def _get_state(self) -> State:
        state: dict[str, Any] = {
            f"net.{k}": v.detach().numpy() for k, v in self.net_.state_dict().items()
        }
        state.update(super()._get_state())
        return state

    def _set_state(self, state: State) -> None:
        super()._set_state(state)
        n_users, n_items = self.interactions_.shape
        self.net_ = self._network(int(n_users), int(n_items))
        self.net_.load_state_dict(
            {
                k[4:]: torch.from_numpy(np.asarray(v))
                for k, v in state.items()
                if k.startswith("net.")
            }
        )
