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


def test_serve_per_model_table_replaces_only_its_section(tmp_path):
    """The per-model serving table lands between its markers; the rest of the page is kept."""
    import importlib.util

    spec = importlib.util.spec_from_file_location(
        "_bench_serve", ROOT / "benchmarks" / "bench_serve.py"
    )
    assert spec is not None and spec.loader is not None
    bench = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(bench)
    results = {
        "itemknn": {
            "retrieval": "exact",
            "at_rate_p50_ms": 1.234,
            "at_rate_p99_ms": 4.5,
            "at_rate_errors": 0,
            "max_rate": 800.0,
            "cpu_ms_per_request": 1.5,
        },
        "graphfilter": {
            "retrieval": "exact",
            "at_rate_p50_ms": 40.0,
            "at_rate_p99_ms": 90.0,
            "at_rate_errors": 2,
            "max_rate": 0.0,
            "cpu_ms_per_request": 9.0,
        },
    }
    table = bench.per_model_table(results, 300.0, 20.0)
    lines = table.splitlines()
    assert lines[0].startswith("| model | retrieval | p50 at 300 req/s |")
    assert lines[2] == "| itemknn | exact | 1.23 ms | 4.50 ms | 0 | 800 req/s | 1.50 ms |"
    assert lines[3] == "| graphfilter | exact | 40.00 ms | 90.00 ms | 2 | < 300 req/s | 9.00 ms |"
    doc = tmp_path / "benchmarks.md"
    doc.write_text(f"# top\n{bench.TABLE_START}\nold\n{bench.TABLE_END}\n## after\n")
    bench.write_table(doc, table, "conditions")
    text = doc.read_text()
    assert "old" not in text and text.startswith("# top\n") and text.endswith("## after\n")
    assert f"{bench.TABLE_START}\n{table}\n\nconditions\n{bench.TABLE_END}" in text
    bench.write_table(doc, table, "again")  # idempotent: the markers stay
    assert doc.read_text().count(bench.TABLE_START) == 1
    empty = tmp_path / "empty.md"
    empty.write_text("# no markers\n")
    with pytest.raises(SystemExit, match="markers"):
        bench.write_table(empty, table, "")
