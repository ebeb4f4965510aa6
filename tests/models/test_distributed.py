"""Data-parallel training: N workers train the model of one, resume exactly, fail loudly.

The multi-process tests start real workers (gloo, one thread each, two processes) on a tiny seeded
graph; the comparisons are against the same fit in this process.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from gemrec.cli import main
from gemrec.models._distributed import World, shard
from tests.models import _distributed_worker as worker

ROOT = Path(__file__).resolve().parents[2]


def _env(**extra: str) -> dict[str, str]:
    env = dict(os.environ)
    path = [str(ROOT / "src"), str(ROOT)]
    env["PYTHONPATH"] = os.pathsep.join([*path, env.get("PYTHONPATH", "")])
    env.update(OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", **extra)
    return env


def _torchrun(nproc: int, *args: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
    cmd += [f"--nproc-per-node={nproc}", *args]
    return subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=timeout)


# --------------------------------------------------------------------------- shares of a batch
def test_shards_cover_the_batch_once_with_weights_summing_to_one() -> None:
    batch = (np.arange(11), np.arange(11) * 10)
    for size in (1, 2, 3, 4):
        parts = [shard(batch, World(rank=r, size=size)) for r in range(size)]
        np.testing.assert_array_equal(np.concatenate([p[0][0] for p in parts]), batch[0])
        np.testing.assert_array_equal(np.concatenate([p[0][1] for p in parts]), batch[1])
        assert sum(w for _, w in parts) == pytest.approx(1.0)


def test_an_empty_share_is_a_zero_weight_stand_in() -> None:
    batch = (np.array([7]), np.array([8]))
    (own, w0), (stand_in, w1) = (shard(batch, World(rank=r, size=2)) for r in (0, 1))
    assert w0 == 0.0 and len(stand_in[0]) == 1  # rank 0's share [0, 0) is empty
    assert w1 == 1.0 and stand_in[0][0] == 7
    assert len(own[0]) == 1


# --------------------------------------------------------------------------- two workers
@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("two_workers")
    proc = _torchrun(2, str(Path(worker.__file__)), str(out))
    assert proc.returncode == 0, proc.stderr[-4000:]
    return out


@pytest.fixture(autouse=True)
def _one_thread():  # type: ignore[no-untyped-def]
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


@pytest.mark.parametrize("name", sorted(worker.RUNS))
def test_two_workers_train_the_model_of_one(two_workers: Path, name: str) -> None:
    users, items, recall = worker.fit(name)
    got = np.load(two_workers / f"{name}.npz")
    scale = max(np.abs(users).max(), np.abs(items).max())
    np.testing.assert_allclose(got["users"], users, rtol=1e-4, atol=1e-5 * scale)
    np.testing.assert_allclose(got["items"], items, rtol=1e-4, atol=1e-5 * scale)
    assert float(got["recall"]) == pytest.approx(recall, abs=1e-12)
    assert recall > 0.2  # the planted communities were learned, not just copied


def test_row_partitioned_propagation_takes_the_replicated_step() -> None:
    """In one process the block is the whole graph: the same embeddings as the default path;
    two workers' row blocks are compared with this run above."""
    users, items, recall = worker.fit("lightgcn")
    got_users, got_items, got_recall = worker.fit("lightgcn-rows")
    np.testing.assert_allclose(got_users, users, rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_items, items, rtol=1e-5, atol=1e-6)
    assert got_recall == pytest.approx(recall)


def test_row_partition_is_refused_in_cluster_mode() -> None:
    from gemrec.errors import ParameterError

    with pytest.raises(ParameterError, match="partition='rows' applies to faithful steps"):
        worker.fit("lightgcn-rows", mode="cluster")


def test_two_workers_resume_exactly(two_workers: Path) -> None:
    whole = np.load(two_workers / "lightgcn.npz")
    resumed = np.load(two_workers / "lightgcn_resumed.npz")
    np.testing.assert_array_equal(resumed["users"], whole["users"])
    np.testing.assert_array_equal(resumed["items"], whole["items"])


