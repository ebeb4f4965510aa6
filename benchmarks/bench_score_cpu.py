"""Per-request CPU of the serving engine, per model type, without HTTP.

For every model type the service serves (pop, itemknn, userknn, rp3beta, graphfilter, mf, ncf,
lightgcn, item2vec and a fusion with its default channels), fit on Gowalla (the LightGCN split,
29,858 users x 40,981 items; torch models with a few epochs: speed does not depend on accuracy),
load it the way ``gemrec serve`` does (:func:`gemrec.serve.load_engine`, default settings but
every list scored per request, ``precompute_lists="off"``, one BLAS thread) and time
``Engine.recommend`` for one user, single-threaded:

- ``known``: a user with offline history and no online event;
- ``event``: the same user right after one fresh online event (fold-in on every request);
- ``new``: a user the model does not know, with three online events.

Reported: the median CPU time (``time.thread_time``) and wall time of one call over ``--calls``
users, and where the engine retrieves through an ANN index (faiss HNSW, the default above
20,000 items) the recall@20 of its lists in each case against an exact engine's (the same
settings with ``ann_threshold`` above the catalogue). Each user appears once per case: ``event``
is a user's first fresh event. Fitted models are cached under ``--workdir``.

Run:  PYTHONPATH=src python benchmarks/bench_score_cpu.py [--models graphfilter,pop] [--calls 300]
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from _data import load  # noqa: E402

from gemrec.data.store import Dataset  # noqa: E402
from gemrec.models.fitting import fit_on_dataset, make_configured  # noqa: E402

#: every model type the service serves, with the (small) training settings used here
MODELS: dict[str, tuple[str, dict[str, Any]]] = {
    "pop": ("pop", {}),
    "itemknn": ("itemknn", {}),
    "userknn": ("userknn", {}),
    "rp3beta": ("rp3beta", {}),
    "graphfilter": ("graphfilter", {}),
    "mf": ("mf", {"epochs": 3}),
    "ncf": ("ncf", {"epochs": 1}),
    "lightgcn": ("lightgcn", {"epochs": 3}),
    "item2vec": ("item2vec", {"epochs": 1}),
    "fusion": (
        "fusion",
        {"channel_params": {"lightgcn": {"epochs": 3, "progress": False}}, "refit": False},
    ),
}
#: the serving benchmarks' dataset: Gowalla with 50 random item categories (benchmarks/_data.py)
DATASET = "gowalla-categories"


def model_dir(workdir: Path, dataset: Dataset, name: str) -> Path:
    """The fitted model ``name`` on ``dataset``, fit and saved under ``workdir`` on first use."""
    path = workdir / f"model-{name}-{dataset.path.name}"
    if (path / "manifest.json").is_file():
        return path
    kind, params = MODELS[name]
    start = time.perf_counter()
    result = fit_on_dataset(dataset, make_configured(kind, dict(params)), refit=False)
    result.model.save(path)
    (path / "fit.json").write_text(json.dumps({"seconds": time.perf_counter() - start}))
    return path


def time_engine(path: Path, dataset: Dataset, calls: int, k: int = 20) -> dict[str, float]:
    """Median CPU and wall milliseconds of ``Engine.recommend`` (see the module docstring)."""
    from gemrec.serve import ServeSettings, load_engine
    from gemrec.serve._store import Event

    # every list scored per request: a fusion's precomputed lists (the default) would time a read
    settings = ServeSettings(model_dir=path, dataset_dir=dataset.path, precompute_lists="off")
    engine = load_engine(settings)
    rng = np.random.default_rng(0)
    users = [engine.user_ids[int(u)] for u in rng.permutation(len(engine.user_ids))[:calls]]
    items = engine.catalogue.item_ids
    picks = rng.integers(0, engine.n_model_items, size=(calls, 3))
    now = time.time()
    cases: dict[str, list[tuple[str, list[Event]]]] = {
        "known": [(u, []) for u in users],
        "event": [
            (u, [Event(u, items[int(p[0])], "view", now, seq=1)])
            for u, p in zip(users, picks, strict=True)
        ],
        "new": [
            (f"new{j}", [Event(f"new{j}", items[int(i)], "view", now, seq=1) for i in p])
            for j, p in enumerate(picks)
        ],
    }
    out: dict[str, float] = {}
    for case, requests in cases.items():
        for user, events in requests[:5]:  # warm-up
            engine.recommend(user, k, events)
        cpu, wall = [], []
        for user, events in requests:
            c0, w0 = time.thread_time(), time.perf_counter()
            engine.recommend(user, k, events)
            cpu.append(time.thread_time() - c0)
            wall.append(time.perf_counter() - w0)
        out[f"{case}_cpu_ms"] = float(np.median(cpu) * 1000)
        out[f"{case}_wall_ms"] = float(np.median(wall) * 1000)
    out["ann"] = float(engine.info()["retrieval"] == "faiss-hnsw")
    if out["ann"]:
        exact = load_engine(replace(settings, ann_threshold=10**9))
        for case in ("known", "event", "new"):
            hits = [
                len(
                    {r.item_id for r in engine.recommend(u, k, evs).items}
                    & {r.item_id for r in exact.recommend(u, k, evs).items}
                )
                / k
                for u, evs in cases[case]
            ]
            out[f"{case}_recall_vs_exact"] = float(np.mean(hits))
    return out


def build_parser() -> argparse.ArgumentParser:
    ap = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    ap.add_argument("--models", default=",".join(MODELS), help="comma-separated, of: %(default)s")
    ap.add_argument("--calls", type=int, default=300)
    ap.add_argument("--workdir", default=str(Path(tempfile.gettempdir()) / "gemrec-bench-serve"))
    ap.add_argument("--json", help="also write the results here")
    return ap


def main(argv: list[str] | None = None) -> None:
    args = build_parser().parse_args(argv)
    from threadpoolctl import threadpool_limits

    threadpool_limits(1)  # what `gemrec serve` does once per worker (blas_threads=1)
    workdir = Path(args.workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    dataset = load(DATASET)
    results: dict[str, dict[str, float]] = {}
    print(
        f"{'model':12s} {'known':>14s} {'event':>14s} {'new':>14s} {'recall@20':>18s}"
        "   (CPU ms / wall ms, median; ANN lists vs exact)"
    )
    for name in args.models.split(","):
        if name not in MODELS:
            raise SystemExit(f"--models: unknown model {name!r}; expected some of {list(MODELS)}")
        res = time_engine(model_dir(workdir, dataset, name), dataset, args.calls)
        results[name] = res
        cols = [
            f"{res[f'{c}_cpu_ms']:6.2f}/{res[f'{c}_wall_ms']:6.2f}"
            for c in ("known", "event", "new")
        ]
        recall = (
            "/".join(f"{res[f'{c}_recall_vs_exact']:.3f}" for c in ("known", "event", "new"))
            if res["ann"]
            else "exact"
        )
        print(f"{name:12s} " + " ".join(f"{c:>14s}" for c in cols) + f" {recall:>18s}", flush=True)
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
