"""The command line: parse arguments, call the library, print results, map errors to exit codes."""
from __future__ import annotations

import argparse
import json
import logging
import os
import re
import shlex
import signal
import sys
import threading
import time
import traceback
import warnings
from collections.abc import Sequence
from pathlib import Path

from . import api, atomic, batch, dtypes, formats, layouts, quantize, readers, verification
from .compare import diff
from .html_report import report
from .load import load_into
from .readers import open_keras_model
from .formats import c as c_format
from ._version import __version__
from .errors import ConverterError, InputInvalid, QuantizationError, SomeModelsFailed, UsageError, VerificationFailed

EXIT_CODES = """exit codes:
  0   success
  1   diff: the two sides differ
  2   usage error (unknown command, option or format)
  3   input not found (model file or export folder)
  4   input invalid (not a Keras model, damaged file, unsupported dtype; a quantization or size bound not met)
  5   refused as unsafe (loading would run code from the file)
  6   cannot write output (exists without --force, folder not writable)
  7   verification failed (a file or tensor differs from the manifest, or the manifest is not ours)
  8   several models exported, and at least one failed (the others were exported)
  70  internal error (a bug: rerun with --debug and report it)
  130 interrupted"""

EXAMPLES = """examples:
  keras-weights inspect model.keras
  keras-weights export model.keras -o out/
  keras-weights export model.h5 -o out/ -f npz,safetensors --force
  keras-weights export model.keras -o fw/ -f c --c-prefix net --layout dense_out_in
  keras-weights export model.keras -o fw/ -f c --quantize int8 --max-bytes 256K
  keras-weights export models/ other.h5 -o out/      # each model into out/<file name>/
  keras-weights verify out/ --compile"""


