"""Start ``gemrec serve`` as a real subprocess on 127.0.0.1, and wait on conditions, not clocks.

Every wait polls a condition until a generous deadline: on a loaded machine a wait takes longer,
but it never fails early because a fixed sleep was too short.
"""

from __future__ import annotations

import socket
import sys
import time
from collections.abc import Callable
from pathlib import Path

__all__ = ["DEADLINE_S", "free_port", "serve_command", "wait_until"]

#: upper bound of every wait in these tests; reached only when something is broken
DEADLINE_S = 120.0


def free_port() -> int:
    """A TCP port on 127.0.0.1 that is free right now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def serve_command(
    model_dir: Path, dataset: Path, port: int, store: str, *options: str
) -> list[str]:
    """The argv of ``gemrec serve MODEL_DIR --dataset DATASET`` on 127.0.0.1:``port``."""
    return [
        sys.executable,
        "-m",
        "gemrec.cli",
        "serve",
        str(model_dir),
        "--dataset",
        str(dataset),
        "--host",
        "127.0.0.1",
        "--port",
        str(port),
        "--store",
        store,
        *options,
    ]


def wait_until(
    condition: Callable[[], bool], what: str, *, timeout: float = DEADLINE_S, poll: float = 0.02
) -> None:
    """Return as soon as ``condition()`` is true; raise ``TimeoutError`` naming ``what`` if it is
    still false after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{what}: not reached within {timeout:.0f} s")
        time.sleep(poll)
