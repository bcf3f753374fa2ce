"""The command line's entry point (``keras-weights``, ``python -m converter``): make the HDF5 probe's worker
first, then import the rest. The worker needs h5py (numpy with it, ~0.09 s to import) and so do we: the command
line imports it once and forks the worker from itself then, before TensorFlow, any thread of ours or file of the
user's is opened (a new Python importing h5py again was ready ~50 ms later than our own imports, and the first
probe waited for it). Library users get a new Python as the worker (:func:`start_probe_worker`): their process
may have threads and TensorFlow, which do not survive a fork. Only the standard library and h5py are imported here.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import IO

PROBE_CHILD = Path(__file__).parent / "readers" / "h5walk.py"  # run by path, isolated (-I): it imports nothing of ours
_READS_MODELS = frozenset({"inspect", "export", "report", "diff", "load", "verify"})


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


# Process-wide settings for a short-lived command, left to the user's choice when set, and never made by the library
# (a program that exports and then trains keeps TensorFlow's and pyarrow's defaults). Measured with
# benchmarks/stages.py and benchmarks/user_view.py:
PROCESS_DEFAULTS = {
    # oneDNN's CPU allocator keeps every buffer TensorFlow frees for itself: loading a model left ~0.7x the weights
    # there, out of reach of the writers. Reading weights uses none of oneDNN's kernels.
    "TF_ENABLE_ONEDNN_OPTS": "0",
    # pyarrow's default allocator (mimalloc) keeps freed pages for reuse: ~10 MB while writing Parquet, which a
    # command that ends next never reuses; the system allocator hands them back.
    "ARROW_DEFAULT_MEMORY_POOL": "system",
}


def process_defaults() -> None:
    """Set :data:`PROCESS_DEFAULTS` in the environment where the user has not (before TensorFlow or pyarrow loads)."""
    for name, value in PROCESS_DEFAULTS.items():
        os.environ.setdefault(name, value)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    process_defaults()
    early = fork_probe_worker() if arguments and arguments[0] in _READS_MODELS else None
    if early is not None:
        from .readers import probe

        probe.adopt(early)
    from .cli import main as cli_main

    return cli_main(arguments)


def entry() -> None:
    """``keras-weights`` and ``python -m converter``: run, then end the process without the interpreter's
    teardown once the work is done. With TensorFlow imported that teardown (its atexit handlers and the
    destruction of its objects) takes ~0.7 s, without it ~20 ms of module cleanup, and it does nothing for us:
    outputs are written, synced and closed before the command returns, the probe's worker ends when its pipe
    closes, temporary files are gone."""
    code = main()
    import logging

    logging.shutdown()
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)
