"""The integer arithmetic of full-integer int8 (converter.integer) against TFLite's own: a model converted by
TFLiteConverter with a representative dataset, run by TFLite Micro's interpreter (its reference integer kernels),
and recomputed in numpy from the flatbuffer's int8 tensors and float scales with our activation parameters,
multipliers and requantization. Equal bit for bit, or our scheme is not TFLite's."""
from __future__ import annotations

import contextlib
import io
import warnings

import numpy as np
import pytest

import converter
from converter import integer
from tests.conftest import need_module


@pytest.fixture(scope="module")
def converted(keras_module):
    """(flatbuffer, calibration samples, the Keras model) of a Conv2D(relu) -> Flatten -> Dense model, int8 from
    input to output."""
    import tensorflow as tf

    keras = keras_module
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu", name="conv")(inputs)
    x = keras.layers.Dense(4, name="dense")(keras.layers.Flatten()(x))
    model = keras.Model(inputs, x)
    samples = np.random.default_rng(0).uniform(-0.9, 1.0, (32, 8, 8, 3)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample[None]] for sample in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert(), samples, model


def _tensors(flatbuffer: bytes) -> dict:
    """The flatbuffer's tensors by the role they play, found by dtype and shape through the interpreter's public
    tensor details: each constant's values and each tensor's (scales, zero points)."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = tf.lite.Interpreter(model_content=flatbuffer)
    reader.allocate_tensors()
    details = reader.get_tensor_details()

    def one(dtype, shape):
        (found,) = [d for d in details if d["dtype"] == dtype and tuple(d["shape"]) == shape]
        return found

    def params(detail):
        q = detail["quantization_parameters"]
        return q["scales"].astype(np.float64), q["zero_points"].astype(np.int64)

    conv_kernel, dense_kernel = one(np.int8, (5, 3, 3, 3)), one(np.int8, (4, 320))
    return {"input": params(reader.get_input_details()[0]), "conv_kernel": reader.get_tensor(conv_kernel["index"]),
            "conv_kernel_q": params(conv_kernel), "conv_bias": reader.get_tensor(one(np.int32, (5,))["index"]),
            "hidden": params(one(np.int8, (1, 8, 8, 5))), "dense_kernel": reader.get_tensor(dense_kernel["index"]),
            "dense_kernel_q": params(dense_kernel), "output": params(reader.get_output_details()[0])}


def _multipliers(input_scale: float, kernel_scales: np.ndarray, output_scale: float) -> tuple[np.ndarray, np.ndarray]:
    pairs = [integer.quantize_multiplier(float(input_scale * s / output_scale)) for s in kernel_scales]
    return np.array([m for m, _ in pairs]), np.array([s for _, s in pairs])


def _reference(t: dict, x: np.ndarray) -> np.ndarray:
    """The model on one int8 sample, in numpy with converter.integer: conv (same padding: zeros are the input's
    zero point), relu as the clamp at the zero point, requantized per channel; then the Dense."""
    (s_in,), (z_in,) = t["input"]
    (s_hid,), (z_hid,) = t["hidden"]
    (s_out,), (z_out,) = t["output"]
    kernel = t["conv_kernel"].astype(np.int64)  # [out][kh][kw][in]
    padded = np.pad(x.astype(np.int64) - z_in, ((1, 1), (1, 1), (0, 0)))
    acc = sum(np.einsum("hwc,oc->hwo", padded[i:i + 8, j:j + 8], kernel[:, i, j, :]) for i in range(3) for j in range(3))
    acc = acc + t["conv_bias"].astype(np.int64)
    hidden = integer.requantize(acc, *_multipliers(s_in, t["conv_kernel_q"][0], s_hid)) + z_hid
    hidden = np.clip(hidden, z_hid, integer.INT8_MAX)  # relu: real 0 is the zero point
    acc = (hidden.reshape(-1) - z_hid) @ t["dense_kernel"].astype(np.int64).T
    out = integer.requantize(acc, *_multipliers(s_hid, t["dense_kernel_q"][0], s_out)) + z_out
    return np.clip(out, integer.INT8_MIN, integer.INT8_MAX).astype(np.int8)


def test_requantization_is_tflite_micros_bit_for_bit(converted):
    runtime = need_module("tflite_micro.python.tflite_micro.runtime")
    flatbuffer, *_ = converted
    tensors = _tensors(flatbuffer)
    micro = runtime.Interpreter.from_bytes(flatbuffer)
    rng = np.random.default_rng(1)
    samples = [rng.integers(-128, 128, (8, 8, 3)).astype(np.int8) for _ in range(40)]
    samples.append(np.full((8, 8, 3), 127, np.int8))  # the extremes: the largest accumulators
    samples.append(np.full((8, 8, 3), -128, np.int8))
    differing = 0
    for sample in samples:
        micro.set_input(sample[None], 0)
        micro.invoke()
        differing += int(np.sum(micro.get_output(0)[0] != _reference(tensors, sample)))
    assert differing == 0


def test_activation_parameters_are_tflite_calibrations(converted):
    """The input's scale and zero point TFLite's calibration chose from the samples' range, recomputed."""
    flatbuffer, samples, _ = converted
    (scale,), (zero,) = _tensors(flatbuffer)["input"]
    assert integer.activation_parameters(samples.min(), samples.max()) == (np.float32(scale), zero)


