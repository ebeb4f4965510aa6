"""Argument helpers shared by the subcommand modules (``*/commands*.py``, ``demo.py``).

Every subcommand is declared the same way (help line, description, an example epilog kept as
written) and several take the same arguments; writing them once keeps the commands consistent.
"""

from __future__ import annotations

import argparse
import sys

__all__ = [
    "QUIET_TTY_HELP",
    "add_command",
    "add_model_and_dataset",
    "add_quiet",
    "show_progress",
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
