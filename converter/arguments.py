"""The command line's arguments: commands, options (each format's built from its declarations), help and
exit codes. Built from :mod:`converter.choices` alone, so the command line parses its arguments (and answers
``--help``) before it imports anything heavy (``_launch``)."""
from __future__ import annotations

import argparse
import re

from . import choices
from ._version import __version__
from .errors import UsageError
from .choices import TABLE_ROWS

EXIT_CODES = """exit codes:
  0   success
  1   diff: the two sides differ
  2   usage error (unknown command, option or format)
  3   input not found (model file or export folder)
  4   input invalid (not a Keras model, damaged file, unsupported dtype; a quantization or size bound not met)
  5   refused as unsafe (loading would run code from the file)
  6   cannot write output (exists without --force, folder not writable)
  7   verification failed (a file or tensor differs from the manifest, or the manifest is not ours)
  8   several models, and at least one failed (each of the others was exported)
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
    inspect.add_argument("-v", "--verbose", action="store_true",
                         help="with --quantize, every quantized tensor (default: the 10 of lowest SNR)")
    view = inspect.add_mutually_exclusive_group()
    view.add_argument("--layers", dest="view", action="store_const", const="layers",
                      help=f"one row per layer with weights (the default above {TABLE_ROWS} weight tensors)")
    view.add_argument("--weights", dest="view", action="store_const", const="weights",
                      help=f"one row per weight tensor (the default up to {TABLE_ROWS})")
    inspect.add_argument("--quantize", choices=list(choices.QUANTIZE_SCHEMES),
                         help="show the tensors as an export with --quantize would store them, with their error")
    inspect.add_argument("--calibration", metavar="SAMPLES",
                         help="with --quantize int8: calibrate the full-integer int8 forward pass on SAMPLES (as "
                              "export --calibration) and show each value's range, scale and zero point")
    _reader_option(inspect)

    export = _command(commands, "export", "write the weights in every chosen format plus manifest.json",
                      "keras-weights export model.keras -o out/\n  keras-weights export model.h5 -f parquet --force\n"
                      "  keras-weights export model.keras -f c --c-header-only --c-prefix net -o firmware/")
    export.add_argument("model", nargs="+", help="a .keras or .h5 model file or SavedModel folder; several, or a "
                                                  "folder of them, are exported each into its own subfolder of -o")
    export.add_argument("-j", "--jobs", type=int, metavar="N", help="models exported in parallel (default: the cores)")
    export.add_argument("-o", "--output", default="out", metavar="DIR", help="output folder (default: out)")
    export.add_argument("-f", "--formats", default=",".join(choices.FORMAT_OPTIONS), metavar="FORMATS",
                        help=f"comma-separated formats (default: all): {', '.join(choices.FORMAT_OPTIONS)}")
    export.add_argument("--force", action="store_true", help="overwrite outputs that exist already")
    export.add_argument("--layout", default="keras", choices=list(choices.LAYOUTS),
                        help="; ".join(f"{name}{' (default)' if name == 'keras' else ''}: {what}"
                                       for name, what in choices.LAYOUTS.items()).replace("%", "%%"))
    export.add_argument("--json", action="store_true", help="print the manifest instead of a summary")
    export.add_argument("-q", "--quiet", action="store_true", help="no progress bar and no summary")
    export.add_argument("-v", "--verbose", action="store_true",
                        help="list every quantized tensor's error (default: the 10 of lowest SNR; all in --json)")
    _reader_option(export)
    export.add_argument("--fail-on-non-finite", action="store_true",
                        help="refuse to export weights holding NaN or infinity (by default they are exported "
                             "bit-exactly, with a warning and their counts in the manifest)")
    small = export.add_argument_group("small devices")
    small.add_argument("--quantize", choices=list(choices.QUANTIZE_SCHEMES),
                       help="int8: kernels as int8 with a float32 scale per output channel (symmetric, weight-only); "
                            "float16, bfloat16: every float32 tensor cast. In every format; a table of the error "
                            "per tensor is printed (docs/quantization.md)")
    small.add_argument("--min-snr", type=float, metavar="DB",
                       help="refuse the export (exit 4, nothing written) if a quantized tensor's SNR falls below DB")
    small.add_argument("--calibration", metavar="SAMPLES",
                       help="with --quantize int8 -f c --c-inference: a .npy of samples (N, *input shape), or an .npz "
                            "of one such array per input named as model.inputs; the forward pass becomes full-integer "
                            "int8 (int8 activations, <prefix>_predict_int8), its ranges calibrated on them "
                            "(docs/inference.md)")
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
    """``--<format>-<option>`` flags, one per option each format declares (``choices.Option``)."""
    for name, declared in choices.FORMAT_OPTIONS.items():
        group = parser.add_argument_group(f"{name} output (-f {name})") if declared else None
        for option in declared:
            flag, dest = f"--{name}-{option.name.replace('_', '-')}", f"{name}.{option.name}"
            if isinstance(option.default, bool):
                group.add_argument(flag, dest=dest, action="store_true", default=None, help=option.help)
            elif option.repeat:
                group.add_argument(flag, dest=dest, action="append", metavar=option.metavar, help=option.help)
            else:
                group.add_argument(flag, dest=dest, type=type(option.default), choices=option.choices or None,
                                   metavar=option.metavar, help=option.help)


def given_format_options(args: argparse.Namespace) -> dict[str, dict]:
    """The format options given on the command line, as ``{format: {option: value}}``."""
    given: dict[str, dict] = {}
    for name, declared in choices.FORMAT_OPTIONS.items():
        for option in declared:
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
    parser.add_argument("--reader", default="auto", choices=choices.READER_CHOICES,
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
