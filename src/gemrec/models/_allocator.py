"""Keep freed large blocks in the process heap during training (glibc only).

A training step of the graph models allocates a few ``n_nodes x d`` buffers (one per sparse
product, 18 MB each on Gowalla at d=64, 36 MB at d=128) and frees them again. glibc serves blocks
that large with fresh ``mmap`` pages or gives the freed heap top back to the kernel, so every step
pays a page fault per 4 KiB on first touch: about a tenth of a one-thread LightGCN step
(docs/benchmarks/lightgcn.md). Raising the mmap and trim thresholds (``mallopt``) lets freed
blocks be reused instead. This is the same remedy as running PyTorch on a caching allocator
(jemalloc, tcmalloc), without preloading one.

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
_LIMIT = 2**30
# glibc's own dynamic threshold stops at 32 MiB on 64-bit systems: larger blocks (Gowalla at
# d=128 needs 36 MB per buffer) are mmapped and unmapped on every step unless the threshold is set
_FALLBACK = 32 * 2**20


@functools.cache
def keep_freed_memory() -> int:
    """Ask glibc to serve blocks up to 1 GiB from the heap and keep up to 1 GiB of it when freed.

    Returns the mmap threshold that was set (1 GiB, or 32 MiB where glibc refuses more), or 0
    where nothing was set (not Linux/glibc, or switched off by ``GEMREC_KEEP_FREED_MEMORY=0``).
    Idempotent.
    """
    if os.environ.get("GEMREC_KEEP_FREED_MEMORY", "1") == "0" or not sys.platform.startswith(
        "linux"
    ):
        return 0
    name = ctypes.util.find_library("c")
    if name is None:
        return 0
    libc = ctypes.CDLL(name)
    if not hasattr(libc, "mallopt"):
        return 0
    for threshold in (_LIMIT, _FALLBACK):
        if libc.mallopt(_M_MMAP_THRESHOLD, ctypes.c_int(threshold)):
            return threshold if libc.mallopt(_M_TRIM_THRESHOLD, ctypes.c_int(_LIMIT)) else 0
    return 0
