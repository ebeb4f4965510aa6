"""Argument helpers shared by the subcommand modules (``*/commands*.py``, ``demo.py``).

Every subcommand is declared the same way (help line, description, an example epilog kept as
written) and several take the same arguments; writing them once keeps the commands consistent.
"""

from __future__ import annotations

import argparse
import sys
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from gemrec.tracking import Run

__all__ = [
    "QUIET_TTY_HELP",
    "add_command",
    "add_model_and_dataset",
    "add_quiet",
    "add_tracking",
    "show_progress",
    "tracked",
]

#: ``--quiet`` help of the commands whose progress bar appears only on a terminal
QUIET_TTY_HELP = "no progress bar (shown only on a terminal; the summary line stays)"


def add_command(
    sub: argparse._SubParsersAction,  # type: ignore[type-arg]
    name: str,
    *,
    help: str,
    description: str,
    epilog: str,
) -> argparse.ArgumentParser:
    """Add subcommand ``name``; ``epilog`` (the examples) keeps its line breaks.

    ``help`` is the one line ``gemrec --help`` lists; ``description`` heads ``gemrec NAME --help``.
    """
    parser: argparse.ArgumentParser = sub.add_parser(
        name,
        help=help,
        description=description,
        epilog=epilog,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    return parser


def add_model_and_dataset(parser: argparse.ArgumentParser) -> None:
    """``MODEL_DIR`` (positional) and ``--dataset DATASET_DIR`` (required)."""
    parser.add_argument("model", metavar="MODEL_DIR")
    parser.add_argument("--dataset", required=True, metavar="DATASET_DIR")


def add_quiet(parser: argparse.ArgumentParser, help: str = "no progress bar") -> None:
    """A ``--quiet`` flag that turns the progress bar off."""
    parser.add_argument("--quiet", action="store_true", help=help)


def show_progress(args: argparse.Namespace) -> bool:
    """Draw a progress bar unless ``--quiet`` or stderr is not a terminal (a log or a pipe)."""
    return not args.quiet and sys.stderr.isatty()


def add_tracking(parser: argparse.ArgumentParser) -> None:
    """``--tracking-uri URI`` and ``--no-track``: where the command's MLflow run is recorded."""
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        help="MLflow tracking store to record the run in (default: $GEMREC_TRACKING_URI, else "
        "sqlite:///mlflow.db in the working directory; see docs/tracking.md)",
    )
    parser.add_argument(
        "--no-track", action="store_true", help="record no MLflow run (also GEMREC_NO_TRACK=1)"
    )


def tracked(
    args: argparse.Namespace, command: str, model: str | None = None
) -> AbstractContextManager[Run | None]:
    """The MLflow run of this command (:func:`gemrec.tracking.record_run`), named after it."""
    from gemrec.tracking import record_run

    name = f"{command} {model}" if model else command
    return record_run(
        command,
        uri=args.tracking_uri,
        enabled=not args.no_track,
        name=name,
        tags={"gemrec.model": model},
    )
