"""The ``gemrec`` command line: a thin dispatcher.

Each subcommand's parser and handler live with its stage (``data/commands.py`` for ``import``,
``models/commands.py`` for ``train`` ...); this module only wires them and turns
:class:`~gemrec.errors.GemrecError` into a one-line message and exit code 2.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from collections.abc import Callable, Sequence

from gemrec import __version__
from gemrec.errors import GemrecError

__all__ = ["main"]

#: subcommand -> "module" providing ``add_parser(subparsers) -> None`` (which sets ``func``)
COMMANDS: dict[str, str] = {
    "generate": "gemrec.data.commands_generate",
    "import": "gemrec.data.commands",
    "train": "gemrec.models.commands",
    "tune": "gemrec.models.commands_tune",
    "evaluate": "gemrec.eval.commands",
    "recommend": "gemrec.eval.commands_recommend",
    "analyze": "gemrec.analysis.commands",
    "serve": "gemrec.serve.commands",
    "retrain": "gemrec.serve.commands_retrain",
    "consume": "gemrec.stream.commands",
    "demo": "gemrec.demo",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="gemrec",
        description="Graph-embedding product recommendations from shop behaviour logs.",
        epilog="Run `gemrec COMMAND --help` for a command's options and an example.",
    )
    parser.add_argument("--version", action="version", version=f"gemrec {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for module in COMMANDS.values():
        try:
            mod = importlib.import_module(module)
        except ModuleNotFoundError as exc:
            if exc.name != module:
                raise
            continue  # stage not built in this checkout
        mod.add_parser(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    func: Callable[[argparse.Namespace], int] | None = getattr(args, "func", None)
    if func is None:
        parser.print_help()
        return 0
    try:
        return int(func(args) or 0)
    except GemrecError as exc:
        print(f"gemrec {args.command}: error: {_one_line(str(exc))}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        # the reader of stdout went away (`gemrec evaluate ... | head`): stop quietly as Unix
        # tools do; stdout now points at /dev/null so the exit-time flush cannot fail again
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 141
    except OSError as exc:  # a file the user named cannot be read or written: not a gemrec bug
        where = f"{exc.filename}: " if exc.filename else ""
        reason = _one_line(f"{where}{exc.strerror or exc}")
        print(f"gemrec {args.command}: error: {reason}", file=sys.stderr)
        return 2
    except KeyboardInterrupt:
        print(f"gemrec {args.command}: interrupted", file=sys.stderr)
        return 130


def _one_line(message: str) -> str:
    """Scripts read the error as one stderr line: fold any line breaks a message carries."""
    return " ".join(part.strip() for part in message.splitlines() if part.strip())


if __name__ == "__main__":
    sys.exit(main())
