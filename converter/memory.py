"""Memory that keras-weights' threads have freed, handed back to the kernel between stages.

``tests/test_memory.py`` shows the effect on a fragmented thread arena; the benchmark suite measured it
on real exports (10M-parameter full export, default reader: 2.7x -> 1.8x the weights at the peak).
"""
from __future__ import annotations

import ctypes
import functools


def release_free_memory() -> bool:
    """Hand memory that is free inside malloc's arenas back to the kernel (glibc ``malloc_trim``).

    Memory freed by another thread's arena (Keras's variables, a writer's pool) is otherwise kept
    there, unusable by the threads that run next, and counts toward the process's resident size.
    Harmless in any process; False where there is no glibc.
    """
    try:
        trim = _libc().malloc_trim
    except (OSError, AttributeError):
        return False
    trim.argtypes, trim.restype = (ctypes.c_size_t,), ctypes.c_int
    return bool(trim(0))


@functools.cache
def _libc() -> ctypes.CDLL:
    """The C library this process runs on (its symbols are the program's: no search for the file)."""
    return ctypes.CDLL(None)
