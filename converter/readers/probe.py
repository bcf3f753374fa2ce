"""Parse an untrusted HDF5 file once in a child process first (``h5walk.py``), so a crash in the HDF5
library on a crafted file becomes a clear error instead of taking the whole program down.

``tests/test_safety.py`` holds such a file: one byte of the seed model changed (found by fuzzing) makes
HDF5 1.14 crash with SIGSEGV while reading it; without the probe the process dies, with it the file is
reported as corrupt (exit 4). The child costs ~0.17 s, overlapped with importing Keras.
"""
from __future__ import annotations

import contextlib
import signal
import subprocess
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

from ..errors import InputInvalid

CHILD = Path(__file__).with_name("h5walk.py")  # run by path, isolated (-I): it imports nothing of ours


MIN_TIMEOUT = 60.0               # seconds: far beyond what parsing any real model's structure takes
SECONDS_PER_BYTE = 1 / 20e6      # and time to decompress chunked data at 20 MB/s, well below zlib's speed


def timeout_for(path: Path) -> float:
    """How long the probe may take for a file this size before it counts as hanging."""
    return MIN_TIMEOUT + path.stat().st_size * SECONDS_PER_BYTE


@contextlib.contextmanager
def started(path: Path, kind: str, timeout: float | None = None) -> Iterator[Callable[[], None]]:
    """Probe ``path`` in a child process while the block runs; call the yielded function for the verdict.

    The verdict raises :class:`InputInvalid` if reading the file crashed the HDF5 library, or did not
    finish in ``timeout`` seconds (by default :func:`timeout_for` the file). However the block ends (an
    error, Ctrl-C, SIGTERM), the child is stopped: a file that hangs HDF5 never outlives the command.
    """
    limit = timeout_for(path) if timeout is None else timeout
    child = subprocess.Popen([sys.executable, "-I", str(CHILD), str(path.resolve()), kind],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def verdict() -> None:
        try:
            code = child.wait(limit)
        except subprocess.TimeoutExpired:
            raise InputInvalid(f"{path.name}: reading its HDF5 data did not finish in {limit:.0f} s",
                               hint="The file is damaged or built to hang the reader; do not use it.") from None
        if code < 0:
            name = signal.Signals(-code).name
            raise InputInvalid(f"{path.name} is corrupt: the HDF5 library crashed ({name}) while reading it",
                               hint="The file is damaged or built to crash HDF5 readers; download or save it again.")

    try:
        yield verdict
    finally:
        if child.poll() is None:
            child.kill()
        child.wait()


def check(path: Path, kind: str, timeout: float | None = None) -> None:
    """Raise :class:`InputInvalid` if reading ``path`` crashes or hangs the HDF5 library."""
    with started(path, kind, timeout) as verdict:
        verdict()
