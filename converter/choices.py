"""Every name a user chooses by, declared once and free of heavy imports: the output formats and their writer
options, the layouts, the quantization schemes, the readers, the inspect table's switch to one row per layer.

The modules that implement them take their declarations from here, and the command line builds its arguments
from here alone, so ``--help``, ``--version`` and usage errors are answered before numpy, h5py or TensorFlow load
(numpy's import alone is ~0.1 s of a cold start).

>>> list(FORMAT_OPTIONS), [option.name for option in FORMAT_OPTIONS["c"]][:3]
(['npz', 'safetensors', 'parquet', 'c'], ['prefix', 'header_only', 'arrays'])
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Option:
    """One writer option: its name, default (whose type values must have), help, and allowed values."""

    name: str
    default: bool | int | str
    help: str
    choices: tuple[str, ...] = ()
    metavar: str | None = None
    since: str = "1.0"  # the manifest schema that added it: a later option is recorded only when it is set
    repeat: bool = False  # a CLI flag given once per item (its values joined by commas)


C_ARRAY_STYLES = ("flat", "nested")
C_DEFAULT_ALIGN = 16
C_MAX_ALIGN = 4096  # a page: more is never what an array of weights needs

C_OPTIONS = (
    Option("prefix", "", "prefix of every C identifier (default: from the file name)", metavar="NAME"),
    Option("header_only", False, "one self-contained header with static const arrays instead of .h + .c"),
    Option("arrays", "flat", "flat (default) arrays with shape macros, or nested arrays indexed like the Keras array",
           choices=C_ARRAY_STYLES),
    Option("align", C_DEFAULT_ALIGN, f"alignment of every array in bytes, a power of two up to {C_MAX_ALIGN} "
           f"(default: {C_DEFAULT_ALIGN})", metavar="BYTES"),
    Option("inference", False, "also write the model's forward pass, <prefix>_predict(input, output, arena), plain "
           "C99 that runs these arrays (docs/inference.md)", since="1.1"),
    Option("input_shape", "", "with --c-inference, for a model that leaves a dimension unknown: the shape of one "
           "sample of an input without the batch axis, dimensions joined by x (50x1); once per input, in model.inputs "
           "order (the library takes them joined by commas)", metavar="SHAPE", since="1.1", repeat=True),
)

# The formats in the order they are written and listed; each format module's OPTIONS is its entry here.
FORMAT_OPTIONS: dict[str, tuple[Option, ...]] = {"npz": (), "safetensors": (), "parquet": (), "c": C_OPTIONS}

LAYOUTS = {
    "keras": "every array exactly as get_weights() returned it (Dense kernels are [in][out])",
    "dense_out_in": "Dense kernels transposed to [out][in] (CMSIS-NN / TFLite fully-connected order)",
    "torch": "every tensor named and laid out as the equivalent torch.nn module's state_dict (docs/torch.md)",
}

QUANTIZE_SCHEMES = ("int8", "float16", "bfloat16")

READERS = ("keras", "h5", "savedmodel")  # the order ``auto`` tries them in is the readers package's own
READER_CHOICES = ("auto", *READERS)

TABLE_ROWS = 60  # weight tensors up to which inspect shows one row each; above, one row per layer
