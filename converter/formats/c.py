"""C arrays for firmware: ``<stem>.h`` (declarations, macros, tables) and ``<stem>.c`` (definitions).

Every tensor is one ``const`` array whose memory bytes equal the tensor's C-order little-endian bytes:
float32 as ``float``, float64 as ``double``, float16/bfloat16/float8 and bool as unsigned bit
patterns, integers as ``<stdint.h>`` types. Zero-size tensors get macros and a table entry (data
``NULL``) but no array, since ISO C has no zero-length arrays. With ``header_only`` everything goes
into one header as ``static const`` definitions. The text is streamed tensor by tensor.
"""
from __future__ import annotations

import collections
import contextlib
import functools
import os
import re
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from .. import atomic, c_text, dtypes
from .._version import __version__
from ..errors import InputInvalid, UsageError
from ..inference import codegen, graph
from ..tensors import ExportInfo, Layer, Tensor
from . import c_build
from .base import Option
from .c_parse import read  # noqa: F401  (the registry face: c.read)

EXTENSIONS = (".h", ".c")
ARRAY_STYLES = ("flat", "nested")
MAX_ALIGN = 4096  # a page: more is never what an array of weights needs
DEFAULT_ALIGN = 16
OPTIONS = (
    Option("prefix", "", "prefix of every C identifier (default: from the file name)", metavar="NAME"),
    Option("header_only", False, "one self-contained header with static const arrays instead of .h + .c"),
    Option("arrays", "flat", "flat (default) arrays with shape macros, or nested arrays indexed like the Keras array",
           choices=ARRAY_STYLES),
    Option("align", DEFAULT_ALIGN, f"alignment of every array in bytes, a power of two up to {MAX_ALIGN} "
           f"(default: {DEFAULT_ALIGN})", metavar="BYTES"),
    Option("inference", False, "also write the model's forward pass, <prefix>_predict(input, output, arena), plain "
           "C99 that runs these arrays (docs/inference.md)", since="1.1"),
    Option("input_shape", "", "with --c-inference, for a model that leaves a dimension unknown: the shape of one "
           "sample of an input without the batch axis, dimensions joined by x (50x1); once per input, in model.inputs "
           "order (the library takes them joined by commas)", metavar="SHAPE", since="1.1", repeat=True),
)


# Headers of the C library and of common embedded toolchains: a generated header of the same name would
# shadow them for every file compiled with the export's folder on the include path.
SYSTEM_HEADERS = frozenset({
    "assert", "complex", "ctype", "errno", "fenv", "float", "inttypes", "iso646", "limits", "locale", "math",
    "setjmp", "signal", "stdalign", "stdarg", "stdatomic", "stdbit", "stdbool", "stdckdint", "stddef", "stdint",
    "stdio", "stdlib", "stdnoreturn", "string", "tgmath", "threads", "time", "uchar", "wchar", "wctype",
    "arduino", "pgmspace", "unistd", "fcntl", "alloca", "malloc", "memory", "cmsis_compiler", "arm_math",
})


def files(stem: str, *, header_only: bool = False, **_: object) -> list[str]:
    """``<stem>.h`` and ``<stem>.c``, or the header alone; ``<stem>_weights`` for a stem that would shadow a
    system header.

    >>> files("seed_mlp"), files("stdint", header_only=True)
    (['seed_mlp.h', 'seed_mlp.c'], ['stdint_weights.h'])
    """
    base = f"{stem}_weights" if stem.lower() in SYSTEM_HEADERS else stem
    return [base + ".h"] if header_only else [base + ".h", base + ".c"]


