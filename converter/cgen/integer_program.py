"""The full-integer int8 forward pass (``--quantize int8 --calibration``): ``<prefix>_predict_int8`` from int8
inputs to int8 outputs in integer arithmetic only, ``<prefix>_predict`` around it (quantizing the float inputs,
dequantizing the outputs), and its numpy twin (:class:`Program` ``.reference``), which ``verify --predict`` holds
it to bit for bit.

``codegen.generate`` walks the graph once for both passes (the same layers folded, the same buffers planned, in
bytes here); the layers' int8 emitters (``Spec.c_int8``, on :class:`~converter.layers.q8.Q8`) say what each step
computes. This module gives each step its output parameters and requantizations (:func:`finish`) and writes the C
(:func:`render`): each kernel's ``kw_q8`` and tables as constant arrays beside the weights.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

import numpy as np

from ..c_text import c_string, comment_text
from .. import c_kernels as kernels
from .. import integer
from ..layers.emit import Call, Unsupported, size
from .program import BLOCKING, RESTRICT, Program, traced_inside

Params = tuple[float, int]
EDGE_CLAMP = 256.0  # |x / scale| is capped here before rounding at the float edge: beyond, int8 saturates anyway
# A comparison that raises no floating-point exception on NaN: compilers turn it into a vector select, which they
# may not do with < (it may trap, by default).
LESS = ("#ifndef KW_LESS\n#if defined(__GNUC__) || defined(__clang__)\n#define KW_LESS(a, b) __builtin_isless(a, b)\n"
        "#else\n#define KW_LESS(a, b) ((a) < (b))\n#endif\n#endif\n\n")


def no_range(name: str) -> str:
    """What to say of a value full-integer int8 has no range for."""
    return (f"no activation range for '{name}': neither the calibration samples nor quantization-aware training "
            "give one (add [[--calibration SAMPLES|calibration=samples]])")


def params_lookup(activations: dict[str, Params]) -> Callable[[str], Params]:
    """The calibrated parameters of a value by the name the float pass traces it under, or Unsupported."""
    def params_of(name: str) -> Params:
        found = activations.get(name)
        if found is None:
            raise Unsupported(no_range(name))
        return found
    return params_of


def finish(call: Call, node: Any, after: list, fused: bool, params: dict, activations: dict[str, Params],
           twins: list, shape: tuple[int, ...]) -> None:
    """A step's output parameters (its input's for a view or a padding the convolution takes, what the layer fixes,
    else the calibrated ones of the last layer folded into it), its requantizations, and its numpy twin."""
    names = [node.name] + [n.name for n in after]
    if call.alias or fused:
        output = call.q8.inputs[0]
        twin = (lambda xs, qs: xs[0]) if fused else (lambda xs, qs: xs[0].reshape(shape))
    else:
        output = call.q8.output or params_lookup(activations)(names[-1])
        twin = call.q8.reference
        if twin is None:
            raise Unsupported("its int8 emitter gives no numpy twin")
    call.q8.finish(output, call.post)
    for name in names:
        params[(name, 0)] = output
    twins.append((names, list(node.inputs), twin, call.q8))


def reference_program(inputs: list[tuple[str, tuple[int, ...]]], outputs: list[tuple[str, int]], twins: list
                      ) -> Callable[[list[np.ndarray]], list[np.ndarray]]:
    """The numpy twin of ``<prefix>_predict_int8``: one int8 sample per model input in, the outputs out."""
    def run(samples: list[np.ndarray], trace: Callable[[str, np.ndarray], None] | None = None) -> list[np.ndarray]:
        """``trace(name, values)``: called with each step's int8 output, by its last layer's name."""
        values = {(name, 0): np.asarray(x, np.int8).reshape(shape) for (name, shape), x in zip(inputs, samples)}
        for names, refs, twin, q8 in twins:
            result = np.asarray(twin([values[ref] for ref in refs], q8.q), np.int8)
            for name in names:
                values[(name, 0)] = result
            if trace is not None:
                trace(names[-1], result)
        return [values[ref] for ref in outputs]
    return run


def _array(c_type: str, name: str, values: np.ndarray) -> str:
    numbers = [str(int(v)) for v in np.asarray(values).reshape(-1)]
    lines = ",\n    ".join(", ".join(numbers[i:i + 16]) for i in range(0, len(numbers), 16))
    return f"static const {c_type} {name}[{max(len(numbers), 1)}] = {{\n    {lines or '0'}\n}};\n"


def _float(value: float) -> str:
    text = repr(float(np.float32(value)))
    return text + ("" if "e" in text or "." in text else ".0") + "f"


def render(graph, steps: list, outputs: list, inputs: list, input_size: int, arena: int, prefix: str, params: dict,
           twins: list, pointer: Callable, shape_text: Callable):
    """The C text of the int8 pass and its float edges (a :class:`Program`). ``inputs``: (name, shape, offset)
    of each model input in the input buffer; ``pointer``: the C expression of a storage's memory."""
    m = prefix.upper()
    constants, body, needed = [], [], set()
    for index, step in enumerate(steps):
        call = step.call
        replacements = {f"@IN{i}@": pointer(v.storage, v.at) for i, v in enumerate(step.sources)}
        replacements["@OUT@"] = pointer(step.output)
        for k, temporary in enumerate(step.temporaries):
            replacements[f"T{k}"] = f"A + {temporary.offset}" if temporary.offset else "A"
        declared = []
        for k, q in enumerate(call.q8.q):
            base = f"{prefix}_q8_{index}_{k}"
            constants += [_array("int32_t", base + "_bias", q.bias), _array("int32_t", base + "_mult", q.multiplier),
                          _array("int32_t", base + "_shift", q.shift)]
            declared.append(f"const {prefix}_kw_q8 q{k} = {{{base}_bias, {base}_mult, {base}_shift, {q.in_zero}, "
                            f"{q.out_zero}, {q.lo}, {q.hi}}};")
            replacements[f"@Q8:{k}@"] = f"&q{k}"
        for k, table in enumerate(call.q8.table_values):
            constants.append(_array("int32_t", f"{prefix}_table_{index}_{k}", table))
            replacements[f"@TABLE:{k}@"] = f"{prefix}_table_{index}_{k}"
        replacements["@OUT_ZERO@"] = str(call.q8.final[1])
        post = call.post if call.post is not None and call.post.folded else None
        folded = f", with {', '.join(comment_text(n) for n in post.folded)} folded in" if post else ""
        scale, zero = call.q8.final
        body.append(f"    /* {comment_text(step.node.name)} ({comment_text(step.node.class_name)}){folded}: output "
                    f"{shape_text(step.shape)}, scale {_float(scale)}, zero point {zero} */")
        body.append("    {")
        body += [f"        {line}" for line in declared]
        for statement in call.statements:
            text = re.sub(r"@IN\d+@|@OUT@|\bT\d+\b", lambda found: f"({replacements[found.group(0)]})", statement)
            text = re.sub(r"@Q8:\d+@|@TABLE:\d+@|@OUT_ZERO@", lambda found: replacements[found.group(0)], text)
            body.append("        " + traced_inside(re.sub(r"\bkw_", f"{prefix}_kw_", text), step.node.name,
                                                   f"{m}_TRACE_INT8"))
        body.append("    }")
        traced = post.folded[-1] if post else step.node.name
        body.append(f"    {m}_TRACE_INT8({c_string(traced)}, {replacements['@OUT@']}, {size(step.shape)});")
        needed |= call.kernels
    at, copies, output_params = 0, [], []
    for ref, value in zip(graph.outputs, outputs):
        n = size(value.shape)
        copies.append(f"    for (size_t i = 0; i < {n}; ++i) output[{at} + i] = ({pointer(value.storage, value.at)})[i];")
        output_params.append((params[ref], at, n))
        at += n
    input_params = [(params[(name, 0)], offset, size(shape)) for name, shape, offset in inputs]
    source = (_trace(prefix, m) + RESTRICT + BLOCKING + LESS + kernels.PANEL_Q8_MACRO + "".join(constants) + "\n"
              + re.sub(r"\bkw_", f"{prefix}_kw_", kernels.integer(needed | {"requantize"}))
              + f"int {prefix}_predict_int8(const int8_t *input, int8_t *output, void *arena) {{\n"
              + "    int8_t *A = (int8_t *)arena;\n    (void)A;\n" + "\n".join(body + copies) + "\n    return 0;\n}\n\n"
              + _edges(prefix, m, arena, input_size, at, input_params, output_params))
    reference = reference_program([(name, shape) for name, shape, _ in inputs], list(graph.outputs), twins)
    total = _aligned(arena) + _aligned(input_size) + _aligned(at)
    return Program(_header(graph, prefix, m, input_size, at, total, input_params, output_params), source, total,
                   input_size, at, reference, tuple(found for found, _, _ in output_params))