def test_calibration_gives_every_value_tflites_parameters(converted, tmp_path):
    """Calibrated on the same samples, the export's hidden and output values get the scale and zero point TFLite's
    calibration chose: both range the float model (not its int8 weights, which shift each range a little and the
    grid with it). The scales agree to within a float32 step or two (the float C sums in another order than
    TensorFlow); ranged on the int8 weights, the hidden scale here was 0.04% off, and such shifts doubled the error
    of the benchmark's MobileNetV2."""
    flatbuffer, samples, model = converted
    tensors = _tensors(flatbuffer)
    manifest = converter.export(model, tmp_path / "out", formats=["c"], quantize="int8", calibration=samples,
                                options={"c": {"inference": True}})
    ours = {a["name"]: (a["scale"], a["zero_point"]) for a in manifest["inference"]["activations"]}
    for value, role in (("conv", "hidden"), ("dense", "output")):
        (scale,), (zero,) = tensors[role]
        assert ours[value][1] == zero and ours[value][0] == pytest.approx(scale, rel=3e-7), value


@pytest.mark.parametrize("real", [0.0003, 0.5, 0.999999999, 1.0, 3.75, 2.0**-31, 2.0**-33, -0.25, 1e-7])
def test_quantized_multiplier_holds_the_factor(real):
    multiplier, shift = integer.quantize_multiplier(real)
    if abs(real) < 2.0**-31:
        assert (multiplier, shift) == (0, 0)
        return
    assert 2**30 <= abs(multiplier) < 2**31
    assert multiplier * 2.0 ** (shift - 31) == pytest.approx(real, rel=2**-30)


def test_requantize_rounds_as_gemmlowp_does():
    """Ties: the doubling high multiply rounds them up (toward +inf), the right shift away from zero."""
    quarter, half = integer.quantize_multiplier(0.25), integer.quantize_multiplier(0.5)
    assert quarter == (2**30, -1) and half == (2**30, 0)
    assert integer.requantize(np.array([10, -10, 6, -6]), *quarter).tolist() == [3, -3, 2, -2]  # in the shift
    assert integer.requantize(np.array([5, -5, 3, -3]), *half).tolist() == [3, -2, 2, -1]  # in the multiply


def test_quantize_is_c_roundf_and_saturates():
    values = np.array([0.5, -0.5, 1.49999, 2.5, 1e9, -1e9, np.nan, 0.49999997], np.float32)
    assert integer.quantize(values, 1.0, 0).tolist() == [1, -1, 1, 3, 127, -128, 0, 0]
    assert integer.dequantize(np.array([-128, 0, 127], np.int8), 0.5, -1).tolist() == [-63.5, 0.5, 64.0]


