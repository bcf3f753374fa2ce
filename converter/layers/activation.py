"""Activation layers: Activation, ReLU, LeakyReLU, ELU, Softmax, PReLU."""
from __future__ import annotations

from .emit import Call, Shape, Unsupported, activation, c_float, copied, size
from .spec import Spec


def activation_c(call: Call) -> Shape:
    shape = copied(call)
    activation(call, call.config.get("activation"), call.output, shape)
    return shape


def relu_c(call: Call) -> Shape:
    shape = copied(call)
    max_value = -1.0 if call.config.get("max_value") is None else call.number("max_value", -1.0)
    if max_value < 0 and call.config.get("max_value") is not None:
        raise Unsupported(f"max_value={call.config['max_value']!r}: not below 0")
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


# Elementwise: every value stays where it was, so a flattened map keeps its order through them.
SPECS = (Spec("Activation", elementwise=True, c=activation_c), Spec("ReLU", elementwise=True, c=relu_c),
         Spec("LeakyReLU", elementwise=True, c=leaky_relu_c), Spec("ELU", elementwise=True, c=elu_c),
         Spec("Softmax", c=softmax_c), Spec("PReLU", roles=("alpha",)))
