"""`make bench` stays runnable: every benchmark run it lists parses with its script's arguments;
the GPU check runs its CPU parts."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

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


@pytest.mark.slow
def test_gpu_check_cpu_smoke_runs_every_part(tmp_path):
    """The GPU check's parts on the CPU: what runs on a GPU machine runs here on tiny data."""
    out = tmp_path / "gpu_check.json"
    script = ROOT / "benchmarks" / "gpu_check.py"
    proc = subprocess.run(
        [sys.executable, str(script), "--cpu-smoke", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=600,
        check=False,
        env={**os.environ, "PYTHONPATH": str(ROOT / "src"), "OMP_NUM_THREADS": "1"},
    )
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["mode"] == "cpu-smoke"
    assert result["a"]["faithful"]["median_epoch_seconds"] > 0
    assert result["b"]["ok"] and result["c"]["ok"] and result["c"]["backend"] == "gloo"