# -- the C kernels (converter/c_kernels/integer.py) against their numpy twins, compiled by the host's gcc ----------
WRAPPERS = """
void t_pool(const int8_t *x, int8_t *y, const int *g, int32_t *acc, const int32_t *bias, const int32_t *mult,
            const int32_t *shift, const int32_t *zeros) {
    const kw_q8 q = {bias, mult, shift, zeros ? zeros[0] : 0, zeros ? zeros[1] : 0, zeros ? zeros[2] : 0,
                     zeros ? zeros[3] : 0};
    if (g[0] < 0) kw_global_pool_q8(x, y, (size_t)g[1], (size_t)g[2], acc, bias ? &q : NULL);
    else kw_pool2d_q8(x, y, g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11]);
}
void t_add(const int8_t *x1, const int8_t *x2, int8_t *y, size_t n, const int32_t *zeros, const int32_t *a) {
    kw_add_q8(x1, x2, y, n, zeros[0], zeros[1], zeros[2], a);
}
void t_affine(const int8_t *x, int8_t *y, size_t rows, size_t C, const int32_t *bias, const int32_t *mult,
              const int32_t *shift, const int32_t *zeros) {
    const kw_q8 q = {bias, mult, shift, zeros[0], zeros[1], zeros[2], zeros[3]};
    kw_affine_q8(x, y, rows, C, &q);
}
void t_concat(const int8_t *x, int8_t *y, size_t outer, size_t inner, size_t total, size_t at, const int32_t *a) {
    kw_concat_part_q8(x, y, outer, inner, total, at, a);
}
void t_lookup(const int8_t *x, int8_t *y, size_t n, const int32_t *table) { kw_lookup_q8(x, y, n, table); }
void t_softmax(const int8_t *x, int8_t *y, size_t rows, size_t last, const int32_t *e) {
    kw_softmax_q8(x, y, rows, last, e);
}
void t_dense(const int8_t *x, int8_t *y, size_t rows, size_t in, size_t out, const int8_t *w, void *scratch,
             const int32_t *bias, const int32_t *mult, const int32_t *shift, const int32_t *zeros) {
    const kw_q8 q = {bias, mult, shift, zeros[0], zeros[1], zeros[2], zeros[3]};
    kw_dense_q8(x, y, rows, in, out, w, scratch, &q);
}
void t_conv(const int8_t *x, int8_t *y, const int *g, const int8_t *w, int8_t *patch, int32_t *acc,
            const int32_t *bias, const int32_t *mult, const int32_t *shift, const int32_t *zeros) {
    const kw_q8 q = {bias, mult, shift, zeros[0], zeros[1], zeros[2], zeros[3]};
    if (g[14]) kw_depthwise2d_q8(x, y, g[0], g[1], g[2], g[14], g[3], g[4], g[6], g[7], g[8], g[9], g[10], g[11],
                                 g[12], g[13], w, acc, &q);
    else kw_conv2d_q8(x, y, g[0], g[1], g[2], g[3], g[4], g[5], g[6], g[7], g[8], g[9], g[10], g[11], g[12], g[13],
                      w, patch, 8, acc, &q);
}
"""


@pytest.fixture(scope="module")
def kernels(tmp_path_factory):
    """The int8 kernels compiled (-O2, -Werror) into a shared library, with wrappers ctypes can call."""
    import ctypes
    import shutil
    import subprocess

    from converter.c_kernels.integer import FUNCTIONS, PANEL_MACRO
    from converter.cgen.program import BLOCKING, RESTRICT

    if shutil.which("gcc") is None:
        from tests.conftest import missing
        missing("gcc")
    folder = tmp_path_factory.mktemp("q8")
    source = folder / "q8.c"
    source.write_text("#include <stddef.h>\n#include <stdint.h>\n" + RESTRICT + BLOCKING + PANEL_MACRO + "".join(FUNCTIONS.values())
                      + WRAPPERS)
    subprocess.run(["gcc", "-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-fPIC", "-shared", str(source), "-o",
                    str(folder / "q8.so")], check=True)
    return ctypes.CDLL(str(folder / "q8.so"))


