"""One short, prepared check of gemrec's torch training on a CUDA GPU; writes a JSON of results.

Run from the repository root; the gemrec package need not be installed (torch, torch_geometric,
numpy, scipy, pandas, pyarrow, numba, tqdm and threadpoolctl must be)::

    PYTHONPATH=src python benchmarks/gpu_check.py --gowalla DIR --out gpu_check.json

``DIR`` holds the LightGCN-format ``train.txt`` and ``test.txt`` of Gowalla (``../shared/data/
gowalla``). About 3 to 5 minutes on one H200 (most of it the CPU baseline epochs and the test
evaluation, both on the CPU); ``--epochs`` sets the timed GPU epochs.

Parts (each prints its progress, and its figures go to the JSON under its letter):

(a) **LightGCN on Gowalla on the GPU**: the faithful configuration of the paper (3 layers,
    d=64, batch 2048, Adam 0.001, normal init; an epoch = 810,128 BPR triplets = 396 steps)
    trained for ``--warmup`` + ``--epochs`` epochs through ``LightGCN.fit`` (the path ``gemrec
    train`` takes); the epoch time is the median of the epochs after the warm-up, sampling
    included, with the GPU's name. The same run's baseline is the CPU: ``--cpu-epochs`` epochs of
    the same configuration and seed, whose per-epoch losses must match the GPU's (same samples).
    Then gemrec's defaults (d=128, their batch and learning-rate schedule, spectral init) on the
    GPU, and test Recall@20 / NDCG@20 of both GPU runs.
(b) **CPU vs CUDA, fixed steps**: every torch model (lightgcn, mf, ncf, item2vec) trained for a
    few epochs on a small seeded graph with ``device=cpu`` and ``device=cuda``; the embeddings
    must agree (allclose) and Recall@20 must match.
(c) **Two data-parallel workers vs one**: the same small fits in two processes started by
    torchrun; with two GPUs on NCCL (``device=cuda``), else on the CPU with gloo (the JSON says
    that only one GPU exists). Embeddings allclose and the same Recall@20.

``--cpu-smoke`` runs all three parts on the CPU on a tiny synthetic graph in seconds (what the
test suite runs): (a) on the synthetic graph, (b) ``cpu`` against ``auto``, (c) on gloo.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from gemrec.data.interactions import Interactions  # noqa: E402
from gemrec.eval import evaluate  # noqa: E402
from gemrec.models import get_model_class  # noqa: E402

T0 = time.perf_counter()

#: the faithful LightGCN configuration (LightGCN paper, Gowalla)
FAITHFUL: dict[str, Any] = {
    "embedding_dim": 64,
    "n_layers": 3,
    "lr": 0.001,
    "lr_decay": 1.0,
    "train_batch_size": 2048,
    "reg": 1e-4,
    "init": "normal",
}

#: the small fits of parts (b) and (c): name -> (model, hyperparameters)
SMALL_FITS: dict[str, tuple[str, dict[str, Any]]] = {
    "lightgcn": (
        "lightgcn",
        {"epochs": 3, "embedding_dim": 16, "n_layers": 3, "train_batch_size": 256, "lr": 0.01},
    ),
    "mf": ("mf", {"epochs": 3, "embedding_dim": 16, "train_batch_size": 255, "lr": 0.01}),
    "ncf": ("ncf", {"epochs": 2, "embedding_dim": 16, "train_batch_size": 1001}),
    "item2vec": ("item2vec", {"epochs": 2, "embedding_dim": 16, "pairs_per_batch": 2049}),
}


def say(message: str) -> None:
    print(f"[{time.perf_counter() - T0:7.1f}s] {message}", flush=True)


# --------------------------------------------------------------------------- data
def small_graph(
    n_users: int = 400, n_items: int = 300, seed: int = 0
) -> tuple[Interactions, Interactions]:
    """Users and items in 4 communities, 12 items per user (90% in their own), 1 held out."""
    rng = np.random.default_rng(seed)
    user_group = rng.integers(0, 4, n_users)
    item_group = rng.integers(0, 4, n_items)
    users, items, test_users, test_items = [], [], [], []
    for u in range(n_users):
        own = np.flatnonzero(item_group == user_group[u])
        other = np.flatnonzero(item_group != user_group[u])
        chosen = np.concatenate([rng.choice(own, 12, replace=False), rng.choice(other, 1)])
        rng.shuffle(chosen[:12])
        users += [u] * 12
        items += chosen[1:].tolist()
        test_users.append(u)
        test_items.append(int(chosen[0]))
    shape = {"n_users": n_users, "n_items": n_items}
    train = Interactions.from_arrays(np.array(users), np.array(items), **shape)
    test = Interactions.from_arrays(np.array(test_users), np.array(test_items), **shape)
    return train, test


def gowalla(root: Path) -> tuple[Interactions, Interactions]:
    """``(train, test)`` of a LightGCN-format directory, imported as ``gemrec import`` does."""
    from gemrec.data.importer import import_dataset
    from gemrec.data.store import Dataset

    for name in ("train.txt", "test.txt"):
        if not (root / name).is_file():
            raise SystemExit(f"--gowalla {root}: no {name} there (LightGCN-format split expected)")
    with tempfile.TemporaryDirectory() as tmp:
        result = import_dataset([root], Path(tmp) / "ds", format="lightgcn", valid_fraction=0)
        ds = Dataset.open(result.path)
        return ds.interactions("train", "valid"), ds.interactions("test")


def fit_small(name: str, device: str) -> tuple[np.ndarray, np.ndarray, float, float]:
    """``(user embeddings, item embeddings, Recall@20, seconds)`` of a small fit."""
    train, test = small_graph()
    model_name, params = SMALL_FITS[name]
    model = get_model_class(model_name)(**params, seed=0, progress=False, device=device)
    t = time.perf_counter()
    model.fit(train)
    seconds = time.perf_counter() - t
    recall = float(evaluate(model, test, ks=[20])["recall@20"])
    return model.user_embeddings_, model.item_embeddings_, recall, seconds


def compare(a: tuple[Any, ...], b: tuple[Any, ...]) -> dict[str, Any]:
    """Largest differences between two ``fit_small`` results, and whether they agree."""
    scale = float(max(np.abs(a[0]).max(), np.abs(a[1]).max()))
    diff = float(max(np.abs(a[0] - b[0]).max(), np.abs(a[1] - b[1]).max()))
    close = bool(
        np.allclose(a[0], b[0], rtol=1e-3, atol=1e-4 * scale)
        and np.allclose(a[1], b[1], rtol=1e-3, atol=1e-4 * scale)
    )
    return {
        "max_abs_diff": diff,
        "max_abs_value": scale,
        "allclose": close,
        "recall@20": [a[2], b[2]],
        "same_recall": abs(a[2] - b[2]) < 1e-9,
        "seconds": [round(a[3], 3), round(b[3], 3)],
    }


# --------------------------------------------------------------------------- (a)
def lightgcn_epochs(
    train: Interactions, device: str, epochs: int, params: dict[str, Any]
) -> tuple[Any, list[dict[str, float]]]:
    import torch

    from gemrec.models.lightgcn import LightGCN

    model = LightGCN(**params, epochs=epochs, seed=0, progress=False, device=device)
    if device.startswith("cuda"):
        torch.cuda.reset_peak_memory_stats()
    model.fit(train)
    return model, model.history_


def part_a(args: argparse.Namespace, device: str) -> dict[str, Any]:
    import torch

    if args.cpu_smoke:
        train, test = small_graph(n_users=2000, n_items=1500)
        source = "synthetic (--cpu-smoke)"
    else:
        say(f"(a) importing Gowalla from {args.gowalla}")
        train, test = gowalla(Path(args.gowalla))
        source = str(args.gowalla)
    say(f"(a) {train.n_users} users, {train.n_items} items, {train.nnz} training edges")
    out: dict[str, Any] = {"data": source, "edges": int(train.nnz), "device": device}
    n = args.warmup + args.epochs

    say(f"(a) faithful LightGCN on {device}: {args.warmup} warm-up + {args.epochs} timed epochs")
    model, history = lightgcn_epochs(train, device, n, FAITHFUL)
    timed = [h["seconds"] for h in history[args.warmup :]]
    out["faithful"] = {
        "config": FAITHFUL,
        "steps_per_epoch": -(-int(train.nnz) // FAITHFUL["train_batch_size"]),
        "epoch_seconds": [round(s, 4) for s in (h["seconds"] for h in history)],
        "median_epoch_seconds": round(statistics.median(timed), 4),
        "losses": [h["loss"] for h in history],
    }
    # the epoch's BPR sampling runs on the CPU (NumPy) whatever the device: its share of the epoch
    from gemrec.models.training import BPRSampler

    sampler = BPRSampler(train.binary())
    t = time.perf_counter()
    sampler.sample(sampler.n_edges, np.random.default_rng(0))
    out["faithful"]["cpu_sampling_seconds_per_epoch"] = round(time.perf_counter() - t, 4)
    if device.startswith("cuda"):
        out["faithful"]["peak_gpu_memory_gib"] = round(torch.cuda.max_memory_allocated() / 2**30, 3)
    say(f"(a) median epoch {out['faithful']['median_epoch_seconds']:.3f}s; evaluating on test")
    res = evaluate(model, test, ks=[20])
    out["faithful"]["test"] = {"recall@20": res["recall@20"], "ndcg@20": res["ndcg@20"]}

    if args.cpu_epochs > 0:
        say(
            f"(a) the same configuration on the CPU ({torch.get_num_threads()} threads), "
            f"{args.cpu_epochs} epochs"
        )
        _, cpu_history = lightgcn_epochs(train, "cpu", args.cpu_epochs, FAITHFUL)
        cpu_seconds = [h["seconds"] for h in cpu_history]
        losses = [h["loss"] for h in cpu_history]
        gpu_losses = out["faithful"]["losses"][: len(losses)]
        out["faithful_cpu_baseline"] = {
            "threads": torch.get_num_threads(),
            "epoch_seconds": [round(s, 4) for s in cpu_seconds],
            "losses": losses,
            "loss_max_rel_diff_vs_device": max(
                abs(a - b) / abs(a) for a, b in zip(losses, gpu_losses, strict=True)
            ),
        }
        say(f"(a) CPU epochs {cpu_seconds}")

    shipped = get_model_class("lightgcn")().get_params()
    defaults = {k: shipped[k] for k in ("embedding_dim", "train_batch_size", "lr", "lr_decay")}
    say(f"(a) gemrec's default LightGCN ({defaults}, spectral init) on {device}")
    model, history = lightgcn_epochs(train, device, n, defaults)
    timed = [h["seconds"] for h in history[args.warmup :]]
    out["defaults"] = {
        "config": defaults,
        "epoch_seconds": [round(h["seconds"], 4) for h in history],
        "median_epoch_seconds": round(statistics.median(timed), 4),
    }
    res = evaluate(model, test, ks=[20])
    out["defaults"]["test"] = {"recall@20": res["recall@20"], "ndcg@20": res["ndcg@20"]}
    say(f"(a) defaults: median epoch {out['defaults']['median_epoch_seconds']:.3f}s")
    return out


# --------------------------------------------------------------------------- (b)
def part_b(device: str) -> dict[str, Any]:
    out: dict[str, Any] = {"devices": ["cpu", device]}
    for name in SMALL_FITS:
        say(f"(b) {name}: device=cpu vs device={device}")
        out[name] = compare(fit_small(name, "cpu"), fit_small(name, device))
        say(f"(b) {name}: {out[name]}")
    out["ok"] = all(out[n]["allclose"] and out[n]["same_recall"] for n in SMALL_FITS)
    return out


# --------------------------------------------------------------------------- (c)
def part_c(args: argparse.Namespace) -> dict[str, Any]:
    import torch

    gpus = torch.cuda.device_count() if torch.cuda.is_available() else 0
    device = "cuda" if gpus >= 2 and not args.cpu_smoke else "cpu"
    out: dict[str, Any] = {
        "workers": 2,
        "backend": "nccl" if device == "cuda" else "gloo",
        "device": device,
        "gpus": gpus,
    }
    if device == "cpu" and gpus == 1:
        out["note"] = "only one GPU on this machine: the two workers ran on CPU processes (gloo)"
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
        cmd += ["--nproc-per-node=2", __file__, "--worker", tmp, "--device", device]
        env = dict(os.environ)
        env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
        if device == "cpu":
            env["OMP_NUM_THREADS"] = "1"
        say(f"(c) 2 workers, {out['backend']} on {device}: {' '.join(cmd[1:])}")
        t = time.perf_counter()
        proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=600)
        out["seconds_two_workers"] = round(time.perf_counter() - t, 2)
        if proc.returncode != 0:
            out["error"] = proc.stderr[-3000:]
            say(f"(c) the workers failed:\n{proc.stderr[-3000:]}")
            out["ok"] = False
            return out
        for name in SMALL_FITS:
            got = np.load(Path(tmp) / f"{name}.npz")
            two = (got["users"], got["items"], float(got["recall"]), float(got["seconds"]))
            out[name] = compare(fit_small(name, device), two)
            say(f"(c) {name}: one worker vs two: {out[name]}")
    out["ok"] = all(out[n]["allclose"] and out[n]["same_recall"] for n in SMALL_FITS)
    return out


def worker(out: Path, device: str) -> None:
    """One of part (c)'s workers (started by torchrun): rank 0 saves every small fit."""
    from gemrec.models._distributed import process_group

    with process_group(cuda=device == "cuda", timeout_s=300) as world:
        for name in SMALL_FITS:
            users, items, recall, seconds = fit_small(name, device)
            if world.is_main:
                arrays = {"users": users, "items": items, "recall": recall, "seconds": seconds}
                np.savez(out / f"{name}.npz", **arrays)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- main
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--gowalla", metavar="DIR", help="LightGCN-format Gowalla (train.txt, test.txt)")
    p.add_argument("--out", default="gpu_check.json", metavar="FILE", help="JSON results")
    p.add_argument("--epochs", type=int, default=5, help="timed GPU epochs per configuration")
    p.add_argument("--warmup", type=int, default=1, help="untimed GPU epochs before them")
    p.add_argument("--cpu-epochs", type=int, default=2, help="CPU baseline epochs of part (a)")
    p.add_argument("--parts", default="abc", help="which parts to run (default: abc)")
    p.add_argument("--cpu-smoke", action="store_true", help="everything on the CPU, tiny data")
    p.add_argument("--worker", metavar="DIR", help=argparse.SUPPRESS)
    p.add_argument("--device", default="cpu", help=argparse.SUPPRESS)
    return p