def build_parser() -> argparse.ArgumentParser:
    parser = _Parser(
        prog="keras-weights", formatter_class=argparse.RawDescriptionHelpFormatter,
        description="Export every weight of a Keras model exactly, with a checksummed manifest.",
        epilog=f"{EXAMPLES}\n\n{EXIT_CODES}")
    parser.add_argument("--version", action="version", version=f"keras-weights {__version__}")
    parser.add_argument("--debug", action="store_true", help="show the full traceback on errors")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    inspect = _command(commands, "inspect", "print a table of every layer's weights, shapes and dtypes",
                       "keras-weights inspect model.keras\n  keras-weights inspect model.h5 --json | jq .model")
    inspect.add_argument("model", help="a .keras or .h5 model file")
    inspect.add_argument("--json", action="store_true", help="print one JSON document (the manifest without files)")
    view = inspect.add_mutually_exclusive_group()
    view.add_argument("--layers", dest="view", action="store_const", const="layers",
                      help=f"one row per layer with weights (the default above {TABLE_ROWS} weight tensors)")
    view.add_argument("--weights", dest="view", action="store_const", const="weights",
                      help=f"one row per weight tensor (the default up to {TABLE_ROWS})")
    inspect.add_argument("--quantize", choices=list(quantize.SCHEMES),
                         help="show the tensors as an export with --quantize would store them, with their error")
    _reader_option(inspect)

    export = _command(commands, "export", "write the weights in every chosen format plus manifest.json",
                      "keras-weights export model.keras -o out/\n  keras-weights export model.h5 -f parquet --force\n"
                      "  keras-weights export model.keras -f c --c-header-only --c-prefix net -o firmware/")
    export.add_argument("model", nargs="+", help="a .keras or .h5 model file or SavedModel folder; several, or a "
                                                  "folder of them, are exported each into its own subfolder of -o")
    export.add_argument("-j", "--jobs", type=int, metavar="N", help="models exported in parallel (default: the cores)")
    export.add_argument("-o", "--output", default="out", metavar="DIR", help="output folder (default: out)")
    export.add_argument("-f", "--formats", default=",".join(formats.FORMATS), metavar="FORMATS",
                        help=f"comma-separated formats (default: all): {', '.join(formats.FORMATS)}")
    export.add_argument("--force", action="store_true", help="overwrite outputs that exist already")
    export.add_argument("--layout", default="keras", choices=list(layouts.LAYOUTS),
                        help="keras (default): arrays as get_weights() returns them; dense_out_in: Dense kernels "
                             "transposed to [out][in] (CMSIS-NN, TFLite)")
    export.add_argument("--json", action="store_true", help="print the manifest instead of a summary")
    export.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")
    _reader_option(export)
    export.add_argument("--fail-on-non-finite", action="store_true",
                        help="refuse to export weights holding NaN or infinity (by default they are exported "
                             "bit-exactly, with a warning and their counts in the manifest)")
    small = export.add_argument_group("small devices")
    small.add_argument("--quantize", choices=list(quantize.SCHEMES),
                       help="int8: kernels as int8 with a float32 scale per output channel (symmetric, weight-only); "
                            "float16, bfloat16: every float32 tensor cast. In every format; a table of the error "
                            "per tensor is printed (docs/quantization.md)")
    small.add_argument("--min-snr", type=float, metavar="DB",
                       help="refuse the export (exit 4, nothing written) if a quantized tensor's SNR falls below DB")
    small.add_argument("--max-bytes", type=_byte_count, metavar="N",
                       help="refuse the export (exit 4, nothing written) if the C arrays would take more than N bytes "
                            "of flash, alignment included (K and M suffixes: 1024 and 1024*1024)")
    _format_options(export)

    verify = _command(commands, "verify", "re-read every exported file and check it against manifest.json",
                      "keras-weights verify out/\n  keras-weights verify firmware/ --compile --cc arm-none-eabi-gcc "
                      "--cflags='-mcpu=cortex-m4 -mthumb -O2'")
    verify.add_argument("folder", help="a folder written by `keras-weights export`")
    verify.add_argument("--json", action="store_true", help="print the report as JSON")
    verify.add_argument("--compile", action="store_true",
                        help="also compile the C output with the system compiler and check the bytes it holds")
    verify.add_argument("--cc", default="cc", metavar="COMPILER",
                        help="C compiler for --compile (default: cc); a cross compiler (arm-none-eabi-gcc, avr-gcc) "
                             "compiles only, and each array is read back from the objects with its objcopy")
    verify.add_argument("--cflags", default="", metavar="FLAGS",
                        help="flags for --cc, one string, given with '=' (--cflags='-mcpu=cortex-m4 -mthumb -O2')")
    verify.add_argument("--model", metavar="MODEL", help="also check the export against the model it came from: "
                                                         "every tensor, no more, the same names and bytes")
    verify.add_argument("--predict", metavar="MODEL", help="build the forward pass of a --c-inference export with --cc "
                                                           "and compare its outputs with the model's model.predict on "
                                                           "seeded inputs")
    compare = _command(commands, "diff", "compare the weights of two models or exports, tensor by tensor (exit 1 when "
                                         "they differ)", "keras-weights diff before.keras after.keras\n  "
                                         "keras-weights diff model.keras out/ --atol 1e-6 --json")
    compare.add_argument("a", help="a model file or an export folder")
    compare.add_argument("b", help="a model file or an export folder")
    compare.add_argument("--atol", type=float, default=0.0, help="absolute tolerance (default 0: bit-exact)")
    compare.add_argument("--rtol", type=float, default=0.0, help="relative tolerance (default 0)")
    compare.add_argument("--json", action="store_true", help="print the comparison as JSON")
    compare.add_argument("--all", action="store_true", help="list equal tensors too")
    _reader_option(compare)

    page = _command(commands, "report", "write one self-contained HTML page about the weights: statistics, histograms, "
                                         "anomalies", "keras-weights report model.keras -o report.html\n  "
                                         "keras-weights report out/ --model model.keras -o int8.html")
    page.add_argument("source", help="a model file or an export folder")
    page.add_argument("-o", "--output", required=True, metavar="FILE", help="the .html file to write")
    page.add_argument("--model", metavar="MODEL", help="the model an export came from: adds the histogram of each "
                                                       "quantized tensor's error")
    page.add_argument("--against", metavar="OTHER", help="a model or export to diff with, in a section of its own")
    page.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    page.add_argument("--json", action="store_true", help="errors as JSON")
    _reader_option(page)

    load = _command(commands, "load", "set a Keras model's weights from an export and save it as a new model file",
                    "keras-weights load out/ model.keras -o tuned.keras\n  keras-weights load torch_state.safetensors "
                    "model.keras -o back.weights.h5")
    load.add_argument("export", help="an export folder, a file it holds, or a PyTorch state dict (--layout torch names)")
    load.add_argument("model", help="the Keras model (.keras or .h5) whose layers the weights fit")
    load.add_argument("-o", "--output", required=True, metavar="FILE", help="the new model: .keras, or .weights.h5 "
                                                                            "for the weights alone")
    load.add_argument("--force", action="store_true", help="overwrite FILE if it exists")
    load.add_argument("--json", action="store_true", help="errors as JSON")
    return parser