# --------------------------------------------------------------------------- the command line
@pytest.fixture(scope="module")
def dataset(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("dist_ds")
    coo = worker.planted()[0].matrix.tocoo()
    rows = [
        f"u{u},i{i},purchase,{t}" for t, (u, i) in enumerate(zip(coo.row, coo.col, strict=True))
    ]
    src = root / "events.csv"
    src.write_text("user_id,item_id,event_type,timestamp\n" + "\n".join(rows) + "\n")
    out = root / "ds"
    args = ["import", str(src), "--format", "events", "-o", str(out), "--quiet"]
    assert main([*args, "--split", "random", "--valid-fraction", "0.1", "--seed", "0"]) == 0
    return out


CLI_SETTINGS = [
    *("--set", "epochs=4", "--set", "embedding_dim=8", "--set", "n_layers=2"),
    *("--set", "train_batch_size=64", "--set", "eval_every=2", "--set", "seed=0"),
]


def test_cli_nproc_trains_with_early_stopping_and_rank_0_alone_saves(
    dataset: Path, tmp_path: Path
) -> None:
    one, two = tmp_path / "one", tmp_path / "two"
    assert main(["train", str(dataset), "--model", "lightgcn", *CLI_SETTINGS, "-o", str(one)]) == 0
    cmd = [sys.executable, "-m", "gemrec", "train", str(dataset), "--model", "lightgcn"]
    cmd += [*CLI_SETTINGS, "-o", str(two), "--nproc", "2", "--quiet"]
    proc = subprocess.run(cmd, env=_env(), capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-4000:]
    assert proc.stdout.count("trained lightgcn") == 1 and "with 2 workers on cpu" in proc.stdout

    from gemrec.models.base import Recommender

    a, b = Recommender.load(one), Recommender.load(two)
    np.testing.assert_allclose(b.item_embeddings_, a.item_embeddings_, rtol=1e-3, atol=1e-5)
    import json

    ha = json.loads((one / "training.json").read_text())["early_stopping"]
    hb = json.loads((two / "training.json").read_text())["early_stopping"]
    assert ha["best_epoch"] == hb["best_epoch"] and hb["refit"]
    recalls = [[h.get("valid_recall@20") for h in x["history"]] for x in (ha, hb)]
    assert recalls[0] == pytest.approx(recalls[1], abs=1e-9)


def test_cli_nproc_refuses_a_model_that_trains_in_one_process(
    dataset: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    code = main(["train", str(dataset), "--model", "itemknn", "--nproc", "2", "-o", str(tmp_path)])
    err = capsys.readouterr().err
    assert code == 2 and "trains in one process" in err and "lightgcn" in err


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def test_a_killed_worker_ends_the_run_with_a_clear_error(dataset: Path, tmp_path: Path) -> None:
    """Workers started by hand (no torchrun agent to stop the rest): rank 0 must fail, not hang."""
    port = str(_free_port())
    ckpt = tmp_path / "ckpt"
    cmd = [sys.executable, "-m", "gemrec", "train", str(dataset), "--model", "mf", "--quiet"]
    cmd += ["--set", "epochs=100000", "--set", "train_batch_size=8", "--set", "embedding_dim=4"]
    cmd += ["--dist-timeout", "60", "-o", str(tmp_path / "model")]
    cmd += ["--set", "patience=100000", "--set", f"checkpoint_dir={ckpt}"]
    procs = []
    for rank in (0, 1):
        env = _env(RANK=str(rank), LOCAL_RANK=str(rank), WORLD_SIZE="2", LOCAL_WORLD_SIZE="2")
        env.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=port)
        procs.append(
            subprocess.Popen(
                cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
            )
        )
    try:
        deadline = time.monotonic() + 120
        while not (ckpt / "checkpoint.json").is_file():  # an epoch has been trained together
            assert time.monotonic() < deadline, procs[0].communicate(timeout=5)
            assert procs[0].poll() is None, procs[0].communicate()
            time.sleep(0.2)
        procs[1].send_signal(signal.SIGKILL)
        killed = time.monotonic()
        _, err = procs[0].communicate(timeout=90)
        assert time.monotonic() - killed < 60  # well inside the timeout: no hang
        assert procs[0].returncode == 2, err
        last = err.strip().splitlines()[-1]
        assert last.startswith("gemrec train: error: distributed training failed"), err
        assert "another worker stopped" in last
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.communicate()


def test_a_finished_worker_exits_with_its_code_and_everything_it_wrote(tmp_path: Path) -> None:
    """Workers leave without interpreter teardown; what they printed and logged must still land."""
    log = tmp_path / "worker.log"
    code = (
        "import logging, sys\n"
        "from gemrec.models._distributed import exit_worker\n"
        f"logging.basicConfig(filename={str(log)!r}, level=logging.INFO)\n"
        "logging.getLogger('gemrec').info('saved the model')\n"
        "print('trained', end='')\n"
        "print('a warning', end='', file=sys.stderr)\n"
        "exit_worker(3)\n"
    )
    proc = subprocess.run(
        [sys.executable, "-c", code], env=_env(), capture_output=True, text=True, timeout=60
    )
    assert proc.returncode == 3
    assert proc.stdout == "trained" and proc.stderr == "a warning"
    assert "saved the model" in log.read_text()
