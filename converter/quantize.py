"""Quantized exports (``export --quantize``): int8 weights with float32 scales, or float16/bfloat16 casts.

Exact by definition, so anyone can recompute what was stored (docs/quantization.md):

- **int8** is symmetric, per output channel and weight-only. Every kernel-like floating tensor (roles in
  :data:`KERNEL_ROLES`, two or more dimensions) becomes ``q = clip(round_half_to_even(float64(w) /
  float64(scale)), -127, 127)`` with ``scale = float32(max|w| / 127)`` over every axis but the channel
  axes (:func:`channel_axes`); a channel of zeros gets scale 1. The scale is a float32 tensor of its own,
  named ``<name>:scale``, one value per combination of the channel axes in C order.
- **float16 / bfloat16** cast every float32 tensor, rounding to nearest even; other dtypes stay.

Everything else (biases, normalization statistics, integer tensors) is stored as it is. Each quantized
record carries a :class:`~converter.tensors.Quantization` with the error of the values read back
(``q * scale`` in float32, or the cast), measured against the model's.

>>> import numpy as np
>>> from converter.tensors import Tensor
>>> kernel = Tensor("d/kernel", "d", "kernel", 0, True, np.array([[1.0, -0.5], [0.25, 0.0]], np.float32), owner_class="Dense")
>>> q, scale = apply([kernel], "int8")
>>> q.array.tolist(), q.quantization.axis, scale.name, scale.array.tolist()
([[127, -127], [32, 0]], (1,), 'd/kernel:scale', [0.007874015718698502, 0.003937007859349251])
"""
from __future__ import annotations

import dataclasses
import math
import re
from collections.abc import Mapping, Sequence

import numpy as np

from . import choices, dtypes, transforms
from . import layers
from .layers import KERNEL_ROLES
from .errors import QuantizationError, UsageError
from .naming import unique
from .tensors import Layer, Quantization, Tensor

SCHEMES = dict(zip(choices.QUANTIZE_SCHEMES, ("int8_symmetric", "float16", "bfloat16"), strict=True))  # as recorded
KERAS1_KERNEL_ROLE = re.compile(r"[WU](_[a-z])?")  # Keras 1: W (kernel, embeddings), U (recurrent), W_i, U_f, ...
SCALE_SUFFIX = ":scale"
BLOCK = 1 << 20  # values per block: temporaries stay a few MB whatever the tensor's size

_FLOAT_TARGETS = ("float16", "bfloat16")  # their numpy types from the dtype table (bfloat16 loads ml_dtypes)


def validate_scheme(scheme: str | None) -> str | None:
    """Validate a ``--quantize`` value (None: no quantization)."""
    if scheme is not None and scheme not in SCHEMES:
        raise UsageError(f"unknown quantization {scheme!r}", hint=f"Choose from: {', '.join(SCHEMES)}.")
    return scheme


def apply(tensors: Sequence[Tensor], scheme: str | None, layers: Sequence[Layer] = ()) -> tuple[Tensor, ...]:
    """The records as stored under ``scheme``: each quantized tensor keeps its name and position, an int8 one
    followed by its scale tensor. ``layers`` (the model's) give the configurations some rules need."""
    if validate_scheme(scheme) is None:
        return tuple(tensors)
    configs = {layer.index: layer.config for layer in layers}
    taken = {t.name for t in tensors}
    stored: list[Tensor] = []
    for tensor in tensors:
        if scheme == "int8" and is_kernel_like(tensor):
            stored += _int8(tensor, stored_channel_axes(tensor, configs.get(tensor.layer_index) or {}), taken)
        elif scheme in _FLOAT_TARGETS and tensor.dtype == "float32":
            stored.append(_cast(tensor, scheme))
        else:
            stored.append(tensor)
    return tuple(stored)


