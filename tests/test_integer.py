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

from converter import integer
from tests.conftest import need_module


@pytest.fixture(scope="module")
def converted(keras_module):
    """(flatbuffer, calibration samples) of a Conv2D(relu) -> Flatten -> Dense model, int8 from input to output."""
    import tensorflow as tf

    keras = keras_module
    keras.utils.set_random_seed(0)
    inputs = keras.Input((8, 8, 3))
    x = keras.layers.Conv2D(5, 3, padding="same", activation="relu")(inputs)
    x = keras.layers.Dense(4)(keras.layers.Flatten()(x))
    model = keras.Model(inputs, x)
    samples = np.random.default_rng(0).uniform(-0.9, 1.0, (32, 8, 8, 3)).astype(np.float32)
    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    converter.optimizations = [tf.lite.Optimize.DEFAULT]
    converter.representative_dataset = lambda: ([sample[None]] for sample in samples)
    converter.target_spec.supported_ops = [tf.lite.OpsSet.TFLITE_BUILTINS_INT8]
    converter.inference_input_type = converter.inference_output_type = tf.int8
    with contextlib.redirect_stdout(io.StringIO()), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return converter.convert(), samples


def _tensors(flatbuffer: bytes) -> dict:
    """name-agnostic view of the flatbuffer: each tensor's values (constants) and (scales, zero points), by the
    role it plays in the model's three operators."""
    import tensorflow as tf

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        reader = tf.lite.Interpreter(model_content=flatbuffer)
    reader.allocate_tensors()
    details = {d["index"]: d for d in reader.get_tensor_details()}
    ops = {op["op_name"]: op for op in reader._get_ops_details()}  # the operator list: no public equivalent
    conv, dense = ops["CONV_2D"], ops["FULLY_CONNECTED"]

    def params(index):
        q = details[index]["quantization_parameters"]
        return q["scales"].astype(np.float64), q["zero_points"].astype(np.int64)

    return {"input": params(conv["inputs"][0]), "conv_kernel": reader.get_tensor(conv["inputs"][1]),
            "conv_kernel_q": params(conv["inputs"][1]), "conv_bias": reader.get_tensor(conv["inputs"][2]),
            "hidden": params(conv["outputs"][0]), "dense_kernel": reader.get_tensor(dense["inputs"][1]),
            "dense_kernel_q": params(dense["inputs"][1]), "output": params(dense["outputs"][0])}


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
    flatbuffer, _ = converted
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
    flatbuffer, samples = converted
    (scale,), (zero,) = _tensors(flatbuffer)["input"]
    assert integer.activation_parameters(samples.min(), samples.max()) == (np.float32(scale), zero)


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