def _format_options(parser: argparse.ArgumentParser) -> None:
    """``--<format>-<option>`` flags, one per option each format declares (``formats.Option``)."""
    for name, module in formats.FORMATS.items():
        group = parser.add_argument_group(f"{name} output (-f {name})") if module.OPTIONS else None
        for option in module.OPTIONS:
            flag, dest = f"--{name}-{option.name.replace('_', '-')}", f"{name}.{option.name}"
            if isinstance(option.default, bool):
                group.add_argument(flag, dest=dest, action="store_true", default=None, help=option.help)
            elif option.repeat:
                group.add_argument(flag, dest=dest, action="append", metavar=option.metavar, help=option.help)
            else:
                group.add_argument(flag, dest=dest, type=type(option.default), choices=option.choices or None,
                                   metavar=option.metavar, help=option.help)


def _given_format_options(args: argparse.Namespace) -> dict[str, dict]:
    """The format options given on the command line, as ``{format: {option: value}}``."""
    given: dict[str, dict] = {}
    for name, module in formats.FORMATS.items():
        for option in module.OPTIONS:
            value = getattr(args, f"{name}.{option.name}")
            if isinstance(value, list):  # a repeated flag: one value each time
                value = ",".join(value)
            if value is not None:
                given.setdefault(name, {})[option.name] = value
    return given


def _byte_count(text: str) -> int:
    """``256K`` -> 262144: bytes, with K (1024) and M (1024 * 1024) suffixes.

    >>> _byte_count("300000"), _byte_count("256K"), _byte_count("1.5M")
    (300000, 262144, 1572864)
    """
    found = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmM]?)[bB]?\s*", text)
    if not found:
        raise argparse.ArgumentTypeError(f"not a number of bytes: {text!r} (examples: 300000, 256K, 1M)")
    value = float(found.group(1)) * {"": 1, "k": 1024, "m": 1024 * 1024}[found.group(2).lower()]
    if value < 1 or value != int(value):
        raise argparse.ArgumentTypeError(f"not a whole positive number of bytes: {text!r}")
    return int(value)


def _reader_option(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--reader", default="auto", choices=readers.CHOICES,
                        help="auto (default): load with Keras, or read the HDF5 data directly when Keras cannot; "
                             "keras: Keras only; h5: the HDF5 data only, without importing TensorFlow")
    parser.add_argument("--allow-sparse", action="store_true",
                        help="read HDF5 datasets that declare far more data than the file stores (refused as size "
                             "bombs otherwise): only for a file you know is sparse")
    parser.add_argument("--trust-model-code", action="store_true",
                        help="EXECUTES Python code stored in the model file (Lambda layers) by loading it with Keras "
                             "safe mode off. Only for files you trust; never needed to get the weights out")


class _Parser(argparse.ArgumentParser):
    """argparse, but a usage error is raised (as ``UsageError``) instead of printed, so ``--json`` can report it."""

    def error(self, message: str):
        raise UsageError(message, hint=f"Run `{self.prog} --help` for the accepted arguments.")


def _command(commands, name: str, summary: str, examples: str) -> argparse.ArgumentParser:
    return commands.add_parser(name, help=summary, description=summary, epilog=f"examples:\n  {examples}",
                               formatter_class=argparse.RawDescriptionHelpFormatter)


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
    try:
        with warnings.catch_warnings():  # numpy's RuntimeWarnings (overflow, invalid values) are never the user's
            warnings.simplefilter("ignore", RuntimeWarning)
            return COMMANDS[args.command](args)
    except ConverterError as error:
        return _report(error, args)
    except KeyboardInterrupt:
        _show("interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # the reader of our output went away (`| head`): nothing left to say
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return 0
    except Exception as error:  # a bug: say so briefly, unless --debug asks for the traceback
        return _report(error, args)
    finally:
        if previous is not None:
            signal.signal(signal.SIGTERM, previous[0])
            signal.signal(signal.SIGINT, previous[1])


def _escape_unencodable_output() -> None:
    """Names and paths that the terminal's encoding cannot show (an undecodable byte of a file name) are printed
    escaped, as on stderr, instead of ending the command."""
    for stream in (sys.stdout, sys.stderr):
        if hasattr(stream, "reconfigure"):
            stream.reconfigure(errors="backslashreplace")


def _terminate(signum: int, frame: object) -> None:
    """SIGTERM unwinds like Ctrl-C, so temporary files are removed and finished outputs stay intact."""
    raise KeyboardInterrupt


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
        return "\n".join(_printable(line) for line in super().format(record).split("\n"))

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, _value) -> None:
        pass


