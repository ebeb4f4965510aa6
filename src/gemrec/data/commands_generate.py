"""``gemrec generate``: write a synthetic shop of any size as partitioned Parquet."""

from __future__ import annotations

import argparse

from gemrec._cli_util import QUIET_TTY_HELP, add_command, add_quiet, show_progress
from gemrec.data.generate import generate_to_parquet

__all__ = ["add_parser"]

HELP = "write a synthetic shop (events as Parquet parts, items, users) in bounded memory"
DESCRIPTION = (
    "Generate the demo shop's model at any size: users with category interests, a long-tailed "
    "catalogue, view -> click -> cart -> purchase funnels in timed sessions. Writes DIR/events/ "
    "(one Parquet part per block of users), DIR/items.parquet, DIR/users.parquet, "
    "DIR/social.parquet (friendships) and "
    "DIR/generate.json; the same options and seed give identical files."
)
EXAMPLE = """examples:
  gemrec generate -o shop --users 20000 --items 10000 --events 1000000 --seed 1
  gemrec import shop/events --format events --items shop/items.parquet \\
      --users shop/users.parquet --social shop/social.parquet -o data/shop
  gemrec generate -o taobao-like --users 1000000 --items 4000000 --events 100000000"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(sub, "generate", help=HELP, description=DESCRIPTION, epilog=EXAMPLE)
    p.add_argument("-o", "--output", required=True, metavar="DIR", help="directory to write")
    p.add_argument("--users", type=int, required=True, metavar="N", help="number of users")
    p.add_argument("--items", type=int, required=True, metavar="M", help="number of items")
    p.add_argument("--events", type=int, required=True, metavar="E", help="about this many events")
    p.add_argument("--categories", type=int, default=20, metavar="C", help="categories (20)")
    p.add_argument("--days", type=int, default=90, metavar="D", help="activity window (90)")
    p.add_argument(
        "--friends-per-user",
        type=float,
        default=4.0,
        metavar="F",
        help="mean friendships a user starts, written to social.parquet (4; 0: none)",
    )
    p.add_argument("--seed", type=int, default=0, help="seed (0)")
    p.add_argument(
        "--part-events",
        type=int,
        default=1_000_000,
        metavar="P",
        help="about this many events per Parquet part; bounds memory (1000000)",
    )
    add_quiet(p, QUIET_TTY_HELP)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    result = generate_to_parquet(
        args.output,
        n_users=args.users,
        n_items=args.items,
        n_events=args.events,
        n_categories=args.categories,
        days=args.days,
        friends_per_user=args.friends_per_user,
        seed=args.seed,
        part_events=args.part_events,
        progress=show_progress(args),
    )
    print(result.summary())
    return 0
