"""The EGES embedding module and the skip-gram loss against NumPy references."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from gemrec.models._side_info import SideCodes, fused_vectors, learn_fields, side_only_vectors
from gemrec.models._skipgram import EGESEmbedding, skipgram_loss


def _setup(seed: int = 0):
    table = pd.DataFrame(
        {
            "category": ["a", "b", "a", None, "c", "b", "a"],
            "tags": [["x"], ["x", "y"], None, ["y"], ["z"], [], ["x", "z"]],
        }
    )
    fields = learn_fields(table, None, n_buckets=2)
    codes = SideCodes.encode(fields, table)
    net = EGESEmbedding(len(table), 5, [f.size for f in fields])
    net.reset_parameters(torch.Generator().manual_seed(seed))
    with torch.no_grad():  # non-trivial attention logits
        assert net.attention is not None and net.cold_logits is not None
        net.attention.weight.normal_(generator=torch.Generator().manual_seed(seed + 1))
        net.cold_logits.weight.normal_(generator=torch.Generator().manual_seed(seed + 2))
    return net, codes


def _forward(net, codes, items, cold=None):
    t = torch.as_tensor(items, dtype=torch.int64)
    return net(
        t,
        [torch.from_numpy(i)[t] for i in codes.idx],
        [torch.from_numpy(w)[t] for w in codes.weights],
        torch.from_numpy(codes.has)[t],
        cold,
    )


def test_forward_equals_the_numpy_fusion_of_the_exported_weights():
    net, codes = _setup()
    items = np.array([0, 3, 5, 6, 1, 1])
    got = _forward(net, codes, items).detach().numpy()
    own, logits, tables, _ = net.numpy_weights()
    assert logits is not None
    want, _ = fused_vectors(own, logits, tables, codes)
    np.testing.assert_allclose(got, want[items], rtol=1e-5, atol=1e-7)


def test_cold_items_are_their_side_only_vectors():
    net, codes = _setup()
    items = np.array([0, 1, 4, 6])
    cold = torch.tensor([True, False, True, True])
    got = _forward(net, codes, items, cold).detach().numpy()
    own, logits, tables, g = net.numpy_weights()
    e = np.exp(g - g.max())
    side_only = side_only_vectors(tables, e / e.sum(), codes.rows(items))
    np.testing.assert_allclose(got[[0, 2, 3]], side_only[[0, 2, 3]], rtol=1e-5, atol=1e-7)
    assert logits is not None
    fused, _ = fused_vectors(own, logits, tables, codes)
    np.testing.assert_allclose(got[1], fused[1], rtol=1e-5, atol=1e-7)


def test_gradients_are_sparse_and_touch_only_the_batch_rows():
    net, codes = _setup()
    out = _forward(net, codes, np.array([2, 5]), torch.tensor([False, True]))
    out.sum().backward()
    for p in net.parameters():
        assert p.grad is not None and p.grad.is_sparse
    touched = net.items.weight.grad.coalesce().indices().ravel().tolist()
    assert sorted(touched) == [2, 5]
    opt = torch.optim.SparseAdam(list(net.parameters()), lr=0.1)
    before = net.items.weight.detach().clone()
    opt.step()
    changed = (net.items.weight.detach() != before).any(dim=1).nonzero().ravel().tolist()
    assert changed == [2]  # item 5 is cold: its own row has weight 0 in the fusion


def test_without_fields_the_vectors_are_the_item_embeddings():
    net = EGESEmbedding(4, 3)
    net.reset_parameters(torch.Generator().manual_seed(0))
    items = torch.tensor([3, 0])
    torch.testing.assert_close(net(items), net.items.weight[items])
    assert net.items.weight.abs().max() <= 0.5 / 3
    assert [p.shape for p in net.parameters()] == [torch.Size([4, 3])]


@pytest.mark.parametrize("k", [0, 3])
def test_skipgram_loss_equals_the_formula(k):
    rng = np.random.default_rng(k)
    h, c = rng.standard_normal((6, 4)), rng.standard_normal((6, 4))
    z = rng.standard_normal((6, k, 4))

    def log_sigmoid(x):
        return -np.log1p(np.exp(-x))

    want = -np.mean(
        log_sigmoid((h * c).sum(1)) + log_sigmoid(-np.einsum("bkd,bd->bk", z, h)).sum(1)
    )
    got = skipgram_loss(*(torch.from_numpy(a) for a in (h, c, z)))
    assert float(got) == pytest.approx(want, rel=1e-10)