def _report(error: Exception, args: argparse.Namespace) -> int:
    known = isinstance(error, ConverterError)
    code, exit_code = (error.code, error.exit_code) if known else ("internal_error", 70)
    message = str(error) if known else f"internal error: {type(error).__name__}: {error}"
    hint = error.hint if known else ConverterError.default_hint
    if args.debug:
        traceback.print_exception(error)
    outputs = getattr(error, "outputs", None)
    if getattr(args, "json", False):
        print(json.dumps({"error": {"code": code, "exit_code": exit_code, "message": message, "hint": hint,
                                    "outputs": outputs}}, sort_keys=True))
    else:
        _show(f"keras-weights: error: {message}\n  hint: {hint}" + (f"\n  outputs: {outputs}" if outputs else ""),
              file=sys.stderr)
    return exit_code


def _say(args: argparse.Namespace, text: str) -> None:
    """One line of feedback on a terminal before a step that takes seconds (loading Keras, compiling)."""
    if sys.stderr.isatty() and not getattr(args, "quiet", False) and not args.json:
        _show(f"keras-weights: {text}", file=sys.stderr, flush=True)


def run_inspect(args: argparse.Namespace) -> int:
    _say(args, f"reading {args.model} ...")
    info = api.inspect(args.model, reader=args.reader, trust_code=args.trust_model_code, allow_sparse=args.allow_sparse,
                       quantize=args.quantize)
    if args.json:
        print(json.dumps(info, sort_keys=True, indent=2, allow_nan=False))
        return 0
    _show(render_table(info, args.view))
    if args.quantize:
        _show("\n" + render_quantization(info))
    return 0


def run_export(args: argparse.Namespace) -> int:
    options = dict(formats=args.formats, force=args.force, layout=args.layout, options=_given_format_options(args) or None,
                   reader=args.reader, fail_on_non_finite=args.fail_on_non_finite, trust_code=args.trust_model_code,
                   allow_sparse=args.allow_sparse, quantize=args.quantize, min_snr=args.min_snr, max_bytes=args.max_bytes)
    if len(args.model) > 1 or batch.is_folder_of_models(args.model[0]):
        return _report_batch(batch.export_many(args.model, args.output, jobs=args.jobs, **options), args.json)
    bar = _ProgressBar() if sys.stderr.isatty() and not args.quiet and not args.json else None
    _say(args, f"reading {args.model[0]} ...")
    try:
        manifest = api.export(args.model[0], args.output, progress=bar, **options)
    except QuantizationError as error:
        if getattr(error, "manifest", None) and not args.json:  # the table that shows which tensors fall short
            _show(render_quantization(error.manifest, args.min_snr), file=sys.stderr)
        raise
    finally:
        if bar:
            bar.close()
    _ignore_stop_signals()  # the export is complete on disk: a late Ctrl-C or SIGTERM must not report otherwise
    if args.quiet:
        return 0
    if args.json:
        print(json.dumps(manifest, sort_keys=True, indent=2, allow_nan=False))
        return 0
    model = manifest["model"]
    _show(f"exported {model['tensors']} tensors ({model['parameters']:,} parameters) of "
          f"{manifest['source']['file'] or model['name']} to {os.path.join(args.output, '')}")
    for entry in manifest["files"]:
        _show(f"  {entry['path']:<40} {entry['bytes']:>14,} bytes  {entry['format']}")
    size = os.path.getsize(os.path.join(args.output, "manifest.json"))
    _show(f"  {'manifest.json':<40} {size:>14,} bytes  run `keras-weights verify {args.output}` to check")
    if "c" in manifest["options"]:
        _show(flash_line(manifest, manifest["options"]["c"]["align"]))
    if "inference" in manifest:
        figures, prefix = manifest["inference"], manifest["options"]["c"]["prefix"]
        _show(f"forward pass: {prefix}_predict, {figures['input_size']:,} floats in, {figures['output_size']:,} out, "
              f"arena {figures['arena_bytes']:,} bytes; `keras-weights verify {args.output} --predict MODEL` runs it "
              "against Keras")
    if args.max_bytes:
        _show(render_budget(manifest, manifest["options"].get("c", {}).get("align", c_format.DEFAULT_ALIGN), args.max_bytes))
    if args.quantize:
        _show("\n" + render_quantization(manifest, args.min_snr))
    return 0