def flash_by_layer(tensors: Iterable[tuple[str, int]], align: int = DEFAULT_ALIGN) -> dict[str, int]:
    """The bytes each layer's arrays take in the firmware, from (layer, tensor bytes) pairs: every array is
    rounded up to the alignment (an empty tensor has no array); layers in first-seen order.

    >>> flash_by_layer([("d", 20), ("d", 4), ("e", 0)]), flash_by_layer([("d", 20), ("d", 4)], align=4)
    ({'d': 48, 'e': 0}, {'d': 24})
    """
    layers: dict[str, int] = {}
    for layer, nbytes in tensors:
        layers[layer] = layers.get(layer, 0) + -(-nbytes // align) * align
    return layers


def flash_line(entries: Iterable[Mapping], align: int = DEFAULT_ALIGN) -> str:
    """The C arrays' flash footprint of manifest tensor entries, alignment included, and the largest layers.

    >>> flash_line([{"layer": "d", "nbytes": 20}, {"layer": "e", "nbytes": 4}])
    'C arrays: 48 bytes of flash (16-byte alignment); largest layers: d 32, e 16'
    """
    per_layer = flash_by_layer(((t["layer"], t["nbytes"]) for t in entries), align)
    largest = sorted(per_layer.items(), key=lambda item: -item[1])[:3]
    return (f"C arrays: {sum(per_layer.values()):,} bytes of flash ({align}-byte alignment); largest layers: "
            + ", ".join(f"{name} {size:,}" for name, size in largest))


def summary_lines(manifest: Mapping, folder: str) -> list[str]:
    """What the export's summary says of its C output: the flash the arrays take and, with ``--c-inference``, the
    forward pass."""
    options = manifest["options"]["c"]
    lines = [flash_line(manifest["tensors"], int(options.get("align", DEFAULT_ALIGN)))]
    if "inference" in manifest:
        figures = manifest["inference"]
        lines.append(f"forward pass: {options['prefix']}_predict, {figures['input_size']:,} floats in, "
                     f"{figures['output_size']:,} out, arena {figures['arena_bytes']:,} bytes; "
                     f"`keras-weights verify {folder} --predict MODEL` runs it against Keras")
    return lines


def scale_indexing(shape: Sequence[int], axes: Sequence[int] | None) -> tuple[int, int]:
    """(count, stride) of an int8 tensor's scales: element ``n`` (flat, C order) has scale
    ``(n / stride) % count``. The channel axes are contiguous (``quantize.channel_axes``).

    >>> scale_indexing((4, 20), [1]), scale_indexing((3, 3, 8, 2), [2, 3]), scale_indexing((20, 4), [0]), scale_indexing((4, 4), None)
    ((20, 1), (16, 1), (20, 4), (1, 16))
    """
    if not axes:
        return 1, max(1, int(np.prod(shape)))
    count = int(np.prod([shape[a] for a in axes]))
    stride = int(np.prod(shape[max(axes) + 1:]))
    return count, max(1, stride)


def prefix_for(stem: str, prefix: str = "") -> str:
    """The identifier prefix: the one given (checked), else derived from the file stem.

    >>> prefix_for("seed_mlp"), prefix_for("2024 Model-v1"), prefix_for("x", "Net")
    ('seed_mlp', 'w_2024_model_v1', 'net')
    """
    if prefix:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*", prefix):
            raise UsageError(f"C prefix must be letters, digits and single inner underscores, starting with a letter. "
                             f"Received: prefix={prefix!r}")
        return prefix.lower()
    derived = c_text.identifier(stem) or "weights"
    return derived if derived[0].isalpha() else f"w_{derived}"


def effective(stem: str, options: Mapping[str, object]) -> dict:
    """The options as used for ``stem``: the prefix derived from it when none was given (the manifest records
    the prefix the identifiers really have)."""
    return {**options, "prefix": prefix_for(stem, str(options.get("prefix", "")))}


def validate(options: Mapping[str, object]) -> None:
    """Check option values (their types are checked by the registry)."""
    if options.get("arrays", "flat") not in ARRAY_STYLES:
        raise UsageError(f"C arrays must be one of {', '.join(ARRAY_STYLES)}. Received: arrays={options['arrays']!r}")
    align = options.get("align", 16)
    if align < 1 or align & (align - 1) or align > MAX_ALIGN:
        raise UsageError(f"C alignment must be a power of two from 1 to {MAX_ALIGN}. Received: align={align}")
    if options.get("prefix"):
        prefix_for("", options["prefix"])
    if options.get("input_shape"):
        codegen.parse_input_shapes(options["input_shape"])
        if not options.get("inference"):
            raise UsageError("--c-input-shape is for --c-inference", hint="Add --c-inference, or drop --c-input-shape.")


# Names the generated text defines beside the arrays: tables, types, the forward pass and its trace, and the
# identifiers whose shape macros would be the forward pass's (p_input -> P_INPUT_SIZE); its kernels are p_kw_*.
_RESERVED = ("tensors", "layers", "tensor", "layer", "tensor_t", "layer_t", "predict", "trace_print", "input",
             "output", "arena")
_NAMESPACES = ("kw_",)


def keys(tensors: Sequence[Tensor], stem: str, *, prefix: str = "", **_: object) -> dict[str, str]:
    """The C identifier of each tensor's array: unique, stable, valid C and C++, never a name the generated code
    defines (a tensor named ``kw_dense_f32`` or ``input`` gets ``p_t_kw_dense_f32``, ``p_input_2``).

    >>> from converter.tensors import Tensor
    >>> import numpy as np
    >>> keys([Tensor(n, "l", "r", 0, True, np.zeros(1, np.float32)) for n in ("kw_dense_f32", "input")], "m")
    {'kw_dense_f32': 'm_t_kw_dense_f32', 'input': 'm_input_2'}
    """
    chosen = prefix_for(stem, prefix)
    return c_text.unique_identifiers([t.name for t in tensors], chosen, [f"{chosen}_{n}" for n in _RESERVED],
                                     _NAMESPACES)


def write(tensors: Sequence[Tensor], path: Path, *, info: ExportInfo | None = None, prefix: str = "",
          header_only: bool = False, arrays: str = "flat", align: int = 16, inference: bool = False,
          input_shape: str = "", progress: Callable[[Tensor], None] | None = None) -> dict[str, str]:
    """Write the header at ``path`` (``<stem>.h``) and, unless ``header_only``, the source beside it;
    return each file's sha256."""
    validate({"prefix": prefix, "arrays": arrays, "align": align})
    unit = _Unit(tensors, prefix_for(Path(path).stem, prefix), Path(path).stem, info, arrays, align, header_only,
                 inference, input_shape)
    unit.progress = progress
    return _emit(unit, Path(path), lambda target: atomic.HashedOutput(target, text=True))


def rendered_sha256(tensors: Sequence[Tensor], path: Path, *, info: ExportInfo | None = None, prefix: str = "",
                    header_only: bool = False, arrays: str = "flat", align: int = 16,
                    inference: bool = False, input_shape: str = "") -> dict[str, str]:
    """The sha256 of each file :func:`write` would write for these tensors, without writing anything."""
    unit = _Unit(tensors, prefix_for(Path(path).stem, prefix), Path(path).stem, info, arrays, align, header_only,
                 inference, input_shape)
    return _emit(unit, Path(path), lambda _: atomic.HashedOutput(Path(os.devnull), text=True))


def _emit(unit: _Unit, path: Path, output_for: Callable[[Path], atomic.HashedOutput]) -> dict[str, str]:
    digests = {}
    with (header_output := output_for(path)) as header:
        unit.write_header(header)
    digests[path.name] = header_output.sha256
    if not unit.header_only:
        with (source_output := output_for(path.with_suffix(".c"))) as source:
            unit.write_source(source)
        digests[path.with_suffix(".c").name] = source_output.sha256
    return digests


class _Unit:
    """One model's C text: the parts shared by the header and the source."""

    def __init__(self, tensors, prefix, stem, info: ExportInfo | None, arrays, align, header_only, inference=False,
                 input_shape=""):
        self.tensors, self.prefix, self.stem, self.info = list(tensors), prefix, stem, info
        self.macro, self.nested, self.align, self.header_only = prefix.upper(), arrays == "nested", align, header_only
        self.names = keys(self.tensors, stem, prefix=prefix)
        self.rank_max = max([len(t.shape) for t in self.tensors] + [1])
        self.scaled = any(t.quantization and t.quantization.scale for t in self.tensors)  # int8: scale fields
        ready = info.prepared.get("c") if info else None  # generated once per export, by prepare()
        self.program = (ready or inference_program(self.tensors, self.names, prefix, info, input_shape)) if inference \
            else None
        self.progress: Callable[[Tensor], None] | None = None

    # -- header ------------------------------------------------------------------------------
    def write_header(self, out: IO[str]) -> None:
        m = self.macro
        out.write(self._banner(f"{self.stem}.h"))
        out.write(f"#ifndef {m}_WEIGHTS_H\n#define {m}_WEIGHTS_H\n\n#include <stddef.h>\n#include <stdint.h>\n\n")
        out.write(self._config_macros())
        out.write(f"#ifdef __cplusplus\nextern \"C\" {{\n#endif\n\n{self._types()}")
        for index, tensor in enumerate(self.tensors):
            out.write(self._tensor_macros(index, tensor))
            if tensor.array.size and not self.header_only:
                out.write(f"extern const {self._c_type(tensor)} {self.names[tensor.name]}{self._dims(tensor)};\n")
            out.write("\n")
        if self.header_only:
            self._write_definitions(out, "static ")
        else:
            out.write(f"#ifndef {m}_NO_TABLES\n")
            out.write(f"extern const {self.prefix}_tensor_t {self.prefix}_tensors[{max(len(self.tensors), 1)}];\n")
            out.write(f"extern const {self.prefix}_layer_t {self.prefix}_layers[{max(len(self.layer_rows), 1)}];\n")
            out.write("#endif\n\n")
        if self.program:
            predict = f"int {self.prefix}_predict("
            out.write(_NOT_ON_AVR)
            if self.header_only:  # everything static in the one header
                out.write(self.program.header.replace(predict, "static " + predict))
                out.write("#include <math.h>\n\n" + self.program.source.replace(predict, "static " + predict))
            else:
                out.write(self.program.header)
            out.write("#endif /* __AVR__ */\n\n")
        out.write(f"#ifdef __cplusplus\n}}\n#endif\n\n#endif /* {m}_WEIGHTS_H */\n")

    def write_source(self, out: IO[str]) -> None:
        out.write(self._banner(f"{self.stem}.c"))
        out.write(f'#include "{self.stem}.h"\n\n')
        self._write_definitions(out, "")
        if self.program:
            out.write("\n" + _NOT_ON_AVR + "#include <math.h>\n\n" + self.program.source + "#endif /* __AVR__ */\n")

    def _banner(self, file_name: str) -> str:
        model = self.info.model if self.info else None
        name, class_name = (model.name, model.class_name) if model else ("", "")
        source = (model.source.file if model else None) or "an in-memory model"
        layout = self.info.layout if self.info else "keras"
        version = self.info.producer_version if self.info else __version__
        return (
            f"/* {c_text.comment_text(file_name)}: weights of the Keras model \"{c_text.comment_text(name)}\" "
            f"({c_text.comment_text(class_name)}) from {c_text.comment_text(source)},\n"
            f" * written by keras-weights {c_text.comment_text(version)}. Do not edit: export again instead.\n"
            f" * {len(self.tensors)} tensors, {sum(t.array.size for t in self.tensors)} parameters, "
            f"{sum(t.nbytes for t in self.tensors)} bytes; layout {c_text.comment_text(layout)}.\n"
            " *\n"
            " * Each array holds one tensor in C (row-major) order: memcpy from it gives exactly the bytes\n"
            " * get_weights() returned (little-endian). float16, bfloat16 and float8 tensors are stored as\n"
            " * their unsigned bit patterns, bool as uint8_t.\n"
            + (" * Quantized export: the comment above each quantized tensor says what it holds and, for int8,\n"
               " * how to get the model's value back (w = q * scale[channel]).\n"
               if any(t.quantization for t in self.tensors) else "")
            + (" * Arrays are nested like the Keras array: x[i][j].\n" if self.nested else
               " * Arrays are flat: element [i][j] of a tensor of shape [D0][D1] is x[i * D1 + j].\n")
            + " */\n\n"
        )

    def _config_macros(self) -> str:
        m = self.macro
        return f"""/* Alignment of every array in bytes: define {m}_ALIGNMENT (or {m}_ALIGN(n))
 * before including to change it. */
#ifndef {m}_ALIGNMENT
#define {m}_ALIGNMENT {self.align}
#endif
#ifndef {m}_ALIGN
#if defined(__cplusplus) && __cplusplus >= 201103L
#define {m}_ALIGN(n) alignas(n)
#elif defined(__STDC_VERSION__) && __STDC_VERSION__ >= 201112L
#define {m}_ALIGN(n) _Alignas(n)
#elif defined(__GNUC__) || defined(__clang__) || defined(__CC_ARM)
#define {m}_ALIGN(n) __attribute__((aligned(n)))
#elif defined(__IAR_SYSTEMS_ICC__)
#define {m}_PRAGMA(text) _Pragma(#text)
#define {m}_ALIGN(n) {m}_PRAGMA(data_alignment = n)
#elif defined(_MSC_VER)
#define {m}_ALIGN(n) __declspec(align(n))
#else
#define {m}_ALIGN(n)
#endif
#endif

/* Placement of the arrays, written after each array's name: define {m}_STORAGE before including,
 * e.g. as __attribute__((section(".weights"))). On AVR it is PROGMEM: read values with memcpy_P. */
#ifndef {m}_STORAGE
#if defined(__AVR__)
#include <avr/pgmspace.h>
#define {m}_STORAGE PROGMEM
#else
#define {m}_STORAGE
#endif
#endif

/* Infinities and NaNs as constant initializers; NaN payloads are exact with GCC and Clang. */
#ifndef {m}_INFF
#if defined(__GNUC__) || defined(__clang__)
#define {m}_INFF (__builtin_inff())
#define {m}_NANF(payload) (__builtin_nanf(payload))
#define {m}_SNANF(payload) (__builtin_nansf(payload))
#define {m}_INF (__builtin_inf())
#define {m}_NAN(payload) (__builtin_nan(payload))
#define {m}_SNAN(payload) (__builtin_nans(payload))
#else
#include <math.h>
#define {m}_INFF INFINITY
#define {m}_NANF(payload) NAN
#define {m}_SNANF(payload) NAN
#define {m}_INF ((double)INFINITY)
#define {m}_NAN(payload) ((double)NAN)
#define {m}_SNAN(payload) ((double)NAN)
#endif
#endif

"""

    def _types(self) -> str:
        m, p = self.macro, self.prefix
        codes = "".join(f"#define {m}_DTYPE_{d.name.upper()} {i}\n" for i, d in enumerate(dtypes.TABLE, start=1))
        return (
            f"/* Element types, for {p}_tensor_t.dtype. */\n{codes}\n"
            f"#define {m}_TENSOR_COUNT {len(self.tensors)}\n#define {m}_LAYER_COUNT {len(self.layer_rows)}\n"
            f"#define {m}_RANK_MAX {self.rank_max}\n\n"
            f"/* One entry per tensor, in model order; data is NULL for tensors with no elements. */\n"
            f"typedef struct {p}_tensor {{\n    const char *name;  /* the Keras name, UTF-8 */\n"
            f"    const void *data;\n    uint8_t dtype;      /* {m}_DTYPE_* */\n    uint8_t rank;\n"
            f"    uint32_t dims[{m}_RANK_MAX];\n    size_t size;        /* elements */\n    size_t nbytes;\n"
            + ("    const float *scale;     /* int8 tensors: data[n] stands for data[n] * scale[(n / scale_stride) % scale_count];\n"
               "                               NULL for a tensor stored as the model holds it or cast (float16) */\n"
               "    uint32_t scale_count;   /* scales: one per combination of the channel axes (1: one for the tensor) */\n"
               "    uint32_t scale_stride;  /* elements per step of the channel: the product of the dims after them */\n"
               if self.scaled else "")
            + f"}} {p}_tensor_t;\n\n"
            f"/* One entry per top-level layer, in model order, with the range of its tensors. */\n"
            f"typedef struct {p}_layer {{\n    const char *name;\n    const char *class_name;\n"
            f"    const char *activation;  /* \"\" when the layer has none */\n"
            f"    uint32_t first_tensor;\n    uint32_t tensor_count;\n}} {p}_layer_t;\n\n"
        )

    def _tensor_macros(self, index: int, tensor: Tensor) -> str:
        base = self.names[tensor.name].upper()
        dims = "".join(f"[{n}]" for n in tensor.shape) or "(scalar)"
        lines = [f"/* [{index}] {c_text.comment_text(tensor.name)}: layer {c_text.comment_text(tensor.layer)}, "
                 f"role {c_text.comment_text(tensor.role)}, {c_text.comment_text(tensor.dtype)} {dims}"
                 + (", transposed" if tensor.transform == "transpose" else "") + " */",
                 f"#define {base}_INDEX {index}", f"#define {base}_SIZE {tensor.array.size}",
                 f"#define {base}_BYTES {tensor.nbytes}", f"#define {base}_RANK {len(tensor.shape)}"]
        lines += [f"#define {base}_DIM{axis} {n}" for axis, n in enumerate(tensor.shape)]
        q = tensor.quantization
        if q is not None and q.scale:
            count, stride = scale_indexing(tensor.shape, q.axis)
            scale = self.names[q.scale]
            axes = "one scale for the tensor" if not q.axis else f"channel axes {', '.join(map(str, q.axis))}"
            lines[1:1] = [f"/* int8 ({c_text.comment_text(q.scheme)}, from {c_text.comment_text(q.source_dtype)}, {axes}): "
                          "element n stands for\n"
                          f" * {self.names[tensor.name]}[n] * {scale}[(n / {base}_CHANNEL_STRIDE) % {base}_CHANNELS] */"]
            lines += [f"#define {base}_CHANNELS {count}", f"#define {base}_CHANNEL_STRIDE {stride}"]
        elif q is not None:
            lines[1:1] = [f"/* {c_text.comment_text(q.scheme)} cast of the model's {c_text.comment_text(q.source_dtype)} "
                          "values */"]
        return "\n".join(lines) + "\n"

    # -- definitions -------------------------------------------------------------------------
    def _write_definitions(self, out: IO[str], storage_class: str) -> None:
        m = self.macro
        for tensor in self.tensors:
            if tensor.array.size:
                out.write(f"{m}_ALIGN({m}_ALIGNMENT) {storage_class}const {self._c_type(tensor)} "
                          f"{self.names[tensor.name]}{self._dims(tensor)} {m}_STORAGE = {{\n")
                self._write_values(out, tensor)
                out.write("};\n\n")
            if self.progress:
                self.progress(tensor)
        self._write_tables(out, storage_class)

    def _write_values(self, out: IO[str], tensor: Tensor) -> None:
        entry = dtypes.lookup(tensor.array.dtype)
        if self.nested and len(tensor.shape) >= 2:
            self._write_nested(out, tensor, entry)
            return
        out.flush()  # the values go to the binary buffer underneath, without decoding
        for text in c_text.render(tensor.array, entry, self.macro):
            out.buffer.write(text)

    def _write_nested(self, out: IO[str], tensor: Tensor, entry: dtypes.DType) -> None:
        """Rows of the last axis in braces, with braces opened and closed for every outer axis."""
        lead = tensor.shape[:-1]
        blocks = [int(np.prod(lead[axis:])) for axis in range(1, len(lead))]
        rows = tensor.array.reshape(-1, tensor.shape[-1])
        for r, row in enumerate(rows):
            opens = sum(r % b == 0 for b in blocks)
            closes = sum((r + 1) % b == 0 for b in blocks)
            text = c_text.lines(c_text.tokens(row, entry, self.macro), indent="    ").decode("ascii") if row.size else ""
            out.write("  " + "{" * opens + "{\n" + text + "  }" + "}" * closes + ",\n")

    def _write_tables(self, out: IO[str], storage_class: str) -> None:
        m, p = self.macro, self.prefix
        out.write(f"/* The tables hold pointers and names in RAM on Harvard targets (AVR): define {m}_NO_TABLES when\n"
                  f" * compiling to leave them out, or link with -Wl,--gc-sections to drop them when unused. */\n"
                  f"#ifndef {m}_NO_TABLES\n")
        out.write(f"{storage_class}const {p}_tensor_t {p}_tensors[{max(len(self.tensors), 1)}] = {{\n")
        for tensor in self.tensors:
            dims = list(tensor.shape) + [0] * (self.rank_max - len(tensor.shape))
            data = self.names[tensor.name] if tensor.array.size else f"NULL /* {self.names[tensor.name]} */"
            out.write(f"  {{{c_text.c_string(tensor.name)}, {data}, {m}_DTYPE_{tensor.dtype.upper()}, {len(tensor.shape)}, "
                      f"{{{', '.join(map(str, dims))}}}, {tensor.array.size}u, {tensor.nbytes}u{self._scale_fields(tensor)}}},\n")
        if not self.tensors:
            out.write("  {\"\", NULL, 0, 0, {0}, 0u, 0u},\n")
        out.write(f"}};\n\n{storage_class}const {p}_layer_t {p}_layers[{max(len(self.layer_rows), 1)}] = {{\n")
        for name, class_name, activation, first, count in self.layer_rows or [("", "", "", 0, 0)]:
            out.write(f"  {{{c_text.c_string(name)}, {c_text.c_string(class_name)}, {c_text.c_string(activation)}, "
                      f"{first}u, {count}u}},\n")
        out.write("};\n#endif\n")

    def _scale_fields(self, tensor: Tensor) -> str:
        if not self.scaled:
            return ""
        q = tensor.quantization
        if q is None or not q.scale:
            return ", NULL, 0u, 0u"
        count, stride = scale_indexing(tensor.shape, q.axis)
        return f", {self.names[q.scale]}, {count}u, {stride}u"

    @functools.cached_property
    def layer_rows(self) -> list[tuple[str, str, str, int, int]]:
        """(name, class, activation, first tensor, tensor count) per top-level layer."""
        layers = self.info.model.layers if self.info else self._layers_from_tensors()
        first_of, counts = {}, collections.Counter(t.layer_index for t in self.tensors)
        for position, tensor in enumerate(self.tensors):
            first_of.setdefault(tensor.layer_index, position)
        result = []
        for layer in layers:
            activation = layer.config.get("activation")
            result.append((layer.name, layer.class_name, activation if isinstance(activation, str) else "",
                           first_of.get(layer.index, len(self.tensors)), counts[layer.index]))
        return result

    def _layers_from_tensors(self) -> list[Layer]:
        seen: dict[int, Layer] = {}
        for tensor in self.tensors:
            seen.setdefault(tensor.layer_index, Layer(tensor.layer_index, tensor.layer, "", {}, None, None, ()))
        return list(seen.values())

    def _c_type(self, tensor: Tensor) -> str:
        return dtypes.lookup(tensor.array.dtype).c_type

    def _dims(self, tensor: Tensor) -> str:
        if self.nested and len(tensor.shape) >= 2:
            return "".join(f"[{n}]" for n in tensor.shape)
        return f"[{max(tensor.array.size, 1)}]"


# The forward pass reads the weight arrays as ordinary memory; an AVR keeps them in PROGMEM, where that needs
# pgm_read_*: on AVR the arrays compile, the forward pass is left out.
_NOT_ON_AVR = ("/* The forward pass (not on AVR, whose PROGMEM arrays need pgm_read_* to be read). */\n"
               "#if !defined(__AVR__)\n")


def check_layout(options: Mapping[str, object], layout: str) -> None:
    """Before the model is read: the forward pass runs the arrays in Keras's layout only."""
    if options.get("inference") and layout != "keras":
        raise UsageError(f"--c-inference runs the arrays in Keras's layout, not --layout {layout}",
                         hint="Drop --layout (or export the C forward pass and the other layout separately).")


def prepare(model, tensors: Sequence[Tensor], stem: str, options: Mapping[str, object]) -> tuple[dict, object] | None:
    """What the C output computes before anything is written: with ``inference``, the forward pass (an unsupported
    model is refused now, with nothing written), as (the manifest's ``inference`` block, the program for
    :func:`write`); None without it."""
    if not options.get("inference"):
        return None
    if model.config is None:
        raise InputInvalid(f"{model.source.file or model.name}: --c-inference needs the model's configuration "
                           "(its layers and how they connect), which this input does not hold",
                           hint="Export a model saved whole (model.save), or leave out --c-inference.")
    graph_json = graph.to_json(graph.from_config(model.config))
    names = keys(tensors, stem, prefix=str(options["prefix"]))
    program = inference_program(tensors, names, str(options["prefix"]), ExportInfo(model, graph=graph_json),
                                str(options.get("input_shape", "")))
    block = {"graph": graph_json, "arena_bytes": program.arena_bytes, "input_size": program.input_size,
             "output_size": program.output_size}
    return {"inference": block}, program


def weight_refs(tensors: Sequence[Tensor], names: Mapping[str, str]) -> dict:
    """Each tensor as the generated forward pass names it (C identifiers of its array and scale), by name."""
    refs = {}
    for tensor in tensors:
        q = tensor.quantization
        refs[tensor.name] = codegen.WeightRef(names[tensor.name], names[q.scale] if q and q.scale else None, tensor.shape,
                                      tensor.transform == "transpose", tensor.dtype)
    return refs


def inference_program(tensors: Sequence[Tensor], names: Mapping[str, str], prefix: str, info: ExportInfo | None,
                      input_shape: str = ""):
    """The forward pass for these arrays (``inference.codegen``), from the graph the export records."""
    if info is None or info.graph is None:
        raise InputInvalid("--c-inference needs the model's configuration (layers and how they connect), which this "
                           "input does not hold", hint="Export a model saved whole (model.save), not weights only.")
    return codegen.generate(graph.from_json(info.graph), weight_refs(tensors, names), prefix,
                            codegen.parse_input_shapes(input_shape))


def text_problems(paths: Sequence[Path], manifest: Mapping, tensors: Sequence[Tensor], info: ExportInfo) -> list[str]:
    """Whether the files are exactly the text :func:`write` writes for the values they hold (``tensors``, rebuilt
    from the manifest with the arrays read back) and the options the manifest records: anything else (code added,
    lines changed) is not ours."""
    header = next(p for p in paths if p.suffix == ".h")
    expected = rendered_sha256(tensors, header, info=info, **manifest["options"].get("c", {}))
    return [f"{p.name}: not the text keras-weights writes for these values and options (edited or foreign C); "
            "it will not be compiled" for p in paths if atomic.read_sha256(p) != expected.get(p.name)]


@contextlib.contextmanager
def regenerated(manifest: Mapping, tensors: Sequence[Tensor], info: ExportInfo) -> Iterator[list[Path]]:
    """The export's C files written again by :func:`write`, from the values read back (``tensors``) and the
    manifest's validated options, into a fresh private folder (mode 0700, removed afterwards): what ``verify
    --compile`` and ``--predict`` build. The export folder itself never reaches a compiler, so nothing in it (a
    header named like a system header, a file changed after it was checked) can take part in a build.

    >>> import json
    >>> from converter import manifest as manifests
    >>> from converter.formats import c_parse
    >>> manifest = json.loads(open("fixtures/golden/manifest.json").read())
    >>> tensors = manifests.tensor_records(manifest, "c", c_parse.read("fixtures/golden/seed_mlp.c"))
    >>> with regenerated(manifest, tensors, manifests.export_info(manifest)) as paths:
    ...     [p.name for p in paths], paths[0].read_bytes() == open("fixtures/golden/seed_mlp.h", "rb").read()
    (['seed_mlp.h', 'seed_mlp.c'], True)
    """
    names = [entry["path"] for entry in manifest["files"] if entry["format"] == "c"]
    header = next(name for name in names if name.endswith(".h"))
    with tempfile.TemporaryDirectory(prefix="keras-weights-c-") as work:
        write(tensors, Path(work) / header, info=info, **manifest["options"]["c"])
        yield [Path(work) / name for name in names]


def compile_problems(manifest: Mapping, tensors: Sequence[Tensor], info: ExportInfo, cc: str = "cc",
                     cflags: Sequence[str] = ()) -> list[str]:
    """Build the export's C text, regenerated from the values read back (:func:`regenerated`), with ``cc`` (run on
    the host, or compile-only with a cross compiler) and compare every array's bytes with the manifest
    (see ``c_build``)."""
    with regenerated(manifest, tensors, info) as paths:
        prefix = manifest["options"]["c"].get("prefix") or prefix_for(paths[0].stem)  # manifests before 0.3: ""
        return c_build.problems(paths, manifest, prefix, cc, cflags)
