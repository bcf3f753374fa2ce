"""Parse an untrusted HDF5 file once in a child process first (``h5walk.py``), so a crash in the HDF5
library on a crafted file becomes a clear error instead of taking the whole program down.

``tests/test_safety.py`` holds such a file: one byte of the seed model changed (found by fuzzing) makes
HDF5 1.14 crash with SIGSEGV while reading it; without the probe the process dies, with it the file is
reported as corrupt (exit 4).

The child is forked, one per file, from a worker that has imported h5py already (``h5walk.py --serve``):
starting a Python with h5py costs ~0.12 s, a fork ~0.01 s. The first probe of a process pays the start,
overlapped with our own imports (the command line starts the worker first, ``_launch``) or with importing
Keras; later ones (batches, library users, the test suite) do not. A worker
whose child crashed is reused (the crash stayed in the child); one whose child is still running when the
caller stops waiting (a hang, an error, Ctrl-C) is killed with its whole process group.
"""
from __future__ import annotations

import contextlib
import json
import os
import select
import signal
import subprocess
import threading
from collections.abc import Callable, Iterator
from pathlib import Path

from ..probe_worker import PROBE_CHILD, ForkedWorker, start_probe_worker
from ..errors import InputInvalid

CHILD = PROBE_CHILD


NO_ANSWER = 1000                 # the worker exited without parsing the file (no child status is this)
MIN_TIMEOUT = 60.0               # seconds: far beyond what parsing any real model's structure takes
SECONDS_PER_BYTE = 1 / 20e6      # and time to decompress chunked data at 20 MB/s, well below zlib's speed


def timeout_for(path: Path) -> float:
    """How long the probe may take for a file this size before it counts as hanging."""
    return MIN_TIMEOUT + path.stat().st_size * SECONDS_PER_BYTE


class _Worker:
    """A ``h5walk.py --serve`` process, leader of its own process group (killing the group ends its children)."""

    def __init__(self, process: subprocess.Popen | ForkedWorker | None = None) -> None:
        self.owner = os.getpid()
        self.process = process or start_probe_worker(CHILD)

    def ask(self, path: Path, kind: str) -> None:
        self.process.stdin.write(json.dumps([str(path.resolve()), kind]).encode() + b"\n")
        self.process.stdin.flush()

    def answer(self, timeout: float) -> int | None:
        """The child's exit status, or None if there is none within ``timeout`` seconds.

        A worker that ended without answering gives its own status: minus the signal that killed it (reported as a
        crash), or :data:`NO_ANSWER` if it exited (it could not serve: the file was not parsed, so it is not passed).
        """
        ready, _, _ = select.select([self.process.stdout], [], [], timeout)
        if not ready:
            return None
        line = self.process.stdout.readline()
        if line.strip():
            return int(line)
        status = self.process.wait()
        return status if status < 0 else NO_ANSWER

    def kill(self) -> None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait()
        with contextlib.suppress(OSError):
            self.process.stdin.close()
        self.process.stdout.close()


class _Workers:
    """Idle workers of this process; a worker is used by one probe at a time."""

    def __init__(self) -> None:
        self._idle: list[_Worker] = []
        self._lock = threading.Lock()

    @contextlib.contextmanager
    def lease(self) -> Iterator[_Worker]:
        with self._lock:
            idle = [worker for worker in self._idle if worker.owner == os.getpid()]  # not a forked parent's
            worker = idle.pop() if idle else None
            self._idle = idle
        worker = worker or _Worker()
        try:
            yield worker
        finally:  # a worker still alive here is idle: whoever leased it kills it while its child may run
            if worker.process.poll() is None:
                with self._lock:
                    self._idle.append(worker)
            else:
                worker.kill()


    def adopt(self, process: subprocess.Popen | ForkedWorker) -> None:
        """Take a worker started early (``_launch``) as this process's idle one."""
        with self._lock:
            self._idle.append(_Worker(process))


_WORKERS = _Workers()


def adopt(process: subprocess.Popen | ForkedWorker) -> None:
    """Use ``process``, a worker the command line started before its imports, for the first probe."""
    _WORKERS.adopt(process)


@contextlib.contextmanager
def started(path: Path, kind: str, timeout: float | None = None) -> Iterator[Callable[[], None]]:
    """Probe ``path`` in a child process while the block runs; call the yielded function for the verdict.

    The verdict raises :class:`InputInvalid` if reading the file crashed the HDF5 library, or did not
    finish in ``timeout`` seconds (by default :func:`timeout_for` the file). However the block ends (an
    error, Ctrl-C, SIGTERM), the child is stopped: a file that hangs HDF5 never outlives the command.
    """
    limit = timeout_for(path) if timeout is None else timeout
    with _WORKERS.lease() as worker:
        worker.ask(path, kind)
        answered = False

        def verdict() -> None:
            nonlocal answered
            code = worker.answer(limit)
            if code is None:
                raise InputInvalid(f"{path.name}: reading its HDF5 data did not finish in {limit:.0f} s",
                                   hint="The file is damaged or built to hang the reader; do not use it.")
            answered = True
            if code == NO_ANSWER:
                raise InputInvalid(f"{path.name}: its HDF5 data could not be checked (the probe's worker ended without an "
                                   "answer)", hint="Run the command again; if it keeps failing, check that h5py imports "
                                   "(python -c 'import h5py').")
            if code < 0:
                name = signal.Signals(-code).name
                raise InputInvalid(f"{path.name} is corrupt: the HDF5 library crashed ({name}) while reading it",
                                   hint="The file is damaged or built to crash HDF5 readers; download or save it again.")

        try:
            yield verdict
        finally:
            if not answered:  # the child may still be running: the worker and its group go
                worker.kill()


def check(path: Path, kind: str, timeout: float | None = None) -> None:
    """Raise :class:`InputInvalid` if reading ``path`` crashes or hangs the HDF5 library."""
    with started(path, kind, timeout) as verdict:
        verdict()