def is_kernel_like(tensor: Tensor) -> bool:
    """Whether int8 quantizes it: a floating tensor of two or more dimensions in a kernel role."""
    kernel_role = tensor.role in KERNEL_ROLES or KERAS1_KERNEL_ROLE.fullmatch(tensor.role)
    return bool(kernel_role) and tensor.array.ndim >= 2 and "float" in tensor.dtype


def channel_axes(tensor: Tensor, config: Mapping | None = None) -> tuple[int, ...] | None:
    """The output-channel axes of a kernel in Keras's layout, or None (one scale for the whole tensor).

    >>> import numpy as np
    >>> def t(cls, role, shape, name="l/kernel"):
    ...     return Tensor(name, "l", role, 0, True, np.zeros(shape, np.float32), owner_class=cls)
    >>> channel_axes(t("Conv2D", "kernel", (3, 3, 8, 16))), channel_axes(t("Conv2DTranspose", "kernel", (3, 3, 16, 8)))
    ((3,), (2,))
    >>> channel_axes(t("DepthwiseConv2D", "depthwise_kernel", (3, 3, 8, 2))), channel_axes(t("MyLayer", "kernel", (4, 4)))
    ((2, 3), None)
    >>> channel_axes(t("EinsumDense", "kernel", (8, 2, 4), "mha/query/kernel"), {"num_heads": 2})
    (1, 2)
    """
    config = config or {}
    rank, role = tensor.array.ndim, tensor.role
    where = "depthwise" if role == "depthwise_kernel" else "last" if role == "pointwise_kernel" else \
        layers.spec(tensor.owner_class).channels
    if where == "depthwise":  # (k..., input channels, depth multiplier): each pair is an output channel of its own
        return (rank - 2, rank - 1)
    if where == "transposed":  # (k..., filters, input channels)
        return (rank - 2,)
    if where == "einsum":
        return _einsum_axes(tensor, config)
    if where == "keras1" and config.get("dim_ordering") == "th":  # Keras 1, Theano order
        return (0,)
    return (rank - 1,) if where in ("last", "keras1") else None


def _einsum_axes(tensor: Tensor, config: Mapping) -> tuple[int, ...] | None:
    """MultiHeadAttention's projections: query/key/value kernels are (input, heads, size), every axis after the
    first an output one; attention_output's are (heads, size, output...). A top-level EinsumDense says it in
    its equation: the kernel's letters that reach the output."""
    rank, parts = tensor.array.ndim, tensor.name.split("/")
    if "num_heads" in config and len(parts) >= 2:  # the top-level layer is a MultiHeadAttention
        if parts[-2] in ("query", "key", "value"):
            return tuple(range(1, rank))
        if parts[-2] == "attention_output":
            return tuple(range(2, rank)) or None
        return None
    found = re.fullmatch(r"\s*(\w+)\s*,\s*(\w+)\s*->\s*(\w+)\s*", str(config.get("equation", "")))
    if not found or len(found.group(2)) != rank:
        return None
    axes = tuple(i for i, letter in enumerate(found.group(2)) if letter in found.group(3))
    return axes or None


def stored_channel_axes(tensor: Tensor, config: Mapping | None = None) -> tuple[int, ...] | None:
    """:func:`channel_axes` of the stored array, after the layout's steps (``--layout``), each moving the axes as
    ``transforms.Step.moved_axes`` says (a transpose reverses them, a permutation moves them, a depthwise kernel
    stored for torch has its channels on axis 0)."""
    steps = transforms.parse(tensor.transform)
    if tensor.keras_name:  # renamed by the layout: the axes are the Keras array's
        shape = tuple(tensor.array.shape)
        for step in reversed(steps):
            shape = step.shape_before(shape)
        tensor = dataclasses.replace(tensor, array=np.empty(shape, np.float32))
    axes = channel_axes(tensor, config)
    for step in steps:
        if axes is None:
            break
        axes = step.moved_axes(axes, len(tensor.array.shape))
    return axes


