"""The command line: parse arguments (``converter.arguments``), run a command (``commands``), print results (``render``),
map errors to exit codes (here)."""
from __future__ import annotations

import argparse
import logging
import os
import signal
import sys
import threading
import warnings
from collections.abc import Sequence

from ..arguments import build_parser
from ..errors import ConverterError, UsageError
from ..messages import printable, report_error, show
from .commands import COMMANDS, ProgressBar  # noqa: F401  (ProgressBar: part of the face the tests drive)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the CLI; return the exit code instead of exiting (so tests can call it in-process)."""
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as stop:  # argparse exits on --help and --version
        return int(stop.code or 0)
    except UsageError as error:  # reported like every other error, as JSON when --json was asked for
        return _report(error, argparse.Namespace(debug=False, json="--json" in (argv if argv is not None else sys.argv)))
    _log_to_stderr()
    in_main = threading.current_thread() is threading.main_thread()
    previous = (signal.signal(signal.SIGTERM, _terminate), signal.getsignal(signal.SIGINT)) if in_main else None
    _escape_unencodable_output()
    _STOPPED.clear()
    try:
        with warnings.catch_warnings():  # numpy's RuntimeWarnings (overflow, invalid values) are never the user's
            warnings.simplefilter("ignore", RuntimeWarning)
            return COMMANDS[args.command](args)
    except KeyboardInterrupt:
        return _interrupted()
    except ConverterError as error:
        return _interrupted() if _STOPPED.is_set() else _report(error, args)
    except BrokenPipeError:  # the reader of our output went away (`| head`): nothing left to say, and the
        # command did not finish, so not success (diff's "differ" must not become 0): 128 + SIGPIPE, as the shell's
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return BROKEN_PIPE
    except Exception as error:  # a bug: say so briefly, unless --debug asks for the traceback
        return _interrupted() if _STOPPED.is_set() else _report(error, args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous[0])
            signal.signal(signal.SIGINT, previous[1])


BROKEN_PIPE = 141


def _escape_unencodable_output() -> None:
    """Names and paths that the terminal's encoding cannot show (an undecodable byte of a file name) are printed
    escaped, as on stderr, instead of ending the command."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so temporary files are removed and finished outputs stay intact."""
    _STOPPED.set()
    raise KeyboardInterrupt


# Set by SIGTERM: the interrupt may surface as another error where a library wraps it (a module that was being
# imported reports "ImportError: initialization failed", a reader's damaged-file error): still an interruption.
_STOPPED = threading.Event()


def _interrupted() -> int:
    show("interrupted", file=sys.stderr)
    return 130


def _log_to_stderr() -> None:
    """Library warnings (such as a reader fallback) as one line each on stderr."""
    log = logging.getLogger("converter")
    if not log.handlers:
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("keras-weights: %(message)s"))
        log.addHandler(handler)
        log.propagate = False


class _StderrHandler(logging.StreamHandler):
    """Writes to whatever ``sys.stderr`` is when a record is logged (it may be replaced after set-up), with the
    invisible characters of names escaped."""

    def format(self, record: logging.LogRecord) -> str:
        return "\n".join(printable(line) for line in super().format(record).split("\n"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _report(error: Exception, args: argparse.Namespace) -> int:
    return report_error(error, as_json=getattr(args, "json", False), debug=args.debug)
