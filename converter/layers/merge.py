"""Merging layers: Add, Subtract, Multiply, Concatenate."""
from __future__ import annotations

import math

import numpy as np

from .emit import Call, Shape, Unsupported, in_place, shown, size
from .spec import Spec
from .. import integer


def merge_c(call: Call) -> Shape:
    shapes = call.inputs
    if len(shapes) == 1:
        return _with_constant(call)
    if any(s != shapes[0] for s in shapes):
        raise Unsupported(f"inputs of different shapes {[list(s) for s in shapes]} (broadcasting)")
    op = {"Add": 0, "Subtract": 1, "Multiply": 2}[call.node.class_name]
    n = size(shapes[0])
    in_place(call)
    call.emit(f"kw_merge({call.source(0)}, {call.source(1)}, {call.output}, {n}, {op});", "merge")
    for index in range(2, len(shapes)):
        call.emit(f"kw_merge({call.output}, {call.source(index)}, {call.output}, {n}, {op});", "merge")
    return shapes[0]


FLOAT32_MAX = 3.4028234663852886e38  # a larger number is no float32 (its C literal would overflow)


def _with_constant(call: Call) -> Shape:
    """``keras.ops.add(x, c)`` / ``multiply(x, c)`` with a number (saved as the call's argument): each value plus or
    times it. Subtract is refused: the saved call does not say on which side the number was."""
    constants = call.node.keywords.get("positional")
    value = constants[0] if isinstance(constants, list) and len(constants) == 1 else None
    if call.node.class_name == "Subtract" or not isinstance(value, (int, float)) or isinstance(value, bool) \
            or not math.isfinite(value) or abs(value) > FLOAT32_MAX:
        raise Unsupported(f"{call.node.class_name} of one tensor and {shown(value)}: Add or Multiply by a float32 "
                          "number only")
    n, op = size(call.inputs[0]), "+" if call.node.class_name == "Add" else "*"
    number = float(np.float32(value))  # what Keras computes with (no C literal that underflows to 0)
    call.emit(f"for (size_t i = 0; i < {n}; ++i) {call.output}[i] = {call.source()}[i] {op} {number!r}f;")
    return call.inputs[0]


def add_q8(call: Call) -> Shape:
    """int8 Add as TFLite computes it, input by input into the output (in place where input 0 is dead); the
    output's parameters are calibrated. More than two inputs: each further one added to the running sum, whose
    parameters are the output's."""
    shapes = call.inputs
    if call.node.class_name != "Add":
        raise Unsupported(f"{call.node.class_name} in full-integer int8 (Add is computed)")
    if any(s != shapes[0] for s in shapes):
        raise Unsupported(f"inputs of different shapes {[list(s) for s in shapes]} (broadcasting)")
    n, sources = size(shapes[0]), call.q8.inputs
    in_place(call)
    tables = []
    for index in range(1, len(shapes)):
        first = sources[0] if index == 1 else None  # None: the running sum, at the output's parameters
        tables.append(call.q8.table(lambda output, first=first, second=sources[index]:
                                    integer.add_parameters(first or output, second, output)))
        a = call.source(0) if index == 1 else call.output
        zero = f"{sources[0][1]}" if index == 1 else "@OUT_ZERO@"
        call.emit(f"kw_add_q8({a}, {call.source(index)}, {call.output}, {n}, {zero}, {sources[index][1]}, @OUT_ZERO@, "
                  f"{tables[-1]});", "add_q8", "requantize")

    def reference(xs, qs):
        out_zero = call.q8.final[1]
        total = integer.add(xs[0], xs[1], (sources[0][1], sources[1][1], out_zero), call.q8.table_values[0])
        for index in range(2, len(xs)):
            total = integer.add(total, xs[index], (out_zero, sources[index][1], out_zero), call.q8.table_values[index - 1])
        return total

    call.q8.reference = reference
    return shapes[0]


def _concatenation(call: Call) -> tuple:
    """(input shapes, axis, blocks before it, values per output block, output shape) of a Concatenate."""
    shapes = call.inputs
    rank = len(shapes[0])
    axis = call.integer("axis", -1, low=-rank)
    axis = axis + rank if axis < 0 else axis - 1  # Keras counts the batch axis in a positive axis
    if not 0 <= axis < rank or any(len(s) != rank or s[:axis] != shapes[0][:axis] or s[axis + 1:] != shapes[0][axis + 1:]
                                   for s in shapes):
        raise Unsupported(f"axis={call.config.get('axis')} with inputs {[list(s) for s in shapes]}")
    out = (*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1:])
    return shapes, axis, size(shapes[0][:axis]), sum(size(s[axis:]) for s in shapes), out


def concatenate_c(call: Call) -> Shape:
    shapes, axis, outer, total, out = _concatenation(call)
    at = 0
    for index, s in enumerate(shapes):
        call.emit(f"kw_concat_part({call.source(index)}, {call.output}, {outer}, {size(s[axis:])}, {total}, {at});",
                  "concat")
        at += size(s[axis:])
    return out


def concatenate_q8(call: Call) -> Shape:
    """Each input rescaled to the output's calibrated parameters as it is copied into place."""
    shapes, axis, outer, total, out = _concatenation(call)
    at, parts = 0, []
    for index, s in enumerate(shapes):
        table = call.q8.table(lambda output, source=call.q8.inputs[index]: integer.rescale_parameters(source, output))
        call.emit(f"kw_concat_part_q8({call.source(index)}, {call.output}, {outer}, {size(s[axis:])}, {total}, {at}, "
                  f"{table});", "concat_q8", "requantize")
        parts.append((index, size(s[axis:])))
        at += size(s[axis:])

    def reference(xs, qs):
        pieces = [integer.rescale(xs[i].reshape(outer, inner), call.q8.table_values[i]) for i, inner in parts]
        return np.concatenate(pieces, axis=1).reshape(out)

    call.q8.reference = reference
    return out


SPECS = (Spec("Add", c=merge_c, c_int8=add_q8), Spec("Subtract", c=merge_c), Spec("Multiply", c=merge_c),
         Spec("Concatenate", c=concatenate_c, c_int8=concatenate_q8))
