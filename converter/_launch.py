"""The command line's entry point (``keras-weights``, ``python -m converter``): make the HDF5 probe's worker
first, then import the rest. The worker needs h5py (numpy with it, ~0.09 s to import) and so do we: the command
line imports it once and forks the worker from itself then, before TensorFlow, any thread of ours or file of the
user's is opened (a new Python importing h5py again was ready ~50 ms later than our own imports, and the first
probe waited for it). Library users get a new Python as the worker (:func:`start_probe_worker`): their process
may have threads and TensorFlow, which do not survive a fork. Only the standard library, the argument parser and
h5py are imported here (``arguments``, ``probe_worker``): ``--help`` and ``--version`` are answered before anything
heavy; the rest, after the fork, in :func:`main` (the one place that imports the package lazily on purpose).
"""
from __future__ import annotations

import os
import sys
from collections.abc import Sequence

from .arguments import build_parser
from .errors import UsageError
from .messages import report_error
from .probe_worker import fork_probe_worker

_READS_MODELS = frozenset({"inspect", "export", "report", "diff", "load", "verify"})


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
    answered = _answered_by_the_parser(arguments)
    if answered is not None:
        return answered
    process_defaults()
    early = fork_probe_worker() if arguments and arguments[0] in _READS_MODELS else None
    if early is not None:
        from .readers import probe

        probe.adopt(early)
    from .cli import main as cli_main

    return cli_main(arguments)


def _answered_by_the_parser(arguments: list[str]) -> int | None:
    """The exit code when the arguments alone answer the command: ``--help`` and ``--version`` (argparse printed
    the answer) and usage errors (reported as every error is, as JSON with ``--json``), with nothing heavy (numpy
    ~0.1 s, h5py, TensorFlow) imported for them. None: the arguments are a command to run."""
    try:
        build_parser().parse_args(arguments)
    except SystemExit as stop:
        return int(stop.code or 0)
    except UsageError as error:
        return report_error(error, as_json="--json" in arguments, debug="--debug" in arguments)
    return None


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
