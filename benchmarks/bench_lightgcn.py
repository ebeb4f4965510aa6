"""LightGCN benchmarks: epoch speed against a reference-style implementation, growth, accuracy.

Usage (from the repository root)::

    python benchmarks/bench_lightgcn.py speed  [--batches 40 --repeat 3]
    python benchmarks/bench_lightgcn.py growth [--sizes 100000 1000000 5000000]
    python benchmarks/bench_lightgcn.py accuracy [--set key=value ...] [--valid | --early-stop]
    python benchmarks/bench_lightgcn.py baselines --model mf --set epochs=20

``speed`` times training steps of the faithful configuration (3 layers, d=64, batch 2048, an epoch =
810,128 triplets on Gowalla) for gemrec's LightGCN and for a reference-style implementation written
like the public LightGCN-PyTorch code (a full propagation through ``torch.sparse.mm`` on a COO
adjacency per mini-batch, autograd through it), in the same process, and prints medians and the
ratio. Epoch times are ``per-step median x steps per epoch``.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import resource
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp
import torch

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _data import DATASETS, load, train_test

from gemrec.data.interactions import Interactions
from gemrec.eval import evaluate
from gemrec.graph.adjacency import bipartite_adjacency
from gemrec.models import get_model_class
from gemrec.models._allocator import keep_freed_memory
from gemrec.models._lightgcn_torch import LightGCNNet, TrainingGraph, bpr_loss
from gemrec.models.fitting import fit_model
from gemrec.models.training import BPRSampler

DOCS = Path(__file__).resolve().parents[1] / "docs"


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


class ReferenceLightGCN(torch.nn.Module):
    """The LightGCN-PyTorch way: COO graph, all layers recomputed with autograd every batch."""

    def __init__(self, adj: sp.csr_matrix, n_users: int, dim: int, n_layers: int) -> None:
        super().__init__()
        coo = adj.tocoo()
        self.graph = torch.sparse_coo_tensor(
            torch.from_numpy(np.stack([coo.row, coo.col]).astype(np.int64)),
            torch.from_numpy(coo.data.astype(np.float32)),
            adj.shape,
        ).coalesce()
        self.n_users = n_users
        self.n_layers = n_layers
        self.emb = torch.nn.Parameter(torch.randn(adj.shape[0], dim) * 0.1)

    def loss(self, users: np.ndarray, pos: np.ndarray, neg: np.ndarray, reg: float) -> torch.Tensor:
        embs = [self.emb]
        x = self.emb
        for _ in range(self.n_layers):
            x = torch.sparse.mm(self.graph, x)
            embs.append(x)
        final = torch.stack(embs, dim=1).mean(dim=1)
        u = final[torch.from_numpy(users)]
        p = final[torch.from_numpy(pos + self.n_users)]
        n = final[torch.from_numpy(neg + self.n_users)]
        ego = (
            self.emb[torch.from_numpy(users)].pow(2).sum()
            + self.emb[torch.from_numpy(pos + self.n_users)].pow(2).sum()
            + self.emb[torch.from_numpy(neg + self.n_users)].pow(2).sum()
        )
        bpr = torch.nn.functional.softplus((u * n).sum(1) - (u * p).sum(1)).mean()
        return bpr + reg * 0.5 * ego / len(users)


def gemrec_stepper(train: Interactions, dim: int = 64, n_layers: int = 3):  # type: ignore[no-untyped-def]
    """One training step of gemrec's LightGCN (``bpr_loss``, the code path of ``LightGCN.fit``)."""
    keep_freed_memory()
    tg = TrainingGraph.build(train.binary())
    net = LightGCNNet(tg.adj_sp.shape[0], dim, n_layers)
    torch.nn.init.normal_(net.embedding, std=0.1)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, fused=True)

    def step(users: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
        loss = bpr_loss(net, tg, users, pos, neg, reg=1e-4)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def reference_stepper(train: Interactions, dim: int = 64, n_layers: int = 3):  # type: ignore[no-untyped-def]
    adj_sp = bipartite_adjacency(train.binary())
    model = ReferenceLightGCN(adj_sp, train.n_users, dim, n_layers)
    opt = torch.optim.Adam(model.parameters(), lr=1e-3)

    def step(users: np.ndarray, pos: np.ndarray, neg: np.ndarray) -> float:
        loss = model.loss(users, pos, neg, 1e-4)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return float(loss.detach())

    return step


def time_steps(step, sampler: BPRSampler, batches: int, batch_size: int, seed: int) -> float:  # type: ignore[no-untyped-def]
    """Median seconds per step (sampling included) over ``batches`` steps after one warm-up."""
    rng = np.random.default_rng(seed)
    users, pos, neg = sampler.sample(batch_size * (batches + 1), rng)
    times = []
    for i in range(batches + 1):
        s = slice(i * batch_size, (i + 1) * batch_size)
        t0 = time.perf_counter()
        step(users[s], pos[s], neg[s])
        if i:
            times.append(time.perf_counter() - t0)
    return statistics.median(times)


def cmd_speed(args: argparse.Namespace) -> dict[str, object]:
    train, _ = train_test("gowalla")
    sampler = BPRSampler(train.binary())
    steps = -(-train.nnz // args.batch_size)
    out: dict[str, object] = {"steps_per_epoch": steps, "threads": torch.get_num_threads()}
    med = {}
    # The reference runs first, on glibc's default allocator settings; gemrec's training loop
    # then tunes them (models/_allocator.py) as LightGCN.fit does, process-wide.
    for name, make in (("reference", reference_stepper), ("gemrec", gemrec_stepper)):
        runs = []
        for r in range(args.repeat):
            step = make(train)
            n = args.batches if name == "gemrec" else max(3, args.batches // 4)
            runs.append(time_steps(step, sampler, n, args.batch_size, seed=r))
            print(f"  {name} run {r}: {runs[-1] * 1000:.1f} ms/step", flush=True)
        med[name] = statistics.median(runs)
        out[f"{name}_ms_per_step"] = round(med[name] * 1000, 2)
        out[f"{name}_epoch_s"] = round(med[name] * steps, 1)
    out["speedup"] = round(med["reference"] / med["gemrec"], 2)
    out["peak_rss_gib"] = round(peak_rss_gib(), 2)
    out["load_average"] = os.getloadavg()
    return out


def synthetic(n_interactions: int, seed: int = 0) -> Interactions:
    """Bipartite graph, Zipf-like item popularity, ~27 interactions per user (Gowalla-like)."""
    rng = np.random.default_rng(seed)
    n_users = max(100, n_interactions // 27)
    n_items = max(100, n_interactions // 20)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    users = rng.integers(0, n_users, size=int(n_interactions * 1.05))
    items = rng.choice(n_items, size=len(users), p=pop / pop.sum())
    inter = Interactions.from_arrays(users, items, n_users=n_users, n_items=n_items)
    return inter.with_matrix(inter.binary())


def cmd_growth(args: argparse.Namespace) -> dict[str, object]:
    rows = []
    for size in args.sizes:
        inter = synthetic(size)
        sampler = BPRSampler(inter.binary())
        t0 = time.perf_counter()
        step = gemrec_stepper(inter)
        setup = time.perf_counter() - t0
        per_step = time_steps(step, sampler, args.batches, args.batch_size, seed=0)
        steps = -(-inter.nnz // args.batch_size)
        rows.append(
            {
                "interactions": inter.nnz,
                "users": inter.n_users,
                "items": inter.n_items,
                "setup_s": round(setup, 2),
                "ms_per_step": round(per_step * 1000, 1),
                "epoch_s": round(per_step * steps, 1),
                "peak_rss_gib": round(peak_rss_gib(), 2),
            }
        )
        print(rows[-1], flush=True)
    plot_growth(rows)
    return {"rows": rows, "load_average": os.getloadavg()}


def cmd_cluster_growth(args: argparse.Namespace) -> dict[str, object]:
    """One cluster-mode epoch (graph build, history refresh, every step) per size."""
    from gemrec.models.lightgcn import LightGCN

    rows = []
    for size in args.sizes:
        inter = synthetic(size)
        model = LightGCN(
            mode="cluster",
            epochs=1,
            embedding_dim=args.dim,
            init="normal",
            train_batch_size=args.batch_size,
            progress=False,
            device="cpu",
        )
        t0 = time.perf_counter()
        model.fit(inter)
        rows.append(
            {
                "interactions": inter.nnz,
                "users": inter.n_users,
                "items": inter.n_items,
                "fit_one_epoch_s": round(time.perf_counter() - t0, 1),
                "epoch_s": round(model.history_[-1]["seconds"], 1),
                "peak_rss_gib": round(peak_rss_gib(), 2),
            }
        )
        print(rows[-1], flush=True)
    plot_cluster_growth(rows)
    return {"rows": rows, "load_average": os.getloadavg()}


def plot_cluster_growth(rows: list[dict[str, float]]) -> None:
    """Cluster-mode epoch time and peak memory against interactions, with a linear guide."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([r["interactions"] for r in rows], dtype=float)
    y = np.array([r["epoch_s"] for r in rows], dtype=float)
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.loglog(x, y, "o-", label="cluster-mode epoch")
    ax.loglog(x, y[0] * x / x[0], "--", color="grey", label="linear in interactions")
    for xi, yi, r in zip(x, y, rows, strict=True):
        ax.annotate(
            f"{r['peak_rss_gib']} GiB",
            (xi, yi),
            textcoords="offset points",
            xytext=(4, -12),
            fontsize=7,
        )
    ax.set_xlabel("interactions")
    ax.set_ylabel("seconds")
    ax.set_title("LightGCN cluster mode: one epoch, 3 layers, d=64 (peak RSS)", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    DOCS.mkdir(exist_ok=True)
    fig.savefig(DOCS / "lightgcn_cluster_growth.png", dpi=120)


def plot_growth(rows: list[dict[str, float]], steps_per_epoch: int = 16) -> None:
    """Faithful epoch (batch 2048) and an epoch of a fixed number of steps, against interactions."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    x = np.array([r["interactions"] for r in rows], dtype=float)
    y = np.array([r["epoch_s"] for r in rows], dtype=float)
    y_fixed = np.array([r["ms_per_step"] for r in rows], dtype=float) * steps_per_epoch / 1000
    fig, ax = plt.subplots(figsize=(5.5, 3.8))
    ax.loglog(x, y, "o-", label="faithful epoch: batch 2048 (steps grow with data)")
    ax.loglog(x, y_fixed, "s-", label=f"epoch of {steps_per_epoch} steps (batch grows with data)")
    ax.loglog(x, y_fixed[0] * x / x[0], "--", color="grey", label="linear in interactions")
    ax.set_xlabel("interactions")
    ax.set_ylabel("seconds (loaded shared 2-core machine)")
    ax.set_title("LightGCN epoch time, 3 layers, d=64", fontsize=9)
    ax.legend(fontsize=7)
    ax.grid(True, which="both", alpha=0.3)
    fig.tight_layout()
    DOCS.mkdir(exist_ok=True)
    fig.savefig(DOCS / "lightgcn_growth.png", dpi=120)


def cmd_accuracy(args: argparse.Namespace) -> dict[str, object]:
    from gemrec.settings import parse_assignments

    params = {"progress": False, **parse_assignments(args.set)}
    # the importer's validation split: 10 % of each user's training edges, seed 0
    ds = load(args.dataset)
    fit, valid, test = ds.interactions("train"), ds.interactions("valid"), ds.interactions("test")
    train = ds.interactions("train", "valid")
    klass = get_model_class(args.model)
    t0 = time.perf_counter()
    if args.valid:
        model = klass(**params).fit(fit, valid=valid)
        target, exclude = valid, None
    elif args.early_stop:
        # the `gemrec train` path: early stopping on the validation split, refit on train +
        # valid for the best number of epochs, then test
        model = fit_model(klass(**params), fit, valid=valid).model
        target, exclude = test, None
    elif args.report_every:
        # fixed schedule in chunks: each fit resumes the checkpoint of the previous one; the test
        # numbers form a learning curve and select nothing
        total = int(params.get("epochs", klass().get_params()["epochs"]))
        params["checkpoint_dir"] = params.get("checkpoint_dir") or tempfile.mkdtemp(
            prefix="lightgcn_bench_ckpt_"
        )
        for epochs in [*range(args.report_every, total, args.report_every), total]:
            model = klass(**{**params, "epochs": epochs}).fit(train)
            res = evaluate(model, test, ks=[20])
            print(
                json.dumps(
                    {
                        "epoch": epochs,
                        "elapsed_s": round(time.perf_counter() - t0, 1),
                        "test_recall@20": round(res["recall@20"], 4),
                        "test_ndcg@20": round(res["ndcg@20"], 4),
                    }
                ),
                flush=True,
            )
        target, exclude = test, None
    else:
        model = klass(**params).fit(train)
        target, exclude = test, None
    fit_s = time.perf_counter() - t0
    res = evaluate(model, target, ks=[20], exclude=exclude)
    return {
        "model": args.model,
        "dataset": args.dataset,
        "params": params,
        "split": "valid" if args.valid else "test",
        "early_stopped_on_holdout": bool(args.early_stop),
        "recall@20": round(res["recall@20"], 4),
        "ndcg@20": round(res["ndcg@20"], 4),
        "fit_s": round(fit_s, 1),
        "epochs_run": len(getattr(model, "history_", [])),
        "best_epoch": getattr(model, "best_epoch_", None),
        "peak_rss_gib": round(peak_rss_gib(), 2),
        "load_average": os.getloadavg(),
    }


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = p.add_subparsers(dest="cmd", required=True)
    s = sub.add_parser("speed")
    s.add_argument("--batches", type=int, default=40)
    s.add_argument("--repeat", type=int, default=3)
    s.add_argument("--batch-size", type=int, default=2048)
    g = sub.add_parser("growth")
    g.add_argument("--sizes", type=int, nargs="+", default=[100_000, 1_000_000, 5_000_000])
    g.add_argument("--batches", type=int, default=10)
    g.add_argument("--batch-size", type=int, default=2048)
    c = sub.add_parser("cluster-growth", help="one cluster-mode epoch per size")
    c.add_argument("--sizes", type=int, nargs="+", default=[1_000_000, 10_000_000, 100_000_000])
    c.add_argument("--batch-size", type=int, default=16384)
    c.add_argument("--dim", type=int, default=64)
    for name in ("accuracy", "baselines"):
        a = sub.add_parser(name)
        a.add_argument("--model", default="lightgcn" if name == "accuracy" else "mf")
        a.add_argument("--set", action="append", metavar="KEY=VALUE")
        a.add_argument("--dataset", default="gowalla", choices=sorted(DATASETS))
        a.add_argument(
            "--valid", action="store_true", help="fit on train, report on the validation split"
        )
        a.add_argument(
            "--early-stop",
            action="store_true",
            help="fit on train with early stopping on the validation split, report on test",
        )
        a.add_argument("--report-every", type=int, default=0, help="test learning curve (epochs)")
    return p


def main(argv: list[str] | None = None) -> None:
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(message)s")
    args = build_parser().parse_args(argv)
    fn = {
        "speed": cmd_speed,
        "growth": cmd_growth,
        "cluster-growth": cmd_cluster_growth,
        "accuracy": cmd_accuracy,
        "baselines": cmd_accuracy,
    }
    print(json.dumps(fn[args.cmd](args), indent=1), flush=True)


if __name__ == "__main__":
    main()
