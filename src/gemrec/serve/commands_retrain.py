"""``gemrec retrain``: fold stored online events into the training data and refit the same model.

The new model directory also holds ``serve_ids.npz`` (raw user/item ids in internal order, new users
and items appended in the order the store first saw them) and ``training.json`` with
``events_folded_through_seq``, so the service counts only later events as online state after
``POST /v1/admin/reload``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import numpy as np

from gemrec._cli_util import add_command, add_model_and_dataset, add_tracking, tracked
from gemrec.data.event_types import DEFAULT_WEIGHT, weight_table
from gemrec.data.interactions import Interactions
from gemrec.data.store import Dataset
from gemrec.errors import GemrecError
from gemrec.models.commands import save_fitted
from gemrec.models.fitting import fit_on_dataset, make_configured
from gemrec.tracking import active_run

__all__ = ["add_parser", "retrain"]

HELP = "fold stored online events into the data and refit the same model"
DESCRIPTION = (
    "Read the events the service stored, add them to the dataset's training data as new "
    "train edges (new users and items appended), fit the same model with the same "
    "hyperparameters exactly as `gemrec train` does, and write NEW_MODEL_DIR for "
    "POST /v1/admin/reload."
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
    add_tracking(p)
    p.set_defaults(func=_run)


def retrain(
    model_dir: str | Path, dataset_dir: str | Path, store_url: str, output: str | Path
) -> dict[str, object]:
    """Fit ``model_dir``'s model again on its dataset plus the store's events; save to ``output``.

    The fit is the one ``gemrec train`` runs (:func:`gemrec.models.fitting.fit_on_dataset`): the
    same hyperparameters as the original ``train`` call, the dataset's train and valid splits, its
    side information, and every online event of the store as extra training edges (users and
    items the dataset lacks are appended in the order the store first saw them). Users forgotten
    online (``DELETE /v1/users/{user_id}``) lose their dataset edges: the store already removed
    their online events.

    Returns
    -------
    dict
        The training record: events folded/skipped, new users/items, fit seconds, ...
    """
    from gemrec.serve._store import open_store

    model_dir, output = Path(model_dir), Path(output)
    if output.resolve() == model_dir.resolve():
        raise GemrecError("-o must name a new directory, not the model being retrained")
    name, params = _model_spec(model_dir)
    dataset = Dataset.open(dataset_dir)
    weights = weight_table(dataset.manifest.get("event_weights"))  # as import weighed the graph
    user_ids, item_ids = list(dataset.user_ids), list(dataset.item_ids)
    user_index, item_index = dict(dataset.user_index), dict(dataset.item_index)

    store = open_store(store_url)
    try:
        # users forgotten online (DELETE /v1/users/...): their offline history leaves the model
        forgotten = [user_index[u] for u in store.forgotten_users() if u in user_index]
        _, records = store.item_changes(0)
        for r in sorted(records, key=lambda r: r.seq):  # items added online, in the store's order
            if r.item_id not in item_index:
                item_index[r.item_id] = len(item_ids)
                item_ids.append(r.item_id)
        rows, cols, vals, times = [], [], [], []
        last_seq, skipped = 0, 0
        for e in store.events(after_seq=0):
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
            times.append(e.timestamp)
    finally:
        store.close()
    timed = dataset.interactions("train").timestamps is not None
    online = Interactions.from_arrays(
        np.asarray(rows, np.int64),
        np.asarray(cols, np.int64),
        np.asarray(vals, np.float32),
        user_ids=np.asarray(user_ids),
        item_ids=np.asarray(item_ids),
        timestamps=np.asarray(times, np.float64) if timed else None,
        first_timestamps=np.asarray(times, np.float64) if timed else None,
    )
    result = fit_on_dataset(
        dataset,
        make_configured(name, params),
        extra=online,
        drop_users=np.asarray(forgotten, np.int64),
    )
    result.record.update(
        {
            "params": params,
            "retrained_from": str(model_dir.resolve()),
            "events_from": store_url,
            "events_folded": len(vals),
            "events_skipped_unknown_item": skipped,
            "events_folded_through_seq": last_seq,
            "new_users": len(user_ids) - dataset.n_users,
            "new_items": len(item_ids) - dataset.n_items,
            "users_forgotten": len(forgotten),
        }
    )
    run = active_run()
    if run is not None:
        run.set_tags({"gemrec.retrained_from": result.record["retrained_from"]})
        run.log_metrics({k: result.record[k] for k in ("events_folded", "new_users", "new_items")})
    save_fitted(result, output)
    np.savez(
        output / "serve_ids.npz",
        user_ids=np.asarray(user_ids, dtype=str),
        item_ids=np.asarray(item_ids, dtype=str),
    )
    return result.record


def _model_spec(model_dir: Path) -> tuple[str, dict[str, Any]]:
    """The model name and the hyperparameters it was first asked to train with."""
    try:
        manifest = json.loads((model_dir / "manifest.json").read_text())
        record_file = model_dir / "training.json"
        record = json.loads(record_file.read_text()) if record_file.is_file() else {}
        name = str(manifest["model"])
        params = dict(record.get("params", manifest["params"]))
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise GemrecError(
            f"{model_dir}: not a gemrec model directory ({type(exc).__name__}: {exc})"
        ) from None
    return name, params


def _run(args: argparse.Namespace) -> int:
    name, _ = _model_spec(Path(args.model))
    with tracked(args, "retrain", name):
        summary = retrain(args.model, args.dataset, args.events_from, args.output)
    print(
        f"retrained {args.model} with {summary['events_folded']} online events "
        f"({summary['new_users']} new users, {summary['new_items']} new items) -> {args.output}; "
        f"reload with POST /v1/admin/reload"
    )
    return 0
