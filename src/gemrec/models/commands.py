"""``gemrec train``."""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from gemrec.data.store import Dataset
from gemrec.errors import ConfigError, GemrecError, ParameterError
from gemrec.models import MODELS, get_model_class
from gemrec.models.base import Recommender
from gemrec.settings import load_config, parse_assignments

__all__ = ["add_parser", "train_model"]

EXAMPLE = """example:
  gemrec train data/gowalla --model rp3beta --set alpha=0.8 --set beta=0.3 -o models/rp3
  gemrec train data/shop --model lightgcn --config lightgcn.toml -o models/lgn"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = sub.add_parser(
        "train",
        help="train a model on a dataset directory",
        description="Fit a recommender on the train (+ valid) split of DATASET_DIR and save it.",
        epilog=EXAMPLE,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("dataset", metavar="DATASET_DIR")
    # not argparse ``choices``: an unknown name must be a one-line error, not a usage dump
    p.add_argument(
        "--model", required=True, metavar="NAME", help=f"model name: {', '.join(sorted(MODELS))}"
    )
    p.add_argument(
        "--set", action="append", metavar="KEY=VALUE", help="hyperparameter (repeatable)"
    )
    p.add_argument("--config", metavar="FILE", help="TOML file of hyperparameters")
    p.add_argument("-o", "--output", required=True, metavar="MODEL_DIR")
    p.set_defaults(func=_run)


def train_model(
    dataset: Dataset, model_name: str, params: dict[str, object], output: str | Path | None = None
) -> Recommender:
    """Fit ``model_name`` on ``dataset`` and (optionally) save it with its training record.

    Models that early-stop (``uses_validation``) are fit on the train split and watch the valid
    split; all others are fit on train + valid, as the published protocols do.
    """
    klass = get_model_class(model_name)
    model = klass(**params)
    start = time.perf_counter()
    extra: dict[str, object] = {}
    if getattr(klass, "uses_item_categories", False):  # e.g. fusion's category features
        extra["item_categories"] = dataset.item_categories()
    if (
        getattr(klass, "uses_validation", False)
        and dataset.manifest["counts"]["splits"]["valid"] > 0
    ):
        model.fit(dataset.interactions("train"), valid=dataset.interactions("valid"), **extra)
    else:
        model.fit(dataset.interactions("train", "valid"), **extra)
    seconds = time.perf_counter() - start
    if output is not None:
        try:
            out = model.save(output)
        except OSError as exc:
            raise ConfigError(
                f"-o {output}: cannot write the model directory: {exc.strerror or exc}"
            ) from None
        record = {
            "dataset": str(Path(dataset.path).resolve()),
            "dataset_fingerprint": dataset.manifest.get("fingerprint"),
            "fit_seconds": round(seconds, 3),
        }
        (out / "training.json").write_text(json.dumps(record, indent=2))
    return model


def _run(args: argparse.Namespace) -> int:
    klass = get_model_class(args.model)
    allowed = set(klass._param_names())
    params: dict[str, object] = {}
    if args.config:
        cfg = load_config(args.config, allowed | {"model"})
        cfg_model = cfg.pop("model", args.model)
        if cfg_model != args.model:
            raise ConfigError(
                f"{args.config}: model = {cfg_model!r} does not match --model {args.model}; "
                "use the config's model or drop its 'model' key"
            )
        params.update(cfg)
    overrides = parse_assignments(args.set)
    unknown = sorted(set(overrides) - allowed)
    if unknown:
        raise ConfigError(
            f"--set: model '{args.model}' has no parameter {', '.join(unknown)}; "
            f"valid: {', '.join(sorted(allowed))}"
        )
    params.update(overrides)
    try:  # fail on a bad value before loading (possibly large) data
        klass(**params)._validate_params()
    except GemrecError:
        raise
    except (TypeError, ValueError) as exc:
        raise ParameterError(f"model '{args.model}': invalid hyperparameters ({exc})") from None
    dataset = Dataset.open(args.dataset)
    start = time.perf_counter()
    model = train_model(dataset, args.model, params, args.output)
    print(
        f"trained {args.model} on {dataset.path} ({model.n_users} users, {model.n_items} items) "
        f"in {time.perf_counter() - start:.1f}s -> {args.output}"
    )
    return 0
