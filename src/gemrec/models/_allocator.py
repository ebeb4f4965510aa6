"""Keep freed large blocks in the process heap during training (glibc only).

A training step of the graph models allocates a few ``n_nodes x d`` buffers (one per sparse
product, ~18 MB each on Gowalla) and frees them again. glibc serves blocks that large with fresh
``mmap`` pages or gives the freed heap top back to the kernel, so every step pays a page fault per
4 KiB on first touch: about a tenth of a LightGCN step (docs/benchmarks/lightgcn.md). Raising the
mmap and trim thresholds (``mallopt``) lets freed blocks be reused instead. This is the same remedy
as running PyTorch on a caching allocator (jemalloc, tcmalloc), without preloading one.

The change is process-wide and only retains memory the process has already used; set the
environment variable ``GEMREC_KEEP_FREED_MEMORY=0`` to leave glibc's defaults alone.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools
import os
import sys

__all__ = ["keep_freed_memory"]

_M_TRIM_THRESHOLD = -1
_M_MMAP_THRESHOLD = -3
# glibc caps M_MMAP_THRESHOLD at 32 MiB on 64-bit systems (HEAP_MAX / 2)
_MMAP_THRESHOLD = 32 * 2**20
_TRIM_THRESHOLD = 2**30


@functools.cache
def keep_freed_memory() -> bool:
    """Ask glibc to keep freed blocks up to 32 MiB and up to 1 GiB of free heap top for reuse.

    Returns True when the thresholds were set, False where they were not (not Linux/glibc, or
    switched off by ``GEMREC_KEEP_FREED_MEMORY=0``). Idempotent.
    """
    if os.environ.get("GEMREC_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith(
        "linux"
    ):
        return False
    name = ctypes.util.find_library("c")
    if name is None:
        return False
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt"):
        return False
    ok_mmap = libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(_MMAP_THRESHOLD))
    ok_trim = libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(_TRIM_THRESHOLD))
    return bool(ok_mmap and ok_trim)
