"""``gemrec demo``: the main job end to end on a built-in synthetic shop (no download).

generate shop -> import -> analyze -> train models -> evaluate -> show users -> replay a session
against the in-process service.
"""

from __future__ import annotations

import argparse
import os
import time
from pathlib import Path

import numpy as np

from gemrec._cli_util import add_command, add_tracking
from gemrec.cli import main as cli_main
from gemrec.data.store import Dataset
from gemrec.eval.commands import evaluate_on_dataset, format_table
from gemrec.eval.evaluate import EvaluationResult
from gemrec.models.base import EmbeddingRecommender
from gemrec.models.commands import fit_dataset
from gemrec.tracking import TRACKING_URI_ENV, record_run

__all__ = ["add_parser", "run_demo"]

#: a short, fast-annealing version of lightgcn's shipped schedule (larger batch and rate, 40 epochs)
DEMO_LIGHTGCN: dict[str, object] = {
    "embedding_dim": 64,
    "epochs": 40,
    "lr": 0.06,
    "lr_decay": 0.9,
    "train_batch_size": 65536,
    "progress": False,
}
#: models trained by the demo, with small settings so the whole demo takes a few minutes on 2 cores
DEMO_MODELS: dict[str, dict[str, object]] = {
    "pop": {},
    "itemknn": {},
    "userknn": {},
    "rp3beta": {},
    "graphfilter": {},
    "mf": {"epochs": 30, "progress": False},
    "lightgcn": DEMO_LIGHTGCN,
    # "auto" draws 29 walks per item on this shop; 10 keep the demo within a few minutes
    "item2vec": {"walks_per_item": 10},
    # its lightgcn channel on the same short schedule (the fusion default is lightgcn's own)
    "fusion": {"channel_params": {"lightgcn": DEMO_LIGHTGCN}},
}


HELP = "run the whole pipeline on a built-in synthetic shop"
DESCRIPTION = "Generate a synthetic shop, import, analyze, train, evaluate, and replay a session."
EXAMPLE = "example:\n  gemrec demo --output demo-output"


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(sub, "demo", help=HELP, description=DESCRIPTION, epilog=EXAMPLE)
    p.add_argument("--output", default="demo-output", metavar="DIR")
    p.add_argument("--seed", type=int, default=7)
    p.add_argument("--users", type=int, default=2000, help="synthetic shop size (users)")
    add_tracking(p)  # the demo's default store is DIR/mlflow.db
    p.set_defaults(
        func=lambda a: run_demo(
            Path(a.output),
            seed=a.seed,
            n_users=a.users,
            tracking_uri=a.tracking_uri,
            track=not a.no_track,
        )
    )


def _step(title: str) -> float:
    print(f"\n== {title}", flush=True)
    return time.perf_counter()


