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

from .. import c_kernels as kernels
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
        self.tables: list[Callable[[Params], np.ndarray]] = []  # int32 tables its kernels read (``@TABLE:i@``),
        self.table_values: list[np.ndarray] = []                # from the step's output parameters
        self.q: list[integer.Requantization] = []
        self.final: Params | None = None  # the step's output parameters, once known

    def argument(self, requantize: Callable[[Params, Post | None], integer.Requantization]) -> str:
        """A kernel's requantization argument: a placeholder the code generator replaces by its kw_q8."""
        self.requantizers.append(requantize)
        return f"@Q8:{len(self.requantizers) - 1}@"

    def table(self, make: Callable[[Params], np.ndarray]) -> str:
        """A kernel's int32 table, made from the step's output parameters once known: a placeholder for its array."""
        self.tables.append(make)
        return f"@TABLE:{len(self.tables) - 1}@"

    def finish(self, output: Params, post: Post | None) -> None:
        """Once the output's parameters and the layers folded in are known: the requantizations."""
        self.final = output
        try:
            self.q = [requantize(output, post) for requantize in self.requantizers]
            self.table_values = [np.asarray(make(output), np.int32) for make in self.tables]
        except ValueError as why:
            raise Unsupported(f"full-integer int8: {why}") from None


def int8_kernel(call: Call, role: str, shape: tuple[int, ...], channels: int | None = None):
    """A kernel weight as full-integer int8 reads it: int8 with a scale per output channel (``--quantize int8``;
    ``channels``: their number where it is not the last axis's, a depthwise kernel's C x M)."""
    kernel = call.weight(role, shape=shape)
    if kernel.scale is None or kernel.values is None or kernel.scale_values is None:
        raise Unsupported("full-integer int8 needs int8 weights: export with --quantize int8")
    if np.asarray(kernel.values).size and int(np.min(kernel.values)) < -127:  # the kernels sum two products in 16 bits
        raise Unsupported(f"its weight '{role}' holds -128: int8 weights from -127 to 127 (as --quantize int8 "
                          f"stores them) needed")
    channels = channels or shape[-1]
    if np.asarray(kernel.scale_values).size != channels:
        raise Unsupported(f"its weight '{role}' has {np.asarray(kernel.scale_values).size} scales, not one per "
                          f"output channel ({channels})")
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


def dense_scratch(call: Call, rows: int, inputs: int, outputs: int) -> str:
    """kw_dense_q8's arena temporary (bytes, as the int8 program counts them): a panel of weights widened to int16
    while there are register blocks (rows >= 4), and the int32 sums of the rows and outputs they leave.

    >>> call = Call.__new__(Call); call.temporaries = []
    >>> dense_scratch(call, 2304, 27, 16), dense_scratch(call, 1, 1280, 1000), call.temporaries
    ('T0', 'T1', [864, 4000])
    """
    panel = 2 * kernels.PANEL_Q8_WIDTH * inputs if rows >= 4 else 0
    call.temporaries.append(max(panel, 4 * outputs))
    return f"T{len(call.temporaries) - 1}"


def clamp_of(post: Post | None) -> tuple[float, float]:
    return (post.lo, post.hi) if post is not None else (-math.inf, math.inf)


def weighted(call: Call, kernel: Any, bias: np.ndarray | None, fold_zero_point: bool, source: Params | None = None,
             inside: Params | None = None) -> str:
    """The requantization argument of a convolution or Dense: per-channel multipliers, the int32 bias (with the
    input zero point's share folded in for kernels that sum stored values), and the BatchNorm and clamp folded into
    the layer's last kernel. ``source``: its input's parameters (input 0's by default); ``inside``: the parameters
    of the value it writes where that is inside the layer (a separable convolution's depthwise half: nothing is
    folded into it), else the step's output."""
    source = source or call.q8.inputs[0]

    def requantize(step_output: Params, post: Post | None) -> integer.Requantization:
        post = None if inside else post
        q = integer.weighted_requantization(source, kernel.scale_values, bias, inside or step_output, clamp_of(post),
                                            affine_of(post))
        if fold_zero_point:
            q = replace(q, bias=integer.folded_bias(q.bias, np.asarray(kernel.values), q.in_zero))
        return q

    call.q8.epilogue = inside is None
    if inside is None:
        call.post = call.post or Post()  # what fusion folds in, and the layer's own relu, set its clamp and affine
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


def _erf(x: np.ndarray) -> np.ndarray:
    return np.vectorize(math.erf, otypes=[np.float64])(x)


def _softplus(x: np.ndarray) -> np.ndarray:
    return np.where(x > 20.0, x, np.log1p(np.exp(np.minimum(x, 20.0))))


def _hard_sigmoid(x: np.ndarray) -> np.ndarray:
    return np.clip(x / 6.0 + 0.5, 0.0, 1.0)


