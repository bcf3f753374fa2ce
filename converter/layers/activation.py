"""Activation layers: Activation, ReLU, LeakyReLU, ELU, Softmax, PReLU."""
from __future__ import annotations

import math

import numpy as np

from . import q8
from .emit import CLAMPS, Call, Post, Shape, Unsupported, activation, c_float, copied, in_place, size
from .spec import Spec


def activation_c(call: Call) -> Shape:
    shape = copied(call)
    activation(call, call.config.get("activation"), call.output, shape)
    return shape


def activation_fold(call: Call, post: Post) -> None:
    """relu and relu6 (and linear) fold into the epilogue of the kernel before them as a clamp."""
    name = call.config.get("activation")
    if name not in (None, "linear") and name not in CLAMPS:
        raise Unsupported(f"activation {name!r} is no clamp")
    post.clamp(*CLAMPS.get(name, (-math.inf, math.inf)))


def _max_value(call: Call) -> float:
    """ReLU's max_value, -1 for none."""
    max_value = -1.0 if call.config.get("max_value") is None else call.number("max_value", -1.0)
    if max_value < 0 and call.config.get("max_value") is not None:
        raise Unsupported(f"max_value={call.config['max_value']!r}: not below 0")
    return max_value


def relu_fold(call: Call, post: Post) -> None:
    """A ReLU without slope or threshold folds into the epilogue of the kernel before it as a clamp."""
    if call.number("negative_slope", 0.0) != 0.0 or call.number("threshold", 0.0) != 0.0:
        raise Unsupported("a slope or threshold is no clamp")
    max_value = _max_value(call)
    post.clamp(0.0, max_value if max_value >= 0 else math.inf)


def relu_c(call: Call) -> Shape:
    shape = copied(call)
    max_value = _max_value(call)
    call.emit(f"kw_relu({call.output}, {size(shape)}, {c_float(max_value)}, "
              f"{c_float(call.number('negative_slope', 0.0))}, {c_float(call.number('threshold', 0.0))});", "relu")
    return shape


def leaky_relu_c(call: Call) -> Shape:
    shape = copied(call)
    slope = call.number("negative_slope" if "negative_slope" in call.config else "alpha", 0.3)
    call.emit(f"kw_relu({call.output}, {size(shape)}, -1.0f, {c_float(slope)}, 0.0f);", "relu")
    return shape


def elu_c(call: Call) -> Shape:
    shape = copied(call)
    activation(call, "elu", call.output, shape, call.number("alpha", 1.0))
    return shape


def softmax_c(call: Call) -> Shape:
    shape = call.inputs[0]
    axis = call.config.get("axis", -1)
    if axis not in (-1, len(shape), [-1]):
        raise Unsupported(f"axis={axis}")
    copied(call)
    activation(call, "softmax", call.output, shape)
    return shape


# -- full-integer int8: a table of the 256 results (softmax: its own kernel), in place where the input is dead --
def _elementwise_q8(call: Call, name: str, a: float = 0.0, function=None) -> Shape:
    shape = call.inputs[0]
    if name in (None, "linear"):
        call.alias = True
        return shape
    in_place(call)
    twin = q8.elementwise(call, name, call.source(), call.output, shape, call.q8.inputs[0], a, function)
    call.q8.reference = lambda xs, qs: twin(xs[0])
    return shape


def activation_q8(call: Call) -> Shape:
    return _elementwise_q8(call, call.config.get("activation"))


def relu_q8(call: Call) -> Shape:
    top, slope, threshold = _max_value(call), call.number("negative_slope", 0.0), call.number("threshold", 0.0)

    def relu(v):  # kw_relu's definition
        out = np.where(v >= threshold, v, slope * (v - threshold))
        return np.minimum(out, top) if top >= 0 else out

    return _elementwise_q8(call, "relu", function=relu)


def leaky_relu_q8(call: Call) -> Shape:
    return _elementwise_q8(call, "leaky_relu", call.number("negative_slope" if "negative_slope" in call.config
                                                          else "alpha", 0.3))


def elu_q8(call: Call) -> Shape:
    return _elementwise_q8(call, "elu", call.number("alpha", 1.0))


def softmax_q8(call: Call) -> Shape:
    axis = call.config.get("axis", -1)
    if axis not in (-1, len(call.inputs[0]), [-1]):
        raise Unsupported(f"axis={axis}")
    return _elementwise_q8(call, q8.SOFTMAX)


# Elementwise: every value stays where it was, so a flattened map keeps its order through them.
SPECS = (Spec("Activation", elementwise=True, c=activation_c, c_int8=activation_q8, c_fold=activation_fold),
         Spec("ReLU", elementwise=True, c=relu_c, c_int8=relu_q8, c_fold=relu_fold),
         Spec("LeakyReLU", elementwise=True, c=leaky_relu_c, c_int8=leaky_relu_q8),
         Spec("ELU", elementwise=True, c=elu_c, c_int8=elu_q8), Spec("Softmax", c=softmax_c, c_int8=softmax_q8),
         Spec("PReLU", roles=("alpha",)))
