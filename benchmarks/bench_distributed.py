"""Data-parallel training: N workers against one, same epochs; time, accuracy, bytes per step.

Usage (from the repository root)::

    python benchmarks/bench_distributed.py                                 # lightgcn, Gowalla
    python benchmarks/bench_distributed.py --model mf --workers 1 2 4 --epochs 5
    python benchmarks/bench_distributed.py --dataset movielens-100k --set embedding_dim=32

For each worker count ``N`` the script starts ``N`` workers with torchrun (``--standalone``, gloo on
the CPU or NCCL with ``--device cuda``), each with ``--threads`` torch threads; they fit the model
on the train (+ valid) split for ``--epochs`` epochs from the same seed (no early stopping), and
rank 0 evaluates test Recall@20 / NDCG@20. Reported per ``N``: the epoch times (median), the
metrics and their relative difference from ``N = 1``, and the gradient payload each worker hands
the all-reduce per step, *measured* in the communication hook (dense: the gradient; sparse: the
rows touched, indices included). A ring all-reduce sends and receives ``2 (N-1)/N`` times the
payload per worker. The cost model these figures feed is in ``docs/scaling.md``.

On one machine the workers share its cores (and ``--threads``), so more workers are no faster
here; the figures are the per-step work and traffic from which ``N`` machines can be predicted.
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
sys.path.insert(0, str(HERE))


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--dataset", default="gowalla", help="a benchmarks/_data.py dataset")
    p.add_argument("--model", default="lightgcn", choices=["lightgcn", "mf", "ncf", "item2vec"])
    p.add_argument("--workers", type=int, nargs="+", default=[1, 2])
    p.add_argument("--epochs", type=int, default=3)
    p.add_argument("--threads", type=int, default=1, help="torch threads per worker")
    p.add_argument("--device", default="cpu", choices=["cpu", "cuda"])
    p.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="hyperparameter (default: the faithful LightGCN configuration for lightgcn)",
    )
    p.add_argument("--out", metavar="FILE", help="also write the results as JSON")
    p.add_argument("--worker", metavar="FILE", help=argparse.SUPPRESS)
    return p


FAITHFUL_LIGHTGCN = {
    "embedding_dim": 64,
    "n_layers": 3,
    "lr": 0.001,
    "lr_decay": 1.0,
    "train_batch_size": 2048,
    "init": "normal",
}


def params_of(args: argparse.Namespace) -> dict[str, Any]:
    from gemrec.settings import parse_assignments

    params: dict[str, Any] = dict(FAITHFUL_LIGHTGCN) if args.model == "lightgcn" else {}
    params.update(parse_assignments(args.set))
    params.update(epochs=args.epochs, seed=0, progress=False, device=args.device)
    return params


def worker(args: argparse.Namespace) -> None:
    """One worker (started by torchrun): fit, and on rank 0 evaluate and write the JSON."""
    import torch
    from _data import train_test

    import gemrec.models._distributed as distributed
    from gemrec.eval import evaluate
    from gemrec.models import get_model_class

    torch.set_num_threads(args.threads)
    payload = {"bytes": 0, "steps": 0, "sparse": 0}
    sum_gradients = distributed._sum_gradients

    def counting(group: Any, bucket: Any) -> Any:  # measure what each step hands the network
        buffer = bucket.buffer()
        if buffer.is_sparse:
            payload["sparse"] = 1
            g = buffer.coalesce()
            size = g.values().numel() * g.values().element_size() + g.indices().numel() * 8
        else:
            size = buffer.numel() * buffer.element_size()
        payload["bytes"] += size
        payload["steps"] += int(bucket.index() == 0)  # every step reduces bucket 0 once
        return sum_gradients(group, bucket)

    distributed._sum_gradients = counting
    # row-partitioned propagation (lightgcn --set partition=rows) exchanges layers, not gradients:
    # count what each worker receives from the others in its all-gathers
    received = {"bytes": 0}
    gather_rows, gather_sparse = distributed.gather_rows, distributed.gather_sparse

    def counting_rows(local: Any, sizes: Any) -> Any:
        out = gather_rows(local, sizes)
        longest = max(max(sizes), 1)
        received["bytes"] += (len(sizes) - 1) * longest * local.shape[1] * local.element_size()
        return out

    def counting_sparse(grad: Any, group: Any) -> Any:
        out = gather_sparse(grad, group)
        own = grad.coalesce()
        total = out._values().numel() + out._indices().numel() * 2  # int64 indices: 2 floats each
        mine = own.values().numel() + own.indices().numel() * 2
        received["bytes"] += (total - mine) * 4
        return out

    if params_of(args).get("partition") == "rows":  # (item2vec's sparse gradients: the hook's)
        distributed.gather_rows = counting_rows
        distributed.gather_sparse = counting_sparse
    train, test = train_test(args.dataset)
    with distributed.process_group(cuda=args.device == "cuda") as world:
        model = get_model_class(args.model)(**params_of(args))
        t = time.perf_counter()
        model.fit(train)
        fit_seconds = time.perf_counter() - t
        if world.is_main:
            res = evaluate(model, test, ks=[20])
            seconds = [h["seconds"] for h in model.history_]  # type: ignore[attr-defined]
            # the steps the gradient hook saw; row-partitioned propagation (lightgcn, the only
            # model that receives layers) has no hook: an epoch there is ceil(edges / batch) steps
            batch = getattr(model, "train_batch_size", train.matrix.nnz)
            steps = payload["steps"] or len(seconds) * -(-train.matrix.nnz // int(batch))
            out = {
                "workers": world.size,
                "threads_per_worker": args.threads,
                "epoch_seconds": [round(s, 3) for s in seconds],
                "median_epoch_seconds": round(statistics.median(seconds), 3),
                "fit_seconds": round(fit_seconds, 2),
                "steps": payload["steps"],
                "recall@20": res["recall@20"],
                "ndcg@20": res["ndcg@20"],
                "payload_bytes_per_step": payload["bytes"] / max(payload["steps"], 1),
                "sparse": bool(payload["sparse"]),
                "received_bytes_per_step": received["bytes"] / max(steps, 1),
            }
            Path(args.worker).write_text(json.dumps(out))


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.worker:
        worker(args)
        return 0
    from _data import load

    load(args.dataset)  # import once, before the workers read the cache
    rows = []
    for n in args.workers:
        with tempfile.TemporaryDirectory() as tmp:
            out = Path(tmp) / "result.json"
            cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone"]
            cmd += [f"--nproc-per-node={n}", __file__, "--worker", str(out)]
            cmd += ["--dataset", args.dataset, "--model", args.model, "--epochs", str(args.epochs)]
            cmd += ["--threads", str(args.threads), "--device", args.device]
            for assignment in args.set:
                cmd += ["--set", assignment]
            env = dict(os.environ)
            env["PYTHONPATH"] = os.pathsep.join([str(ROOT / "src"), env.get("PYTHONPATH", "")])
            env["OMP_NUM_THREADS"] = str(args.threads)
            print(f"{n} worker(s): {' '.join(cmd[1:])}", flush=True)
            proc = subprocess.run(cmd, env=env, check=False)
            if proc.returncode != 0:
                print(f"{n} worker(s) failed (exit code {proc.returncode})", file=sys.stderr)
                return 1
            rows.append(json.loads(out.read_text()))
    base = rows[0]
    print(f"\n{args.model} on {args.dataset}, {args.epochs} epochs, {json.dumps(params_of(args))}")
    print(
        "workers | median epoch s | Recall@20 | NDCG@20 | rel. diff R/N vs first | "
        "payload MB/step | MB sent (= received) per step per worker"
    )
    for r in rows:
        n = r["workers"]
        payload = r["payload_bytes_per_step"] / 2**20
        # ring all-reduce of a dense gradient: 2 (N-1)/N of it; all-gather of sparse rows: N-1;
        # row-partitioned propagation: what the worker's all-gathers received, measured
        wire = payload * ((n - 1) if r["sparse"] else 2 * (n - 1) / n)
        wire += r.get("received_bytes_per_step", 0.0) / 2**20
        dr = r["recall@20"] / base["recall@20"] - 1
        dn = r["ndcg@20"] / base["ndcg@20"] - 1
        print(
            f"{n} | {r['median_epoch_seconds']:.2f} | {r['recall@20']:.4f} | {r['ndcg@20']:.4f} | "
            f"{dr:+.2%} / {dn:+.2%} | {payload:.2f} | {wire:.2f}"
        )
    if args.out:
        Path(args.out).write_text(json.dumps(rows, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
