"""The integer arithmetic of full-integer int8 (``--quantize int8 --calibration``), as TFLite's quantization
specification defines it: the numpy reference the generated C is proven against bit for bit, and the export-time
arithmetic (activation parameters, requantization multipliers) both sides use.

- An activation is int8, asymmetric, per tensor: ``real = scale * (q - zero_point)``, with scale and zero point
  from the calibration range (:func:`activation_parameters`, TFLite's ``GetAsymmetricQuantizationParams``).
- A requantization multiplies an int32 accumulator by a real factor held as an int32 fixed-point ``multiplier``
  and a power-of-two ``shift`` (:func:`quantize_multiplier`), applied with gemmlowp's saturating rounding doubling
  high multiply, then a rounding right shift (:func:`requantize`, TFLite's ``MultiplyByQuantizedMultiplier``):
  the multiply rounds ties up, the shift rounds them away from zero.

Everything works on numpy int64 arrays so that no intermediate overflows; the C does the same steps in int32 and
int64 (docs/quantization.md).

>>> activation_parameters(-1.0, 3.0)
(0.01568627543747425, -64)
>>> quantize_multiplier(0.0003)
(1319413953, -11)
>>> int(requantize(np.array([100000]), *quantize_multiplier(0.0003))[0])  # round(30.0)
30
"""
from __future__ import annotations

import math
from dataclasses import dataclass, replace

import numpy as np

INT8_MIN, INT8_MAX = -128, 127
INT32_MIN, INT32_MAX = -(2**31), 2**31 - 1


def activation_parameters(low: float, high: float) -> tuple[float, int]:
    """(scale, zero_point) of an int8 activation whose values span [low, high]: the range widened to hold 0 (so
    that zero padding and ReLU's zero are exact), 256 steps over it, and the zero point that is nearer to exact
    of the two the range's ends give, rounded and kept within int8. The scale is rounded to float32, as the manifest
    and TFLite's flatbuffer hold it (the zero point comes from the unrounded one, as TFLite's calibration does); a
    range of one point (all zeros) gets scale 1.

    >>> activation_parameters(0.0, 6.0), activation_parameters(-2.0, -1.0), activation_parameters(0.0, 0.0)
    ((0.0235294122248888, -128), (0.007843137718737125, 127), (1.0, 0))
    """
    low, high = min(float(low), 0.0), max(float(high), 0.0)
    if not (math.isfinite(low) and math.isfinite(high)):
        raise ValueError(f"activation range [{low}, {high}] is not finite")
    if low == high:
        return 1.0, 0
    scale = (high - low) / (INT8_MAX - INT8_MIN)
    from_low, from_high = INT8_MIN - low / scale, INT8_MAX - high / scale
    low_error, high_error = abs(INT8_MIN) + abs(low / scale), abs(INT8_MAX) + abs(high / scale)
    zero = from_low if low_error < high_error else from_high
    return float(np.float32(scale)), int(min(max(round_half_away(zero), INT8_MIN), INT8_MAX))


def round_half_away(value: float) -> float:
    """C's ``round``: halves away from zero (Python's round goes to even).

    >>> round_half_away(2.5), round_half_away(-2.5), round_half_away(2.4)
    (3.0, -3.0, 2.0)
    """
    return math.copysign(math.floor(abs(value) + 0.5), value)


def quantize_multiplier(real: float) -> tuple[int, int]:
    """(multiplier, shift) with ``real = multiplier * 2**(shift - 31)``, multiplier a Q31 fraction of magnitude
    from 2**30 to 2**31 - 1 (negative for a negative factor: BatchNormalization folded into a convolution can flip a
    channel's sign). TFLite's ``QuantizeMultiplier``; factors below 2**-31 in magnitude become (0, 0).

    >>> quantize_multiplier(0.5), quantize_multiplier(1.0), quantize_multiplier(-0.75), quantize_multiplier(0.0)
    ((1073741824, 0), (1073741824, 1), (-1610612736, 0), (0, 0))
    """
    if not math.isfinite(real):
        raise ValueError(f"requantization factor {real} is not finite")
    if real == 0.0:
        return 0, 0
    fraction, shift = math.frexp(abs(real))
    fixed = int(round_half_away(fraction * 2**31))
    if fixed == 2**31:
        fixed, shift = fixed // 2, shift + 1
    if shift < -31:
        return 0, 0
    if shift > 30:
        raise ValueError(f"requantization factor {real} is too large for an int32 multiplier")
    return (fixed if real > 0 else -fixed), shift


