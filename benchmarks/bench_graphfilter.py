"""Speed, memory and accuracy of ``graphfilter``.

    PYTHONPATH=src python benchmarks/bench_graphfilter.py gowalla --repeat 3
    PYTHONPATH=src python benchmarks/bench_graphfilter.py datasets
    PYTHONPATH=src python benchmarks/bench_graphfilter.py chebycf --whole-spectrum --names gowalla
    PYTHONPATH=src python benchmarks/bench_graphfilter.py growth --plot docs/graphfilter_growth.png
    PYTHONPATH=src python benchmarks/bench_graphfilter.py truncation --neighbours 50 100 200 400
    PYTHONPATH=src python benchmarks/bench_graphfilter.py overlap DATASET MODEL --users IDS.txt

``chebycf``: the shipped defaults against ChebyCF's published Gowalla setting per dataset, and
(``--whole-spectrum``) that filter's polynomial over the whole spectrum, the published form.
``gowalla``: fit + full evaluation of all 29,858 test users (Recall/NDCG@20, standard protocol),
median of ``--repeat`` runs, next to a plain single-threaded numpy/scipy implementation of the same
filter measured in the same run (sparse product then ``toarray``, numpy low-rank part,
``argpartition`` top-k). Peak memory is the process's max RSS (``resource.getrusage``).
``datasets``: shipped defaults on every shared benchmark split. ``growth``: fit time on random
power-law graphs of 0.1M, 1M and 5M interactions (fixed rank). ``scale``: memory on an
Amazon-Book-sized random graph (52,643 x 91,599, 2.38M interactions); with ``--write-lightgcn
DIR`` that graph as LightGCN files (a random 20 % of each user's items as test), to time ``gemrec
import`` / ``train`` on it. ``truncation``: the
item-item part truncated to each item's largest entries (``item_item="truncated"``, what "auto"
picks above ``max_gram_bytes``) against the exact sparse one on Gowalla: test Recall/NDCG@20 and
the share of the exact top-20 lists kept, per ``item_neighbours``. ``overlap``: a saved model
with the truncated part against the exact factored part on sampled users of a dataset too large
for the exact sparse ``P~`` (the lists of both scored over the whole catalogue).
"""

from __future__ import annotations

import argparse
import resource
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _data import load, train_test

from gemrec.data.interactions import Interactions
from gemrec.eval import evaluate
from gemrec.eval.metrics import ranking_metrics
from gemrec.models.graphfilter import GraphFilter


def peak_rss_gib() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 2**20


def cpu_s() -> float:
    ru = resource.getrusage(resource.RUSAGE_SELF)
    return ru.ru_utime + ru.ru_stime


def run_model(train: Interactions, test: Interactions, **params: object) -> dict[str, float]:
    c0 = cpu_s()
    t0 = time.perf_counter()
    model = GraphFilter(**params).fit(train)  # type: ignore[arg-type]
    t1 = time.perf_counter()
    res = evaluate(model, test, ks=[20])
    return _result(t0, t1, c0, res["recall@20"], res["ndcg@20"])


def _result(t0: float, t1: float, c0: float, recall: float, ndcg: float) -> dict[str, float]:
    """Fit time (``t0`` to ``t1``), evaluation time (``t1`` to now), CPU since ``c0``, metrics."""
    t2 = time.perf_counter()
    return {
        "fit_s": t1 - t0,
        "eval_s": t2 - t1,
        "total_s": t2 - t0,
        "cpu_s": cpu_s() - c0,
        "recall@20": recall,
        "ndcg@20": ndcg,
    }


