"""The ``device`` hyperparameter: checked without torch, run-only, the same model on any device."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from gemrec.errors import ParameterError
from gemrec.models import get_model_class
from gemrec.models._device import check_device, resolve_device, tensor_minibatches
from gemrec.models._lightgcn_torch import LightGCNNet, TrainingGraph, bpr_loss
from gemrec.models.training import BPRSampler
from tests.models._torch_data import planted_blocks

TORCH_MODELS = ["lightgcn", "mf", "ncf", "item2vec"]
SMALL = {
    "lightgcn": {"epochs": 2, "embedding_dim": 8, "train_batch_size": 64},
    "mf": {"epochs": 2, "embedding_dim": 8, "train_batch_size": 64},
    "ncf": {"epochs": 1, "embedding_dim": 8, "train_batch_size": 256},
    "item2vec": {"epochs": 1, "embedding_dim": 8, "pairs_per_batch": 256},
}
no_gpu = pytest.mark.skipif(torch.cuda.is_available(), reason="this machine has a GPU")


@pytest.mark.parametrize("value", ["auto", "cpu", "cuda", "cuda:0", "cuda:12"])
def test_device_values_accepted(value: str) -> None:
    check_device(value)


@pytest.mark.parametrize("value", ["gpu", "CUDA", "cuda:", "cuda:x", "mps", None, 0])
def test_bad_device_values_name_the_parameter(value: object) -> None:
    with pytest.raises(ParameterError, match="'device'"):
        check_device(value)


@pytest.mark.parametrize("name", TORCH_MODELS)
def test_every_torch_model_declares_and_checks_its_device(name: str) -> None:
    klass = get_model_class(name)
    assert klass.tags.distributed and klass().device == "auto"  # type: ignore[attr-defined]
    train, _ = planted_blocks()
    with pytest.raises(ParameterError, match="'device'"):
        klass(device="gpu").fit(train)  # type: ignore[call-arg]


@no_gpu
def test_cuda_without_a_gpu_is_a_clear_error() -> None:
    assert resolve_device("auto") == torch.device("cpu")
    with pytest.raises(ParameterError, match=r"no CUDA GPU.*device='cpu'"):
        resolve_device("cuda")


@no_gpu
@pytest.mark.parametrize("name", TORCH_MODELS)
def test_device_cpu_equals_auto_on_a_cpu_machine(name: str) -> None:
    train, _ = planted_blocks()
    fits = [
        get_model_class(name)(**SMALL[name], seed=0, progress=False, device=d).fit(train)  # type: ignore[call-arg]
        for d in ("cpu", "auto")
    ]
    np.testing.assert_array_equal(fits[0].item_embeddings_, fits[1].item_embeddings_)
    np.testing.assert_array_equal(fits[0].user_embeddings_, fits[1].user_embeddings_)


def test_device_is_run_only_a_checkpoint_resumes_under_another_value(tmp_path) -> None:  # type: ignore[no-untyped-def]
    train, _ = planted_blocks()
    params = {**SMALL["mf"], "seed": 0, "progress": False, "checkpoint_dir": str(tmp_path)}
    mf = get_model_class("mf")
    mf(**{**params, "epochs": 1, "device": "cpu"}).fit(train)  # type: ignore[arg-type]
    resumed = mf(**{**params, "device": "auto"}).fit(train)  # type: ignore[arg-type]
    whole = mf(**{**params, "checkpoint_dir": None}).fit(train)  # type: ignore[arg-type]
    np.testing.assert_array_equal(resumed.item_embeddings_, whole.item_embeddings_)


def test_tensor_minibatches_are_consecutive_views_on_the_device() -> None:
    a, b = np.arange(10, dtype=np.int64), np.arange(10, dtype=np.int64) * 2
    batches = tensor_minibatches([a, b], 4, torch.device("cpu"))
    assert [len(x[0]) for x in batches] == [4, 4, 2]
    np.testing.assert_array_equal(torch.cat([x[1] for x in batches]).numpy(), b)


def test_lightgcn_step_without_the_host_row_cut_equals_the_cpu_step() -> None:
    """The path a GPU takes (full last layer, no scipy row cut) gives the CPU's loss and grad."""
    train, _ = planted_blocks(n_users=200, n_items=120)
    sampler = BPRSampler(train.binary())
    batch = sampler.sample(16, np.random.default_rng(0))  # under a quarter of the nodes: cut
    assert len(np.unique(np.concatenate([batch[0], batch[1] + 200, batch[2] + 200]))) * 4 < 320
    grads, losses = [], []
    for cut in (True, False):
        tg = TrainingGraph.build(train.binary(), "cpu", cut_last_layer=cut)
        net = LightGCNNet(tg.adj.shape[0], 6, n_layers=3)
        with torch.no_grad():
            gen = torch.Generator().manual_seed(1)
            net.embedding.copy_(torch.randn(tg.adj.shape[0], 6, generator=gen))
        loss = bpr_loss(net, tg, *(torch.from_numpy(x) for x in batch), reg=1e-3)
        loss.backward()
        losses.append(float(loss.detach()))
        grads.append(net.embedding.grad.numpy().copy())  # type: ignore[union-attr]
    assert losses[0] == pytest.approx(losses[1], rel=1e-6)
    np.testing.assert_allclose(grads[0], grads[1], rtol=1e-5, atol=1e-7)
    assert np.abs(grads[0]).sum() > 0
