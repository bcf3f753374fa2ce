"""What a layout did to a stored tensor, as typed steps: the one place the manifest's ``transform`` text is parsed,
written and undone (``layouts`` and ``torch_layout`` write it; ``load``, ``diff`` and ``report`` undo it).

A transform is steps joined by ``+`` in the order they were applied (``none``: nothing):

- ``transpose``: a 2-D array transposed (``--layout dense_out_in``);
- ``permute:A,B,...``: the Keras array's axes reordered (numpy ``transpose``);
- ``depthwise``: a depthwise kernel ``(k..., in, m)`` stored as ``[in * m, 1, k...]``;
- ``gates:1,0,2``: a recurrent tensor's gate blocks reordered on its last axis;
- ``row:N``: row N of a stacked tensor (a GRU's two bias rows);
- ``flatten:S,C``: the input rows of a Dense after a Flatten of S positions and C channels, channels first;
- ``ones``, ``zeros``, ``count``: a tensor torch has and Keras does not (nothing to take back), ``keras``: kept
  as Keras holds it.

>>> steps = parse("flatten:9,4+permute:1,0")
>>> [str(s) for s in steps], join(steps)
(['flatten:9,4', 'permute:1,0'], 'flatten:9,4+permute:1,0')
>>> import numpy as np
>>> undo(parse("permute:1,0"), np.arange(6).reshape(2, 3)).shape
(3, 2)
"""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

import numpy as np

_NUMBERS = {"none": None, "keras": None, "transpose": None, "depthwise": None, "ones": None, "zeros": None,
            "count": None, "permute": "order", "gates": "order", "row": r"[01]", "flatten": r"[1-9]\d{0,9},[1-9]\d{0,9}"}
TORCH_ONLY = frozenset({"ones", "zeros", "count"})  # tensors torch holds that Keras does not


@dataclass(frozen=True)
class Step:
    """One step of a transform: its kind and its numbers."""

    kind: str
    numbers: tuple[int, ...] = ()

    def __str__(self) -> str:
        return self.kind + (":" + ",".join(map(str, self.numbers)) if self.numbers else "")

    def moved_axes(self, axes: tuple[int, ...], rank: int) -> tuple[int, ...]:
        """Where axes of the array before this step are after it (quantization's channel axes, for instance).

        >>> Step("permute", (2, 3, 1, 0)).moved_axes((3,), 4), Step("transpose").moved_axes((1,), 2)
        ((1,), (0,))
        """
        if self.kind == "transpose":
            return tuple(sorted(rank - 1 - a for a in axes))
        if self.kind == "permute":
            return tuple(sorted(self.numbers.index(a) for a in axes))
        if self.kind == "depthwise":  # [in * m, 1, k...]: every output channel on axis 0
            return (0,)
        return axes

    def shape_before(self, shape: tuple[int, ...]) -> tuple[int, ...]:
        """The shape before this step, from the shape after it (a depthwise kernel's multiplier is not recorded:
        1 stands for it, enough for its rank and axes)."""
        if self.kind == "transpose":
            return tuple(reversed(shape))
        if self.kind == "permute":
            before = [0] * len(self.numbers)
            for after_axis, before_axis in enumerate(self.numbers):
                before[before_axis] = shape[after_axis]
            return tuple(before)
        if self.kind == "depthwise":
            return (*shape[2:], shape[0], 1)
        return tuple(shape)

    def invert(self, value: np.ndarray, keras_shape: tuple[int, ...] | None = None) -> np.ndarray:
        """The array before this step, from the array after it (``keras_shape``: the Keras array's, for depthwise)."""
        if self.kind == "transpose":
            return value.T
        if self.kind == "permute":
            return value.transpose(np.argsort(self.numbers))
        if self.kind == "depthwise":
            rank = len(keras_shape) - 2
            return value[:, 0].transpose(*range(1, rank + 1), 0).reshape(keras_shape)
        if self.kind == "gates":
            axis = value.ndim - 1
            parts = np.split(value, len(self.numbers), axis=axis)
            return np.concatenate([parts[self.numbers.index(i)] for i in range(len(self.numbers))], axis=axis)
        if self.kind == "flatten":
            positions, channels = self.numbers
            return value.reshape(channels, positions, -1).transpose(1, 0, 2).reshape(value.shape)
        return value  # none, keras, row (undone by stacking rows), ones, zeros, count


