"""How the command line speaks: every line with its invisible characters escaped, and an error as one message with
a hint (or one JSON document) and its exit code. Standard library only, so a usage error is reported before
anything heavy loads."""
from __future__ import annotations

import json
import sys
import traceback

from .errors import ConverterError


def printable(text: str) -> str:
    r"""A name on one line: control characters, bidi overrides and other invisible characters escaped (a layer name
    may hold a newline, an ESC sequence or U+202E, which reverses what follows on a terminal).

    >>> printable("a\nb\x1b[2Jc\u202ed")
    'a\\nb\\x1b[2Jc\\u202ed'
    """
    return "".join(repr(c)[1:-1] if not c.isprintable() else c for c in str(text))


def show(text: object = "", file=None, flush: bool = False) -> None:
    """``print`` for everything the command line says: each line with its invisible characters escaped
    (:func:`printable`), whatever part of it came from a model or an export folder."""
    print("\n".join(printable(line) for line in str(text).split("\n")), file=file, flush=flush)


def report_error(error: Exception, *, as_json: bool = False, debug: bool = False) -> int:
    """Say what failed and what to do (the traceback only with ``debug``); return the exit code."""
    known = isinstance(error, ConverterError)
    code, exit_code = (error.code, error.exit_code) if known else ("internal_error", 70)
    message = error.cli_message if known else f"internal error: {type(error).__name__}: {error}"
    hint = error.cli_hint if known else ConverterError.default_hint
    if debug:
        traceback.print_exception(error)
    outputs = getattr(error, "outputs", None)
    if as_json:
        print(json.dumps({"error": {"code": code, "exit_code": exit_code, "message": message, "hint": hint,
                                    "outputs": outputs}}, sort_keys=True))
    else:
        show(f"keras-weights: error: {message}\n  hint: {hint}" + (f"\n  outputs: {outputs}" if outputs else ""),
             file=sys.stderr)
    return exit_code
