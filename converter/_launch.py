"""The command line's entry point (``keras-weights``, ``python -m converter``): start the HDF5 probe's worker
first, then import the rest. The worker is a Python that imports h5py (~0.1 s); started before our own imports
(~0.15 s), its start-up runs beside them on another core instead of after them, for every command that may read
a model file. Only the standard library is imported here.
"""
from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Sequence
from pathlib import Path

PROBE_CHILD = Path(__file__).parent / "readers" / "h5walk.py"  # run by path, isolated (-I): it imports nothing of ours
_READS_MODELS = frozenset({"inspect", "export", "report", "diff", "load", "verify"})


def start_probe_worker(child: Path = PROBE_CHILD) -> subprocess.Popen:
    """A ``h5walk.py --serve`` process, leader of its own process group (killing the group ends its children)."""
    return subprocess.Popen([sys.executable, "-I", str(child), "--serve"], stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, process_group=0)


def main(argv: Sequence[str] | None = None) -> int:
    arguments = list(sys.argv[1:] if argv is None else argv)
    # pyarrow's default allocator (mimalloc) keeps freed pages for reuse: ~10 MB while writing Parquet, which a
    # short-lived command never reuses (measured with benchmarks/stages.py); the system allocator hands them back
    os.environ.setdefault("ARROW_DEFAULT_MEMORY_POOL", "system")
    early = start_probe_worker() if arguments and arguments[0] in _READS_MODELS else None
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