def doubling_high_multiply(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """gemmlowp's ``SaturatingRoundingDoublingHighMul``: the high 32 bits of 2ab, ties rounded up (the nudge is
    2**30, or 1 - 2**30 below zero, and the division truncates); INT32_MIN times INT32_MIN (the only overflow)
    saturates. Arrays of int64 holding int32 values."""
    a, b = np.asarray(a, np.int64), np.asarray(b, np.int64)
    product = a * b
    nudge = np.where(product >= 0, 1 << 30, 1 - (1 << 30))
    total = product + nudge
    high = np.where(total >= 0, total >> 31, -((-total) >> 31))  # C's division: toward zero
    return np.where((a == INT32_MIN) & (b == INT32_MIN), INT32_MAX, high)


def rounding_shift_right(x: np.ndarray, exponent: np.ndarray) -> np.ndarray:
    """gemmlowp's ``RoundingDivideByPOT``: x / 2**exponent rounded to nearest, halves away from zero."""
    x, exponent = np.asarray(x, np.int64), np.asarray(exponent, np.int64)
    mask = (np.int64(1) << exponent) - 1
    remainder = x & mask
    threshold = (mask >> 1) + (x < 0)
    return (x >> exponent) + (remainder > threshold)


def requantize(accumulator: np.ndarray, multiplier, shift) -> np.ndarray:
    """TFLite's ``MultiplyByQuantizedMultiplier`` on int32 accumulators: a left shift (factors of 1 and more, the
    result saturated to int32 where TFLite's would overflow), the doubling high multiply, a rounding right shift.
    ``multiplier`` and ``shift`` are numbers or per-channel arrays (broadcast over the last axis)."""
    shift = np.asarray(shift, np.int64)
    left, right = np.maximum(shift, 0), np.maximum(-shift, 0)
    shifted = np.clip(np.asarray(accumulator, np.int64) << left, INT32_MIN, INT32_MAX)
    return rounding_shift_right(doubling_high_multiply(shifted, multiplier), right)


def quantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """Float values as int8: ``zero_point + round(v / scale)``, halves away from zero, saturated, NaN as the zero
    point. The C edge (``<prefix>_predict``) computes the same in float32."""
    scaled = np.asarray(values, np.float32) / np.float32(scale)
    whole = np.trunc(scaled)  # C's roundf: the fraction (exact in float) decides, halves away from zero
    rounded = np.where(np.isnan(scaled), 0, whole + np.where(np.abs(scaled - whole) >= 0.5, np.sign(scaled), 0))
    return np.clip(rounded + zero_point, INT8_MIN, INT8_MAX).astype(np.int8)


def dequantize(values: np.ndarray, scale: float, zero_point: int) -> np.ndarray:
    """int8 values as float32: ``scale * (q - zero_point)``."""
    return (np.float32(scale) * (np.asarray(values, np.int32) - zero_point).astype(np.float32)).astype(np.float32)


# -- the kernels' numpy twins (converter/c_kernels/integer.py), bit for bit --------------------------------------
@dataclass(frozen=True)
class Requantization:
    """What a weighted int8 kernel's C ``kw_q8`` holds: per output channel an int32 bias, a Q31 multiplier and a
    shift; the zero points of its input and output; the clamp of its int8 output (a ReLU's, or int8's range)."""

    bias: np.ndarray        # int32, [channels]
    multiplier: np.ndarray  # int32, [channels]
    shift: np.ndarray       # int32, [channels]
    in_zero: int
    out_zero: int
    lo: int = INT8_MIN
    hi: int = INT8_MAX

    def output(self, accumulator: np.ndarray) -> np.ndarray:
        """int32 sums (channels on the last axis) as the int8 values the kernel stores."""
        scaled = requantize(accumulator, self.multiplier.astype(np.int64), self.shift.astype(np.int64))
        return np.clip(self.out_zero + scaled, self.lo, self.hi).astype(np.int8)


def dense(x: np.ndarray, w: np.ndarray, q: Requantization) -> np.ndarray:
    """``kw_dense_q8``: rows of int8 [rows, in] by the kernel [in, out]; the bias holds the input zero point's share
    (:func:`folded_bias`)."""
    return q.output(q.bias.astype(np.int64) + x.astype(np.int64) @ w.astype(np.int64))


def folded_bias(bias: np.ndarray, w: np.ndarray, in_zero: int) -> np.ndarray:
    """A Dense or Conv2D bias with ``-in_zero * sum(w)`` per output channel added, so that the kernel sums the
    stored values instead of (x - in_zero); int32, or ValueError where a sum leaves int32."""
    total = bias.astype(np.int64) - in_zero * w.reshape(-1, w.shape[-1]).astype(np.int64).sum(axis=0)
    return _int32(total, "a bias with the input zero point folded in")


def _int32(values: np.ndarray, what: str) -> np.ndarray:
    if values.size and (values.min() < INT32_MIN or values.max() > INT32_MAX):
        raise ValueError(f"{what} leaves int32")
    return values.astype(np.int32)


def _windows(x: np.ndarray, fill: int, out: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int],
             dilation: tuple[int, int], pads: tuple[int, int]) -> np.ndarray:
    """[OH, OW, KH, KW, C] of each output pixel's input window, ``fill`` where it leaves the input."""
    (H, W, C), (OH, OW), (KH, KW), (sh, sw), (dh, dw), (pt, pl) = x.shape, out, kernel, strides, dilation, pads
    rows = np.arange(OH)[:, None] * sh - pt + np.arange(KH)[None, :] * dh  # [OH, KH]
    cols = np.arange(OW)[:, None] * sw - pl + np.arange(KW)[None, :] * dw  # [OW, KW]
    inside = ((rows >= 0) & (rows < H))[:, None, :, None] & ((cols >= 0) & (cols < W))[None, :, None, :]
    taken = x[np.clip(rows, 0, H - 1)[:, None, :, None], np.clip(cols, 0, W - 1)[None, :, None, :]]
    return np.where(inside[..., None], taken, np.int8(fill))


