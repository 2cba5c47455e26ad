"""Process-level performance settings applied once by the training and serving entry points.

glibc returns large freed blocks to the kernel at once (``munmap`` / heap trimming), so a training
step that allocates and frees the same activation buffers every batch page-faults them in again
each time. On the 2-core VMs we run on that made steps 2-15x slower and erratic (measured: M-CBLA-BLR
bf16 step 0.15 s with the settings below vs 0.23-2.6 s without). Keeping freed memory in the
process (the same effect as MALLOC_MMAP_THRESHOLD_/MALLOC_TRIM_THRESHOLD_, or tcmalloc) removes that.
"""

from __future__ import annotations

import ctypes
import ctypes.util
import functools

M_TRIM_THRESHOLD = -1
M_MMAP_THRESHOLD = -3
# glibc caps the mmap threshold at HEAP_MAX/2 (32 MiB on 64-bit); larger values are ignored.
MMAP_THRESHOLD_BYTES = 32 * 1024 * 1024
TRIM_THRESHOLD_BYTES = 4 * 1024**3


@functools.lru_cache(maxsize=None)
def tune_allocator() -> bool:
    """Keep freed memory in-process (glibc only; a no-op returning False elsewhere)."""
    name = ctypes.util.find_library("c")
    if not name:
        return False
    try:
        libc = ctypes.CDLL(name)
        mallopt = libc.mallopt
    except (OSError, AttributeError):
        return False
    mallopt.argtypes = [ctypes.c_int, ctypes.c_int]
    ok_mmap = mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    ok_trim = mallopt(M_TRIM_THRESHOLD, min(TRIM_THRESHOLD_BYTES, 2**31 - 1))
    return bool(ok_mmap and ok_trim)
