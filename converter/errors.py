"""The library's exceptions: one hierarchy, each with a stable code, an exit code and a hint.

The CLI maps them to exit codes in one place (``cli.main``); library code only raises.
"""
from __future__ import annotations

import re


class ConverterError(Exception):
    """Base of every error this package raises on purpose.

    >>> err = InputInvalid("cannot read model.h5: truncated", hint="re-download it")
    >>> (err.code, err.exit_code, str(err), err.hint)
    ('input_invalid', 4, 'cannot read model.h5: truncated', 're-download it')
    """

    code = "internal_error"
    exit_code = 70
    default_hint = "This is a bug in keras-weights; rerun with --debug and report the traceback."

    def __init__(self, message: str, *, hint: str | None = None, outputs: str | None = None) -> None:
        super().__init__(spelled(message, PYTHON))
        self.hint = spelled(hint or self.default_hint, PYTHON)
        self.cli_message, self.cli_hint = spelled(message, CLI), spelled(hint or self.default_hint, CLI)
        self.outputs = outputs  # what the failure left in the output folder, when there was one


CLI, PYTHON = 1, 2
_BOTH_SPELLINGS = re.compile(r"\[\[(--[a-z][a-z0-9-]*(?: [^|\]\[]*)?)\|([^\]\[]*)\]\]")  # [[--flag ...|python]]


def spelled(text: str, side: int) -> str:
    """An error's text for the command line or for Python: ``[[--force|force=True]]`` names the option as each
    spells it, so neither reader is told to pass the other's.

    >>> err = OutputError("out/ exists", hint="Pass [[--force|force=True]] to overwrite.")
    >>> err.hint, err.cli_hint
    ('Pass force=True to overwrite.', 'Pass --force to overwrite.')

    Only a command-line flag opens the pair, so a name from a model file that looks like one is left as it is:

    >>> spelled("layer '[[a|b]]'", CLI)
    "layer '[[a|b]]'"
    """
    return _BOTH_SPELLINGS.sub(lambda found: found.group(side), text)


class UsageError(ConverterError):
    """A wrong argument: unknown format, bad option, wrong type."""

    code, exit_code = "usage", 2
    default_hint = "Run `keras-weights --help` for the accepted arguments."


class InputNotFound(ConverterError):
    """The model file or export folder does not exist."""

    code, exit_code = "input_not_found", 3
    default_hint = "Check the path."


class InputInvalid(ConverterError):
    """The input exists but cannot be read as what it claims to be."""

    code, exit_code = "input_invalid", 4
    default_hint = "Check that the file is a complete Keras model (.keras or .h5)."


class DamagedInput(InputInvalid):
    """The input is damaged (a checksum fails): no reader should try it in another way."""

    code = "damaged_input"
    default_hint = "The file is damaged; save or download it again."


class UnsupportedDType(InputInvalid):
    """A weight has a dtype that no output format can hold exactly."""

    code = "unsupported_dtype"


class NonFiniteValues(InputInvalid):
    """Weights hold NaN or infinity and the caller asked for that to be an error."""

    code = "non_finite_values"
    default_hint = "Fix the model, or drop --fail-on-non-finite to export the values bit-exactly anyway."


class QuantizationError(InputInvalid):
    """The weights cannot be quantized as asked: a value beyond float16's range, NaN in an int8 tensor, or an
    error above --min-snr's bound."""

    code = "quantization"
    default_hint = "Export without --quantize, or relax the bound."


class OverBudget(InputInvalid):
    """The export would take more bytes than --max-bytes allows."""

    code = "over_budget"
    default_hint = "Quantize (--quantize int8), or make the model smaller."


class UnsafeInput(ConverterError):
    """Loading the input would run code from it (Lambda layers, custom objects)."""

    code, exit_code = "unsafe_input", 5
    default_hint = "keras-weights never runs code from a model file."


class OutputError(ConverterError):
    """The output cannot be written: it exists already, or the folder is not writable."""

    code, exit_code = "output_error", 6
    default_hint = "Choose another output folder, or pass --force to overwrite."


class VerificationFailed(ConverterError):
    """An exported file does not match its manifest."""

    code, exit_code = "verification_failed", 7
    default_hint = "Export again; the listed files were changed or damaged after export."


class ManifestInvalid(VerificationFailed):
    """A manifest that is not what keras-weights writes: against its schema, or a value no export can hold (an
    unknown option, a file list that does not match the format, a transform that cannot be undone)."""

    code = "manifest_invalid"
    default_hint = "Export again with keras-weights; the manifest was edited or comes from another tool."


class SomeModelsFailed(ConverterError):
    """Several models were asked for and at least one failed (each of the others was exported)."""

    code, exit_code = "some_models_failed", 8
    default_hint = "See the line of each model that failed."
