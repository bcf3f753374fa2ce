"""What every layer's full-integer int8 emitter (``Spec.c_int8``) is built on: :class:`Q8`, the int8 side of an
:class:`~converter.layers.emit.Call` (its inputs' scale and zero point; what it sets: its output's parameters where
the layer fixes them, the requantization its kernel needs once the layers folded into it and its output's
parameters are known, and its numpy twin), and the helpers the weighted layers share. The arithmetic is
:mod:`converter.integer`'s; the C kernels are ``converter.c_kernels.integer``'s."""
from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from .. import integer
from .emit import CLAMPS, Call, Post, Unsupported

Params = tuple[float, int]  # an int8 tensor's (scale, zero point)
SOFTMAX_OUTPUT: Params = (1.0 / 256.0, -128)  # TFLite's fixed softmax output: 0..1 in 256 steps


class Q8:
    """The int8 side of a call.

    Given: ``inputs``, each input's parameters; ``params_of(name)``, the calibrated parameters of a value the float
    pass traces inside a layer (a Dense's values before its softmax, a separable convolution's depthwise output).
    Set by the emitter: ``output`` (parameters the layer fixes: a pooling keeps its input's, softmax TFLite's);
    ``requantizers`` (each kernel's (out params, Post) -> Requantization, passed as ``@Q8:i@``; the last one's
    kernel writes the output and takes the layers folded in where ``epilogue``); ``reference`` (input arrays,
    requantizations -> output array: the numpy twin of its statements)."""

    def __init__(self, inputs: list[Params], params_of: Callable[[str], Params]) -> None:
        self.inputs, self.params_of = inputs, params_of
        self.output: Params | None = None
        self.epilogue = False
        self.requantizers: list[Callable[[Params, Post | None], integer.Requantization]] = []
        self.reference: Callable[[list[np.ndarray], list[integer.Requantization]], np.ndarray] | None = None
        self.tables: list[np.ndarray] = []  # int32 lookup tables its kernels read (``@TABLE:i@``)
        self.q: list[integer.Requantization] = []

    def argument(self, requantize: Callable[[Params, Post | None], integer.Requantization]) -> str:
        """A kernel's requantization argument: a placeholder the code generator replaces by its kw_q8."""
        self.requantizers.append(requantize)
        return f"@Q8:{len(self.requantizers) - 1}@"

    def table(self, values: np.ndarray) -> str:
        self.tables.append(np.asarray(values, np.int32))
        return f"@TABLE:{len(self.tables) - 1}@"

    def finish(self, output: Params, post: Post | None) -> None:
        """Once the output's parameters and the layers folded in are known: the requantizations."""
        try:
            self.q = [requantize(output, post) for requantize in self.requantizers]
        except ValueError as why:
            raise Unsupported(f"full-integer int8: {why}") from None


def int8_kernel(call: Call, role: str, shape: tuple[int, ...]):
    """A kernel weight as full-integer int8 reads it: int8 with per-channel scales (``--quantize int8``)."""
    kernel = call.weight(role, shape=shape)
    if kernel.scale is None or kernel.values is None or kernel.scale_values is None:
        raise Unsupported("full-integer int8 needs int8 weights: export with --quantize int8")
    if np.asarray(kernel.scale_values).size != shape[-1]:
        raise Unsupported(f"its weight '{role}' has {np.asarray(kernel.scale_values).size} scales, not one per "
                          f"output channel ({shape[-1]})")
    return kernel


def float_values(call: Call, role: str, channels: int, required: bool = False) -> np.ndarray | None:
    """A per-channel float weight's values (a bias, BatchNorm statistics), or None where it is absent."""
    found = call.weight(role, required=required, shape=(channels,))
    if found is None:
        return None
    if found.values is None or found.dtype != "float32":
        raise Unsupported(f"its weight '{role}' is not float32")
    return np.asarray(found.values, np.float32)


def affine_of(post: Post | None) -> tuple[np.ndarray, np.ndarray] | None:
    """(mul, add) per channel of a BatchNormalization folded into a kernel, as ``kw_bn_coefficients`` defines
    them (in float64): mul = gamma / sqrt(variance + epsilon), add = beta - mean * mul."""
    if post is None or post.norm is None:
        return None
    gamma, beta, mean, variance, epsilon = post.norm
    mul = (1.0 if gamma is None else gamma.astype(np.float64)) / np.sqrt(variance.astype(np.float64) + epsilon)
    mul = np.broadcast_to(mul, mean.shape)
    return mul, (0.0 if beta is None else beta.astype(np.float64)) - mean.astype(np.float64) * mul


def clamp_of(post: Post | None) -> tuple[float, float]:
    return (post.lo, post.hi) if post is not None else (-math.inf, math.inf)


def weighted(call: Call, kernel: Any, bias: np.ndarray | None, fold_zero_point: bool,
             inside: tuple[Params, Params] | None = None) -> str:
    """The requantization argument of a convolution or Dense: per-channel multipliers, the int32 bias (with the
    input zero point's share folded in for kernels that sum stored values), and the BatchNorm and clamp folded into
    the layer's last kernel. ``inside``: (input, output) parameters of a kernel writing a value inside the layer (a
    separable convolution's depthwise half), which takes nothing folded; else input 0 to the step's output."""
    def requantize(step_output: Params, post: Post | None) -> integer.Requantization:
        source, target = inside or (call.q8.inputs[0], step_output)
        post = None if inside else post
        q = integer.weighted_requantization(source, kernel.scale_values, bias, target, clamp_of(post), affine_of(post))
        if fold_zero_point:
            q = replace(q, bias=integer.folded_bias(q.bias, np.asarray(kernel.values), q.in_zero))
        return q

    call.q8.epilogue = inside is None
    return call.q8.argument(requantize)


def clamp_activation(call: Call, name: Any) -> None:
    """A layer's own activation in full-integer int8: relu and relu6 fold into its kernel's clamp; anything else
    is refused by name."""
    if name in (None, "linear"):
        return
    if name not in CLAMPS or call.post is None:
        raise Unsupported(f"activation {name!r} in full-integer int8 (relu and relu6 are computed; put others in a "
                          f"layer of their own)")
    call.post.clamp(*CLAMPS[name])
