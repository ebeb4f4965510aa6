"""Start ``gemrec serve`` as a real subprocess on 127.0.0.1.

Shared by ``tests/serve/test_process.py`` and ``benchmarks/bench_serve.py``.
"""

from __future__ import annotations

import socket
import sys
from pathlib import Path

__all__ = ["free_port", "serve_command"]


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
