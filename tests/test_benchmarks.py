"""`make bench` stays runnable: every benchmark run it lists parses with its script's arguments."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def test_every_listed_benchmark_run_parses():
    out = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "run_all.py"), "--dry-run", "--full"],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert "arguments of all" in out.stdout and "runs parse" in out.stdout
