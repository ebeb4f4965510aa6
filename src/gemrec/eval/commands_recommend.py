"""``gemrec recommend``: top-k lists with raw ids, one JSON object per line."""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

from gemrec._cli_util import (
    QUIET_TTY_HELP,
    add_command,
    add_model_and_dataset,
    add_quiet,
    show_progress,
)
from gemrec.data.store import Dataset
from gemrec.errors import DataError, ParameterError
from gemrec.eval.commands import check_compatible
from gemrec.models import get_model_class
from gemrec.models.ann import AUTO_ANN_ITEMS, ANNRecommender, ann_recall, ann_supported
from gemrec.models.base import Recommender

__all__ = ["add_parser", "write_recommendations"]

HELP = "write top-k recommendations as JSON lines"
DESCRIPTION = (
    'Write one JSON object per user: {"user": RAW_ID, "items": [RAW_ID, ...], '
    '"scores": [...]}. Training items are excluded unless --include-seen.'
)

EXAMPLE = """example:
  gemrec recommend models/rp3 --dataset data/gowalla --users test -k 20 -o recs.jsonl
  gemrec recommend models/rp3 --dataset data/shop --users my_users.txt -k 10 -o recs.jsonl
  gemrec recommend models/gf --dataset data/big --users all -k 20 -o recs/ \\
      --engine dask --scheduler tcp://10.0.0.5:8786
  gemrec recommend models/gf --dataset data/shop --users all -k 20 -o recs.jsonl \\
      --ann --ann-candidates 400 --ann-recall-sample 2000"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(sub, "recommend", help=HELP, description=DESCRIPTION, epilog=EXAMPLE)
    add_model_and_dataset(p)
    p.add_argument(
        "--users",
        default="test",
        help="'test' (users with test items), 'all', or a file of raw user ids",
    )
    p.add_argument(
        "--on-unknown",
        choices=["skip", "fail"],
        default="skip",
        help="a --users file id not in the dataset: skip it and report it on stderr (default), "
        "or stop with an error naming its line",
    )
    p.add_argument("-k", type=int, default=20)
    p.add_argument("--include-seen", action="store_true", help="do not exclude training items")
    p.add_argument(
        "-o",
        "--output",
        required=True,
        metavar="FILE",
        help="JSON lines; with --engine dask a directory of Parquet parts "
        "(user_id, rank, item_id, score)",
    )
    p.add_argument(
        "--engine",
        choices=["memory", "dask"],
        default="memory",
        help="memory: score here (default); dask: score blocks of users on a Dask cluster, "
        "resumable (docs/scaling.md)",
    )
    p.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask: scheduler address, e.g. tcp://HOST:8786 (default: a local cluster)",
    )
    p.add_argument(
        "--ann",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="candidates from a faiss index over the model's item factors, re-scored exactly "
        f"(mf, lightgcn, svd, item2vec, content, graphfilter); default: on from "
        f"{AUTO_ANN_ITEMS:,} items for those models, --no-ann scores every item",
    )
    p.add_argument(
        "--ann-candidates",
        type=int,
        default=200,
        metavar="N",
        help="candidates per user from the index (and from graphfilter's sparse part) (200)",
    )
    p.add_argument(
        "--ann-index",
        choices=["hnsw", "ivf"],
        default="hnsw",
        help="faiss index: HNSW graph (default) or IVF cells (docs/scaling.md)",
    )
    p.add_argument(
        "--ann-recall-sample",
        type=int,
        default=0,
        metavar="N",
        help="after writing, measure recall@k of the ANN lists against exact lists on N "
        "sampled users and print it",
    )
    add_quiet(p, QUIET_TTY_HELP)
    p.set_defaults(func=_run)


def _select_users(
    dataset: Dataset, spec: str, on_unknown: str = "fail"
) -> tuple[np.ndarray, list[tuple[int, str]]]:
    """Internal ids for ``--users``: "test" (users with test items), "all", or a file of raw ids.

    The file holds one raw user id per line (surrounding whitespace stripped, as the importer
    does; blank lines skipped); its order is kept. An unknown id is a DataError naming the line
    with ``on_unknown="fail"``; with "skip" it is left out and returned as (line, id).
    """
    if spec == "all":
        return np.arange(dataset.n_users), []
    if spec == "test":
        return dataset.interactions("test").users_with_items(), []
    path = Path(spec)
    if not path.is_file():
        raise ParameterError(f"--users must be 'test', 'all' or an existing file; got {spec!r}")
    index = dataset.user_index
    users = []
    try:
        text = path.read_text(encoding="utf-8")
    except UnicodeDecodeError as exc:
        line_no = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise DataError(
            "not UTF-8 text (expected one raw user id per line)", path=str(path), line=line_no
        ) from None
    unknown: list[tuple[int, str]] = []
    for n, line in enumerate(text.splitlines(), start=1):
        raw = line.strip()
        if not raw:
            continue
        if raw not in index:
            if on_unknown == "fail":
                raise DataError(
                    f"unknown user id {raw!r} (not in the dataset; --on-unknown skip leaves "
                    "such ids out)",
                    path=str(path),
                    line=n,
                )
            unknown.append((n, raw))
            continue
        users.append(index[raw])
    return np.asarray(users, dtype=np.int64), unknown


def write_recommendations(
    model: Recommender,
    dataset: Dataset,
    users: np.ndarray,
    k: int,
    output: str | Path,
    *,
    exclude_seen: bool = True,
    progress: bool = False,
) -> int:
    """Write recommendations for internal ``users`` as JSON lines with raw ids.

    Parameters
    ----------
    model : Recommender
        Fitted on ``dataset`` (same users and items).
    dataset : Dataset
    users : ndarray of int, shape (n,)
        Internal user ids, written in this order.
    k : int
        List length (shorter when fewer items are left after exclusion).
    output : path
        The JSON-lines file: ``{"user": RAW_ID, "items": [RAW_ID, ...], "scores": [...]}`` per line.
    exclude_seen : bool
        Exclude every item of the train and valid splits (what the model could have trained on).
    progress : bool
        Show a progress bar on stderr.

    Returns
    -------
    int
        Lines written.
    """
    check_compatible(model, dataset)
    if isinstance(k, bool) or not isinstance(k, int | np.integer) or k < 1:
        raise ParameterError.invalid("-k", "a positive integer", k)
    user_ids, item_ids = dataset.user_ids, dataset.item_ids
    exclude_all = dataset.interactions("train", "valid").matrix if exclude_seen else None
    output = Path(output)
    # write beside the target and rename at the end: a failure never leaves a truncated file
    # (special files such as /dev/stdout are written directly)
    atomic = not output.exists() or output.is_file()
    target = output.with_name(f".{output.name}.partial") if atomic else output
    try:
        fh = open(target, "w", encoding="utf-8")
    except OSError as exc:
        raise ParameterError(
            f"-o {output}: cannot write the output file: {exc.strerror or exc}"
        ) from None
    blocks: Any = range(0, len(users), 4096)
    if progress:  # only once the output is open: an error must stay a clean one-line message
        from tqdm import tqdm

        blocks = tqdm(blocks, desc="recommend", unit="block", leave=False)
    n = 0
    try:
        with fh:
            for start in blocks:
                block = users[start : start + 4096]
                excl = exclude_all[block] if exclude_all is not None else None
                ids, scores = model.recommend(block, k, exclude_seen=exclude_seen, exclude=excl)
                lines = []
                for u, row_ids, row_scores in zip(block, ids, scores, strict=True):
                    keep = row_ids >= 0
                    row = {
                        "user": str(user_ids[u]),
                        "items": [str(item_ids[i]) for i in row_ids[keep]],
                        # 7 significant digits: all a float32 holds, whatever the score's scale
                        "scores": [float(f"{s:.7g}") for s in row_scores[keep]],
                    }
                    lines.append(json.dumps(row, ensure_ascii=False))
                fh.write("\n".join(lines) + "\n" if lines else "")
                n += len(lines)
        if atomic:
            os.replace(target, output)
    except BaseException:
        if atomic:
            target.unlink(missing_ok=True)
        raise
    return n


def _run(args: argparse.Namespace) -> int:
    if args.k < 1:
        raise ParameterError.invalid("-k", "a positive integer", args.k)
    if args.scheduler is not None and args.engine != "dask":
        raise ParameterError.invalid("--scheduler", "only with --engine dask", args.scheduler)
    if args.ann_candidates < 1:
        raise ParameterError.invalid("--ann-candidates", "a positive integer", args.ann_candidates)
    if args.ann_recall_sample < 0:
        raise ParameterError.invalid(
            "--ann-recall-sample", "a non-negative integer", args.ann_recall_sample
        )
    model = Recommender.load(args.model) if args.engine == "memory" else None
    dataset = Dataset.open(args.dataset)
    users, unknown = _select_users(dataset, args.users, args.on_unknown)
    _report_unknown(args, unknown)
    use_ann = _use_ann(args, dataset)
    if model is None:
        return _run_dask(args, dataset, users, use_ann)
    if use_ann:
        model = ANNRecommender(
            model=model, n_candidates=args.ann_candidates, index=args.ann_index
        ).build()
        print(
            f"ANN index ({args.ann_index}) over {model.n_items:,} items built in "
            f"{model.build_seconds_:.1f}s"
        )
    start = time.perf_counter()
    n = write_recommendations(
        model,
        dataset,
        users,
        args.k,
        args.output,
        exclude_seen=not args.include_seen,
        progress=show_progress(args),
    )
    seen = "training items included" if args.include_seen else "training items excluded"
    print(
        f"wrote {n} users' top-{args.k} lists ({seen}) to {args.output} "
        f"in {time.perf_counter() - start:.1f}s"
    )
    if isinstance(model, ANNRecommender) and args.ann_recall_sample:
        sample = _recall_sample(users, args.ann_recall_sample)
        exclude = None
        if not args.include_seen:
            exclude = dataset.interactions("train", "valid").matrix[sample]
        recall = ann_recall(
            model, sample, args.k, exclude_seen=not args.include_seen, exclude=exclude
        )
        _print_recall(args.k, len(sample), recall)
    return 0


def _use_ann(args: argparse.Namespace, dataset: Dataset) -> bool:
    """Whether to retrieve through an ANN index: ``--ann``/``--no-ann``, else by catalogue size.

    Prints the choice when it was made automatically.
    """
    manifest = json.loads((Path(args.model) / "manifest.json").read_text(encoding="utf-8"))
    supported = ann_supported(get_model_class(manifest["model"]))
    if args.ann and not supported:
        raise ParameterError.invalid(
            "--ann",
            "a model whose scores are an inner product of its factors, alone or plus a sparse "
            "part (mf, lightgcn, svd, item2vec, content, graphfilter)",
            manifest["model"],
        )
    use = supported and dataset.n_items >= AUTO_ANN_ITEMS if args.ann is None else args.ann
    if args.ann is None and use:
        print(
            f"ANN retrieval chosen automatically ({dataset.n_items:,} items >= "
            f"{AUTO_ANN_ITEMS:,}; --no-ann scores every item)"
        )
    if args.ann_recall_sample and not use:
        raise ParameterError.invalid(
            "--ann-recall-sample", "only with ANN retrieval (--ann)", args.ann_recall_sample
        )
    return bool(use)


def _recall_sample(users: np.ndarray, n: int) -> np.ndarray:
    """``n`` of ``users`` drawn without replacement (seeded), sorted."""
    rng = np.random.default_rng(0)
    return np.sort(rng.choice(users, size=min(n, len(users)), replace=False))


def _print_recall(k: int, n: int, recall: float) -> None:
    print(f"ANN recall@{k} against exact top-{k} on {n:,} sampled users: {recall:.4f}")


def _report_unknown(args: argparse.Namespace, unknown: list[tuple[int, str]]) -> None:
    if not unknown:
        return
    shown = ", ".join(f"{raw!r} (line {n})" for n, raw in unknown[:5])
    more = f" and {len(unknown) - 5} more" if len(unknown) > 5 else ""
    print(
        f"gemrec recommend: skipped {len(unknown)} user id(s) of {args.users} not in the "
        f"dataset: {shown}{more}",
        file=sys.stderr,
    )


def _run_dask(args: argparse.Namespace, dataset: Dataset, users: np.ndarray, use_ann: bool) -> int:
    from gemrec.data.import_dask import dask_client
    from gemrec.scale.scoring import AnnSettings, ann_recall_task, recommend_dask

    ann = AnnSettings(args.ann_candidates, args.ann_index) if use_ann else None
    with dask_client(args.scheduler) as client:
        result = recommend_dask(
            args.model,
            dataset.path,
            users,
            args.k,
            args.output,
            client=client,
            exclude_seen=not args.include_seen,
            progress=show_progress(args),
            ann=ann,
        )
        print(result.summary())
        if ann is not None and args.ann_recall_sample:
            sample = _recall_sample(users, args.ann_recall_sample)
            recall = client.submit(
                ann_recall_task,
                str(args.model),
                str(dataset.path),
                sample,
                args.k,
                ann,
                not args.include_seen,
                pure=False,
            ).result()
            _print_recall(args.k, len(sample), float(recall))
    return 0
