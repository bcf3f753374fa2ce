"""Parse an untrusted HDF5 file once in a child process first (``h5walk.py``), so a crash in the HDF5
library on a crafted file becomes a clear error instead of taking the whole program down.

``tests/test_safety.py`` holds such a file: one byte of the seed model changed (found by fuzzing) makes
HDF5 1.14 crash with SIGSEGV while reading it; without the probe the process dies, with it the file is
reported as corrupt (exit 4). The child costs ~0.17 s, overlapped with importing Keras.
"""
from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import InputInvalid

CHILD = Path(__file__).with_name("h5walk.py")  # run by path, isolated (-I): it imports nothing of ours


def start(path: Path, kind: str, timeout: float = 600) -> Callable[[], None]:
    """Start probing ``path`` in a child process; the returned function waits for the verdict.

    It raises :class:`InputInvalid` if reading the file crashed or hung the HDF5 library. Starting
    early lets the probe run on another core while the caller does other work (importing Keras).
    """
    child = subprocess.Popen([sys.executable, "-I", str(CHILD), str(path.resolve()), kind],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def verdict() -> None:
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise InputInvalid(f"{path.name}: reading its HDF5 data did not finish in {timeout:.0f} s",
                               hint="The file is damaged or built to hang the reader; do not use it.") from None
        if code < 0:
            name = signal.Signals(-code).name
            raise InputInvalid(f"{path.name} is corrupt: the HDF5 library crashed ({name}) while reading it",
                               hint="The file is damaged or built to crash HDF5 readers; download or save it again.")

    return verdict


def check(path: Path, kind: str, timeout: float = 600) -> None:
    """Raise :class:`InputInvalid` if reading ``path`` crashes or hangs the HDF5 library."""
    start(path, kind, timeout)()
