"""The torch network of :class:`~gemrec.models.ncf.NeuMF` (imported only to train)."""

from __future__ import annotations

import itertools

import torch
from torch import Tensor, nn

__all__ = ["NeuMFNet"]


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
