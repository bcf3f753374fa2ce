"""Dense: the weighted sum over the last axis."""
from __future__ import annotations

from .base import Call, Shape, Unsupported, activation, kind, size, weights_arguments


# -- layers with weights ------------------------------------------------------------------------------------
@kind("Dense")
def dense(call: Call) -> Shape:
    shape = call.inputs[0]
    units = call.integer("units")
    kernel = call.weight("kernel")
    if kernel.transposed:
        raise Unsupported("a transposed kernel (--layout dense_out_in); export with --layout keras")
    args, bias, quantized = weights_arguments(call, "kernel", "bias", (shape[-1], units), units)
    suffix = "_i8" if quantized else "_f32"
    rows, width = size(shape[:-1]), shape[-1]
    call.emit(f"kw_dense{suffix}({call.source()}, {call.output}, {rows}, {width}, {units}, {args}, {bias});",
              "dense" + suffix)
    out = (*shape[:-1], units)
    activation(call, call.config.get("activation"), call.output, out)
    return out
