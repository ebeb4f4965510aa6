"""``gemrec import``: turn behaviour logs or benchmark files into a dataset directory."""

from __future__ import annotations

import argparse

from gemrec._cli_util import add_command, add_quiet, show_progress
from gemrec.data.importer import import_dataset
from gemrec.data.readers import FORMATS
from gemrec.data.splits import SPLIT_METHODS

__all__ = ["add_parser"]

HELP = "validate, clean and split behaviour logs into a dataset directory"
DESCRIPTION = (
    "Read SOURCE files (or directories), validate every row, drop duplicates, weight "
    "behaviours, split train/valid/test and write DATASET_DIR (Parquet + manifest.json)."
)

EXAMPLE = """examples:
  gemrec import shop/events.csv --format events -o data/shop \\
      --items shop/items.csv --users shop/users.csv --social shop/friends.csv \\
      --columns user_id=uid,item_id=sku --weights view=1,purchase=10 --split temporal
  gemrec import ../shared/data/gowalla --format lightgcn -o data/gowalla
  gemrec import ../shared/data/taobao-userbehavior-sample/UserBehavior_prefix.csv --format taobao \\
      -o data/taobao --split leave-last --half-life-days 3 --on-error skip
  gemrec import ../shared/data/amazon-scientific-text --format recbole -o data/sci-cold \\
      --split cold-items --test-fraction 0.2
  gemrec import ../shared/data/ciao --format ciao -o data/ciao --split cold-users
  gemrec import shop/events --format events --items shop/items.parquet \\
      --users shop/users.parquet -o data/big --engine duckdb --memory-limit 8GB
  gemrec import shop/events --format events -o data/big --engine dask \\
      --scheduler tcp://10.0.0.5:8786

formats:
  events     CSV/TSV, JSONL or Parquet logs with user_id, item_id, event_type, timestamp
             (epoch s, epoch ms or ISO 8601) and optional value, event_id
  lightgcn   directory with train.txt/test.txt (`user item item ...`); the split is kept
  movielens  ML-100K (u.data, u.item, u.user) or ML-1M (ratings.dat, movies.dat, users.dat)
  taobao     UserBehavior CSV user,item,category,behavior,timestamp (pv/cart/fav/buy)
  lastfm     HetRec user_artists.dat (play counts), user_friends.dat, artists.dat
  recbole    RecBole atomic files NAME.inter (or NAME.train/.valid/.test.inter, kept as the
             split), NAME.user, NAME.item, NAME.text (item text), NAME.net (social)
  ciao       Ciao .mat files: rating_with_timestamp.mat or rating.mat, trustnetwork.mat

See docs/data-formats.md for the dataset directory layout."""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(sub, "import", help=HELP, description=DESCRIPTION, epilog=EXAMPLE)
    p.add_argument("sources", nargs="+", metavar="SOURCE", help="input file(s) or directory")
    p.add_argument("--format", required=True, choices=sorted(FORMATS), help="source format")
    p.add_argument(
        "-o", "--output", required=True, metavar="DATASET_DIR", help="dataset directory to write"
    )
    side = p.add_argument_group("side tables (CSV/TSV/JSONL/Parquet with a header)")
    side.add_argument(
        "--items",
        metavar="F",
        help="item metadata: item_id + category, brand, title, price, tags ...",
    )
    side.add_argument("--users", metavar="F", help="user metadata: user_id + any columns")
    side.add_argument("--social", metavar="F", help="social edges: user_id, friend_id")
    clean = p.add_argument_group("validation and cleaning")
    clean.add_argument(
        "--columns",
        action="append",
        metavar="CANON=NAME,...",
        help="map source column names, e.g. user_id=uid,item_id=sku,event_type=action,timestamp=ts",
    )
    clean.add_argument(
        "--on-error",
        choices=["fail", "skip"],
        default="fail",
        help="fail: stop at the first bad row, write nothing (default); skip: write rejected.csv",
    )
    clean.add_argument(
        "--weights",
        action="append",
        metavar="TYPE=W,...",
        help="event type weights (defaults view=1,click=2,fav=3,cart=4,purchase=5); "
        "other types are bad rows",
    )
    clean.add_argument(
        "--weight-by-value",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="multiply each event's weight by its value (default: on for lastfm play counts)",
    )
    clean.add_argument(
        "--half-life-days", type=float, metavar="D", help="exponential time decay of event weights"
    )
    clean.add_argument(
        "--min-user-interactions",
        type=int,
        default=0,
        metavar="N",
        help="k-core: distinct items per user",
    )
    clean.add_argument(
        "--min-item-interactions",
        type=int,
        default=0,
        metavar="N",
        help="k-core: distinct users per item",
    )
    clean.add_argument(
        "--min-value",
        type=float,
        metavar="X",
        help="keep only events with value >= X (e.g. 4: MovieLens ratings 4-5 as positives)",
    )
    sp = p.add_argument_group("splits")
    sp.add_argument(
        "--split",
        choices=SPLIT_METHODS,
        default=None,
        help="predefined (default for lightgcn and split RecBole files), random per-user holdout "
        "(default otherwise), temporal global cut, leave-last per user, cold-items / cold-users "
        "(every interaction of a share of the items / users is test), none",
    )
    sp.add_argument(
        "--test-fraction",
        type=float,
        default=0.2,
        metavar="F",
        help="random/temporal test share; cold-items/cold-users: share of the items/users (0.2)",
    )
    sp.add_argument(
        "--test-after", metavar="TIME", help="temporal: explicit cut (epoch or ISO 8601)"
    )
    sp.add_argument(
        "--leave-n", type=int, default=1, metavar="N", help="leave-last: edges per user in test (1)"
    )
    sp.add_argument(
        "--valid-fraction",
        type=float,
        default=None,
        metavar="F",
        help="per-user share of train kept for tuning (0.1); cold-items/cold-users: share of the "
        "items/users held out for tuning (default none)",
    )
    sp.add_argument(
        "--valid-latest",
        action="store_true",
        help="carve valid from each user's latest train edges (by time, or by the source's own "
        "order: a LightGCN file whose lines keep each user's order) whatever the test split",
    )
    sp.add_argument("--seed", type=int, default=0, help="seed of every random choice (0)")
    scale = p.add_argument_group("logs larger than memory (format events; see docs/scaling.md)")
    scale.add_argument(
        "--engine",
        choices=["memory", "duckdb", "dask"],
        default="memory",
        help="memory: the whole log in memory (default); duckdb: part by part in bounded memory "
        "on this machine; dask: part by part on a Dask cluster. Same dataset either way; "
        "an interrupted duckdb/dask run resumes from its finished parts",
    )
    scale.add_argument(
        "--scheduler",
        metavar="ADDRESS",
        help="dask: scheduler address, e.g. tcp://HOST:8786 (default: a local cluster)",
    )
    scale.add_argument(
        "--memory-limit",
        default="4GB",
        metavar="SIZE",
        help="duckdb: memory it may hold before spilling to disk (4GB)",
    )
    add_quiet(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    result = import_dataset(
        args.sources,
        args.output,
        format=args.format,
        items=args.items,
        users=args.users,
        social=args.social,
        columns=args.columns,
        on_error=args.on_error,
        weights=args.weights,
        weight_by_value=args.weight_by_value,
        half_life_days=args.half_life_days,
        min_user_interactions=args.min_user_interactions,
        min_item_interactions=args.min_item_interactions,
        min_value=args.min_value,
        split=args.split,
        test_fraction=args.test_fraction,
        valid_fraction=args.valid_fraction,
        valid_latest=args.valid_latest,
        leave_n=args.leave_n,
        test_after=args.test_after,
        seed=args.seed,
        progress=show_progress(args),
        engine=args.engine,
        scheduler=args.scheduler,
        memory_limit=args.memory_limit,
    )
    r = result.report
    if args.on_error == "skip":
        print(
            f"rows read {r.rows_read:,} / accepted {r.accepted:,} / rejected {r.rejected:,} / "
            f"deduplicated {r.deduplicated:,}"
            + (f" (rejected rows in {result.path / 'rejected.csv'})" if r.rejected else "")
        )
    print(result.summary())
    return 0
