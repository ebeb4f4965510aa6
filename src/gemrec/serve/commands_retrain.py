"""``gemrec retrain``: fold stored online events into the training data and refit the same model.

The new model directory also holds ``serve_ids.npz`` (raw user/item ids in internal order, new users
and items appended in the order the store first saw them) and ``training.json`` with
``events_folded_through_seq``, so the service counts only later events as online state after
``POST /v1/admin/reload``.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import scipy.sparse as sp

from gemrec._cli_util import add_command, add_model_and_dataset
from gemrec.data.event_types import DEFAULT_WEIGHT, weight_table
from gemrec.data.interactions import Interactions
from gemrec.data.store import Dataset
from gemrec.errors import GemrecError
from gemrec.models.base import Recommender

__all__ = ["add_parser", "retrain"]

HELP = "fold stored online events into the data and refit the same model"
DESCRIPTION = (
    "Read the events the service stored, add them to the model's training interactions "
    "as new train edges (new users and items appended), fit the same model class with "
    "the same hyperparameters, and write NEW_MODEL_DIR for POST /v1/admin/reload."
)

EXAMPLE = """example:
  gemrec retrain models/rp3 --dataset data/shop \\
      --events-from sqlite:///models/rp3/events.sqlite3 -o models/rp3-v2
  curl -X POST localhost:8000/v1/admin/reload -H 'Authorization: Bearer KEY' \\
      -d '{"model_dir": "models/rp3-v2"}'"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(sub, "retrain", help=HELP, description=DESCRIPTION, epilog=EXAMPLE)
    add_model_and_dataset(p)
    p.add_argument(
        "--events-from",
        required=True,
        metavar="STORE",
        help="sqlite:///PATH or redis://HOST:PORT/DB",
    )
    p.add_argument("-o", "--output", required=True, metavar="NEW_MODEL_DIR")
    p.set_defaults(func=_run)


def retrain(
    model_dir: str | Path, dataset_dir: str | Path, store_url: str, output: str | Path
) -> dict[str, object]:
    """Fold the store's events into ``model_dir``'s training data, refit, save to ``output``.

    Returns
    -------
    dict
        Summary: events folded/skipped, new users/items, fit seconds.
    """
    from gemrec.serve._engine import Engine
    from gemrec.serve._settings import ServeSettings
    from gemrec.serve._store import open_store

    model_dir, output = Path(model_dir), Path(output)
    if output.resolve() == model_dir.resolve():
        raise GemrecError("-o must name a new directory, not the model being retrained")
    old = Recommender.load(model_dir)
    dataset = Dataset.open(dataset_dir)
    # id maps exactly as the service derives them for this model
    engine = Engine(
        ServeSettings(model_dir=model_dir, dataset_dir=Path(dataset_dir)), old, dataset, model_dir
    )
    user_ids, item_ids = list(engine.user_ids), list(engine.catalogue.item_ids)
    user_index, item_index = dict(engine.user_index), dict(engine.catalogue.index)
    weights = weight_table(dataset.manifest.get("event_weights"))  # as import weighed the graph

    store = open_store(store_url)
    try:
        engine.sync_items(store)  # items added online get ids in the store's order
        for item_id in engine.catalogue.item_ids[len(item_ids) :]:
            item_index[item_id] = len(item_ids)
            item_ids.append(item_id)
        rows, cols, vals = [], [], []
        last_seq, skipped = engine.folded_through_seq, 0
        for e in store.events(after_seq=engine.folded_through_seq):
            last_seq = e.seq
            i = item_index.get(e.item_id)
            if i is None:
                skipped += 1
                continue
            u = user_index.get(e.user_id)
            if u is None:
                u = user_index[e.user_id] = len(user_ids)
                user_ids.append(e.user_id)
            rows.append(u)
            cols.append(i)
            vals.append(weights.get(e.event_type, DEFAULT_WEIGHT))
    finally:
        store.close()
    shape = (len(user_ids), len(item_ids))
    base = sp.csr_matrix(old.interactions_, dtype=np.float32)
    base.resize(shape)
    online = sp.csr_matrix((np.asarray(vals, np.float32), (rows, cols)), shape=shape)
    matrix = (base + online).tocsr()
    matrix.sum_duplicates()
    matrix.sort_indices()
    interactions = Interactions(
        matrix.astype(np.float32), np.asarray(user_ids), np.asarray(item_ids)
    )
    manifest = json.loads((model_dir / "manifest.json").read_text())
    model: Recommender = type(old)(**manifest["params"])
    start = time.perf_counter()
    model.fit(interactions)
    seconds = time.perf_counter() - start
    model.save(output)
    np.savez(
        output / "serve_ids.npz",
        user_ids=np.asarray(user_ids, dtype=str),
        item_ids=np.asarray(item_ids, dtype=str),
    )
    summary: dict[str, object] = {
        "retrained_from": str(model_dir.resolve()),
        "dataset": str(Path(dataset_dir).resolve()),
        "events_from": store_url,
        "events_folded": len(vals),
        "events_skipped_unknown_item": skipped,
        "events_folded_through_seq": last_seq,
        "new_users": len(user_ids) - len(engine.user_ids),
        "new_items": len(item_ids) - old.n_items,
        "fit_seconds": round(seconds, 3),
    }
    (output / "training.json").write_text(json.dumps(summary, indent=2))
    return summary


def _run(args: argparse.Namespace) -> int:
    summary = retrain(args.model, args.dataset, args.events_from, args.output)
    print(
        f"retrained {args.model} with {summary['events_folded']} online events "
        f"({summary['new_users']} new users, {summary['new_items']} new items) -> {args.output}; "
        f"reload with POST /v1/admin/reload"
    )
    return 0
