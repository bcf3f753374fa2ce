"""The C text of one export: the header (declarations, macros, tables, the forward pass's prototype) and the
source (definitions, streamed tensor by tensor), as ``c.write`` and ``verify`` produce it."""
from __future__ import annotations

import re

import collections
import functools
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import IO

import numpy as np

from .. import atomic, c_text, dtypes
from .._version import __version__
from ..errors import InputInvalid
from ..cgen import codegen, graph
from ..tensors import ExportInfo, Layer, Tensor
from .c_names import keys, scale_indexing


class Unit:
    """One model's C text: the parts shared by the header and the source."""

    def __init__(self, tensors, prefix, stem, info: ExportInfo | None, arrays, align, header_only, inference=False,
                 input_shape=""):
        self.tensors, self.prefix, self.stem, self.info = list(tensors), prefix, stem, info
        self.macro, self.nested, self.align, self.header_only = prefix.upper(), arrays == "nested", align, header_only
        self.names = keys(self.tensors, stem, prefix=prefix)
        self.rank_max = max([len(t.shape) for t in self.tensors] + [1])
        self.scaled = any(t.quantization and t.quantization.scale for t in self.tensors)  # int8: scale fields
        ready = info.prepared.get("c") if info else None  # generated once per export, by prepare()
        self.program = (ready or inference_program(self.tensors, self.names, prefix, info, input_shape, self.nested)) if inference \
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
            predict = re.compile(rf"^int {self.prefix}_predict(_int8)?\(", re.M)
            out.write(_NOT_ON_AVR)
            if self.header_only:  # everything static in the one header; inline, so a unit that only
                # includes it is not warned of functions it does not call (-Wunused-function)
                out.write(predict.sub(lambda found: "static inline " + found.group(0), self.program.header))
                source = re.sub(r"^static (?!inline|const)", "static inline ", self.program.source, flags=re.M)
                out.write("#include <math.h>\n\n" + predict.sub(lambda found: "static inline " + found.group(0), source))
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


def weight_refs(tensors: Sequence[Tensor], names: Mapping[str, str], nested: bool = False) -> dict:
    """Each tensor as the generated forward pass names it (C expressions of its array and scale), by name. The
    kernels read flat arrays: a nested array (``--c-arrays nested``) is passed as a pointer to its first element."""
    refs, by_name = {}, {t.name: t for t in tensors}
    for tensor in tensors:
        q = tensor.quantization
        array = names[tensor.name]
        if nested and len(tensor.shape) >= 2:
            array = f"((const {dtypes.lookup(tensor.array.dtype).c_type} *){array})"
        scale = by_name.get(q.scale) if q and q.scale else None
        refs[tensor.name] = codegen.WeightRef(array, names[q.scale] if q and q.scale else None, tensor.shape,
                                              tensor.transform == "transpose", tensor.dtype, tensor.array,
                                              scale.array if scale is not None else None)
    return refs


def inference_program(tensors: Sequence[Tensor], names: Mapping[str, str], prefix: str, info: ExportInfo | None,
                      input_shape: str = "", nested: bool = False):
    """The forward pass for these arrays (``cgen.codegen``), from the graph the export records."""
    if info is None or info.graph is None:
        raise InputInvalid("--c-inference needs the model's configuration (layers and how they connect), which this "
                           "input does not hold", hint="Export a model saved whole (model.save), not weights only.")
    return codegen.generate(graph.from_json(info.graph), weight_refs(tensors, names, nested), prefix,
                            codegen.parse_input_shapes(input_shape), info.activations)


def emit(unit: Unit, path: Path, output_for: Callable[[Path], atomic.HashedOutput]) -> dict[str, str]:
    digests = {}
    with (header_output := output_for(path)) as header:
        unit.write_header(header)
    digests[path.name] = header_output.sha256
    if not unit.header_only:
        with (source_output := output_for(path.with_suffix(".c"))) as source:
            unit.write_source(source)
        digests[path.with_suffix(".c").name] = source_output.sha256
    return digests
