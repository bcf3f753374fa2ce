"""Full-integer int8 (--quantize int8 --c-inference --calibration): every fixture model the int8 pass accepts runs
in C bit for bit as the numpy twin of its integer arithmetic (verify --predict, which also reports the error
against Keras's float model); what it does not compute is refused by name; the calibration samples are checked
as untrusted input; the manifest records the ranges and verify holds them to their parameters."""
from __future__ import annotations

import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest

import converter
from converter.errors import InputInvalid, ManifestInvalid, UsageError
from tests.conftest import FIXTURES, SEED_KERAS, calibration_samples, needs

ACCEPTED = ["conv_bn", "nested", "no_bias", "shared", "shared_nested"]  # the zoo models the int8 pass runs
REFUSED = {"attention": "'mha' (MultiHeadAttention): not supported in full-integer int8",
           "recurrent": "'lstm' (LSTM): not supported in full-integer int8",
           "embedding": "'embed' (Embedding): not supported in full-integer int8"}


def _export(model, folder, **extra):
    return converter.export(model, folder, formats=["c"], quantize="int8", options={"c": {"inference": True}},
                            calibration=calibration_samples(model), **extra)


@needs("gcc")
@pytest.mark.parametrize("name", [*ACCEPTED, "seed_mlp"])
def test_the_int8_pass_is_its_numpy_twin_bit_for_bit(tmp_path, name):
    model = SEED_KERAS if name == "seed_mlp" else FIXTURES / "zoo" / f"{name}.keras"
    manifest = _export(model, tmp_path)
    assert manifest["schema_version"] == "1.2" and manifest["inference"]["calibration_samples"] == 16
    report = converter.verify(tmp_path, predict=model)
    predict = next(f for f in report.files if f.format == "predict")
    assert report.ok, predict.problems
    assert " 0 of " in predict.detail and "against Keras's float model" in predict.detail
    assert predict.output_spread > 0  # the samples tell the outputs apart: the comparison is not of one constant


@pytest.mark.parametrize("name", sorted(REFUSED))
def test_layers_the_int8_pass_does_not_compute_are_refused_by_name(tmp_path, name):
    model = FIXTURES / "zoo" / f"{name}.keras"
    with pytest.raises(InputInvalid) as refused:
        converter.export(model, tmp_path / "out", formats=["c"], quantize="int8", options={"c": {"inference": True}},
                         calibration=calibration_samples(model))
    assert REFUSED[name] in str(refused.value)
    assert not (tmp_path / "out").exists()


def test_calibration_needs_int8_and_the_forward_pass(tmp_path):
    samples = calibration_samples(SEED_KERAS)
    with pytest.raises(UsageError, match="int8 was not asked for"):
        converter.export(SEED_KERAS, tmp_path / "a", formats=["c"], options={"c": {"inference": True}},
                         calibration=samples)
    with pytest.raises(UsageError, match="which the C format writes"):
        converter.export(SEED_KERAS, tmp_path / "b", formats=["npz"], quantize="int8", calibration=samples)


@needs("gcc")
def test_samples_of_the_wrong_shape_or_names_are_refused(tmp_path):
    (name, good), = calibration_samples(SEED_KERAS).items()
    for bad, message in ((good[:, :-1], "needs samples of shape"), ({"other": good}, "the model's inputs are"),
                         ([good, good], "2 arrays for a model of 1 inputs"), (good[:0], "N >= 1")):
        with pytest.raises(UsageError, match=message):
            _export_with(tmp_path, bad)


def _export_with(tmp_path, samples):
    return converter.export(SEED_KERAS, tmp_path / "out", formats=["c"], quantize="int8", force=True,
                            options={"c": {"inference": True}}, calibration=samples)


