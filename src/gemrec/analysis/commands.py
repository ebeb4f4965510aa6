"""``gemrec analyze``."""

from __future__ import annotations

import argparse

from gemrec._cli_util import add_command, add_quiet
from gemrec.analysis.report import analyze_dataset

__all__ = ["add_parser"]

HELP = "behaviour analysis report (user profiles, funnel, long tail, retention)"
DESCRIPTION = (
    "Profile every user (behaviour counts, sessions, RFM, category interests, funnel "
    "conversion, active hours) and the population (popularity long tail, activity by time, "
    "funnel, session lengths, cohort retention). Writes index.html, summary.json, "
    "profiles.parquet and the plots as plots/*.png to REPORT_DIR."
)

EXAMPLE = """example:
  gemrec analyze data/taobao -o reports/taobao
  gemrec analyze data/taobao -o reports/taobao --session-gap-minutes 60 --utc-offset-hours 8
then open reports/taobao/index.html in a browser (profiles.parquet, summary.json, plots/ beside
it), or show it in the service's console:
  gemrec serve MODEL_DIR --dataset data/taobao --report reports/taobao"""


def add_parser(sub: argparse._SubParsersAction) -> None:  # type: ignore[type-arg]
    p = add_command(sub, "analyze", help=HELP, description=DESCRIPTION, epilog=EXAMPLE)
    p.add_argument("dataset", metavar="DATASET_DIR")
    p.add_argument("-o", "--output", required=True, metavar="REPORT_DIR")
    p.add_argument(
        "--session-gap-minutes",
        type=float,
        default=30.0,
        help="inactivity gap that starts a new session (default 30)",
    )
    p.add_argument(
        "--utc-offset-hours",
        type=float,
        default=0.0,
        help="local time zone for hours/weekdays/days, e.g. 8 for China (default 0 = UTC)",
    )
    p.add_argument(
        "--top-categories", type=int, default=3, help="top categories per user (default 3)"
    )
    add_quiet(p)
    p.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    s = analyze_dataset(
        args.dataset,
        args.output,
        session_gap_minutes=args.session_gap_minutes,
        utc_offset_hours=args.utc_offset_hours,
        n_top_categories=args.top_categories,
        progress=not args.quiet,
    )
    f = s["funnel"]
    conv = f.get("view_to_purchase")
    conv_txt = f", view->purchase {conv:.1%}" if isinstance(conv, float) else ""
    print(
        f"analyzed {s['n_events']} events of {s['n_active_users']} users "
        f"on {s['n_active_items']} items: "
        f"popularity Gini {s['popularity']['gini']:.3f}, {s['sessions']['n_sessions']} sessions"
        f"{conv_txt} -> {args.output}/index.html"
    )
    return 0
