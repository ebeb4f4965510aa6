"""The glibc tuning of models/_allocator.py: freed step buffers are reused, not faulted in again."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

# Allocates four 36 MB tensors (one Gowalla LightGCN layer at d=128 each) and frees them: 4 warm-up
# cycles, then reports the minor page faults of 10 more. Blocks over 32 MiB are above glibc's own
# (dynamic) mmap threshold, so with its defaults each one is mapped and unmapped every cycle.
_SCRIPT = """
import json, resource, sys
import torch
from gemrec.models._allocator import keep_freed_memory
threshold = keep_freed_memory() if sys.argv[1] == "tuned" else 0
def cycle():
    bufs = [torch.zeros(70_839, 128) for _ in range(4)]
    del bufs
for _ in range(4):
    cycle()
before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
for _ in range(10):
    cycle()
print(json.dumps({"threshold": threshold,
                  "faults": resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before}))
"""
_BUFFER_BYTES = 70_839 * 128 * 4
_PAGES_PER_BUFFER = _BUFFER_BYTES // 4096


def _run(mode: str, env_off: bool = False) -> dict[str, int]:
    env = dict(os.environ)
    if env_off:
        env["GEMREC_KEEP_FREED_MEMORY"] = "0"
    else:
        env.pop("GEMREC_KEEP_FREED_MEMORY", None)
    out = subprocess.run(
        [sys.executable, "-c", _SCRIPT, mode], capture_output=True, text=True, check=True, env=env
    )
    return json.loads(out.stdout.strip().splitlines()[-1])  # type: ignore[no-any-return]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="glibc mallopt is Linux-only")
def test_tuned_heap_reuses_freed_buffers_instead_of_faulting_them_in() -> None:
    tuned = _run("tuned")
    if tuned["threshold"] < _BUFFER_BYTES:
        pytest.skip(f"this glibc caps the mmap threshold at {tuned['threshold']} bytes")
    plain = _run("plain")
    # defaults: every buffer is mapped afresh and faulted in page by page, every cycle
    assert plain["faults"] >= 10 * 4 * _PAGES_PER_BUFFER * 0.9
    # tuned: the warm heap is reused
    assert tuned["faults"] < 1000


def test_switched_off_by_environment() -> None:
    assert _run("tuned", env_off=True)["threshold"] == 0