@needs("gcc")
def test_a_samples_file_is_untrusted_input(tmp_path):
    """No pickles, and no array declared larger than its file: refused before numpy allocates it."""
    (name, good), = calibration_samples(SEED_KERAS).items()
    np.save(tmp_path / "good.npy", good)
    assert _export_with(tmp_path, tmp_path / "good.npy")["inference"]["calibration_samples"] == len(good)
    np.savez(tmp_path / "named.npz", **{name: good})
    assert _export_with(tmp_path, str(tmp_path / "named.npz"))["inference"]["calibration_samples"] == len(good)
    np.save(tmp_path / "pickled.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(InputInvalid, match="pickled.npy"):
        _export_with(tmp_path, tmp_path / "pickled.npy")
    huge = bytearray((tmp_path / "good.npy").read_bytes())
    header = huge[:128].decode("latin1")
    shape = header[header.index("(") + 1:header.index(")")]
    huge[:128] = header.replace(shape, "4000000000, 4".ljust(len(shape))).encode("latin1")[:128]
    (tmp_path / "huge.npy").write_bytes(bytes(huge))
    with pytest.raises(InputInvalid, match="declared in"):
        _export_with(tmp_path, tmp_path / "huge.npy")


@needs("gcc")
def test_verify_holds_each_range_to_its_parameters(tmp_path):
    _export(SEED_KERAS, tmp_path)
    assert converter.verify(tmp_path).ok
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["inference"]["activations"][1]["scale"] *= 2  # a crafted parameter the C would be generated from
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    with pytest.raises(ManifestInvalid, match="int8 parameters of '.*' are not what its range"):
        converter.verify(tmp_path)


@needs("gcc")
def test_the_command_line_takes_a_samples_file(tmp_path):
    (name, good), = calibration_samples(SEED_KERAS).items()
    np.save(tmp_path / "samples.npy", good)
    run = subprocess.run([sys.executable, "-m", "converter", "export", str(SEED_KERAS), "-o", str(tmp_path / "out"),
                          "-f", "c", "--c-inference", "--quantize", "int8", "--calibration", str(tmp_path / "samples.npy"),
                          "-q"], capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    header = (tmp_path / "out" / "seed_mlp.h").read_text()
    assert "int seed_mlp_predict_int8(const int8_t *input, int8_t *output, void *arena);" in header
    assert "#define SEED_MLP_INPUT_SCALE" in header and "#define SEED_MLP_OUTPUT_ZERO_POINT" in header
    run = subprocess.run([sys.executable, "-m", "converter", "export", str(SEED_KERAS), "-o", str(tmp_path / "bad"),
                          "-f", "c", "--c-inference", "--calibration", str(tmp_path / "samples.npy")],
                         capture_output=True, text=True)
    assert run.returncode == 2 and "Traceback" not in run.stderr and "--quantize int8" in run.stderr


def test_a_kernel_holding_minus_128_is_refused(tmp_path):
    """The int8 kernels sum two products in 16 bits, which weights from -127 (what --quantize int8 stores) allow;
    a foreign export's -128 is refused, not computed wrong."""
    from converter.formats import c
    from converter.manifest import export_info, tensor_records

    manifest = _export(SEED_KERAS, tmp_path)
    header = next(f["path"] for f in manifest["files"] if f["path"].endswith(".h"))
    tensors = tensor_records(manifest, "c", c.read(tmp_path / header.replace(".h", ".c")))
    prefix = manifest["options"]["c"]["prefix"]
    names = c.keys(tensors, header[:-2], prefix=prefix)
    assert c.inference_program(tensors, names, prefix, export_info(manifest)).reference is not None
    index = next(i for i, t in enumerate(tensors) if t.array.dtype == np.int8)
    crafted = tensors[index].array.copy()
    crafted.flat[0] = -128
    tensors[index] = dataclasses.replace(tensors[index], array=crafted)
    with pytest.raises(InputInvalid, match="holds -128"):
        c.inference_program(tensors, names, prefix, export_info(manifest))


@needs("gcc")
def test_inspect_shows_the_calibrated_parameters_without_writing(tmp_path):
    info = converter.inspect(FIXTURES / "zoo" / "conv_bn.keras", quantize="int8",
                             calibration=calibration_samples(FIXTURES / "zoo" / "conv_bn.keras"))
    activations = info["inference"]["activations"]
    assert info["schema_version"] == "1.2" and info["inference"]["calibration_samples"] == 16
    assert all(a["scale"] > 0 and -128 <= a["zero_point"] <= 127 and a["min"] <= a["max"] for a in activations)
    names = [a["name"] for a in activations]
    assert names[0] == info["inference"]["graph"]["inputs"][0] and len(set(names)) == len(names)
    np.save(tmp_path / "samples.npy", next(iter(calibration_samples(FIXTURES / "zoo" / "conv_bn.keras").values())))
    run = subprocess.run([sys.executable, "-m", "converter", "inspect", str(FIXTURES / "zoo" / "conv_bn.keras"),
                          "--quantize", "int8", "--calibration", str(tmp_path / "samples.npy")],
                         capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    assert "Activations (full-integer int8, ranges calibrated on 16 samples)" in run.stdout
    assert all(name in run.stdout for name in names)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["samples.npy"]  # nothing written


@needs("gcc")
def test_the_report_of_an_int8_export_shows_its_calibrated_parameters(tmp_path):
    manifest = _export(SEED_KERAS, tmp_path / "out")
    page = tmp_path / "report.html"
    converter.report(tmp_path / "out", page)
    text = page.read_text()
    assert "<h2>Full-integer int8 activations</h2>" in text
    for a in manifest["inference"]["activations"]:
        assert f"<td>{a['name']}</td>" in text and f"<td class=n>{a['zero_point']}</td>" in text


@needs("gcc")
def test_every_layer_the_int8_pass_computes_is_its_numpy_twin(tmp_path, keras_module):
    """A model of every int8 layer kind besides the zoo's: Rescaling, a BatchNormalization of its own, average
    pooling, element-wise activations through tables (own and as layers), Add, Concatenate, global max pooling,
    Conv1D, a Dense with its own tanh and a softmax layer."""
    keras, L = keras_module, keras_module.layers
    keras.utils.set_random_seed(3)
    inputs = keras.Input((12, 12, 3))
    x = L.Rescaling(2.0, offset=-1.0)(inputs)
    a = L.Conv2D(8, 3, padding="same", activation="sigmoid")(x)
    a = L.BatchNormalization()(L.AveragePooling2D(2)(a))
    b = L.DepthwiseConv2D(3, strides=2, padding="same", depth_multiplier=2, activation="tanh")(x)
    b = L.LeakyReLU(0.1)(L.Conv2D(8, 1)(b))
    merged = L.Concatenate()([L.Add()([a, b]), L.ELU()(b)])
    sequence = L.Reshape((36, 16))(merged)
    sequence = L.Conv1D(6, 3, padding="causal", activation="relu6")(sequence)
    y = L.Dense(5, activation="tanh")(L.GlobalMaxPooling1D()(sequence))
    outputs = L.Softmax()(L.Dense(4)(L.Activation("swish")(y)))
    model = keras.Model(inputs, outputs)
    for layer in model.layers:  # statistics away from their defaults, so the folded affine does work
        if isinstance(layer, L.BatchNormalization):
            layer.set_weights([np.random.default_rng(1).uniform(0.5, 1.5, w.shape).astype(np.float32)
                               for w in layer.get_weights()])
    path = tmp_path / "kinds.keras"
    model.save(path)
    manifest = _export(path, tmp_path / "out")
    assert manifest["schema_version"] == "1.2"
    report = converter.verify(tmp_path / "out", predict=path)
    predict = next(f for f in report.files if f.format == "predict")
    assert report.ok, predict.problems
    assert " 0 of " in predict.detail and predict.output_spread > 0


@needs("gcc")
@pytest.mark.parametrize("arrays, header_only", [("nested", False), ("flat", True)])
def test_the_int8_pass_of_every_c_variant_is_its_numpy_twin(tmp_path, arrays, header_only):
    converter.export(SEED_KERAS, tmp_path, formats=["c"], quantize="int8", calibration=calibration_samples(SEED_KERAS),
                     options={"c": {"inference": True, "arrays": arrays, "header_only": header_only}})
    report = converter.verify(tmp_path, predict=SEED_KERAS)
    predict = next(f for f in report.files if f.format == "predict")
    assert report.ok and " 0 of " in predict.detail, predict.problems
