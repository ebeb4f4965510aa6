"""LightGCN: propagation against dense references, exact batch gradients, resume, planted data."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from gemrec.data.holdout import union
from gemrec.data.interactions import Interactions
from gemrec.errors import GemrecError, ParameterError
from gemrec.eval import evaluate
from gemrec.graph.adjacency import bipartite_adjacency
from gemrec.models._lightgcn_torch import (
    ClusterBatches,
    LayerHistory,
    LightGCNNet,
    TrainingGraph,
    bpr_loss,
    cluster_bpr_loss,
    to_torch_csr,
)
from gemrec.models.lightgcn import LightGCN, locality_order
from gemrec.models.training import BPRSampler
from tests.models._torch_data import planted_blocks, random_graph, record_adam_learning_rates

FAST = {"epochs": 5, "embedding_dim": 16, "seed": 0, "progress": False}


def _dense_adjacency(r: np.ndarray) -> np.ndarray:
    nu, ni = r.shape
    a = np.zeros((nu + ni, nu + ni))
    a[:nu, nu:] = r
    a[nu:, :nu] = r.T
    d = a.sum(axis=1)
    inv = np.where(d > 0, 1.0 / np.sqrt(np.where(d > 0, d, 1.0)), 0.0)
    return inv[:, None] * a * inv[None, :]


def _propagated(a: np.ndarray, e0: np.ndarray) -> np.ndarray:
    """LightGCN's final embeddings over the dense normalised adjacency ``a``: 3 layers, mean."""
    return (e0 + a @ e0 + a @ a @ e0 + a @ a @ a @ e0) / 4


def test_propagation_equals_dense_reference_and_pyg_lightgcn() -> None:
    inter = random_graph()
    nu, ni = inter.matrix.shape
    adj_sp = bipartite_adjacency(inter.binary())
    net = LightGCNNet(nu + ni, 5, n_layers=3)
    torch.manual_seed(0)
    torch.nn.init.normal_(net.embedding, std=0.3)
    e0 = net.embedding.detach().double().numpy()
    a = _dense_adjacency(inter.binary().toarray().astype(np.float64))
    ref = _propagated(a, e0)
    with torch.no_grad():
        got = net.propagate_all(to_torch_csr(adj_sp)).double().numpy()
    np.testing.assert_allclose(got, ref, rtol=1e-5, atol=1e-6)

    # PyG's own model (which normalises per call) agrees with the precomputed adjacency
    from torch_geometric.nn.models import LightGCN as PyGLightGCN

    coo = inter.binary().tocoo()
    src = np.concatenate([coo.row, coo.col + nu])
    dst = np.concatenate([coo.col + nu, coo.row])
    edge_index = torch.from_numpy(np.stack([src, dst]).astype(np.int64))
    pyg = PyGLightGCN(nu + ni, 5, num_layers=3)
    with torch.no_grad():
        pyg.embedding.weight.copy_(net.embedding)
        np.testing.assert_allclose(
            pyg.get_embedding(edge_index).double().numpy(), ref, rtol=1e-5, atol=1e-6
        )


def test_batch_forward_and_gradient_equal_full_propagation() -> None:
    inter = random_graph(n_users=11, n_items=13, density=0.3)
    nu, ni = inter.matrix.shape
    adj_sp = bipartite_adjacency(inter.binary())
    adj = to_torch_csr(adj_sp)
    nodes = np.array([0, 3, 4, nu + 1, nu + 5, nu + 12])
    weights = torch.randn(len(nodes), 4, generator=torch.Generator().manual_seed(3))
    grads = []
    outs = []
    for mode in ("batch", "batch-full-last-layer", "full"):
        net = LightGCNNet(nu + ni, 4, n_layers=3)
        with torch.no_grad():
            net.embedding.copy_(torch.randn(nu + ni, 4, generator=torch.Generator().manual_seed(7)))
        if mode == "batch":
            rows = adj_sp[nodes]
            out = net(
                torch.from_numpy(nodes), adj, to_torch_csr(rows), to_torch_csr(rows.T.tocsr())
            )
        elif mode == "batch-full-last-layer":
            out = net(torch.from_numpy(nodes), adj)
        else:
            out = net.propagate_all(adj)[torch.from_numpy(nodes)]
        (out * weights).pow(2).sum().backward()
        outs.append(out.detach().numpy())
        grads.append(net.embedding.grad.numpy().copy())
    for k in (0, 1):
        np.testing.assert_allclose(outs[k], outs[2], rtol=1e-5, atol=1e-6)
        np.testing.assert_allclose(grads[k], grads[2], rtol=1e-4, atol=1e-6)
    assert np.abs(grads[0]).sum() > 0