def run_demo(
    output: Path,
    *,
    seed: int = 7,
    n_users: int = 2000,
    tracking_uri: str | None = None,
    track: bool = True,
) -> int:
    """Run the demo into ``output``; each model's training and evaluation is one MLflow run in
    ``tracking_uri`` (default ``$GEMREC_TRACKING_URI``, else ``output/mlflow.db``)."""
    from gemrec.data.synthetic import generate_shop, write_shop

    output = output.resolve()
    uri = tracking_uri or os.environ.get(TRACKING_URI_ENV) or f"sqlite:///{output / 'mlflow.db'}"
    output.mkdir(parents=True, exist_ok=True)
    raw, data_dir, report_dir = output / "raw", output / "dataset", output / "report"

    t = _step("1. synthetic shop")
    shop = generate_shop(n_users=n_users, seed=seed)
    write_shop(shop, raw)
    print(
        f"{len(shop.events)} events, {len(shop.items)} items, {len(shop.users)} users -> {raw} "
        f"({time.perf_counter() - t:.1f}s)"
    )

    _step("2. import")
    rc = cli_main(
        [
            "import",
            str(raw / "events.csv"),
            "--format",
            "events",
            "-o",
            str(data_dir),
            "--items",
            str(raw / "items.csv"),
            "--users",
            str(raw / "users.csv"),
            "--social",
            str(raw / "social.csv"),
            "--split",
            "temporal",
            "--seed",
            str(seed),
        ]
    )
    if rc:
        return rc
    dataset = Dataset.open(data_dir)

    _step("3. behaviour analysis")
    from gemrec.analysis.report import analyze_dataset, describe

    summary = analyze_dataset(dataset, report_dir)
    print(describe(summary))
    print(f"report: {report_dir / 'index.html'} (profiles.parquet, summary.json beside it)")

    _step("4. train and evaluate")
    results: dict[str, EvaluationResult] = {}
    recorded = False  # whether any run reached the tracking store
    models = {}
    for name, params in DEMO_MODELS.items():
        t = time.perf_counter()
        with record_run(
            "demo", uri=uri, enabled=track, name=f"demo {name}", tags={"gemrec.model": name}
        ) as run:
            recorded = recorded or run is not None
            fitted = fit_dataset(dataset, name, params, output / "models" / name)
            model = fitted.model
            results[name] = evaluate_on_dataset(model, dataset, [10, 20])
        models[name] = model
        print(
            f"  {name:<12} trained + evaluated in {time.perf_counter() - t:5.1f}s  "
            f"recall@20 {results[name]['recall@20']:.4f}",
            flush=True,
        )
        tuning = fitted.record.get("tuning")
        if tuning is not None:  # training-free models tune their knobs by default
            chosen = fitted.record["params"]
            settings = ", ".join(
                f"{k}={chosen[k]:.3g}" if isinstance(chosen[k], float) else f"{k}={chosen[k]}"
                for k in tuning["trials"][0]["params"]
            )
            print(f"{'':15}tuned on {tuning['split']}: {settings}", flush=True)
    print()
    print(format_table(results, [20]))

    best = max(results, key=lambda n: results[n]["ndcg@20"])
    _step(f"5. a few users: history next to recommendations ({best})")
    _show_users(dataset, models[best], n=3, seed=seed)

    # the service's interest update mixes the session into the user's embedding: replay with the
    # best model that has embeddings
    embedded = [n for n in results if isinstance(models[n], EmbeddingRecommender)]
    live = max(embedded, key=lambda n: results[n]["ndcg@20"]) if embedded else best
    _step(f"6. real-time: replay a shopping session against the in-process service ({live})")
    _replay(output / "models" / live, dataset, output / "serve-state", seed=seed)

    from gemrec._optional import is_available

    if is_available("sentence_transformers"):
        _step("7. a brand-new item known by its title alone (content model, item text)")
        model_dir = output / "models" / "content"
        fit_dataset(dataset, "content", {}, model_dir)
        _new_item(model_dir, dataset, output / "serve-state")

    print(
        f"\noutputs: dataset {data_dir}\n         report  {report_dir / 'index.html'}\n"
        f"         models  {output / 'models'}"
    )
    if recorded:
        print(f"         runs    mlflow ui --backend-store-uri {uri}")
    print(
        f"\nconsole: gemrec serve {output / 'models' / live} --dataset {data_dir} "
        f"--store sqlite:///{output / 'serve-state' / 'events.sqlite3'} --report {report_dir}\n"
        "         then open http://127.0.0.1:8000/ui/ (Runs compares two of "
        f"{output / 'models'}/*)"
    )
    return 0


def _replay(model_dir: Path, dataset: Dataset, state_dir: Path, seed: int) -> None:
    """Post a short session (views in one category, then a cart and a purchase) for one user and
    print how that user's list moves after each event."""
    import warnings

    # starlette's TestClient warns about its httpx backend on import; irrelevant to a demo
    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    from gemrec.serve import ServeSettings, create_app, format_replay, replay_session

    state_dir.mkdir(parents=True, exist_ok=True)
    db = state_dir / "events.sqlite3"
    db.unlink(missing_ok=True)
    settings = ServeSettings(model_dir=model_dir, dataset_dir=dataset.path, store=f"sqlite:///{db}")
    train = dataset.interactions("train", "valid").matrix
    rng = np.random.default_rng(seed)
    user = int(rng.choice(np.flatnonzero(np.diff(train.indptr) >= 3)))
    items = dataset.items
    # a category the user has not touched yet, so the shift is visible
    seen_cats = set(items["category"].iloc[train[user].indices].astype(str))
    pool = items[~items["category"].astype(str).isin(seen_cats)]
    category = str(pool["category"].value_counts().index[0])
    picks = pool[pool["category"].astype(str) == category]["item_id"].astype(str).head(4).tolist()
    events = [
        {"item_id": picks[0], "event_type": "view"},
        {"item_id": picks[1], "event_type": "view"},
        {"item_id": picks[2], "event_type": "cart"},
        {"item_id": picks[2], "event_type": "purchase"},
    ]
    print(f"user {dataset.user_ids[user]} browses category {category!r} for the first time:")
    steps = replay_session(create_app(settings), str(dataset.user_ids[user]), events, k=10)
    print(format_replay(steps))
    cat_of = dict(zip(items["item_id"].astype(str), items["category"].astype(str), strict=True))
    shares = [sum(cat_of.get(r["item_id"]) == category for r in recs["items"]) for _, recs in steps]
    print(f"{category!r} items in the top 10 after each step: {' -> '.join(map(str, shares))}")


