import ctypes
import ctypes.util

import pytest

from emofusion.runtime import M_TRIM_THRESHOLD, tune_allocator


def test_allocator_keeps_freed_memory_on_glibc():
    name = ctypes.util.find_library("c")
    libc = ctypes.CDLL(name) if name else None
    if libc is None or not hasattr(libc, "mallopt") or not hasattr(libc, "gnu_get_libc_version"):
        pytest.skip("not glibc")
    tune_allocator.cache_clear()
    assert tune_allocator() is True
    # mallopt rejects an invalid option with 0: proves the calls above really reached glibc.
    assert libc.mallopt(ctypes.c_int(-999), ctypes.c_int(1)) == 0
    assert libc.mallopt(ctypes.c_int(M_TRIM_THRESHOLD), ctypes.c_int(1 << 30)) == 1