def conv2d(x: np.ndarray, w: np.ndarray, q: Requantization, out: tuple[int, int], strides=(1, 1), dilation=(1, 1),
           pads=(0, 0)) -> np.ndarray:
    """``kw_conv2d_q8``: x [H, W, C], kernel [KH, KW, C, OC]; the bias as for :func:`dense`."""
    KH, KW, C, OC = w.shape
    patches = _windows(x, q.in_zero, out, (KH, KW), strides, dilation, pads).reshape(out[0] * out[1], -1)
    return dense(patches, w.reshape(-1, OC), q).reshape(*out, OC)


def depthwise2d(x: np.ndarray, w: np.ndarray, q: Requantization, out: tuple[int, int], strides=(1, 1),
                dilation=(1, 1), pads=(0, 0)) -> np.ndarray:
    """``kw_depthwise2d_q8``: x [H, W, C], kernel [KH, KW, C, M]; output channel c * M + m; the bias plain."""
    KH, KW, C, M = w.shape
    windows = _windows(x, q.in_zero, out, (KH, KW), strides, dilation, pads).astype(np.int64) - q.in_zero
    acc = np.einsum("hwijc,ijcm->hwcm", windows, w.astype(np.int64)).reshape(*out, C * M)
    return q.output(q.bias.astype(np.int64) + acc)