#: titles of brand-new items for the demo's text step, by category: the first category the shop
#: has is used (like the shop's own titles, each names its category among words of its own)
NEW_ITEM_TITLES = {
    "kitchen": "cast iron kitchen skillet",
    "garden": "garden watering can with a long spout",
    "music": "music stand and acoustic guitar strings",
    "books": "books: paperback mystery novel",
    "shoes": "leather running shoes",
    "electronics": "wireless bluetooth earbuds (electronics)",
}


def _new_item(model_dir: Path, dataset: Dataset, state_dir: Path) -> None:
    """Post an item with only a title to the service; print its similar items and where it
    lands in the lists of the users who buy most in its category."""
    import warnings

    warnings.filterwarnings("ignore", message=".*starlette.testclient.*")
    from fastapi.testclient import TestClient

    from gemrec.serve import ServeSettings, create_app

    cats = dataset.items["category"].astype(str).to_numpy()
    category = next((c for c in NEW_ITEM_TITLES if (cats == c).any()), None)
    if category is None:
        return
    title = NEW_ITEM_TITLES[category]
    train = dataset.interactions("train", "valid").matrix.astype(bool).astype(np.float32)
    counts = np.diff(train.indptr)
    share = (train @ (cats == category).astype(np.float32)) / np.maximum(counts, 1)
    # the 20 users with 5+ items most into the category
    fans = np.argsort(-np.where(counts >= 5, share, -1.0), kind="stable")[:20]
    state_dir.mkdir(parents=True, exist_ok=True)
    db = state_dir / "new-item.sqlite3"
    db.unlink(missing_ok=True)
    settings = ServeSettings(model_dir=model_dir, dataset_dir=dataset.path, store=f"sqlite:///{db}")
    cat_of = dict(zip(dataset.items["item_id"].astype(str), cats, strict=True))
    with TestClient(create_app(settings)) as client:
        client.post("/v1/items", json={"items": [{"item_id": "new-item", "title": title}]})
        sim = client.get("/v1/items/new-item/similar", params={"k": 5}).json()["items"]
        lists = {
            int(u): [
                r["item_id"]
                for r in client.get(
                    f"/v1/users/{dataset.user_ids[u]}/recommendations", params={"k": 20}
                ).json()["items"]
            ]
            for u in fans
        }
    print(f"POST /v1/items {{'item_id': 'new-item', 'title': {title!r}}}")
    print("similar items: " + ", ".join(f"{r['item_id']} [{cat_of[r['item_id']]}]" for r in sim))
    listed = {u: ids.index("new-item") + 1 for u, ids in lists.items() if "new-item" in ids}
    print(
        f"in the top 20 of {len(listed)} of the {len(fans)} users most into {category!r}"
        if listed
        else f"not in the top 20 of the {len(fans)} users most into {category!r}"
    )
    for u, pos in sorted(listed.items(), key=lambda x: x[1])[:3]:
        ahead = ", ".join(sorted({cat_of[i] for i in lists[u][: pos - 1]}))
        print(
            f"  user {dataset.user_ids[u]} ({share[u]:.0%} {category}, {int(counts[u])} items): "
            f"position {pos}, after {pos - 1} items of {ahead or 'nothing'}"
        )


def _show_users(dataset: Dataset, model: object, n: int, seed: int) -> None:
    from gemrec.models.base import Recommender

    assert isinstance(model, Recommender)
    train = dataset.interactions("train", "valid").matrix
    test = dataset.interactions("test").matrix
    rng = np.random.default_rng(seed)
    users = rng.choice(np.flatnonzero(np.diff(test.indptr) > 0), size=n, replace=False)
    items = dataset.items
    label = items["category"].astype(str).to_numpy() if "category" in items else None
    ids, _ = model.recommend(users, 5)
    for u, rec in zip(users, ids, strict=True):
        hist = train[u].indices[:8]
        held = set(test[u].indices.tolist())

        def fmt(i: int) -> str:
            tag = f" [{label[i]}]" if label is not None else ""
            return f"{dataset.item_ids[i]}{tag}"

        print(f"user {dataset.user_ids[u]}")
        print(f"  history: {', '.join(fmt(i) for i in hist)}{' ...' if train[u].nnz > 8 else ''}")
        print(
            f"  recs:    {', '.join(fmt(i) + (' *' if i in held else '') for i in rec if i >= 0)}"
        )
    print("  (* = bought/viewed later, in the test period)")