def run_numpy_baseline(
    train: Interactions, test: Interactions, model: GraphFilter
) -> dict[str, float]:
    """The same filter written plainly: scipy products, numpy GEMM, argpartition, one thread.

    Fit and scoring are single-threaded (threadpoolctl); only the SVD and the low-rank factors
    built from it (``model.low_rank_factors``, the ideal part and the response) are the model's.
    """
    from threadpoolctl import threadpool_limits

    from gemrec.graph import truncated_svd

    a, c = model.input_exponent, model.output_exponent
    k = model._rank(train.n_users, train.n_items)
    with threadpool_limits(1):
        c0 = cpu_s()
        t0 = time.perf_counter()
        R = train.matrix.astype(np.float32)
        du = np.asarray(R.sum(1)).ravel()
        di = np.asarray(R.sum(0)).ravel()
        pw = lambda d, e: np.where(d > 0, np.maximum(d, 1e-12) ** e, 0).astype(np.float32)  # noqa: E731
        Rn = (sp.diags(pw(du, -0.5)) @ R @ sp.diags(pw(di, -0.5))).tocsr()
        P = (sp.diags(pw(di, 0.5 - a)) @ (Rn.T @ Rn) @ sp.diags(pw(di, 0.5 - c))).tocsr()
        # the same randomized SVD as the model (ARPACK svds with k~600 takes many minutes here);
        # the baseline measures the plain scoring path
        _, s, v = truncated_svd(Rn, k, n_iter=model.svd_n_iter, seed=0)
        left, right = model.low_rank_factors(s, v, di)
        t1 = time.perf_counter()
        T = test.matrix
        users = np.flatnonzero(np.diff(T.indptr) > 0)
        n_rel = np.diff(T.indptr)
        sums = np.zeros(2)
        for start in range(0, len(users), 2048):
            b = users[start : start + 2048]
            x = R[b]
            scores = (x @ P).toarray() + (x @ left) @ right.T
            sums += _block_metrics(scores, x, T[b], n_rel[b])
        return _result(t0, t1, c0, sums[0] / len(users), sums[1] / len(users))


def _block_metrics(
    scores: np.ndarray, seen: sp.csr_matrix, test_rows: sp.csr_matrix, n_rel: np.ndarray
) -> np.ndarray:
    """Summed Recall@20 and NDCG@20 of a block of users' dense ``scores`` (their ``seen`` items
    excluded, in place) against their ``test_rows``."""
    scores[seen.nonzero()] = -np.inf
    part = np.argpartition(-scores, 20, axis=1)[:, :20]
    ranked = np.argsort(-np.take_along_axis(scores, part, 1), axis=1)
    top = np.take_along_axis(part, ranked, 1)
    hits = np.asarray(test_rows.toarray().astype(bool)[np.arange(len(top))[:, None], top])
    m = ranking_metrics(hits, n_rel, 20)
    return np.array([m["recall"].sum(), m["ndcg"].sum()])


def _fmt(r: dict[str, float]) -> str:
    return (
        f"fit {r['fit_s']:.1f}s  eval {r['eval_s']:.1f}s  total {r['total_s']:.1f}s  "
        f"(CPU {r.get('cpu_s', float('nan')):.1f}s)  "
        f"Recall@20 {r['recall@20']:.4f}  NDCG@20 {r['ndcg@20']:.4f}"
    )


def bench_gowalla(args: argparse.Namespace) -> None:
    train, test = train_test("gowalla")
    defaults = GraphFilter()
    runs = []
    for i in range(args.repeat):
        r = run_model(train, test, num_threads=args.threads)
        runs.append(r)
        print(f"graphfilter run {i + 1}: {_fmt(r)}", flush=True)
    med = {key: statistics.median(r[key] for r in runs) for key in runs[0]}
    print(f"graphfilter median of {args.repeat}: {_fmt(med)}  peak RSS {peak_rss_gib():.2f} GiB")
    if args.baseline:
        base = run_numpy_baseline(train, test, defaults)
        print(f"plain numpy baseline (1 run): {_fmt(base)}")
        print(f"speed-up fit+eval: {base['total_s'] / med['total_s']:.1f}x")


def bench_datasets(args: argparse.Namespace) -> None:
    for name in args.names.split(","):
        train, test = train_test(name)
        r = run_model(train, test, num_threads=args.threads)
        print(f"{name:8s} {train.n_users}x{train.n_items} nnz={train.nnz}: {_fmt(r)}", flush=True)


#: ChebyCF's published Gowalla setting in GraphFilter's terms
CHEBYCF_GOWALLA = dict(
    flatness=1.5, beta=0.2, ideal_exponent=0.0, input_exponent=0.9, output_exponent=0.1
)


def bench_chebycf(args: argparse.Namespace) -> None:
    """Shipped defaults against ChebyCF's Gowalla setting (its response exact on the top-k
    subspace, linear below) on each dataset; with ``--whole-spectrum``, also the same filter with
    its polynomial applied to the whole spectrum (the published form: ``2 response_order``
    sparse passes per user, through torch's CSR products)."""
    for name in args.names.split(","):
        if args.split == "valid":  # fit on train, score every validation user
            ds = load(name)
            train, test = ds.interactions("train"), ds.interactions("valid")
        else:
            train, test = train_test(name)
        for label, params in (("shipped defaults", {}), ("ChebyCF setting", CHEBYCF_GOWALLA)):
            r = run_model(train, test, num_threads=args.threads, **params)  # type: ignore[arg-type]
            print(f"{name:8s} {label}: {_fmt(r)}", flush=True)
        if args.whole_spectrum:
            for published in (False, True):
                model = GraphFilter(num_threads=args.threads, **CHEBYCF_GOWALLA)  # type: ignore[arg-type]
                r = run_whole_spectrum(train, test, model, published)
                which = "ChebyCF's own coefficients" if published else "the model's interpolant"
                print(f"{name:8s} ChebyCF setting, whole spectrum, {which}: {_fmt(r)}", flush=True)