@pytest.mark.parametrize("n_layers", [0, 1, 2, 3])
@pytest.mark.parametrize("last_layer_rows", [True, False])
def test_fused_batch_propagation_gradient_equals_autograd_reference(
    n_layers: int, last_layer_rows: bool
) -> None:
    """forward_with_ego's written-out backward against plain autograd on dense matrices."""
    inter = random_graph(n_users=9, n_items=12, density=0.35)
    nu, ni = inter.matrix.shape
    adj_sp = bipartite_adjacency(inter.binary())
    nodes = np.array([1, 2, 7, nu, nu + 4, nu + 11])
    start = torch.randn(nu + ni, 3, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    w_final = torch.randn(len(nodes), 3, generator=torch.Generator().manual_seed(6))
    w_ego = torch.randn(len(nodes), 3, generator=torch.Generator().manual_seed(8))

    net = LightGCNNet(nu + ni, 3, n_layers=n_layers)
    with torch.no_grad():
        net.embedding.copy_(start.float())
    rows = adj_sp[nodes]
    extra = (to_torch_csr(rows), to_torch_csr(rows.T.tocsr())) if last_layer_rows else ()
    final, ego = net.forward_with_ego(torch.from_numpy(nodes), to_torch_csr(adj_sp), *extra)
    ((final * w_final).pow(2).sum() + (ego * w_ego).sum()).backward()

    e = start.clone().requires_grad_(True)
    a = torch.from_numpy(_dense_adjacency(inter.binary().toarray().astype(np.float64)))
    layers, x = [e], e
    for _ in range(n_layers):
        x = a @ x
        layers.append(x)
    ref = torch.stack(layers).mean(0)[nodes]
    ((ref * w_final.double()).pow(2).sum() + (e[nodes] * w_ego.double()).sum()).backward()
    np.testing.assert_allclose(final.detach().numpy(), ref.detach().numpy(), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(ego.detach().numpy(), start[nodes].numpy(), rtol=1e-6)
    np.testing.assert_allclose(net.embedding.grad.numpy(), e.grad.numpy(), rtol=1e-4, atol=1e-6)


def test_locality_order_is_a_symmetric_permutation() -> None:
    inter = random_graph(n_users=30, n_items=40, density=0.1)
    adj = bipartite_adjacency(inter.binary())
    permuted, order = locality_order(adj)
    assert sorted(order.tolist()) == list(range(adj.shape[0]))
    np.testing.assert_array_equal(permuted.toarray(), adj.toarray()[np.ix_(order, order)])
    x = np.random.default_rng(0).standard_normal((adj.shape[0], 4)).astype(np.float32)
    np.testing.assert_allclose((permuted @ x[order]), (adj @ x)[order], rtol=1e-5, atol=1e-6)


def test_sampler_draws_positives_and_true_negatives() -> None:
    inter = random_graph(n_users=20, n_items=12, density=0.5)
    dense = inter.binary().toarray() > 0
    users, pos, neg = BPRSampler(inter.matrix).sample(5000, np.random.default_rng(0))
    assert dense[users, pos].all()
    assert not dense[users, neg].any()
    # negatives cover every non-interacted item of a user, roughly uniformly
    u0 = users == users[0]
    assert set(neg[u0]) == set(np.flatnonzero(~dense[users[0]]))


def test_learns_planted_communities() -> None:
    train, test = planted_blocks()
    model = LightGCN(**{**FAST, "epochs": 10, "init": "normal"}).fit(train)
    ids, _ = model.recommend(np.arange(train.n_users), k=5)
    same = (ids % 2) == (np.arange(train.n_users)[:, None] % 2)
    assert same.mean() > 0.95
    assert evaluate(model, test, ks=[5])["recall@5"] > 0.3  # random would be about 5/12


def test_svd_warm_start_is_already_a_good_filter() -> None:
    train, _ = planted_blocks()
    model = LightGCN(**{**FAST, "epochs": 0, "embedding_dim": 4}).fit(train)
    ids, _ = model.recommend(np.arange(train.n_users), k=5)
    assert ((ids % 2) == (np.arange(train.n_users)[:, None] % 2)).mean() > 0.95


def test_embeddings_are_numpy_and_scores_are_inner_products() -> None:
    train, _ = planted_blocks()
    model = LightGCN(**FAST).fit(train)
    assert isinstance(model.user_embeddings_, np.ndarray)
    assert model.user_embeddings_.shape == (train.n_users, 16)
    assert model.item_embeddings_.dtype == np.float32
    np.testing.assert_allclose(
        model.score([3]), model.user_embeddings_[[3]] @ model.item_embeddings_.T, rtol=1e-6
    )


def test_same_seed_same_model_other_seed_other_model() -> None:
    train, _ = planted_blocks()
    a = LightGCN(**{**FAST, "epochs": 2}).fit(train)
    b = LightGCN(**{**FAST, "epochs": 2}).fit(train)
    c = LightGCN(**{**FAST, "epochs": 2, "seed": 1}).fit(train)
    assert np.array_equal(a.user_embeddings_, b.user_embeddings_)
    assert not np.allclose(a.user_embeddings_, c.user_embeddings_)


@pytest.mark.parametrize("lr_decay", [1.0, 0.5])
def test_resume_after_checkpoint_continues_the_same_run(tmp_path, lr_decay: float) -> None:
    train, test = planted_blocks()
    # (a run always validates its last epoch, so chunks end on validation epochs: eval_every=1)
    params = {**FAST, "epochs": 4, "patience": 10, "eval_every": 1, "lr_decay": lr_decay}
    full = LightGCN(**params).fit(train, valid=test)
    ckpt = str(tmp_path / "ckpt")
    LightGCN(**{**params, "epochs": 2, "checkpoint_dir": ckpt}).fit(train, valid=test)
    meta = json.loads((tmp_path / "ckpt" / "checkpoint.json").read_text())
    assert meta["epoch"] == 2
    resumed = LightGCN(**{**params, "checkpoint_dir": ckpt}).fit(train, valid=test)
    assert [h["epoch"] for h in resumed.history_] == [1, 2, 3, 4]
    assert [h["loss"] for h in resumed.history_] == [h["loss"] for h in full.history_]
    assert resumed.best_epoch_ == full.best_epoch_
    assert np.array_equal(resumed.user_embeddings_, full.user_embeddings_)
    assert np.array_equal(resumed.item_embeddings_, full.item_embeddings_)


def test_lr_decay_sets_each_epochs_learning_rate(monkeypatch) -> None:
    seen = record_adam_learning_rates(monkeypatch)
    train, _ = planted_blocks()
    n = train.matrix.nnz
    params = {**FAST, "epochs": 3, "lr": 0.08, "lr_decay": 0.5, "train_batch_size": n}
    decayed = LightGCN(**params).fit(train)
    assert seen == pytest.approx([0.08, 0.04, 0.02])  # one step per epoch
    constant = LightGCN(**{**params, "lr_decay": 1.0}).fit(train)
    assert seen[3:] == pytest.approx([0.08, 0.08, 0.08])
    assert not np.allclose(decayed.user_embeddings_, constant.user_embeddings_)


def test_checkpoint_of_another_run_is_refused(tmp_path) -> None:
    train, _ = planted_blocks()
    LightGCN(**{**FAST, "epochs": 1, "checkpoint_dir": str(tmp_path)}).fit(train)
    with pytest.raises(GemrecError, match="another run"):
        LightGCN(**{**FAST, "epochs": 1, "lr": 0.5, "checkpoint_dir": str(tmp_path)}).fit(train)


def test_early_stopping_restores_best_epoch() -> None:
    train, test = planted_blocks()
    params = {**FAST, "epochs": 30, "lr": 0.05, "patience": 2, "eval_every": 1}
    model = LightGCN(**params).fit(train, valid=test)
    recalls = [h["valid_recall@20"] for h in model.history_]
    best = int(np.argmax(recalls))
    assert model.best_epoch_ == model.history_[best]["epoch"]
    got = evaluate(model, test, ks=[20])["recall@20"]
    assert got == pytest.approx(recalls[best])


def test_tensorboard_scalars_written(tmp_path) -> None:
    from tensorboard.backend.event_processing.event_accumulator import EventAccumulator

    train, test = planted_blocks()
    LightGCN(**{**FAST, "epochs": 3, "eval_every": 1, "log_dir": str(tmp_path)}).fit(
        train, valid=test
    )
    acc = EventAccumulator(str(tmp_path))
    acc.Reload()
    assert [e.step for e in acc.Scalars("train/loss")] == [1, 2, 3]
    assert len(acc.Scalars("valid/recall@20")) == 3
    assert len(acc.Scalars("valid/ndcg@20")) == 3


def test_save_load_round_trip(tmp_path) -> None:
    from gemrec.models.base import Recommender

    train, _ = planted_blocks()
    model = LightGCN(**FAST).fit(train)
    loaded = Recommender.load(model.save(tmp_path / "m"))
    assert isinstance(loaded, LightGCN)
    np.testing.assert_array_equal(loaded.recommend([0, 5], k=4)[0], model.recommend([0, 5], k=4)[0])


@pytest.mark.parametrize(
    ("name", "value"),
    [
        ("embedding_dim", 0),
        ("lr", -1.0),
        ("train_batch_size", 1.5),
        ("init", "zeros"),
        ("epochs", True),
        ("lr_decay", 0.0),
        ("lr_decay", 1.5),
        ("mode", "sampled"),
        ("parts_per_step", 0),
    ],
)
def test_bad_parameters_raise_naming_the_parameter(name: str, value: object) -> None:
    train, _ = planted_blocks()
    with pytest.raises(ParameterError, match=name):
        LightGCN(**{**FAST, name: value}).fit(train)


def test_edge_weights_change_the_graph_only_when_asked() -> None:
    inter = random_graph(n_users=12, n_items=10, density=0.4)  # weights 1..3
    plain = LightGCN(**{**FAST, "epochs": 0}).fit(inter)
    binary = LightGCN(**{**FAST, "epochs": 0}).fit(inter.with_matrix(inter.binary()))
    weighted = LightGCN(**{**FAST, "epochs": 0, "edge_weights": True}).fit(inter)
    np.testing.assert_array_equal(plain.user_embeddings_, binary.user_embeddings_)
    assert not np.allclose(weighted.user_embeddings_, plain.user_embeddings_)


def _cluster_epoch(inter, n_parts: int, parts_per_step: int, seed: int = 0):
    tg = TrainingGraph.build(inter.binary())
    sampler = BPRSampler(inter.binary())
    bounds = ClusterBatches.part_bounds(tg.adj_sp, n_parts)
    batches = ClusterBatches(tg, sampler, bounds, parts_per_step, np.random.default_rng(seed))
    return tg, bounds, batches


def _external(tg, nodes, users, pos, neg, n_users):
    ext = tg.order[nodes.numpy()]
    return ext[users.numpy()], ext[pos.numpy()] - n_users, ext[neg.numpy()] - n_users


@pytest.mark.parametrize("n_parts", [1, 5])
def test_cluster_step_with_a_current_history_is_the_faithful_step(n_parts: int) -> None:
    inter = random_graph(n_users=15, n_items=11, density=0.4)
    tg, _, batches = _cluster_epoch(inter, n_parts=n_parts, parts_per_step=2)
    net = LightGCNNet(inter.n_users + inter.n_items, 6, n_layers=3)
    torch.nn.init.normal_(net.embedding, std=0.3)
    history = LayerHistory(net, tg)
    history.refresh()
    before = [h.clone() for h in history.layers]
    users, pos, neg, nodes, inside = batches[0]
    loss = cluster_bpr_loss(net, history, users, pos, neg, nodes, inside, reg=1e-2)
    # the same triplets through the faithful loss: equal value, and the gradient equal on the
    # step's nodes' own paths (the terms through the other nodes are the history's constants)
    u, p, n = _external(tg, nodes, users, pos, neg, inter.n_users)
    ref = bpr_loss(net, tg, u, p, n, reg=1e-2)
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
    if n_parts == 1:  # every node in the step: the gradient is the exact one
        (grad,) = torch.autograd.grad(loss, net.embedding)
        (ref_grad,) = torch.autograd.grad(ref, net.embedding)
        np.testing.assert_allclose(grad.to_dense().numpy(), ref_grad.numpy(), rtol=1e-4, atol=1e-7)
    # written back: the step's layers are the full propagation's (the history was current)
    for h, b in zip(history.layers, before, strict=True):
        np.testing.assert_allclose(h.numpy(), b.numpy(), rtol=1e-5, atol=1e-6)


def test_cluster_step_gradient_reaches_outside_neighbours_through_the_first_hop() -> None:
    # one layer, every item in the group, half the users outside: the outside users enter the
    # step only through the first hop, so the gradient is the faithful one on every node
    inter = random_graph(n_users=14, n_items=9, density=0.4, seed=1)
    tg = TrainingGraph.build(inter.binary())
    net = LightGCNNet(inter.n_users + inter.n_items, 5, n_layers=1)
    torch.nn.init.normal_(net.embedding, std=0.3)
    history = LayerHistory(net, tg)
    history.refresh()
    internal = np.argsort(tg.order)  # external node id -> internal
    n_nodes = inter.n_users + inter.n_items
    inside = np.zeros(n_nodes, bool)
    inside[internal[inter.n_users :]] = True
    inside[internal[: inter.n_users : 2]] = True
    dense = inter.binary().toarray() > 0
    users_ext = np.arange(0, inter.n_users, 2)
    users_ext = users_ext[dense[users_ext].any(axis=1) & ~dense[users_ext].all(axis=1)]
    pos_ext = np.array([np.flatnonzero(dense[u])[0] for u in users_ext])
    neg_ext = np.array([np.flatnonzero(~dense[u])[0] for u in users_ext])
    loss = cluster_bpr_loss(
        net,
        history,
        torch.from_numpy(internal[users_ext]),
        torch.from_numpy(internal[inter.n_users + pos_ext]),
        torch.from_numpy(internal[inter.n_users + neg_ext]),
        torch.arange(n_nodes),
        torch.from_numpy(inside),
        reg=1e-2,
    )
    ref = bpr_loss(net, tg, users_ext, pos_ext, neg_ext, reg=1e-2)
    assert float(loss.detach()) == pytest.approx(float(ref.detach()), rel=1e-5)
    (grad,) = torch.autograd.grad(loss, net.embedding)
    (ref_grad,) = torch.autograd.grad(ref, net.embedding)
    outside_users = internal[1 : inter.n_users : 2]
    assert np.abs(ref_grad.numpy()[outside_users]).sum() > 0  # the paths this test is about
    np.testing.assert_allclose(grad.to_dense().numpy(), ref_grad.numpy(), rtol=1e-4, atol=1e-7)


def test_cluster_epoch_takes_every_edge_once_with_true_negatives() -> None:
    inter = random_graph(n_users=40, n_items=30, density=0.2, seed=3)
    dense = inter.binary().toarray() > 0
    tg, _, batches = _cluster_epoch(inter, n_parts=6, parts_per_step=2, seed=1)
    assert len(batches) == 3
    seen = []
    for users, pos, neg, nodes, _ in batches:
        u, p, n = _external(tg, nodes, users, pos, neg, 40)
        assert dense[u, p].all() and not dense[u, n].any()
        seen.extend(zip(u.tolist(), p.tolist(), strict=True))
    assert sorted(seen) == sorted(zip(*map(np.ndarray.tolist, np.nonzero(dense)), strict=True))


def test_cluster_mode_learns_planted_communities_and_auto_picks_by_size() -> None:
    train, test = planted_blocks()
    params = {**FAST, "epochs": 10, "init": "normal", "train_batch_size": 64}
    model = LightGCN(**params, mode="cluster", parts_per_step=2).fit(train)
    ids, _ = model.recommend(np.arange(train.n_users), k=5)
    assert ((ids % 2) == (np.arange(train.n_users)[:, None] % 2)).mean() > 0.95
    assert evaluate(model, test, ks=[5])["recall@5"] > 0.3
    assert LightGCN(mode="auto").training_mode(LightGCN.CLUSTER_ABOVE_EDGES) == "faithful"
    assert LightGCN(mode="auto").training_mode(LightGCN.CLUSTER_ABOVE_EDGES + 1) == "cluster"
    assert LightGCN(mode="faithful").training_mode(10**12) == "faithful"


def test_extended_propagates_the_trained_ego_embeddings_over_the_larger_graph() -> None:
    train, test = planted_blocks()
    full = union(train, test)
    model = LightGCN(**{**FAST, "epochs": 3}).fit(train)
    ego = model._ego_embeddings.astype(np.float64)
    nu = train.n_users
    # the ego table is what the fitted embeddings were propagated from
    fitted = _propagated(_dense_adjacency(train.binary().toarray().astype(np.float64)), ego)
    np.testing.assert_allclose(model.user_embeddings_, fitted[:nu], rtol=1e-4, atol=1e-5)

    bigger = model.extended(full)
    expected = _propagated(_dense_adjacency(full.binary().toarray().astype(np.float64)), ego)
    np.testing.assert_allclose(bigger.user_embeddings_, expected[:nu], rtol=1e-4, atol=1e-5)
    np.testing.assert_allclose(bigger.item_embeddings_, expected[nu:], rtol=1e-4, atol=1e-5)
    assert (bigger.interactions_ != full.matrix).nnz == 0
    assert bigger.get_params() == model.get_params()
    # the test items are now training items: excluded from the extended model's lists
    ids, _ = bigger.recommend(np.arange(nu), k=3)
    held = test.matrix.tocsr()
    assert not any(held[u, ids[u]].nnz for u in range(nu))
    # the original model is left as it was
    np.testing.assert_allclose(model.user_embeddings_, fitted[:nu], rtol=1e-4, atol=1e-5)


def test_extended_after_load_fits_anew_and_a_wrong_shape_is_refused(tmp_path) -> None:
    train, test = planted_blocks()
    full = union(train, test)
    model = LightGCN(**{**FAST, "epochs": 2}).fit(train)
    loaded = LightGCN.load(model.save(tmp_path / "m"))
    anew = loaded.extended(full)  # no ego table on disk: trained again on the full data
    again = LightGCN(**{**FAST, "epochs": 2}).fit(full)
    np.testing.assert_array_equal(anew.user_embeddings_, again.user_embeddings_)
    with pytest.raises(ParameterError, match="interactions"):
        model.extended(Interactions.from_arrays([0], [0], n_users=3, n_items=3))
