"""The torch module of :class:`~gemrec.models.mf.BPRMF` (imported only to train)."""

from __future__ import annotations

import torch
from torch import nn

__all__ = ["MFNet"]


class MFNet(nn.Module):
    """User and item embedding tables, ``N(0, std^2)`` initialised; ``ŷ_{ui} = p_u^T q_i``."""

    def __init__(self, n_users: int, n_items: int, embedding_dim: int, std: float) -> None:
        super().__init__()
        self.users = nn.Parameter(torch.randn(n_users, embedding_dim) * std)
        self.items = nn.Parameter(torch.randn(n_items, embedding_dim) * std)
