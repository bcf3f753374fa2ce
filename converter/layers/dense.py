"""Dense layers: Dense (the weighted sum over the last axis), EinsumDense, LocallyConnected."""
from __future__ import annotations

import numpy as np

from . import q8
from .emit import Call, Shape, Unsupported, activation, epilogue, size, weights_arguments, widened_panel
from .spec import Spec
from .to_torch import Site, Unmappable, permute
from .. import integer
from ..transforms import Step

KERNEL_BIAS = ("kernel", "bias")


def dense_c(call: Call) -> Shape:
    shape = call.inputs[0]
    units = call.integer("units")
    kernel = call.weight("kernel")
    if kernel.transposed:
        raise Unsupported("a transposed kernel (--layout dense_out_in); export with --layout keras")
    args, bias, quantized = weights_arguments(call, "kernel", "bias", (shape[-1], units), units)
    suffix = "_i8" if quantized else "_f32"
    rows, width = size(shape[:-1]), shape[-1]
    panel = widened_panel(call, quantized, rows, width)
    call.emit(f"kw_dense{suffix}({call.source()}, {call.output}, {rows}, {width}, {units}, {args}{panel}, {bias}, "
              f"{epilogue(call)});", "dense" + suffix)
    out = (*shape[:-1], units)
    activation(call, call.config.get("activation"), call.output, out)
    return out


def dense_q8(call: Call) -> Shape:
    shape = call.inputs[0]
    units = call.integer("units")
    kernel = q8.int8_kernel(call, "kernel", (shape[-1], units))
    if kernel.transposed:
        raise Unsupported("a transposed kernel (--layout dense_out_in); export with --layout keras")
    name = call.config.get("activation")
    before = q8.before_activation(call, name)
    requantization = q8.weighted(call, kernel, q8.float_values(call, "bias", units), True, inside=before)
    rows, width, out = size(shape[:-1]), shape[-1], (*shape[:-1], units)
    scratch = q8.dense_scratch(call, rows, width, units)
    call.emit(f"kw_dense_q8({call.source()}, {call.output}, {rows}, {width}, {units}, {kernel.array}, {scratch}, "
              f"{requantization});", "dense_q8", "requantize")
    after = q8.activation(call, name, call.output, out, before)
    w = np.asarray(kernel.values).reshape(width, units)
    call.q8.reference = lambda xs, qs: q8.then(after, integer.dense(xs[0].reshape(rows, width), w, qs[0]).reshape(out))
    return out


def dense_torch(site: Site) -> list:
    """nn.Linear: the kernel transposed to (out, in); after a Flatten of a channels-last map, its input rows in
    torch's channels-first order."""
    w = site.array
    if site.role == "bias":
        return [site.store("bias", w)]
    if site.role != "kernel":
        return site.kept()
    if site.path in site.flattened:
        positions, channels = site.flattened[site.path]
        if positions * channels != w.shape[0]:  # the configuration and the weights disagree (a crafted file)
            raise Unmappable(f"layer '{site.path}' (Dense): {w.shape[0]} inputs, its Flatten gives {positions * channels}")
        rows = w.reshape(positions, channels, -1).transpose(1, 0, 2).reshape(w.shape)
        return [site.store("weight", rows.T, Step("flatten", (positions, channels)), permute((1, 0)))]
    return [site.store("weight", w.T, permute((1, 0)))]


SPECS = (Spec("Dense", roles=KERNEL_BIAS, channels="last", out_in=True, torch=dense_torch, c=dense_c, c_int8=dense_q8),
         Spec("EinsumDense", roles=KERNEL_BIAS, channels="einsum"),
         Spec("LocallyConnected1D", roles=KERNEL_BIAS, channels="last"),
         Spec("LocallyConnected2D", roles=KERNEL_BIAS, channels="last"))
