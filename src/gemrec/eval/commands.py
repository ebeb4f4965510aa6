"""``gemrec evaluate``."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from gemrec._cli_util import add_command, add_model_and_dataset, add_tracking, tracked
from gemrec.data.store import Dataset
from gemrec.errors import GemrecError
from gemrec.eval.evaluate import EvaluationResult, evaluate
from gemrec.eval.protocols import protocol_of
from gemrec.models.base import Recommender
from gemrec.tracking import active_run

__all__ = ["add_parser", "evaluate_on_dataset", "format_table"]

HELP = "full-ranking evaluation of a trained model on the test split"
DESCRIPTION = (
    "Rank all items for every test user (training items excluded) and report metrics. On a "
    "dataset imported with --split cold-items only the held-out (cold) items are ranked; with "
    "--split cold-users the test users have no training history. The output says which."
)

EXAMPLE = """example:
  gemrec evaluate models/rp3 --dataset data/gowalla -k 10 20 50
  gemrec evaluate models/rp3 --dataset data/gowalla --json > metrics.json"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(sub, "evaluate", help=HELP, description=DESCRIPTION, epilog=EXAMPLE)
    add_model_and_dataset(p)
    p.add_argument(
        "-k",
        dest="ks",
        type=int,
        nargs="+",
        action="extend",
        metavar="K",
        help="cut-off(s): -k 10 20 or -k 10 -k 20 (default 20)",
    )
    p.add_argument(
        "--split", default="test", choices=["test", "valid"], help="split to evaluate on"
    )
    p.add_argument("--json", action="store_true", help="print metrics as JSON")
    add_tracking(p)
    p.set_defaults(func=_run)


def check_compatible(model: Recommender, dataset: Dataset) -> None:
    """Raise a one-line GemrecError unless ``model`` was fit on ``dataset``'s id space."""
    if (model.n_users, model.n_items) != (dataset.n_users, dataset.n_items):
        raise GemrecError(
            f"model has {model.n_users} users x {model.n_items} items but dataset "
            f"{dataset.path} has {dataset.n_users} x {dataset.n_items}: "
            "use the dataset the model was trained on"
        )


def evaluate_on_dataset(
    model: Recommender, dataset: Dataset, ks: list[int], split: str = "test", progress: bool = False
) -> EvaluationResult:
    """Evaluate on ``split``; everything the model could have trained on is excluded.

    The dataset's split method decides the protocol (:func:`gemrec.eval.protocols.protocol_of`):
    on a cold-items split only the cold items of ``split`` are ranked. Inside a tracked command
    (:func:`gemrec.tracking.record_run`) the run records every figure as ``<split>/<metric>_at_<k>``
    (``test/recall_at_20``).
    """
    check_compatible(model, dataset)
    train_splits = ("train", "valid") if split == "test" else ("train",)
    exclude = dataset.interactions(*train_splits)
    result = evaluate(
        model,
        dataset.interactions(split),
        ks=ks,
        exclude=exclude,
        item_categories=dataset.item_categories(),
        candidates=protocol_of(dataset, split).candidates,
        progress=progress,
    )
    run = active_run()
    if run is not None:  # metrics at each k, e.g. recall_at_20, under the split's name
        run.set_tags({"gemrec.dataset": str(Path(dataset.path).resolve())})
        run.log_metrics({f"{split}/{k}": v for k, v in result.as_dict().items()})
    return result


def format_table(rows: dict[str, EvaluationResult], ks: list[int]) -> str:
    """A plain-text table: one row per model, Recall/NDCG/Precision/HitRate per K."""
    cols = [f"{m}@{k}" for k in ks for m in ("recall", "ndcg", "precision", "hitrate", "coverage")]
    width = max([len(n) for n in rows] + [5])
    lines = [f"{'model':<{width}}  " + "  ".join(f"{c:>12}" for c in cols)]
    for name, res in rows.items():
        d = res.as_dict()
        lines.append(f"{name:<{width}}  " + "  ".join(f"{d[c]:>12.4f}" for c in cols))
    return "\n".join(lines)


def _run(args: argparse.Namespace) -> int:
    ks = args.ks or [20]
    model = Recommender.load(args.model)
    dataset = Dataset.open(args.dataset)
    with tracked(args, "evaluate", model.name) as run:
        if run is not None:
            run.set_tags({"gemrec.model_dir": str(Path(args.model).resolve())})
            run.log_params({"k": " ".join(map(str, ks)), "split": args.split})
        result = evaluate_on_dataset(
            model, dataset, ks, args.split, progress=not args.json and sys.stderr.isatty()
        )
    protocol = protocol_of(dataset, args.split)
    if args.json:
        report = {"model": model.name, "split": args.split, "protocol": protocol.as_dict()}
        print(json.dumps({**report, **result.as_dict()}, indent=2))
    else:
        print(format_table({model.name: result}, ks))
        print(f"evaluated {result.n_users} users on the {args.split} split of {dataset.path}")
        if protocol.describe():
            print(protocol.describe())
    return 0