def run_whole_spectrum(
    train: Interactions, test: Interactions, model: GraphFilter, published: bool
) -> dict[str, float]:
    """``x D^{-b} [f(P~) + beta V_k V_k^T] D^{b}`` with the Chebyshev polynomial ``f`` of
    ``I - 2 P~`` evaluated by its three-term recurrence on dense user blocks (``b = a - 1/2``;
    the model's SVD and ideal part).

    ``f`` is the model's interpolant of the plateau, or (``published``) the coefficients
    ChebyCF's reference implementation computes: the plateau sampled at ``cos(j pi / K)`` and
    transformed as if sampled at the first-kind nodes ``cos((K + 1/2 - j) pi / (K + 1))``, both
    rounded to 3 decimals, which gives a slightly different polynomial."""
    import torch

    from gemrec.graph.adjacency import normalized_interactions

    c0 = cpu_s()
    t0 = time.perf_counter()
    model.fit(train)
    R = sp.csr_matrix(train.matrix, dtype=np.float32)
    di = np.asarray(R.sum(0)).ravel()
    rn = normalized_interactions(R).astype(np.float32)

    def csr(m: sp.csr_matrix) -> torch.Tensor:
        m = sp.csr_matrix(m)
        return torch.sparse_csr_tensor(
            torch.from_numpy(m.indptr.astype(np.int64)),
            torch.from_numpy(m.indices.astype(np.int64)),
            torch.from_numpy(m.data),
            size=m.shape,
        )

    r_t, rt_t = csr(rn), csr(rn.T.tocsr())
    order = int(model.response_order)
    phi = float(model.flatness)
    if published:
        j = np.arange(order + 1)
        samples = np.round(np.cos((order - j) * np.pi / order), 3)
        values = np.round(0.5 - 0.5 * np.sign(samples) * np.abs(samples) ** phi, 3)
        nodes = np.cos((order + 0.5 - j) * np.pi / (order + 1))
        coef = 2.0 / (order + 1) * np.polynomial.chebyshev.chebvander(nodes, order).T @ values
        coef[0] /= 2
    else:
        coef = model.response_polynomial().coef
    b = float(model.input_exponent) - 0.5
    pre = torch.from_numpy(np.where(di > 0, np.maximum(di, 1) ** -b, 0).astype(np.float32))
    post = torch.from_numpy(np.where(di > 0, np.maximum(di, 1) ** b, 0).astype(np.float32))
    v = np.asarray(model.item_projection_ / np.where(di > 0, np.maximum(di, 1) ** -b, 1)[:, None])
    ideal_v = torch.from_numpy(np.ascontiguousarray(v, dtype=np.float32))

    def lap(x: torch.Tensor) -> torch.Tensor:  # (I - 2 P~) x, x of shape (n_items, B)
        return x - 2 * torch.sparse.mm(rt_t, torch.sparse.mm(r_t, x))

    t1 = time.perf_counter()
    T = test.matrix
    users = np.flatnonzero(np.diff(T.indptr) > 0)
    n_rel = np.diff(T.indptr)
    sums = np.zeros(2)
    with torch.no_grad():
        for start in range(0, len(users), 2048):
            blk = users[start : start + 2048]
            x = R[blk]
            signal = torch.from_numpy(x.toarray()) * pre
            prev, cur = signal.T.contiguous(), lap(signal.T.contiguous())
            out = coef[0] * prev + coef[1] * cur
            for j in range(2, order + 1):
                prev, cur = cur, 2 * lap(cur) - prev
                out += coef[j] * cur
            scores_t = out.T + float(model.beta) * (signal @ ideal_v) @ ideal_v.T
            sums += _block_metrics((scores_t * post).numpy(), x, T[blk], n_rel[blk])
    return _result(t0, t1, c0, sums[0] / len(users), sums[1] / len(users))