def weighted_requantization(in_params: tuple[float, int], kernel_scales: np.ndarray, bias: np.ndarray | None,
                            out_params: tuple[float, int], clamp: tuple[float, float] = (-math.inf, math.inf),
                            affine: tuple[np.ndarray, np.ndarray] | None = None) -> Requantization:
    """The requantization of a convolution or Dense whose real output in channel c is ``mul[c] * (s_in * s_w[c] *
    acc + b[c]) + add[c]`` (``affine`` = (mul, add): a BatchNormalization folded in; none: 1 and 0), clamped to
    ``clamp`` (a ReLU's, in real values): the int32 bias ``round((b * mul + add) / (s_in * s_w * mul))`` and the
    multipliers of ``s_in * s_w * mul / s_out``, all worked out in float64 from the float32 values stored. The bias
    is plain (the kernel subtracts the input zero point); :func:`folded_bias` folds it for Dense and Conv2D.

    >>> q = weighted_requantization((0.5, 3), np.array([0.01, 0.02], np.float32), np.array([1.0, -1.0], np.float32),
    ...                             (0.25, -10), (0.0, 6.0))
    >>> q.bias.tolist(), q.multiplier.tolist(), q.shift.tolist(), (q.lo, q.hi)
    ([200, -100], [1374389504, 1374389504], [-5, -4], (-10, 14))
    """
    (s_in, in_zero), (s_out, out_zero) = in_params, out_params
    scales = np.asarray(kernel_scales, np.float32).astype(np.float64).reshape(-1)  # C x M for depthwise
    mul, add = (np.ones_like(scales), np.zeros_like(scales)) if affine is None else \
        (np.asarray(affine[0], np.float64), np.asarray(affine[1], np.float64))
    if np.any(mul == 0) or not np.all(np.isfinite(mul) & np.isfinite(add)):
        raise ValueError("a folded BatchNormalization scales a channel by 0 or a non-finite number")
    effective = float(np.float32(s_in)) * scales * mul
    b = np.zeros_like(scales) if bias is None else np.asarray(bias, np.float32).astype(np.float64)
    rounded = np.vectorize(round_half_away, otypes=[np.float64])((b * mul + add) / effective)
    pairs = [quantize_multiplier(float(f / np.float32(s_out))) for f in effective]
    lo = INT8_MIN if clamp[0] == -math.inf else max(INT8_MIN, out_zero + int(round_half_away(clamp[0] / s_out)))
    hi = INT8_MAX if clamp[1] == math.inf else min(INT8_MAX, out_zero + int(round_half_away(clamp[1] / s_out)))
    return Requantization(_int32(rounded, "a bias in int32 steps of its accumulator"),
                          np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32),
                          int(in_zero), int(out_zero), lo, hi)


