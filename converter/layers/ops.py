"""Keras 3 operations saved as nodes of a functional graph: slicing (``x[:, -1]`` becomes a ``GetItem`` node, its
key in the call's arguments) and the reductions of ``keras.ops`` (``Max``, ``Min``, ``Sum``, ``Mean``, their axis
and keepdims in the configuration). ``keras.ops.multiply``, ``add`` and ``subtract`` save as ``Multiply``, ``Add`` and
``Subtract``, which the merge layers compute (same shapes only). No weights; each is a loop the emitter writes out
for its shapes."""
from __future__ import annotations

from typing import Any

from .emit import Call, Shape, Unsupported, shown, size
from .spec import Spec

# Each reduction's step, from the first value on (no constant for an empty start: -inf stays -inf).
REDUCTIONS = {"Max": "a = v > a ? v : a;", "Min": "a = v < a ? v : a;", "Sum": "a += v;", "Mean": "a += v;"}


def _axis_slice(entry: Any, length: int) -> tuple[int, int, int]:
    """(start, step, count) of a slice in an index, on an axis of ``length``, as Python takes it.

    >>> _axis_slice({"class_name": "__slice__", "config": {"start": None, "stop": None, "step": -2}}, 5)
    (4, -2, 3)
    """
    if isinstance(entry, dict) and entry.get("class_name") == "__slice__":
        config = entry.get("config") or {}
        bounds = [config.get(key) for key in ("start", "stop", "step")]
        if any(b is not None and (not isinstance(b, int) or isinstance(b, bool)) for b in bounds):
            raise Unsupported(f"a slice of {shown(bounds)}: whole numbers or none needed")
        if bounds[2] == 0:
            raise Unsupported("a slice step of 0")
        picked = range(length)[slice(*bounds)]
        return (picked.start if len(picked) else 0), picked.step, len(picked)
    raise Unsupported(f"index {shown(entry)}: integers and slices only")


def get_item_c(call: Call) -> Shape:
    """``x[key]`` per sample: the key's first entry must take every sample (``:``); the others are slices or
    integers, one per axis from the first, the axes after them kept whole."""
    positional = call.node.keywords.get("positional")
    key = positional[0] if isinstance(positional, list) and len(positional) == 1 else None
    if key is None:
        raise Unsupported("its index is not in the saved call")
    key = key if isinstance(key, list) else [key]
    shape = call.inputs[0]
    if not key or not _whole(key[0]):
        raise Unsupported(f"index {shown(key)}: the first axis (the samples) must be taken whole")
    if len(key) - 1 > len(shape):
        raise Unsupported(f"index {shown(key)}: more axes than the input's {len(shape)}")
    starts, steps, counts, kept = [], [], [], []
    for axis, length in enumerate(shape):
        entry = key[axis + 1] if axis + 1 < len(key) else {"class_name": "__slice__", "config": {}}
        if isinstance(entry, int) and not isinstance(entry, bool):
            if not -length <= entry < length:
                raise Unsupported(f"index {entry} on an axis of {length}")
            starts.append(entry % length), steps.append(1), counts.append(1)
            continue
        start, step, count = _axis_slice(entry, length)
        if count == 0:
            raise Unsupported(f"index {shown(key)} selects nothing")
        starts.append(start), steps.append(step), counts.append(count), kept.append(count)
    strides = [size(shape[axis + 1:]) for axis in range(len(shape))]
    loops = "".join(f"for (long i{a} = 0; i{a} < {counts[a]}; ++i{a}) " for a in range(len(shape)))
    at = " + ".join(f"({starts[a]} + i{a} * {steps[a]}) * {strides[a]}" for a in range(len(shape)))
    call.emit(f"{{\n        size_t o = 0;\n        {loops.rstrip()}\n            {call.output}[o++] = {call.source()}[{at}];\n"
              "    }")
    return tuple(kept) if kept else (1,)


def _whole(entry: Any) -> bool:
    """A slice that takes a whole axis (``:``)."""
    config = entry.get("config") or {} if isinstance(entry, dict) and entry.get("class_name") == "__slice__" else None
    return config is not None and all(config.get(key) is None for key in ("start", "stop", "step"))


def reduction_c(call: Call) -> Shape:
    """Max/Min/Sum/Mean over one axis, or several next to one another, of each sample (``axis`` counts the batch
    axis as 0, as Keras does); ``keepdims`` keeps them as ones."""
    shape, rank = call.inputs[0], len(call.inputs[0]) + 1
    axis = call.config.get("axis")
    if call.config.get("initial") is not None:
        raise Unsupported(f"initial={shown(call.config['initial'])}")
    axes = axis if isinstance(axis, list) else [axis]
    if axis is None or not axes or not all(isinstance(a, int) and not isinstance(a, bool) and -rank <= a < rank for a in axes):
        raise Unsupported(f"axis={shown(axis)}: axes of the sample needed (not the samples' axis, not all axes)")
    axes = sorted({a % rank - 1 for a in axes})
    if axes[0] < 0:
        raise Unsupported(f"axis={shown(axis)} reduces over the samples")
    if axes != list(range(axes[0], axes[-1] + 1)):
        raise Unsupported(f"axis={shown(axis)}: axes next to one another")
    outer, middle, inner = size(shape[:axes[0]]), size(shape[axes[0]:axes[-1] + 1]), size(shape[axes[-1] + 1:])
    step = REDUCTIONS[call.node.class_name]
    mean = f" / {middle}.0f" if call.node.class_name == "Mean" else ""
    x, y = call.source(), call.output
    call.emit(f"for (size_t o = 0; o < {outer}; ++o)\n        for (size_t i = 0; i < {inner}; ++i) {{\n"
              f"            float a = {x}[o * {middle} * {inner} + i];\n"
              f"            for (size_t m = 1; m < {middle}; ++m) {{\n"
              f"                const float v = {x}[(o * {middle} + m) * {inner} + i];\n"
              f"                {step}\n            }}\n"
              f"            {y}[o * {inner} + i] = a{mean};\n        }}")
    kept = [n for d, n in enumerate(shape) if d < axes[0] or d > axes[-1]]
    if call.config.get("keepdims"):
        kept = [1 if axes[0] <= d <= axes[-1] else n for d, n in enumerate(shape)]
    return tuple(kept) if kept else (1,)


SPECS = (Spec("GetItem", c=get_item_c), *(Spec(name, c=reduction_c) for name in REDUCTIONS))