def parse(text: str) -> list[Step]:
    """The steps of a recorded transform, or ValueError naming the first step that is not one we write.

    >>> parse("permute:0,0")
    Traceback (most recent call last):
    ...
    ValueError: step 'permute:0,0': its numbers are not an order of axes
    """
    steps = []
    for part in text.split("+"):
        kind, colon, numbers = part.partition(":")
        rule = _NUMBERS.get(kind, "unknown")
        if rule == "unknown" or bool(colon) != (rule is not None):
            raise ValueError(f"unknown step {part!r}")
        if rule == "order":
            order = numbers.split(",")
            if len(order) > 32 or sorted(order, key=lambda n: int(n) if n.isdigit() else -1) != \
                    [str(i) for i in range(len(order))]:
                raise ValueError(f"step {part!r}: its numbers are not an order of axes")
        elif rule is not None and not re.fullmatch(rule, numbers):
            raise ValueError(f"step {part!r}: numbers out of range")
        steps.append(Step(kind, tuple(int(n) for n in numbers.split(",")) if colon else ()))
    return steps


def join(steps: list[Step]) -> str:
    """The text the manifest records for these steps (``none`` for no step)."""
    return "+".join(map(str, steps)) or "none"


def problem(text: str) -> str | None:
    """What is wrong with a recorded transform (a foreign manifest's), or None when every step is one we write.

    >>> problem("gates:1,0,2+permute:1,0"), problem("explode:1")
    (None, "unknown step 'explode:1'")
    """
    try:
        parse(text)
    except ValueError as error:
        return str(error)
    return None


def undo(steps: list[Step], value: np.ndarray, keras_shape: tuple[int, ...] | None = None) -> np.ndarray:
    """The Keras-layout array from a stored one: every step inverted, last first."""
    for step in reversed(steps):
        value = step.invert(value, keras_shape)
    return value


class Misfit:
    """A stored tensor whose shape or transform does not fit: the problem, said in the stored names."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


def undo_layout(stored, arrays: dict[str, np.ndarray], keras_shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Keras name -> Keras-layout array, from the arrays a layout stored (``stored``: their records, with the
    steps in ``transform``); None where one is missing, a :class:`Misfit` where one does not fit."""
    result: dict[str, Any] = {}
    for tensor in stored:
        key = tensor.keras_name or tensor.name
        steps = parse(tensor.transform)
        kinds = {step.kind for step in steps}
        second_bias = tensor.name.split(".")[-1].startswith("bias_hh") and kinds == {"zeros"}
        if kinds & TORCH_ONLY and not second_bias:
            continue  # torch's own (num_batches_tracked, a BatchNorm's fixed weight or bias): nothing to take back
        value = arrays.get(tensor.name)
        if value is None:
            if not second_bias:
                result.setdefault(key, None)
            continue
        if tuple(value.shape) != tensor.shape:  # cannot be undone: reported in the stored names and shapes
            result[key] = Misfit(f"{key}: {tensor.name} has shape {list(value.shape)}, the model's needs "
                                 f"{list(tensor.shape)}")
            continue
        try:
            undone = undo(steps, np.asarray(value), keras_shapes.get(key))
        except (ValueError, IndexError, TypeError) as error:  # a recorded transform that does not fit the array
            result[key] = Misfit(f"{key}: the recorded transform {tensor.transform!r} cannot be undone on "
                                 f"{tensor.name} of shape {list(value.shape)} ({type(error).__name__})")
            continue
        if second_bias:  # an LSTM's or SimpleRNN's two biases, summed into Keras's one
            result[key] = None if result.get(key) is None else result[key] + undone
        elif steps[0].kind == "row":  # a GRU's two bias rows, stacked back
            result.setdefault(key, [None, None])[steps[0].numbers[0]] = undone
        else:
            result[key] = undone
    for key, value in result.items():
        if isinstance(value, list) and not any(isinstance(v, Misfit) for v in value):
            result[key] = None if any(v is None for v in value) else np.stack(value)
    return result