def synthetic(
    nnz: int, seed: int = 0, n_users: int | None = None, n_items: int | None = None
) -> Interactions:
    """Random bipartite graph, ~20 items per user, Zipf-like item popularity (exponent 0.8)."""
    rng = np.random.default_rng(seed)
    n_users = n_users or max(nnz // 20, 10)
    n_items = n_items or max(nnz // 25, 10)
    pop = 1.0 / np.arange(1, n_items + 1) ** 0.8
    items = rng.choice(n_items, size=nnz, p=pop / pop.sum())
    users = rng.integers(0, n_users, nnz)
    inter = Interactions.from_arrays(users, items, n_users=n_users, n_items=n_items)
    inter.matrix.data[:] = 1.0
    return inter


def bench_growth(args: argparse.Namespace) -> None:
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    # warm-up: imports, thread pools and the kernel's JIT load are one-off costs, not growth
    GraphFilter(n_components=8, num_threads=args.threads).fit(synthetic(20_000, seed=1))
    rows = []
    for nnz in sizes:
        inter = synthetic(nnz)
        times = []
        for _ in range(args.repeat):
            t0 = time.perf_counter()
            # fixed rank so that the curve shows the cost of the graph, not of a growing rank
            GraphFilter(n_components=args.rank, num_threads=args.threads).fit(inter)
            times.append(time.perf_counter() - t0)
        med = statistics.median(times)
        rows.append((inter.nnz, med))
        print(
            f"nnz={inter.nnz:>9,d} users={inter.n_users:>7,d} items={inter.n_items:>7,d} "
            f"fit median {med:.1f}s ({med / inter.nnz * 1e6:.2f} us/interaction)  "
            f"peak RSS {peak_rss_gib():.2f} GiB",
            flush=True,
        )
    if args.plot:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        x = np.array([r[0] for r in rows], dtype=float)
        y = np.array([r[1] for r in rows])
        fig, ax = plt.subplots(figsize=(5, 3.5))
        ax.loglog(x, y, "o-", label="graphfilter fit (median)")
        ax.loglog(x, y[0] * x / x[0], "--", color="grey", label="linear in interactions")
        ax.set_xlabel("interactions")
        ax.set_ylabel("fit time (s)")
        ax.set_title(f"graphfilter fit (rank {args.rank}), random power-law graphs")
        ax.legend()
        fig.tight_layout()
        Path(args.plot).parent.mkdir(parents=True, exist_ok=True)
        fig.savefig(args.plot, dpi=120)
        print(f"wrote {args.plot}")


def write_lightgcn(inter: Interactions, directory: Path, seed: int = 0) -> None:
    """``inter`` as LightGCN files: a random 20 % of each user's items (of two or more) in
    ``test.txt``, the rest in ``train.txt``."""
    m = inter.matrix.tocsr()
    rng = np.random.default_rng(seed)
    directory.mkdir(parents=True, exist_ok=True)
    with open(directory / "train.txt", "w") as train, open(directory / "test.txt", "w") as test:
        for u in range(m.shape[0]):
            items = m.indices[m.indptr[u] : m.indptr[u + 1]].copy()
            rng.shuffle(items)
            n_test = round(0.2 * len(items)) if len(items) >= 2 else 0
            train.write(f"{u} " + " ".join(map(str, items[n_test:])) + "\n")
            test.write(f"{u} " + " ".join(map(str, items[:n_test])) + "\n")


def bench_scale(args: argparse.Namespace) -> None:
    """Amazon-Book-sized random graph: shipped defaults, fit + scoring of 4096 users, peak RSS
    (``--write-lightgcn DIR``: the graph as LightGCN files instead, for the CLI)."""
    inter = synthetic(2_380_730, n_users=52_643, n_items=91_599)
    if args.write_lightgcn:
        write_lightgcn(inter, Path(args.write_lightgcn))
        print(f"wrote {args.write_lightgcn}/train.txt and test.txt ({inter.nnz:,} interactions)")
        return
    t0 = time.perf_counter()
    model = GraphFilter(num_threads=args.threads).fit(inter)
    t1 = time.perf_counter()
    model.recommend(np.arange(4096), k=20)
    t2 = time.perf_counter()
    print(
        f"amazon-book-sized {inter.n_users}x{inter.n_items} nnz={inter.nnz}: "
        f"item_item={model.item_item_} rank={model.n_components_} fit {t1 - t0:.1f}s "
        f"recommend(4096 users) {t2 - t1:.1f}s peak RSS {peak_rss_gib():.2f} GiB"
    )


def bench_truncation(args: argparse.Namespace) -> None:
    train, test = train_test("gowalla")
    users = np.arange(train.n_users)
    exact = GraphFilter(item_item="sparse", num_threads=args.threads).fit(train)
    ref, _ = exact.recommend(users, 20)
    res = evaluate(exact, test, ks=[20])
    print(
        f"exact sparse P~ ({exact.linear_.nnz:,} entries): Recall@20 {res['recall@20']:.4f} "
        f"NDCG@20 {res['ndcg@20']:.4f}"
    )
    for k in args.neighbours:
        t0 = time.perf_counter()
        model = GraphFilter(item_item="truncated", item_neighbours=k, num_threads=args.threads)
        model.fit(train)
        fit_s = time.perf_counter() - t0
        ids, _ = model.recommend(users, 20)
        kept = np.mean([len(np.intersect1d(a, b)) / 20 for a, b in zip(ids, ref, strict=True)])
        res = evaluate(model, test, ks=[20])
        print(
            f"item_neighbours={k} ({model.linear_.nnz:,} entries): Recall@20 "
            f"{res['recall@20']:.4f} NDCG@20 {res['ndcg@20']:.4f}, exact top 20 kept "
            f"{kept:.4f}, fit {fit_s:.1f} s"
        )


def bench_overlap(args: argparse.Namespace) -> None:
    import copy

    from gemrec.data.store import Dataset
    from gemrec.graph.adjacency import degrees, normalized_interactions
    from gemrec.models.base import Recommender

    ds = Dataset.open(args.dataset)
    R = ds.interactions("train", "valid").matrix.tocsr()
    model = Recommender.load(args.model)
    if not isinstance(model, GraphFilter) or model.item_item_ != "truncated":
        raise SystemExit(f"{args.model}: not a graphfilter model with a truncated item-item part")
    # the same model with the exact item-item part (shares every other array)
    exact = copy.copy(model)
    exact.item_item_, exact.linear_ = "factored", None
    for name, value in exact.item_item_from_factors(
        normalized_interactions(R), degrees(R)[1]
    ).items():
        setattr(exact, name, value)
    index = ds.user_index
    raw = Path(args.users).read_text().split()[: args.first]
    users = np.sort(np.array([index[u] for u in raw], np.int64))
    t0 = time.perf_counter()
    truncated, _ = model.recommend(users, 20, exclude=R[users])
    t1 = time.perf_counter()
    reference, _ = exact.recommend(users, 20, exclude=R[users])
    t2 = time.perf_counter()
    kept = np.mean(
        [len(np.intersect1d(a, b)) / 20 for a, b in zip(truncated, reference, strict=True)]
    )
    print(
        f"{len(users):,} users: exact top 20 kept by the truncated part {kept:.4f}; exact scoring "
        f"over {R.shape[1]:,} items {1000 * (t1 - t0) / len(users):.2f} ms per user truncated, "
        f"{1000 * (t2 - t1) / len(users):.2f} ms factored"
    )


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    sub = parser.add_subparsers(dest="what", required=True)
    g = sub.add_parser("gowalla")
    g.add_argument("--repeat", type=int, default=3)
    g.add_argument("--no-baseline", dest="baseline", action="store_false")
    d = sub.add_parser("datasets")
    d.add_argument("--names", default="gowalla,movielens-1m,lastfm-2k,movielens-100k")
    gr = sub.add_parser("growth")
    gr.add_argument("--sizes", default="1e5,1e6,5e6")
    gr.add_argument("--repeat", type=int, default=3)
    gr.add_argument("--plot", default="docs/graphfilter_growth.png")
    gr.add_argument("--rank", type=int, default=256)
    cc = sub.add_parser("chebycf")
    cc.add_argument("--names", default="gowalla,movielens-1m,lastfm-2k,movielens-100k")
    cc.add_argument("--whole-spectrum", action="store_true")
    cc.add_argument(
        "--split", choices=["test", "valid"], default="test", help="valid: fit on train only"
    )
    sc = sub.add_parser("scale")
    sc.add_argument("--write-lightgcn", metavar="DIR", help="write the graph as LightGCN files")
    tr = sub.add_parser("truncation")
    tr.add_argument("--neighbours", type=int, nargs="+", default=[50, 100, 200, 400])
    ov = sub.add_parser("overlap")
    ov.add_argument("dataset")
    ov.add_argument("model")
    ov.add_argument("--users", required=True, help="a file of raw user ids, one per line")
    ov.add_argument("--first", type=int, default=1000, help="the file's first N ids (1000)")
    for p in (g, d, cc, gr, sc, tr, ov):
        p.add_argument("--threads", type=int, default=None)
    return parser


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    handlers = {
        "gowalla": bench_gowalla,
        "datasets": bench_datasets,
        "chebycf": bench_chebycf,
        "growth": bench_growth,
        "scale": bench_scale,
        "truncation": bench_truncation,
        "overlap": bench_overlap,
    }
    handlers[args.what](args)


if __name__ == "__main__":
    main()