def _requantization(rng, channels: int, in_zero: int, taps: int, fold_kernel=None, relu=False) -> integer.Requantization:
    """Per-channel parameters as export makes them: factors that bring typical sums of ``taps`` products into int8's
    range (times 2**-3 to 2**3, so that some saturate), some negative (a folded BatchNorm's sign); one channel's
    factor 0, one's 4 (a left shift)."""
    typical = 74.0 * 74.0 * np.sqrt(taps) + 30000.0  # int8 values spread uniformly: 74 is their deviation
    factors = rng.choice([-1, 1], channels) * 2.0 ** rng.uniform(-3, 3, channels) * 64.0 / typical
    factors[:2] = (0.0, 4.0)[:channels]
    pairs = [integer.quantize_multiplier(f) for f in factors]
    bias = rng.integers(-30000, 30000, channels).astype(np.int32)
    if fold_kernel is not None:
        bias = integer.folded_bias(bias, fold_kernel, in_zero)
    out_zero = int(rng.integers(-20, 20))
    return integer.Requantization(bias, np.array([m for m, _ in pairs], np.int32), np.array([s for _, s in pairs], np.int32),
                                  in_zero, out_zero, out_zero if relu else -128, 100 if relu else 127)


def _spread(y: np.ndarray, q: integer.Requantization) -> None:
    """The case tests the arithmetic, not only the clamp: a good share of values fall strictly inside it (a ReLU's
    clamp takes about half, the channels of factor 0 and 4 theirs)."""
    assert np.mean((y > q.lo) & (y < q.hi)) > 0.2


def _call(function, *arrays_and_numbers):
    import ctypes

    args = [a.ctypes.data_as(ctypes.c_void_p) if isinstance(a, np.ndarray) else
            ctypes.c_void_p(None) if a is None else ctypes.c_size_t(a) for a in arrays_and_numbers]
    function(*args)