def _divide_rounded(total: np.ndarray, count) -> np.ndarray:
    """C's (total + count / 2) / count, or (total - count / 2) / count below zero: halves away from zero."""
    half = np.asarray(count) // 2
    shifted = np.where(total >= 0, total + half, total - half)
    return np.sign(shifted) * (np.abs(shifted) // count)  # C's division truncates toward zero


def pool2d(x: np.ndarray, out: tuple[int, int], kernel: tuple[int, int], strides: tuple[int, int],
           pads: tuple[int, int], average: bool) -> np.ndarray:
    """``kw_pool2d_q8``: x [H, W, C] -> [OH, OW, C], the window's cells inside the input only."""
    H, W, C = x.shape
    inside = _windows(np.ones((H, W, 1), np.int8), 0, out, kernel, strides, (1, 1), pads)  # [OH, OW, KH, KW, 1]
    values = _windows(x, 0, out, kernel, strides, (1, 1), pads).astype(np.int64)
    if not average:
        return np.where(inside == 1, values, -128).max(axis=(2, 3)).astype(np.int8)
    count = inside.sum(axis=(2, 3)).astype(np.int64)
    return _divide_rounded((values * inside).sum(axis=(2, 3)), count).astype(np.int8)


def global_pool(x: np.ndarray, q: Requantization | None) -> np.ndarray:
    """``kw_global_pool_q8``: [n, C] -> [C]; the maximum where ``q`` is None, else the requantized sum."""
    values = x.reshape(-1, x.shape[-1]).astype(np.int64)
    if q is None:
        return values.max(axis=0).astype(np.int8)
    return q.output(q.bias.astype(np.int64) + values.sum(axis=0))


def average_requantization(in_params: tuple[float, int], count: int, channels: int, out_params: tuple[float, int]
                           ) -> Requantization:
    """A global average's requantization (TFLite's Mean): the sum of ``count`` values minus count x in_zero,
    times in_scale / (count x out_scale), each channel alike."""
    q = weighted_requantization(in_params, np.full(channels, 1.0, np.float32), None, out_params,
                                affine=(np.full(channels, 1.0 / count), np.zeros(channels)))
    return replace(q, bias=_int32(np.full(channels, -count * in_params[1], np.int64), "an average's bias"))


ADD_SHIFT = 20  # TFLite's left shift of Add's inputs before rescaling


def add_parameters(first: tuple[float, int], second: tuple[float, int], output: tuple[float, int]) -> np.ndarray:
    """``kw_add_q8``'s a[]: the multipliers and shifts of input 1, input 2 (each over twice the larger input
    scale) and the output (that scale over 2**20 output scales), as TFLite's Add prepares them."""
    twice = 2.0 * max(float(np.float32(first[0])), float(np.float32(second[0])))
    factors = (float(np.float32(first[0])) / twice, float(np.float32(second[0])) / twice,
               twice / ((1 << ADD_SHIFT) * float(np.float32(output[0]))))
    return np.array([v for f in factors for v in quantize_multiplier(f)], np.int32)


def add(x1: np.ndarray, x2: np.ndarray, zeros: tuple[int, int, int], a: np.ndarray) -> np.ndarray:
    """``kw_add_q8``."""
    v1 = requantize((x1.astype(np.int64) - zeros[0]) << ADD_SHIFT, int(a[0]), int(a[1]))
    v2 = requantize((x2.astype(np.int64) - zeros[1]) << ADD_SHIFT, int(a[2]), int(a[3]))
    return np.clip(zeros[2] + requantize(v1 + v2, int(a[4]), int(a[5])), INT8_MIN, INT8_MAX).astype(np.int8)


def rescale_parameters(source: tuple[float, int], target: tuple[float, int]) -> np.ndarray:
    """``kw_concat_part_q8``'s a[]: the multiplier and shift of in_scale / (2**20 x out_scale) (the kernel shifts
    its offset values left by 20 bits first, as Add does), and the two zero points."""
    factor = float(np.float32(source[0])) / ((1 << ADD_SHIFT) * float(np.float32(target[0])))
    return np.array([*quantize_multiplier(factor), source[1], target[1]], np.int32)


def rescale(x: np.ndarray, a: np.ndarray) -> np.ndarray:
    """An input of ``kw_concat_part_q8``, rescaled to the output's parameters."""
    scaled = requantize((x.astype(np.int64) - int(a[2])) << ADD_SHIFT, int(a[0]), int(a[1]))
    return np.clip(int(a[3]) + scaled, INT8_MIN, INT8_MAX).astype(np.int8)


def lookup_table(function, source: tuple[float, int], target: tuple[float, int]) -> np.ndarray:
    """``kw_lookup_q8``'s table: for each int8 input q, ``function`` (numpy, float64) of its real value, quantized
    to the output's parameters (halves away from zero, saturated)."""
    real = float(np.float32(source[0])) * (np.arange(INT8_MIN, INT8_MAX + 1) - source[1])
    scaled = np.asarray(function(real), np.float64) / float(np.float32(target[0]))
    rounded = np.sign(scaled) * np.floor(np.abs(scaled) + 0.5)
    return np.clip(np.nan_to_num(rounded, nan=0.0) + target[1], INT8_MIN, INT8_MAX).astype(np.int32)


def lookup(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``kw_lookup_q8``."""
    return table[x.astype(np.int64) + 128].astype(np.int8)


def softmax_table(scale: float) -> np.ndarray:
    """``kw_softmax_q8``'s e[d] = round(65536 * exp(-d * scale)) for d = 0..255."""
    values = 65536.0 * np.exp(-np.arange(256) * float(np.float32(scale)))
    return np.floor(values + 0.5).astype(np.int32)


def softmax(x: np.ndarray, table: np.ndarray) -> np.ndarray:
    """``kw_softmax_q8`` over the last axis: output scale 1/256, zero point -128."""
    values = x.astype(np.int64)
    e = table.astype(np.int64)[values.max(axis=-1, keepdims=True) - values]
    total = e.sum(axis=-1, keepdims=True)
    return (np.minimum((e * 256 + total // 2) // total, 255) - 128).astype(np.int8)


def affine(x: np.ndarray, q: Requantization) -> np.ndarray:
    """``kw_affine_q8``: channels on the last axis; its requantization made with kernel scales of
    :data:`AFFINE_STEP` (:func:`affine_requantization`)."""
    return q.output((x.astype(np.int64) - q.in_zero) * 256 + q.bias.astype(np.int64))


AFFINE_STEP = 1.0 / 256.0  # kw_affine_q8 sums in 1/256 of an input step: the shift in its bias that much finer


def affine_requantization(in_params: tuple[float, int], mul: np.ndarray, add: np.ndarray,
                          out_params: tuple[float, int]) -> Requantization:
    """A per-channel ``mul * x + add`` on int8 (``kw_affine_q8``)."""
    return weighted_requantization(in_params, np.full(len(mul), AFFINE_STEP, np.float32), None, out_params,
                                   affine=(mul, add))
