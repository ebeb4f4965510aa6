"""The EGES embedding module and the skip-gram loss (torch; imported only to train item2vec)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from torch import Tensor, nn

__all__ = ["EGESEmbedding", "skipgram_loss"]


class EGESEmbedding(nn.Module):
    r"""Item vectors fused from an item's own embedding and its side-information embeddings.

    Parameters
    ----------
    n_items : int
    embedding_dim : int
        ``d``.
    field_sizes : sequence of int
        Vocabulary size of each side-information field (none: plain item embeddings).

    Notes
    -----
    Item ``v`` with side values ``s_v^1..s_v^n`` (``s_v^0 = v``) has the vector

    .. math:: H_v = \sum_{j=0}^{n} \frac{e^{a_v^j}}{\sum_{k} e^{a_v^k}} W^j_{s_v^j}

    where ``W^0`` is ``items``, ``W^j`` is ``fields[j - 1]`` (a multi-valued field is the mean of
    its values' rows) and ``a_v`` is row ``v`` of ``attention``; fields the item lacks are left
    out of the softmax. An item marked ``cold`` is represented without ``W^0`` and with the global
    logits ``g`` (``cold_logits``) in place of ``a_v``: the vector a new item gets from its side
    information alone. Every table is an ``nn.Embedding(sparse=True)`` (``cold_logits`` is one row),
    so a step touches only the rows of its batch (``torch.optim.SparseAdam``).
    """

    def __init__(self, n_items: int, embedding_dim: int, field_sizes: Sequence[int] = ()) -> None:
        super().__init__()
        n_fields = len(field_sizes)
        self.embedding_dim = embedding_dim
        self.items = nn.Embedding(n_items, embedding_dim, sparse=True)
        self.fields = nn.ModuleList(
            nn.Embedding(size + 1, embedding_dim, sparse=True, padding_idx=size)
            for size in field_sizes
        )
        self.attention = nn.Embedding(n_items, 1 + n_fields, sparse=True) if n_fields else None
        self.cold_logits = nn.Embedding(1, n_fields, sparse=True) if n_fields else None

    def reset_parameters(self, generator: torch.Generator) -> None:
        """Embeddings uniform in ``±0.5 / d`` (word2vec's init), attention logits zero."""
        scale = 0.5 / self.embedding_dim
        with torch.no_grad():
            self.items.weight.uniform_(-scale, scale, generator=generator)
            for e in self.fields:
                assert isinstance(e, nn.Embedding)
                e.weight.uniform_(-scale, scale, generator=generator)
                e.weight[-1].zero_()
            if self.attention is not None and self.cold_logits is not None:
                self.attention.weight.zero_()
                self.cold_logits.weight.zero_()

    def forward(
        self,
        items: Tensor,
        side_idx: Sequence[Tensor] = (),
        side_weights: Sequence[Tensor] = (),
        has: Tensor | None = None,
        cold: Tensor | None = None,
    ) -> Tensor:
        """Fused vectors ``H`` of a batch of items.

        Parameters
        ----------
        items : Tensor of int64, shape (B,)
        side_idx, side_weights : sequences of Tensor, one (B, m_j) pair per field
            The items' codes (padding = the field size) and mean-pooling weights.
        has : Tensor of bool, shape (B, n_fields)
            Whether each item has a value in each field.
        cold : Tensor of bool, shape (B,), optional
            Items to represent by side information alone (each must have a field).

        Returns
        -------
        Tensor of float32, shape (B, d)
        """
        own: Tensor = self.items(items)
        if self.attention is None or self.cold_logits is None:
            return own
        assert has is not None
        parts = [own]
        for e, i, w in zip(self.fields, side_idx, side_weights, strict=True):
            parts.append((e(i) * w.unsqueeze(-1)).sum(dim=1))
        stack = torch.stack(parts, dim=1)  # (B, 1 + F, d)
        logits = self.attention(items)
        if cold is not None:
            g = self.cold_logits(items.new_zeros(len(items)))
            no_own = torch.full((len(items), 1), -torch.inf, device=items.device)
            logits = torch.where(cold.unsqueeze(1), torch.cat([no_own, g], dim=1), logits)
        missing = torch.cat([has.new_zeros(len(items), 1), ~has], dim=1)
        logits = logits.masked_fill(missing, -torch.inf)
        out: Tensor = (torch.softmax(logits, dim=1).unsqueeze(-1) * stack).sum(dim=1)
        return out

    def numpy_weights(self) -> tuple[np.ndarray, np.ndarray | None, list[np.ndarray], np.ndarray]:
        """Copies of ``W^0``, the logits ``a``, the field tables (padding row dropped) and ``g``.

        Returns
        -------
        own : ndarray of float32, shape (n_items, d)
        logits : ndarray of float32, shape (n_items, 1 + n_fields), or None without fields
        tables : list of ndarray of float32, one (size_j, d) array per field
        cold_logits : ndarray of float32, shape (n_fields,)
        """
        with torch.no_grad():
            own = self.items.weight.detach().cpu().numpy().astype(np.float32, copy=True)
            tables = [
                e.weight.detach().cpu().numpy()[:-1].astype(np.float32, copy=True)  # type: ignore[operator]
                for e in self.fields
            ]
            if self.attention is None or self.cold_logits is None:
                return own, None, tables, np.zeros(0, np.float32)
            logits = self.attention.weight.detach().cpu().numpy().astype(np.float32, copy=True)
            g = self.cold_logits.weight.detach().cpu().numpy()[0].astype(np.float32, copy=True)
        return own, logits, tables, g


def skipgram_loss(targets: Tensor, contexts: Tensor, negatives: Tensor) -> Tensor:
    r"""Negative-sampling loss of a batch, averaged over its pairs.

    Parameters
    ----------
    targets, contexts : Tensor, shape (B, d)
        ``H_v`` and ``H_u`` of the batch's (target, context) pairs.
    negatives : Tensor, shape (B, k, d)
        ``k`` noise items per pair (``k`` may be 0).

    Returns
    -------
    Tensor, scalar
        :math:`-\frac{1}{B}\sum \big[\log\sigma(H_v^\top H_u)
        + \sum_{u'} \log\sigma(-H_v^\top H_{u'})\big]`
    """
    loss = -nn.functional.logsigmoid((targets * contexts).sum(dim=1)).mean()
    if negatives.shape[1]:
        scores = torch.bmm(negatives, targets.unsqueeze(-1)).squeeze(-1)
        loss = loss - nn.functional.logsigmoid(-scores).sum(dim=1).mean()
    return loss
