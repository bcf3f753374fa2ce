"""Statistics of one tensor for the report: extremes, mean and spread, zeros, non-finite counts, dynamic range, a
histogram, and the anomalies they show. Computed a block at a time, so memory stays bounded whatever the tensor's
size."""
from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from . import layers

BLOCK = 1 << 20
BINS = 40
EXPLODING = 1e4      # |w| above this in a weight is flagged
TINY_VARIANCE = 1e-6  # BatchNorm moving variance below this is flagged
_KERNEL_ROLES = layers.KERNEL_ROLES | layers.TORCH_KERNEL_ROLES  # a weight's anomalies (dead, constant)


@dataclass
class Stats:
    """What the page says about one tensor."""

    name: str
    layer: str
    shape: tuple[int, ...]
    dtype: str
    size: int
    minimum: float | None = None
    maximum: float | None = None
    mean: float | None = None
    std: float | None = None
    zeros: float = 0.0
    nan: int = 0
    inf: int = 0
    range_bits: float | None = None           # log2(max |w| / smallest nonzero |w|)
    histogram: list[int] = field(default_factory=list)
    edges: tuple[float, float] = (0.0, 0.0)
    quantization: dict | None = None          # from the manifest of a quantized export
    error_histogram: list[int] = field(default_factory=list)
    error_edges: tuple[float, float] = (0.0, 0.0)
    stands_for: Stats | None = None           # an int8 tensor's figures as the values it stands for (dequantized)
    anomalies: list[str] = field(default_factory=list)


def tensor_stats(name: str, layer: str, array: np.ndarray) -> Stats:
    """Statistics of one tensor in two passes a block at a time: extremes and counts, then mean, spread and the
    histogram on values scaled by the largest magnitude (so float64 values near its limit do not overflow)."""
    stats = Stats(name, layer, tuple(int(n) for n in array.shape), array.dtype.name, int(array.size))
    flat = array.reshape(-1)
    if not flat.size or (array.dtype.kind not in "fiub" and "float" not in array.dtype.name):
        return stats
    low, high, count, zeros, smallest = math.inf, -math.inf, 0, 0, math.inf
    for block in _blocks(flat):
        finite = block[np.isfinite(block)]
        stats.nan += int(np.isnan(block).sum())
        stats.inf += int(np.isinf(block).sum())
        zeros += int((block == 0).sum())
        if finite.size:
            low, high = min(low, float(finite.min())), max(high, float(finite.max()))
            count += finite.size
            nonzero = np.abs(finite[finite != 0])
            if nonzero.size:
                smallest = min(smallest, float(nonzero.min()))
    stats.zeros = zeros / flat.size
    if count:
        scale = max(abs(low), abs(high)) or 1.0
        total = squares = 0.0
        counts = np.zeros(BINS, np.int64)
        for block in _blocks(flat):
            finite = block[np.isfinite(block)] / scale
            total += float(finite.sum())
            squares += float(np.dot(finite, finite))
            if _binnable(low / scale, high / scale):
                counts += np.histogram(finite, BINS, (low / scale, high / scale))[0]
        mean = total / count
        stats.minimum, stats.maximum = low, high
        stats.mean, stats.std = mean * scale, math.sqrt(max(squares / count - mean * mean, 0.0)) * scale
        stats.range_bits = math.log2(scale / smallest) if smallest < math.inf and scale > 0 else 0.0
        stats.histogram = counts.tolist() if _binnable(low / scale, high / scale) else [count]
        stats.edges = (low, high)
    stats.anomalies = _anomalies(stats)
    return stats


def _binnable(low: float, high: float) -> bool:
    """Whether :data:`BINS` bins fit between ``low`` and ``high`` (two adjacent floats have no room for them: one
    bar then shows every value).

    >>> _binnable(0.0, 1.0), _binnable(1.0, float(np.nextafter(1.0, 2.0)))
    (True, False)
    """
    return low < high and bool(np.all(np.diff(np.linspace(low, high, BINS + 1)) > 0))


def _blocks(flat: np.ndarray):
    for start in range(0, flat.size, BLOCK):
        yield np.asarray(flat[start:start + BLOCK], np.float64)


def histogram(values: np.ndarray, low: float, high: float) -> tuple[list[int], tuple[float, float]]:
    """A histogram of finite float64 values (small arrays: the error of a quantized tensor)."""
    scale = max(abs(low), abs(high))
    if not _binnable(low / scale if scale else 0.0, high / scale if scale else 0.0):
        return [int(values.size)], (low, high)
    return np.histogram(values / scale, BINS, (low / scale, high / scale))[0].tolist(), (low, high)


def _anomalies(stats: Stats) -> list[str]:
    found = []
    if stats.nan or stats.inf:
        found.append(f"{stats.nan} NaN and {stats.inf} infinite values")
    weight_like = stats.name.rsplit("/", 1)[-1].rsplit(".", 1)[-1] in _KERNEL_ROLES
    if stats.size > 1 and stats.minimum is not None and weight_like:  # a bias or BatchNorm at its start is fine
        if stats.minimum == stats.maximum == 0:
            found.append("all zero (a dead layer)")
        elif stats.minimum == stats.maximum:
            found.append(f"constant ({stats.minimum:g})")
    if stats.maximum is not None and max(abs(stats.minimum), abs(stats.maximum)) > EXPLODING:
        found.append(f"exploding range (|w| up to {max(abs(stats.minimum), abs(stats.maximum)):.3g})")
    if stats.name.endswith(("moving_variance", "running_var")) and stats.minimum is not None \
            and stats.minimum < TINY_VARIANCE:
        found.append(f"BatchNorm variance near zero ({stats.minimum:.3g})")
    return found
