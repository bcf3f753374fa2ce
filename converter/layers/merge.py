"""Merging layers: Add, Subtract, Multiply, Concatenate."""
from __future__ import annotations

from .emit import Call, Shape, Unsupported, in_place, size
from .spec import Spec


def merge_c(call: Call) -> Shape:
    shapes = call.inputs
    if any(s != shapes[0] for s in shapes):
        raise Unsupported(f"inputs of different shapes {[list(s) for s in shapes]} (broadcasting)")
    op = {"Add": 0, "Subtract": 1, "Multiply": 2}[call.node.class_name]
    n = size(shapes[0])
    in_place(call)
    call.emit(f"kw_merge({call.source(0)}, {call.source(1)}, {call.output}, {n}, {op});", "merge")
    for index in range(2, len(shapes)):
        call.emit(f"kw_merge({call.output}, {call.source(index)}, {call.output}, {n}, {op});", "merge")
    return shapes[0]


def concatenate_c(call: Call) -> Shape:
    shapes = call.inputs
    rank = len(shapes[0])
    axis = call.integer("axis", -1, low=-rank)
    axis = axis + rank if axis < 0 else axis - 1  # Keras counts the batch axis in a positive axis
    if not 0 <= axis < rank or any(len(s) != rank or s[:axis] != shapes[0][:axis] or s[axis + 1:] != shapes[0][axis + 1:]
                                   for s in shapes):
        raise Unsupported(f"axis={call.config.get('axis')} with inputs {[list(s) for s in shapes]}")
    outer = size(shapes[0][:axis])
    total = sum(size(s[axis:]) for s in shapes)
    at = 0
    for index, s in enumerate(shapes):
        call.emit(f"kw_concat_part({call.source(index)}, {call.output}, {outer}, {size(s[axis:])}, {total}, {at});",
                  "concat")
        at += size(s[axis:])
    return (*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1:])


SPECS = (Spec("Add", c=merge_c), Spec("Subtract", c=merge_c), Spec("Multiply", c=merge_c),
         Spec("Concatenate", c=concatenate_c))