def _ignore_stop_signals() -> None:
    if threading.current_thread() is threading.main_thread():
        signal.signal(signal.SIGTERM, signal.SIG_IGN)
        signal.signal(signal.SIGINT, signal.SIG_IGN)


class _ProgressBar:
    """Bytes and tensors per format on stderr, for exports that take more than about a second (terminals only)."""

    def __init__(self, console=None) -> None:
        self.started, self.bar, self.tasks, self.console = time.monotonic(), None, {}, console

    def __call__(self, format_name: str, tensors: int, tensors_total: int, done: int, total: int) -> None:
        if self.bar is None:
            if time.monotonic() - self.started < 1.0:
                return
            from rich.console import Console
            from rich.progress import BarColumn, DownloadColumn, Progress, TaskProgressColumn, TextColumn

            # Named colours, not rich's RGB defaults: on an 8/16-colour terminal those become grey, and a
            # finished bar looked like an empty one. The percentage says it without colour.
            self.bar = Progress(TextColumn("{task.description:<12}"),
                                BarColumn(style="bright_black", complete_style="cyan", finished_style="green"),
                                TaskProgressColumn(), DownloadColumn(), TextColumn("{task.fields[tensors]} tensors"),
                                console=self.console or Console(stderr=True), transient=True)
            self.bar.start()
        if format_name not in self.tasks:
            self.tasks[format_name] = self.bar.add_task(format_name, total=total, tensors="")
        self.bar.update(self.tasks[format_name], completed=done, tensors=f"{tensors}/{tensors_total}")

    def close(self) -> None:
        if self.bar is not None:
            self.bar.stop()


def _report_batch(outcomes: list, as_json: bool) -> int:
    """One line per model, then totals; exit 8 when any model failed."""
    failed = [o for o in outcomes if not o.ok]
    if as_json:
        print(json.dumps([vars(o) for o in outcomes], sort_keys=True, indent=2))
    else:
        width = max(len(o.source) for o in outcomes)
        for o in outcomes:
            detail = (f"{o.tensors} tensors, {o.parameters:,} parameters, {o.reader} reader -> {o.folder}" if o.ok
                      else o.message)
            _show(f"{'OK  ' if o.ok else 'FAIL'} {o.source:<{width}}  {detail}")
        _show(f"{len(outcomes) - len(failed)} of {len(outcomes)} models exported" + (f", {len(failed)} failed" if failed else ""))
    return SomeModelsFailed.exit_code if failed else 0


def run_verify(args: argparse.Namespace) -> int:
    """Verify an export folder, or each model's subfolder of a batch export (``export models/ -o out/``)."""
    folders = batch.export_folders(args.folder)
    if args.compile:
        _say(args, f"compiling the C output with {args.cc} ...")
    if args.predict:
        _say(args, f"building the forward pass with {args.cc} and running {args.predict} in Keras ...")
    reports = [verification.verify(folder, compile=args.compile, cc=args.cc, cflags=shlex.split(args.cflags),
                                   model=args.model, predict=args.predict) for folder in folders]
    if args.json:
        shown = [{"folder": r.folder, "ok": r.ok, "files": [_check_json(f) for f in r.files]} for r in reports]
        print(json.dumps(shown[0] if len(shown) == 1 else shown, sort_keys=True, indent=2))
    else:
        for report in reports:
            _print_report(report)
    return 0 if all(r.ok for r in reports) else VerificationFailed.exit_code