def scale_shape(shape: Sequence[int], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    """One scale per combination of the channel axes (C order), or one for the tensor."""
    return tuple(shape[a] for a in axes) if axes else (1,)


def broadcast_shape(shape: Sequence[int], axes: tuple[int, ...] | None) -> tuple[int, ...]:
    """The scale tensor's shape for broadcasting against the stored array (1 on every other axis)."""
    return tuple(n if axes and a in axes else 1 for a, n in enumerate(shape))


def dequantize(q: np.ndarray, scale: np.ndarray, axes: Sequence[int] | None) -> np.ndarray:
    """float32 ``q * scale[channel]``: what a quantized tensor stands for.

    >>> dequantize(np.array([[127, -64]], np.int8), np.array([0.5, 0.25], np.float32), [1]).tolist()
    [[63.5, -16.0]]
    """
    axes = tuple(axes) if axes is not None else None
    return q.astype(np.float32) * np.asarray(scale, np.float32).reshape(broadcast_shape(q.shape, axes))


# -- int8 -------------------------------------------------------------------------------------------------
def _int8(tensor: Tensor, axes: tuple[int, ...] | None, taken: set[str]) -> list[Tensor]:
    nan, inf, first = tensor.non_finite
    if nan or inf:
        raise QuantizationError(
            f"tensor {tensor.name} holds {nan} NaN and {inf} infinite values (first at index {list(first)}); "
            "int8 cannot hold them", hint="Fix the model, or export it without --quantize int8 (exact, NaN included).")
    w = tensor.array
    scale = _int8_scales(w, axes)
    if not np.isfinite(scale).all():
        raise QuantizationError(
            f"tensor {tensor.name} holds values up to {float(np.abs(w).max()):g}: their int8 scale (max / 127) is beyond "
            "float32's largest value", hint="Export it without --quantize int8 (exact), or fix the model.")
    q = np.empty(w.shape, np.int8)
    error = _Error()
    scale_b = scale.reshape(broadcast_shape(w.shape, axes))
    for rows in _row_blocks(w.shape):
        part = w[rows].astype(np.float64)
        s = scale_b[rows] if scale_b.shape[0] > 1 else scale_b
        q[rows] = np.clip(np.rint(part / s.astype(np.float64)), -127, 127)
        error.add(part, q[rows].astype(np.float32) * s)
    name = unique(tensor.name + SCALE_SUFFIX, taken)
    quantization = Quantization("int8_symmetric", tensor.dtype, axes, name, *error.figures())
    scale_tensor = Tensor(name, tensor.layer, "scale", tensor.layer_index, False, scale.reshape(scale_shape(w.shape, axes)),
                          owner_class=tensor.owner_class)
    return [dataclasses.replace(tensor, array=q, quantization=quantization), scale_tensor]


def _int8_scales(w: np.ndarray, axes: tuple[int, ...] | None) -> np.ndarray:
    """float32 ``max|w| / 127`` per channel (broadcast shape); 1 for a channel of zeros, and never 0 for a
    channel that has a value (a subnormal maximum would round the scale to 0: the smallest float32 then)."""
    others = tuple(a for a in range(w.ndim) if not axes or a not in axes)
    peak = np.zeros(broadcast_shape(w.shape, axes), np.float64)
    for rows in _row_blocks(w.shape):
        block_peak = np.abs(w[rows].astype(np.float64)).max(axis=others, keepdims=True)
        if peak.shape[0] > 1:
            peak[rows] = block_peak
        else:
            np.maximum(peak, block_peak, out=peak)
    with np.errstate(over="ignore"):  # a scale beyond float32 is refused by the caller, by name
        scale = (peak / 127).astype(np.float32)
    scale[peak == 0] = 1
    scale[(peak > 0) & (scale == 0)] = np.float32(np.finfo(np.float32).smallest_subnormal)
    return scale


def _row_blocks(shape: Sequence[int]):
    """Slices along the first axis of about :data:`BLOCK` values each."""
    if not shape or shape[0] == 0:
        yield slice(None)
        return
    rows = max(1, BLOCK // max(1, math.prod(shape[1:])))
    for start in range(0, shape[0], rows):
        yield slice(start, start + rows)


# -- float casts ------------------------------------------------------------------------------------------
def _largest(target: np.dtype) -> float:
    """The largest finite value of a float type, ml_dtypes' included (imported here: it only matters on error)."""
    import ml_dtypes

    return float(ml_dtypes.finfo(target).max)


def _cast(tensor: Tensor, scheme: str) -> Tensor:
    target = dtypes.by_name(scheme).numpy
    w = tensor.array
    cast = np.empty(w.shape, target)
    error = _Error()
    flat_w, flat_cast = w.reshape(-1), cast.reshape(-1)
    for start in range(0, flat_w.size, BLOCK):
        part = flat_w[start:start + BLOCK]
        with np.errstate(over="ignore"):  # an overflow is found below and refused by name
            flat_cast[start:start + BLOCK] = part.astype(target)
        back = flat_cast[start:start + BLOCK].astype(np.float32)
        overflow = np.isinf(back) & np.isfinite(part)
        if overflow.any():
            where = start + int(np.flatnonzero(overflow)[0])
            index = [int(i) for i in np.unravel_index(where, w.shape)]
            raise QuantizationError(
                f"tensor {tensor.name} holds {float(flat_w[where])!r} at index {index}, beyond {scheme}'s largest "
                f"value {_largest(target):g}",
                hint="Export it without --quantize, or as int8" + (" or bfloat16." if scheme == "float16" else "."))
        finite = np.isfinite(part)
        error.add(part[finite].astype(np.float64), back[finite])
    quantization = Quantization(scheme, tensor.dtype, None, None, *error.figures())
    return dataclasses.replace(tensor, array=cast, quantization=quantization)


class _Error:
    """The error of the values read back against the model's, accumulated block by block (float64), in energies
    that neither overflow nor underflow (a kernel of 1e-300s read back as zeros has an SNR of 0 dB, not none)."""

    def __init__(self) -> None:
        self.count, self.max_abs = 0, 0.0
        self.error, self.signal = _Energy(), _Energy()

    def add(self, original: np.ndarray, read_back: np.ndarray) -> None:
        difference = read_back.astype(np.float64) - original
        if difference.size:
            self.max_abs = max(self.max_abs, float(np.abs(difference).max()))
        self.count += difference.size
        self.error.add(difference.reshape(-1))
        self.signal.add(np.asarray(original, np.float64).reshape(-1))

    def figures(self) -> tuple[float, float, float | None]:
        """(max abs, RMSE, SNR in dB: None with no error or no signal).

        >>> error = _Error(); error.add(np.array([1e-300, -1e-300]), np.zeros(2)); error.figures()
        (1e-300, 1e-300, 0.0)
        """
        rmse = self.error.scale * math.sqrt(self.error.sum / self.count) if self.count else 0.0
        defined = self.error.sum > 0 and self.signal.sum > 0
        snr = (10 * math.log10(self.signal.sum / self.error.sum) + 20 * math.log10(self.signal.scale / self.error.scale)
               if defined else None)
        return self.max_abs, rmse, snr


class _Energy:
    """A sum of squares kept as ``scale**2 * sum`` with ``scale`` the largest magnitude seen (as LAPACK's norms do)."""

    def __init__(self) -> None:
        self.scale, self.sum = 0.0, 0.0

    def add(self, values: np.ndarray) -> None:
        peak = float(np.abs(values).max()) if values.size else 0.0
        if peak == 0:
            return
        if peak > self.scale:
            self.sum *= (self.scale / peak) ** 2
            self.scale = peak
        scaled = values / self.scale
        self.sum += float(np.dot(scaled, scaled))