def _scratch(inputs: int, outputs: int) -> np.ndarray:
    """kw_dense_q8's scratch as its comment sizes it: a panel of 16 int16 weights per input, or an int32 per output."""
    return np.zeros(max(2 * 16 * inputs, 4 * outputs) // 4, np.int32)


def _zeros(q: integer.Requantization) -> np.ndarray:
    return np.array([q.in_zero, q.out_zero, q.lo, q.hi], np.int32)


@pytest.mark.parametrize("rows, inputs, outputs, relu", [(1, 1, 1, False), (5, 37, 19, True), (64, 300, 10, False),
                                                         (9, 20, 40, True), (8, 6, 16, False)])  # register blocks and what they leave
def test_dense_kernel_is_its_numpy_twin(kernels, rows, inputs, outputs, relu):
    rng = np.random.default_rng(rows + inputs)
    x = rng.integers(-128, 128, (rows, inputs)).astype(np.int8)
    w = rng.integers(-127, 128, (inputs, outputs)).astype(np.int8)
    q = _requantization(rng, outputs, int(rng.integers(-128, 128)), inputs, w, relu)
    y = np.zeros((rows, outputs), np.int8)
    _call(kernels.t_dense, x, y, rows, inputs, outputs, w, _scratch(inputs, outputs), q.bias, q.multiplier, q.shift,
          _zeros(q))
    assert np.array_equal(y, integer.dense(x, w, q))
    _spread(y, q)


CONVOLUTIONS = [  # H, W, C, OC or M, KH, KW, strides, dilation, padding (top, left), depthwise
    (9, 7, 3, 5, 3, 3, (1, 1), (1, 1), (1, 1), False),
    (12, 12, 4, 6, 3, 3, (2, 2), (1, 1), (0, 0), False),
    (10, 9, 2, 3, 5, 3, (1, 2), (2, 1), (4, 1), False),
    (1, 30, 6, 4, 1, 5, (1, 1), (1, 1), (0, 4), False),   # Conv1D, causal
    (9, 7, 5, 1, 3, 3, (1, 1), (1, 1), (1, 1), True),
    (12, 11, 3, 2, 3, 3, (2, 2), (1, 1), (1, 0), True),  # depth multiplier 2
    (8, 8, 4, 1, 3, 3, (1, 1), (2, 2), (2, 2), True),
]


@pytest.mark.parametrize("H, W, C, N, KH, KW, strides, dilation, pads, depthwise", CONVOLUTIONS)
def test_convolution_kernels_are_their_numpy_twins(kernels, H, W, C, N, KH, KW, strides, dilation, pads, depthwise):
    rng = np.random.default_rng(H * W + C)
    OH = (H + 2 * pads[0] - (KH - 1) * dilation[0] - 1) // strides[0] + 1
    OW = (W + 2 * pads[1] - (KW - 1) * dilation[1] - 1) // strides[1] + 1
    x = rng.integers(-128, 128, (H, W, C)).astype(np.int8)
    w = rng.integers(-127, 128, (KH, KW, C, N)).astype(np.int8)
    in_zero = int(rng.integers(-128, 128))
    OC = C * N if depthwise else N
    q = _requantization(rng, OC, in_zero, KH * KW * (1 if depthwise else C), None if depthwise else w, bool(C % 2))
    y = np.zeros((OH, OW, OC), np.int8)
    geometry = np.array([H, W, C, OH, OW, OC, KH, KW, *strides, *dilation, *pads, N if depthwise else 0], np.intc)
    _call(kernels.t_conv, x, y, geometry, w, np.zeros(8 * KH * KW * C, np.int8), _scratch(KH * KW * C, OC), q.bias,
          q.multiplier, q.shift, _zeros(q))
    twin = integer.depthwise2d if depthwise else integer.conv2d
    assert np.array_equal(y, twin(x, w, q, (OH, OW), strides, dilation, pads))
    _spread(y, q)


@pytest.mark.parametrize("H, W, C, K, stride, pads, average", [(9, 9, 3, 2, 2, (0, 0), False), (7, 8, 2, 3, 2, (1, 1), True),
                                                             (6, 5, 4, 3, 1, (1, 1), False), (1, 20, 3, 2, 2, (0, 0), True)])
def test_pooling_kernels_are_their_numpy_twins(kernels, H, W, C, K, stride, pads, average):
    rng = np.random.default_rng(H + W + C)
    KH = 1 if H == 1 else K
    OH, OW = (H + 2 * pads[0] - KH) // stride + 1 if H > 1 else 1, (W + 2 * pads[1] - K) // stride + 1
    x = rng.integers(-128, 128, (H, W, C)).astype(np.int8)
    y = np.zeros((OH, OW, C), np.int8)
    geometry = np.array([H, W, C, OH, OW, KH, K, 1 if H == 1 else stride, stride, *pads, int(average)], np.intc)
    _call(kernels.t_pool, x, y, geometry, np.zeros(1, np.int32), None, None, None, None)
    assert np.array_equal(y, integer.pool2d(x, (OH, OW), (KH, K), (1 if H == 1 else stride, stride), pads, average))
    g = np.zeros(C, np.int8)
    _call(kernels.t_pool, x, g, np.array([-1, H * W, C], np.intc), np.zeros(C, np.int32), None)
    assert np.array_equal(g, integer.global_pool(x, None))
    q = integer.average_requantization((0.05, 7), H * W, C, (0.01, -3))
    _call(kernels.t_pool, x, g, np.array([-1, H * W, C], np.intc), np.zeros(C, np.int32), q.bias, q.multiplier,
          q.shift, _zeros(q))
    assert np.array_equal(g, integer.global_pool(x, q))


def test_add_kernel_is_its_numpy_twin_and_tflites_arithmetic(kernels):
    rng = np.random.default_rng(5)
    x1, x2 = (rng.integers(-128, 128, 500).astype(np.int8) for _ in range(2))
    params = ((0.02, 3), (0.05, -7), (0.06, 1))
    a = integer.add_parameters(*params)
    zeros = np.array([p[1] for p in params], np.int32)
    y = np.zeros(500, np.int8)
    _call(kernels.t_add, x1, x2, y, 500, zeros, a)
    assert np.array_equal(y, integer.add(x1, x2, tuple(zeros), a))
    real = 0.02 * (x1 - 3.0) + 0.05 * (x2 + 7.0)  # and it is the sum, to the output's step
    assert np.max(np.abs(integer.dequantize(y, 0.06, 1) - np.clip(real, 0.06 * -129, 0.06 * 126))) <= 0.0301


def test_lookup_and_softmax_kernels_are_their_numpy_twins(kernels):
    rng = np.random.default_rng(6)
    x = rng.integers(-128, 128, (7, 33)).astype(np.int8)
    table = integer.lookup_table(np.tanh, (0.03, 10), (1 / 128, 0))
    y = np.zeros_like(x)
    _call(kernels.t_lookup, x, y, x.size, table)
    assert np.array_equal(y, integer.lookup(x, table))
    e = integer.softmax_table(0.1)
    _call(kernels.t_softmax, x, y, 7, 33, e)
    assert np.array_equal(y, integer.softmax(x, e))
    probabilities = integer.dequantize(y, 1 / 256, -128)
    exact = np.exp(0.1 * x) / np.exp(0.1 * x).sum(axis=1, keepdims=True)
    assert np.max(np.abs(probabilities - exact)) < 2 / 256


def test_affine_kernel_is_its_numpy_twin(kernels):
    """A BatchNormalization of its own: per-channel scale (some negative) and shift."""
    rng = np.random.default_rng(7)
    x = rng.integers(-128, 128, (40, 6)).astype(np.int8)
    mul, add = rng.uniform(-2, 2, 6), rng.uniform(-1, 1, 6)
    q = integer.affine_requantization((0.02, 5), mul, add, (0.03, -2))
    y = np.zeros_like(x)
    _call(kernels.t_affine, x, y, 40, 6, q.bias, q.multiplier, q.shift, _zeros(q))
    assert np.array_equal(y, integer.affine(x, q))
    real = mul * 0.02 * (x - 5.0) + add
    # the output's half step, and the bias's (1/256 of an input step, times mul)
    assert np.max(np.abs(integer.dequantize(y, 0.03, -2) - np.clip(real, 0.03 * -126, 0.03 * 129))) <= 0.0151


def test_concatenation_kernel_is_its_numpy_twin(kernels):
    """Each input rescaled to the output's parameters (a larger scale, a smaller one) as it lands in place."""
    rng = np.random.default_rng(8)
    parts = [rng.integers(-128, 128, (5, n)).astype(np.int8) for n in (3, 4)]
    sources, target = [(0.02, 4), (0.1, -9)], (0.05, 2)
    y = np.zeros((5, 7), np.int8)
    at = 0
    for part, source in zip(parts, sources):
        _call(kernels.t_concat, part, y, 5, part.shape[1], 7, at, integer.rescale_parameters(source, target))
        at += part.shape[1]
    twin = np.concatenate([integer.rescale(p, integer.rescale_parameters(s, target)) for p, s in zip(parts, sources)], 1)
    assert np.array_equal(y, twin)
    real = np.concatenate([s[0] * (p - s[1]) for p, s in zip(parts, sources)], axis=1)
    inside = np.abs(real) < 0.05 * 120
    assert np.max(np.abs(integer.dequantize(y, *target) - real)[inside]) <= 0.025 + 1e-6