def _check_json(check: verification.FileCheck) -> dict:
    return {"path": check.path, "format": check.format, "ok": check.ok, "tensors": check.tensors,
            "problems": check.problems, "compiled_with": check.compiled_with, "detail": check.detail}


def _print_report(report: verification.Report) -> None:
    for check in report.files:
        status = "OK  " if check.ok else "FAIL"
        held = check.detail or (f"{check.tensors} tensors" if check.tensors else "declarations")
        compiled = f", compiled with {check.compiled_with}" if check.compiled_with else ""
        _show(f"{status} {check.path:<40} {check.format:<12} {held}{compiled}")
        for problem in check.problems:
            _show(f"       {problem}")
    _show(f"{'verified' if report.ok else 'verification FAILED for'} {report.folder}")


def run_load(args: argparse.Namespace) -> int:
    """Load the model with Keras (safe mode), set its weights from the export, save it under a new name."""
    target = Path(args.output)
    if not (target.name.endswith(".keras") or target.name.endswith(".weights.h5")):
        raise UsageError(f"the new model must be a .keras or .weights.h5 file. Received: -o {args.output}")
    atomic.check_new_file(target, args.force)  # before the model is read
    _say(args, f"reading {args.model} ...")
    model = open_keras_model(args.model)
    load_into(model, args.export)
    save = model.save_weights if target.name.endswith(".weights.h5") else model.save
    atomic.write_file(target, save, args.force)
    _show(f"wrote {target} with the weights of {args.export}")
    return 0


def run_diff(args: argparse.Namespace) -> int:
    """Exit 0 when the two sides are equal within the tolerance, 1 when they differ, like diff(1)."""
    result = diff(args.a, args.b, atol=args.atol, rtol=args.rtol, reader=args.reader)
    if args.json:
        print(json.dumps(result.to_json(), sort_keys=True, indent=2, allow_nan=False))
        return 0 if result.equal else 1
    _show(render_diff(result, args.all))
    return 0 if result.equal else 1


def render_diff(result, show_all: bool = False) -> str:
    """The differing tensors as a table, then one line: equal, or how many differ and how."""
    header = ("Tensor", "Status", "Shape", "Max abs diff", "Max rel diff", "Changed")
    rows = []
    for t in result.tensors:
        if t.status == "equal" and not show_all:
            continue
        name = _printable(t.name) + (f" -> {_printable(t.other_name)}" if t.other_name else "")
        shape = _shape(t.shape or t.other_shape) if t.shape == t.other_shape or not (t.shape and t.other_shape) \
            else f"{_shape(t.shape)} -> {_shape(t.other_shape)}"
        if t.status == "retyped":
            shape += f" {t.dtype} -> {t.other_dtype}"
        figures = ["" if v is None else f"{v:.3g}" for v in (t.max_abs, t.max_rel)]
        rows.append((name, t.status, shape, *figures, "" if t.changed is None else f"{t.changed:.1%}"))
    counts: dict[str, int] = {}
    for t in result.tensors:
        counts[t.status] = counts.get(t.status, 0) + 1
    summary = ("equal: " if result.equal else "differ: ") + ", ".join(f"{n} {status}" for status, n in counts.items())
    lines = [f"{result.a}  vs  {result.b}", *(f"note: {n}" for n in result.notes)]
    if rows:
        widths = [max(len(r[i]) for r in (header, *rows)) for i in range(len(header))]
        line = lambda r: "  ".join(c.rjust(w) if 3 <= i else c.ljust(w) for i, (c, w) in enumerate(zip(r, widths))).rstrip()  # noqa: E731
        lines += [line(header), *map(line, rows)]
    return "\n".join([*lines, summary])


def run_report(args: argparse.Namespace) -> int:
    _say(args, f"reading {args.source} ...")
    written = report(args.source, args.output, model=args.model, against=args.against, reader=args.reader,
                     force=args.force)
    _show(f"wrote {written} ({written.stat().st_size:,} bytes)")
    return 0


COMMANDS = {"inspect": run_inspect, "export": run_export, "verify": run_verify, "load": run_load, "diff": run_diff,
            "report": run_report}


TABLE_ROWS = 60  # weight tensors up to which inspect shows one row each; above, one row per layer