# The element-wise activations int8 computes through a table (kw_lookup_q8): each as its float kernel defines it
# (converter.c_kernels.ACTIVATIONS), in float64; a: the layer's parameter.
LOOKUP: dict[str, Callable[[np.ndarray, float], np.ndarray]] = {
    "relu": lambda x, a: np.maximum(x, 0.0),
    "relu6": lambda x, a: np.clip(x, 0.0, 6.0),
    "leaky_relu": lambda x, a: np.where(x >= 0, x, a * x),
    "elu": lambda x, a: np.where(x > 0, x, a * np.expm1(np.minimum(x, 0.0))),
    "selu": lambda x, a: 1.05070098735548049342 * np.where(x > 0, x, 1.67326324235437728481 * np.expm1(np.minimum(x, 0.0))),
    "sigmoid": lambda x, a: 1.0 / (1.0 + np.exp(-x)),
    "hard_sigmoid": lambda x, a: _hard_sigmoid(x),
    "tanh": lambda x, a: np.tanh(x),
    "softplus": lambda x, a: _softplus(x),
    "softsign": lambda x, a: x / (1.0 + np.abs(x)),
    "swish": lambda x, a: x / (1.0 + np.exp(-x)),
    "silu": lambda x, a: x / (1.0 + np.exp(-x)),
    "gelu": lambda x, a: 0.5 * x * (1.0 + _erf(x / math.sqrt(2.0))),
    "hard_silu": lambda x, a: x * _hard_sigmoid(x),
    "hard_swish": lambda x, a: x * _hard_sigmoid(x),
    "mish": lambda x, a: x * np.tanh(_softplus(x)),
}
SOFTMAX = kernels.SOFTMAX  # the Keras activation name, as the float pass knows it
MAX_SOFTMAX_ROW = 65535  # the softmax kernel's uint32 sum of 65536-scaled exponentials holds this many


def before_activation(call: Call, name: Any) -> Params | None:
    """Where a weighted layer's own activation is no clamp its kernel applies, the kernel writes the values before
    it, at the parameters calibrated for them ('<layer>/before_activation' in the float pass); else None."""
    if name in (None, "linear") or name in CLAMPS:
        return None
    if name != SOFTMAX and name not in LOOKUP:
        raise Unsupported(f"activation {name!r} in full-integer int8")
    return call.q8.params_of(f"{call.node.name}/before_activation")


def activation(call: Call, name: Any, buffer: str, shape: tuple[int, ...], source: Params | None,
               a: float = 0.0) -> Callable[[np.ndarray], np.ndarray] | None:
    """A weighted layer's own activation, in place on its output ``buffer`` (int8 at ``source`` parameters, from
    :func:`before_activation`): relu and relu6 (``source`` None) are its kernel's clamp. The numpy twin of what it
    emits, or None where it emits nothing."""
    if name in (None, "linear"):
        return None
    if source is None:  # a clamp the kernel applies
        clamp_activation(call, name)
        return None
    return elementwise(call, name, buffer, buffer, shape, source, a)


def elementwise(call: Call, name: Any, source_buffer: str, buffer: str, shape: tuple[int, ...], source: Params,
                a: float = 0.0, function: Callable[[np.ndarray], np.ndarray] | None = None
                ) -> Callable[[np.ndarray], np.ndarray]:
    """An element-wise activation (or softmax over the last axis) from ``source_buffer`` (int8 at ``source``
    parameters; may be ``buffer``) into ``buffer``, at the step's output parameters (softmax: TFLite's fixed
    ones): a table of its 256 results. ``function``: a float64 function of its own (a ReLU's options) instead of
    ``name``'s. Its numpy twin."""
    count, last = math.prod(shape), shape[-1] if shape else 1
    if name == SOFTMAX:
        if last > MAX_SOFTMAX_ROW:
            raise Unsupported(f"softmax over {last} values in full-integer int8 (at most {MAX_SOFTMAX_ROW})")
        call.q8.output = SOFTMAX_OUTPUT
        e = integer.softmax_table(source[0])
        table = call.q8.table(lambda output: e)
        call.emit(f"kw_softmax_q8({source_buffer}, {buffer}, {count // last}, {last}, {table});", "softmax_q8")
        return lambda x: integer.softmax(x.reshape(-1, last), e).reshape(x.shape)
    if function is None:
        if name not in LOOKUP:
            raise Unsupported(f"activation {name!r} in full-integer int8")
        a = a or {"leaky_relu": 0.2, "elu": 1.0}.get(name, 0.0)  # Keras's defaults, as the float kernels take them
        function = lambda v: LOOKUP[name](v, a)  # noqa: E731
    index = len(call.q8.tables)
    table = call.q8.table(lambda output: integer.lookup_table(function, source, output))
    call.emit(f"kw_lookup_q8({source_buffer}, {buffer}, {count}, {table});", "lookup_q8")
    return lambda x: integer.lookup(x, call.q8.table_values[index])


def then(activation_twin: Callable[[np.ndarray], np.ndarray] | None, values: np.ndarray) -> np.ndarray:
    """A kernel's numpy twin's values through the twin of the activation emitted after it, if any."""
    return values if activation_twin is None else activation_twin(values)