def _aligned(n: int) -> int:
    return -(-n // 16) * 16


def _trace(prefix: str, m: str) -> str:
    return (f"#ifdef {m}_TRACE_PRINT\n#include <stdio.h>\n"
            f"static void {prefix}_trace_print(const char *name, const int8_t *values, size_t count) {{\n"
            f"    fprintf(stderr, \"%s\", name);\n"
            f"    for (size_t i = 0; i < count; ++i) fprintf(stderr, \" %d\", values[i]);\n"
            f"    fputc('\\n', stderr);\n}}\n#define {m}_TRACE_INT8(name, values, count) {prefix}_trace_print(name, values, count)\n"
            f"#endif\n#ifndef {m}_TRACE_INT8\n#define {m}_TRACE_INT8(name, values, count) ((void)0)\n#endif\n\n")


def _edges(prefix: str, m: str, arena: int, input_size: int, output_size: int, input_params: list,
           output_params: list) -> str:
    """``<prefix>_predict``: the float inputs quantized into the arena's tail (x / scale rounded half away from
    zero, plus the zero point, saturated; NaN as the zero point), the int8 pass, the outputs dequantized."""
    first, second = _aligned(arena), _aligned(arena) + _aligned(input_size)
    lines = [f"int {prefix}_predict(const float *input, float *output, void *arena) {{",
             f"    int8_t *q_in = (int8_t *)arena + {first}, *q_out = (int8_t *)arena + {second};"]
    for (scale, zero), at, n in input_params:
        lines += [f"    for (size_t i = {at}; i < {at + n}; ++i) {{  /* branch-free and without library calls, so that",
                  "         * compilers vectorise it: quiet comparisons, and roundf's half away from zero on 2v */",
                  f"        float v = input[i] / {_float(scale)};",
                  "        v = v == v ? v : 0.0f;",
                  f"        v = KW_LESS(v, {EDGE_CLAMP}f) ? v : {EDGE_CLAMP}f;",
                  f"        v = KW_LESS(-{EDGE_CLAMP}f, v) ? v : -{EDGE_CLAMP}f;",
                  "        const int32_t twice = (int32_t)(2.0f * v);  /* exact, toward zero */",
                  f"        int32_t r = (twice + (twice > 0) - (twice < 0)) / 2 + {zero};",
                  "        r = r < -128 ? -128 : r;", "        r = r > 127 ? 127 : r;", "        q_in[i] = (int8_t)r;", "    }"]
    lines.append(f"    if ({prefix}_predict_int8(q_in, q_out, arena) != 0) return 1;")
    for (scale, zero), at, n in output_params:
        lines.append(f"    for (size_t i = {at}; i < {at + n}; ++i) output[i] = {_float(scale)} * (float)(q_out[i] - "
                     f"({zero}));")
    return "\n".join(lines + ["    return 0;", "}", ""])


def _header(graph, prefix: str, m: str, input_size: int, output_size: int, arena_bytes: int, input_params: list,
            output_params: list) -> str:
    def parameters(kind: str, found: list) -> str:
        if len(found) == 1:
            (scale, zero), _, _ = found[0]
            return f"#define {m}_{kind}_SCALE {_float(scale)}\n#define {m}_{kind}_ZERO_POINT {zero}\n"
        return "".join(f"#define {m}_{kind}_SCALE_{i} {_float(s)}\n#define {m}_{kind}_ZERO_POINT_{i} {z}\n"
                       for i, ((s, z), _, _) in enumerate(found))

    return (f"/* Forward pass of the model in full-integer int8 (--c-inference --quantize int8 --calibration): int8\n"
            f" * activations, int32 sums, fixed-point requantization. {prefix}_predict_int8 takes one sample of int8\n"
            f" * values (each input x as round(x / SCALE) + ZERO_POINT) and gives the int8 outputs (each y as SCALE *\n"
            f" * (q - ZERO_POINT)); {prefix}_predict does both conversions around it, floats in and out. The inputs\n"
            f" * ({', '.join(comment_text(n) for n in graph.inputs)}) are flattened in C order, one after the other,\n"
            f" * as are the outputs. `arena` is {m}_ARENA_BYTES of scratch memory, 16-byte aligned. */\n"
            f"#define {m}_INPUT_SIZE {input_size}\n#define {m}_OUTPUT_SIZE {output_size}\n"
            f"#define {m}_ARENA_BYTES {arena_bytes}\n" + parameters("INPUT", input_params)
            + parameters("OUTPUT", output_params)
            + f"/* Compile with -D{m}_TRACE_PRINT to print each layer's int8 output on stderr. */\n"
            f"int {prefix}_predict(const float *input, float *output, void *arena);\n"
            f"int {prefix}_predict_int8(const int8_t *input, int8_t *output, void *arena);\n\n")
