"""The HDF5 probe's worker process (``readers/h5walk.py --serve``): started as a new Python, or forked from the
command line at start-up (``_launch``) once it has imported h5py. Only the standard library and h5py are imported
here, so the command line can fork before anything else of ours is loaded.
"""
from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path
from typing import IO

PROBE_CHILD = Path(__file__).parent / "readers" / "h5walk.py"  # run by path, isolated (-I): it imports nothing of ours


def start_probe_worker(child: Path = PROBE_CHILD) -> subprocess.Popen:
    """A ``h5walk.py --serve`` process, leader of its own process group (killing the group ends its children)."""
    return subprocess.Popen([sys.executable, "-I", str(child), "--serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, process_group=0)


class ForkedWorker:
    """A worker forked from this process, with the face of the :class:`subprocess.Popen` the probe uses."""

    def __init__(self, pid: int, stdin: IO[bytes], stdout: IO[bytes]) -> None:
        self.pid, self.stdin, self.stdout, self.returncode = pid, stdin, stdout, None

    def poll(self) -> int | None:
        if self.returncode is None:
            pid, status = os.waitpid(self.pid, os.WNOHANG)
            if pid:
                self.returncode = os.waitstatus_to_exitcode(status)
        return self.returncode

    def wait(self) -> int:
        if self.returncode is None:
            self.returncode = os.waitstatus_to_exitcode(os.waitpid(self.pid, 0)[1])
        return self.returncode


def fork_probe_worker(child: Path = PROBE_CHILD) -> ForkedWorker | subprocess.Popen:
    """``child``'s ``serve`` loop in a fork of this process, leader of its own process group, with h5py imported.

    Call it while this process has one thread (at start-up): a fork copies only the calling thread. Without
    h5py here, a new Python (:func:`start_probe_worker`) serves instead.
    """
    try:
        import h5py  # noqa: F401 -- imported for the fork (and for our own reading later)
    except ImportError:
        return start_probe_worker(child)
    requests, requests_in = os.pipe()
    replies_out, replies = os.pipe()
    pid = os.fork()
    if pid == 0:
        _serve_in_child(child, requests, replies)
    try:  # here too, so that a kill of the group right after the fork cannot miss the child
        os.setpgid(pid, pid)
    except ProcessLookupError:  # the child has already ended (it could not serve): the probe says so
        pass
    os.close(requests)
    os.close(replies)
    return ForkedWorker(pid, os.fdopen(requests_in, "wb"), os.fdopen(replies_out, "rb"))


def _serve_in_child(child: Path, requests: int, replies: int) -> None:
    """The forked worker: its own process group, requests on fd 0, replies on fd 1, nothing else open; never returns."""
    code = 1
    try:
        os.setpgid(0, 0)
        devnull = os.open(os.devnull, os.O_RDWR)
        os.dup2(requests, 0)
        os.dup2(replies, 1)
        os.dup2(devnull, 2)
        os.closerange(3, 1 << 16)
        import importlib.util

        spec = importlib.util.spec_from_file_location("h5walk", child)
        walker = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(walker)
        with open(0, closefd=False) as incoming, open(1, "w", closefd=False) as outgoing:
            walker.serve(incoming, outgoing)
        code = 0
    finally:
        os._exit(code)