def render_table(info: dict, view: str | None = None) -> str:
    """The ``inspect`` table, like ``model.summary()``: one row per weight tensor (``view="weights"``) or,
    compact, per layer with weights (``"layers"``); by default per tensor up to :data:`TABLE_ROWS` of them."""
    view = view or ("weights" if len(info["tensors"]) <= TABLE_ROWS else "layers")
    tensors: dict[int, list[dict]] = {}  # by layer, scale tensors of a quantized export included
    for t in info["tensors"]:
        tensors.setdefault(t["layer_index"], []).append(t)
    if view == "weights":
        header, numeric = ("#", "Layer", "Class", "Weight", "Shape", "Dtype", "Params"), {0, 6}
        rows = _weight_rows(info["layers"], tensors)
    else:
        header, numeric = ("#", "Layer", "Class", "Weights", "Params", "Bytes", "C flash"), {0, 4, 5, 6}
        rows = _layer_rows(info["layers"], tensors)
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:  # numbers right-aligned, text left-aligned
        cells = (c.rjust(w) if i in numeric else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        return "  ".join(cells).rstrip()

    model, source = info["model"], info["source"]
    title = f'Model: "{_printable(model["name"])}"' + (f' ({model["class"]})' if model["class"] else "") + \
        (f" from {_printable(source['file'])}" if source["file"] else "")
    rule = "-" * len(line(header))
    trainable = sum(_count(t["shape"]) for t in info["tensors"] if t["trainable"])
    totals = (f"Total: {model['tensors']} tensors, {model['parameters']:,} parameters, {model['bytes']:,} bytes\n"
              f"Trainable: {trainable:,} parameters; non-trainable: {model['parameters'] - trainable:,}\n"
              + flash_line(info))
    if view == "layers":
        empty = sum(1 for layer in info["layers"] if not layer["tensors"])
        totals += (f"\nOne row per layer with weights ({len(rows)} of {len(info['layers'])} layers; {empty} without)"
                   "; --weights shows one row per weight tensor")
    return "\n".join([title, rule, line(header), rule, *map(line, rows), rule, totals])


def _weight_rows(layers: list[dict], tensors: dict[int, list[dict]]) -> list[tuple[str, ...]]:
    rows = []
    for layer in layers:
        first = (str(layer["index"]), _printable(layer["name"]), layer["class"])
        for position, t in enumerate(tensors.get(layer["index"]) or [None]):
            lead = first if position == 0 else ("", "", "")
            if t is None:
                rows.append((*lead, "-", "-", "-", "0"))
            else:
                rows.append((*lead, _printable(t["name"]), _shape(t["shape"]), t["dtype"], f"{_count(t['shape']):,}"))
    return rows


def _layer_rows(layers: list[dict], tensors: dict[int, list[dict]]) -> list[tuple[str, ...]]:
    """Layers with weights, each with its tensors' roles and shapes in one cell (``kernel (3, 3, 3, 4)``), their
    bytes and the flash their C arrays take (16-byte alignment included)."""
    rows = []
    for layer in layers:
        mine = tensors.get(layer["index"], [])
        if mine:
            weights = ", ".join(f"{_printable(t['role'])} {_shape(t['shape'])}" for t in mine)
            rows.append((str(layer["index"]), _printable(layer["name"]), layer["class"], _clipped(weights, 60),
                         f"{sum(_count(t['shape']) for t in mine):,}", f"{sum(t['nbytes'] for t in mine):,}",
                         f"{sum(_flash(mine).values()):,}"))
    return rows


def _clipped(text: str, width: int) -> str:
    return text if len(text) <= width else text[:width - 3] + "..."


def _flash(entries: list[dict], align: int = c_format.DEFAULT_ALIGN) -> dict[str, int]:
    """The C arrays' bytes per layer, alignment included, of manifest tensor entries."""
    return c_format.flash_by_layer(((t["layer"], t["nbytes"]) for t in entries), align)


def flash_line(info: dict, align: int = c_format.DEFAULT_ALIGN) -> str:
    """The C arrays' flash footprint, alignment included, and the largest layers."""
    per_layer = _flash(info["tensors"], align)
    largest = sorted(per_layer.items(), key=lambda item: -item[1])[:3]
    return (f"C arrays: {sum(per_layer.values()):,} bytes of flash ({align}-byte alignment); largest layers: "
            + ", ".join(f"{_printable(name)} {size:,}" for name, size in largest))


def render_budget(info: dict, align: int, max_bytes: int) -> str:
    """Each layer's C arrays against ``--max-bytes``, largest first."""
    per_layer = _flash(info["tensors"], align)
    total = sum(per_layer.values())
    width = max([len(_printable(name)) for name in per_layer] + [5])
    lines = [f"Flash budget: {total:,} of {max_bytes:,} bytes ({total / max_bytes:.0%}), {max_bytes - total:,} left"]
    lines += [f"  {_printable(name):<{width}}  {size:>12,} bytes  {size / max_bytes:>5.1%}"
              for name, size in sorted(per_layer.items(), key=lambda item: -item[1])]
    return "\n".join(lines)


def render_quantization(info: dict, min_snr: float | None = None) -> str:
    """The error table of a quantized export: one row per quantized tensor, then the model's total."""
    entries = {t["name"]: t for t in info["tensors"]}
    scales = {(t.get("quantization") or {}).get("scale") for t in info["tensors"]} - {None}
    header = ("Tensor", "Scheme", "Axis", "Bytes before", "Bytes after", "Max abs error", "RMSE", "SNR dB", "")
    rows, before_total, after_total, worst = [], 0, 0, None
    for t in info["tensors"]:
        q = t.get("quantization")
        if t["name"] in scales:
            continue  # counted with its tensor
        if not q:
            before_total, after_total = before_total + t["nbytes"], after_total + t["nbytes"]
            continue
        before = _count(t["shape"]) * dtypes.by_name(t["source_dtype"]).numpy.itemsize
        after = t["nbytes"] + (entries[q["scale"]]["nbytes"] if q.get("scale") else 0)
        before_total, after_total = before_total + before, after_total + after
        snr = q["error"]["snr_db"]
        if snr is not None and (worst is None or snr < worst[1]):
            worst = (t["name"], snr)
        axis = q["axis"]
        shown = "" if not q.get("scale") else "tensor" if axis is None else str(axis) if isinstance(axis, int) \
            else ",".join(map(str, axis))
        low = min_snr is not None and snr is not None and snr < min_snr
        rows.append((_printable(t["name"]), q["scheme"], shown, f"{before:,}", f"{after:,}", f"{q['error']['max_abs']:.3g}",
                     f"{q['error']['rmse']:.3g}", "-" if snr is None else f"{snr:.1f}",
                     f"below --min-snr {min_snr:g}" if low else ""))
    widths = [max(len(row[i]) for row in (header, *rows)) for i in range(len(header))]

    def line(row: tuple[str, ...]) -> str:
        cells = (c.rjust(w) if 3 <= i <= 7 else c.ljust(w) for i, (c, w) in enumerate(zip(row, widths, strict=True)))
        return "  ".join(cells).rstrip()

    ratio = f" ({after_total / before_total:.0%})" if before_total else ""
    total = (f"Total: {len(rows)} of {len(info['tensors']) - len(scales)} tensors quantized, "
             f"{before_total:,} -> {after_total:,} bytes{ratio}"
             + (f"; lowest SNR {worst[1]:.1f} dB ({_printable(worst[0])})" if worst else ""))
    rule = "-" * len(line(header))
    return "\n".join([f"Quantization ({info['options'].get('quantize')}): the error of the values read back against "
                      "the model's", rule, line(header), rule, *map(line, rows), rule, total])


def _printable(text: str) -> str:
    r"""A name on one line: control characters, bidi overrides and other invisible characters escaped (a layer name
    may hold a newline, an ESC sequence or U+202E, which reverses what follows on a terminal).

    >>> _printable("a\nb\x1b[2Jc\u202ed")
    'a\\nb\\x1b[2Jc\\u202ed'
    """
    return "".join(repr(c)[1:-1] if not c.isprintable() else c for c in str(text))


def _show(text: object = "", file=None, flush: bool = False) -> None:
    """``print`` for everything the command line says: each line with its invisible characters escaped
    (:func:`_printable`), whatever part of it came from a model or an export folder."""
    print("\n".join(_printable(line) for line in str(text).split("\n")), file=file, flush=flush)


def _shape(shape: list[int]) -> str:
    return "(" + ", ".join(map(str, shape)) + ("," if len(shape) == 1 else "") + ")"


def _count(shape: list[int]) -> int:
    count = 1
    for n in shape:
        count *= n
    return count
