import ctypes
import ctypes.util

import pytest

from emofusion.runtime import tune_allocator


class MallInfo2(ctypes.Structure):
    _fields_ = [(name, ctypes.c_size_t) for name in
                ("arena", "ordblks", "smblks", "hblks", "hblkhd", "usmblks", "fsmblks", "uordblks",
                 "fordblks", "keepcost")]


def test_freed_buffers_stay_in_the_process_after_tuning():
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallinfo2"):
        pytest.skip("needs glibc >= 2.33")
    libc.mallinfo2.restype = MallInfo2
    libc.malloc.restype = ctypes.c_void_p
    libc.free.argtypes = [ctypes.c_void_p]
    tune_allocator.cache_clear()
    assert tune_allocator() is True
    size = 20 * 1024 * 1024  # below the 32 MiB mmap threshold we set, far above glibc's default 128 KiB
    # Earlier tests in the process may hold mmapped blocks (e.g. a loaded pretrained encoder's
    # weights): only what this malloc adds counts.
    mapped_before = libc.mallinfo2().hblkhd
    block = libc.malloc(size)
    assert libc.mallinfo2().hblkhd - mapped_before < size  # served from the heap, not a fresh mmap
    libc.free(block)
    # Untuned glibc would munmap/trim it now; tuned, the memory stays free in the heap for reuse.
    assert libc.mallinfo2().fordblks >= size