def main(argv: list[str] | None = None) -> int:
    p = build_parser()
    args = p.parse_args(argv)
    if args.worker:
        worker(Path(args.worker), args.device)
        return 0

    import torch

    if args.cpu_smoke:
        device = "auto"
        args.epochs, args.warmup, args.cpu_epochs = min(args.epochs, 2), min(args.warmup, 1), 1
    else:
        if not torch.cuda.is_available():
            p.error("torch sees no CUDA GPU here; use --cpu-smoke to check the CPU path")
        if "a" in args.parts and not args.gowalla:
            p.error("part (a) needs --gowalla DIR")
        device = "cuda"
    result: dict[str, Any] = {
        "gpu": torch.cuda.get_device_name(0) if torch.cuda.is_available() else None,
        "gpus": torch.cuda.device_count() if torch.cuda.is_available() else 0,
        "torch": torch.__version__,
        "cuda": torch.version.cuda,
        "python": platform.python_version(),
        "cpu_threads": torch.get_num_threads(),
        "mode": "cpu-smoke" if args.cpu_smoke else "gpu",
    }
    say(f"gemrec GPU check: {json.dumps(result)}")
    out = Path(args.out)

    def save() -> None:
        result["total_seconds"] = round(time.perf_counter() - T0, 1)
        out.write_text(json.dumps(result, indent=1))

    for part, run in (
        ("a", lambda: part_a(args, device)),
        ("b", lambda: part_b(device)),
        ("c", lambda: part_c(args)),
    ):
        if part not in args.parts:
            continue
        t = time.perf_counter()
        try:
            result[part] = run()
        except Exception as exc:  # record and go on: the other parts still tell something
            result[part] = {"error": f"{type(exc).__name__}: {exc}"}
            say(f"({part}) FAILED: {type(exc).__name__}: {exc}")
        result[part]["part_seconds"] = round(time.perf_counter() - t, 1)
        save()
    say(f"done; results in {out}")
    ok = all(result[p].get("ok", "error" not in result[p]) for p in args.parts if p in result)
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
