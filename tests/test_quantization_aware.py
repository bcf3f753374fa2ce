"""A quantization-aware-trained model (tensorflow-model-optimization's QuantizeWrapperV2 and QuantizeLayer, saved with
tf_keras; Keras 3 cannot load it): fixtures/legacy/legacy_qat.h5, a Conv2D/BatchNormalization/ReLU/MaxPooling2D/
Flatten/Dense CNN, and legacy_qat.io.npz beside it (the model's own fake-quantized outputs ``y``, and ``y_float`` of
the same layers unwrapped with the trained weights), both written by fixtures/make_legacy_fixtures.py.

The manifest says which tensors are quantizer ranges and training state; the forward pass and the torch layout see
each wrapper as the layer it wraps; full-integer int8 takes the ranges trained instead of calibrating."""
import json

import numpy as np
import pytest

import converter
from converter import integer
from conftest import FIXTURES, need_module
from test_inference import SAMPLES, assert_close, run_c

QAT = FIXTURES / "legacy" / "legacy_qat.h5"
STORED = np.load(FIXTURES / "legacy" / "legacy_qat.io.npz")
X = STORED["x"][:SAMPLES]


def test_the_manifest_marks_quantizer_ranges_and_training_state(tmp_path):
    """Every variable is exported as it is stored; those that are no weights say what they are, as tf_keras's own
    variables name them (legacy_qat.trainable.json: each variable's trainable flag, written from the variables)."""
    manifest = converter.export(QAT, tmp_path / "out", formats=["npz"])
    kinds = {t["name"]: t.get("kind") for t in manifest["tensors"]}
    assert manifest["schema_version"] == "1.3"
    assert kinds["quant_dense_3/dense_3/kernel"] is None and kinds["quant_bn/bn/moving_mean"] is None
    assert kinds["quant_dense_3/dense_3/post_activation_max"] == "quantizer_range"
    assert kinds["quant_conv/conv/kernel_min"] == kinds["quantize_layer/quantize_layer_min"] == "quantizer_range"
    assert kinds["quant_relu/relu/optimizer_step"] == "training_state"
    flags = json.loads((FIXTURES / "legacy" / "legacy_qat.trainable.json").read_text())
    ranges_and_steps = {key for key in flags if key.rsplit("/", 1)[1] == "optimizer_step"
                        or key.endswith(("_min", "_max"))}
    assert sum(1 for kind in kinds.values() if kind) == len(ranges_and_steps) == 22
    assert not any(flags[key] for key in ranges_and_steps)  # tf_keras keeps all of them out of training
    assert converter.verify(tmp_path / "out").ok
    stored = np.load(tmp_path / "out" / "legacy_qat.npz")
    assert sorted(_digest(stored[t["keys"]["npz"]]) for t in manifest["tensors"]) == sorted(_datasets(QAT))



def test_the_parquet_rows_say_what_each_tensor_is(tmp_path):
    """A query over the Parquet file alone (pyarrow reads it, not our reader) tells weights from what
    quantization-aware training keeps: its `kind` column holds the manifest's kind, `weight` where it has none."""
    pq = pytest.importorskip("pyarrow.parquet")
    manifest = converter.export(QAT, tmp_path / "out", formats=["parquet"])
    table = pq.read_table(tmp_path / "out" / "legacy_qat.parquet", columns=["name", "kind"])
    found = dict(zip(table.column("name").to_pylist(), table.column("kind").to_pylist(), strict=True))
    assert found == {t["name"]: t.get("kind", "weight") for t in manifest["tensors"]}
    assert found["quant_dense_3/dense_3/post_activation_max"] == "quantizer_range"
    assert found["quant_relu/relu/optimizer_step"] == "training_state"
    assert found["quant_dense_3/dense_3/kernel"] == "weight"
    assert converter.verify(tmp_path / "out").ok

def _digest(array) -> str:
    import hashlib

    return hashlib.sha256(np.ascontiguousarray(array).tobytes()).hexdigest() + str(array.dtype) + str(array.shape)


def _datasets(path) -> list[str]:
    """The digest of every weight dataset of the file, read by h5py itself: the export holds each exactly once."""
    import h5py

    found = []
    with h5py.File(path, "r") as handle:
        handle["model_weights"].visititems(lambda name, item: found.append(_digest(item[()]))
                                           if isinstance(item, h5py.Dataset) else None)
    return sorted(found)


def test_the_forward_pass_computes_the_wrapped_layers(tmp_path):
    """Each QuantizeWrapperV2 is the layer it wraps (its fake quantizers aside), and the QuantizeLayer passes its
    input on: the C float pass equals the same layers unwrapped, holding the trained weights."""
    manifest = converter.export(QAT, tmp_path / "out", formats=["c"], options={"c": {"inference": True}})
    nodes = {n["name"]: n for n in manifest["inference"]["graph"]["nodes"]}
    assert nodes["quant_dense_3"]["class"] == "Dense" and nodes["quant_dense_3"]["layer"] == "quant_dense_3/dense_3"
    assert nodes["quant_dense_3"]["wrapper"] == "QuantizeWrapperV2"
    assert nodes["quant_dense_3"]["config"]["activation"] == "relu"  # QuantizeAwareActivation around it dropped
    assert nodes["quant_conv"]["config"]["activation"] == "linear"  # tfmot's NoOpActivation before a BatchNorm
    assert_close(run_c(tmp_path / "out", manifest, [X], tmp_path), STORED["y_float"][:SAMPLES])
    assert converter.verify(tmp_path / "out").ok  # verify regenerates the code from the recorded graph


def test_full_integer_int8_takes_the_trained_ranges(tmp_path):
    """With int8 weights and no calibration samples, the activations' parameters are those of the ranges the model
    trained (the QuantizeLayer's for the input, each wrapper's output quantizer's), and the int8 outputs are within
    one output step of what the quantization-aware model itself computes."""
    manifest = converter.export(QAT, tmp_path / "out", formats=["c", "npz"], quantize="int8",
                                options={"c": {"inference": True}})
    stored = np.load(tmp_path / "out" / "legacy_qat.npz")
    activations = {a["name"]: a for a in manifest["inference"]["activations"]}
    assert manifest["inference"]["calibration_samples"] == 0
    for value, layer in (("input_4", "quantize_layer/quantize_layer"), ("quant_relu", "quant_relu/relu/output"),
                         ("quant_dense_3", "quant_dense_3/dense_3/post_activation")):
        low, high = float(stored[f"{layer}_min"]), float(stored[f"{layer}_max"])
        entry = activations[value]
        assert (entry["min"], entry["max"], entry["source"]) == (low, high, "training")
        assert (entry["scale"], entry["zero_point"]) == integer.activation_parameters(low, high)
    got = run_c(tmp_path / "out", manifest, [X], tmp_path)
    step = activations["quant_dense_4"]["scale"]
    assert np.max(np.abs(got - STORED["y"][:SAMPLES])) <= step * 1.001
    assert converter.verify(tmp_path / "out").ok


def test_calibration_fills_the_values_training_left_unranged(tmp_path):
    """Without the ReLU wrapper's output range (a layer left unwrapped), int8 needs calibration samples: refused
    without them, saying so, nothing written; with them, that value is calibrated and the others keep the trained
    ranges."""
    import h5py

    partial = tmp_path / "partial.h5"
    partial.write_bytes(QAT.read_bytes())
    with h5py.File(partial, "r+") as handle:
        group = handle["model_weights/quant_relu"]
        names = [n.decode() if isinstance(n, bytes) else n for n in group.attrs["weight_names"]]
        group.attrs["weight_names"] = [n.encode() for n in names if "output_m" not in n]
        for name in names:
            if "output_m" in name:
                del group[name]
    options = {"c": {"inference": True}}
    with pytest.raises(converter.ConverterError, match=r"no activation range for 'quant_relu'.*calibration=samples"):
        converter.export(partial, tmp_path / "out", formats=["c"], quantize="int8", options=options)
    assert not (tmp_path / "out" / "manifest.json").exists()
    manifest = converter.export(partial, tmp_path / "out", formats=["c"], quantize="int8", options=options,
                                calibration=STORED["x"])
    sources = {a["name"]: a.get("source") for a in manifest["inference"]["activations"]}
    assert sources["quant_relu"] is None and sources["quant_dense_3"] == sources["input_4"] == "training"
    assert manifest["inference"]["calibration_samples"] == len(STORED["x"])
    assert converter.verify(tmp_path / "out").ok


def test_predict_holds_the_trained_int8_pass_to_its_numpy_twin(tmp_path, keras_module):
    """verify --predict against the same layers unwrapped in Keras 3 (what a user who rebuilt the float model has):
    the C int8 outputs equal the numpy twin of the integer arithmetic bit for bit."""
    converter.export(QAT, tmp_path / "out", formats=["c", "npz"], quantize="int8", options={"c": {"inference": True}})
    plain = _unwrapped_model(keras_module, converter.read(tmp_path / "out" / "legacy_qat.npz", dequantize=True))
    plain.save(tmp_path / "plain.keras")
    report = converter.verify(tmp_path / "out", predict=tmp_path / "plain.keras")
    assert report.ok, report
    assert "0 of 16 outputs differ from the numpy twin" in str(report)


def test_the_torch_layout_names_each_wrapped_layer_after_its_wrapper(tmp_path):
    """torch.nn modules named as the model's layers (quant_conv, quant_bn, quant_dense_3...) load the weights; the
    ranges and step counters, which no torch module computes with, are kept under the wrapper's name and are the
    only keys a plain network does not take; the network then computes the unwrapped model's outputs."""
    torch = need_module("torch")
    from safetensors.torch import load_file

    manifest = converter.export(QAT, tmp_path / "out", formats=["safetensors"], layout="torch")
    nn = torch.nn
    net = nn.ModuleDict({"quant_conv": nn.Conv2d(1, 4, 3), "quant_bn": nn.BatchNorm2d(4, eps=1e-3),
                         "quant_dense_3": nn.Linear(36, 8), "quant_dense_4": nn.Linear(8, 2)})
    loaded = net.load_state_dict(load_file(tmp_path / "out" / "legacy_qat.safetensors"), strict=False)
    assert loaded.missing_keys == []
    assert sorted(loaded.unexpected_keys) == sorted(t["name"] for t in manifest["tensors"] if "kind" in t)
    net.eval()
    with torch.no_grad():
        x = torch.from_numpy(np.ascontiguousarray(X.transpose(0, 3, 1, 2)))
        maps = nn.functional.max_pool2d(torch.relu(net["quant_bn"](net["quant_conv"](x))), 2)
        y = net["quant_dense_4"](torch.relu(net["quant_dense_3"](torch.flatten(maps, 1))))
    assert_close(y.numpy(), STORED["y_float"][:SAMPLES])


def _unwrapped_model(keras, weights: dict):
    layers = keras.layers
    model = keras.Sequential([keras.Input((8, 8, 1)), layers.Conv2D(4, 3, name="conv"),
                              layers.BatchNormalization(name="bn"), layers.ReLU(name="relu"),
                              layers.MaxPooling2D(name="pool"), layers.Flatten(name="flat"),
                              layers.Dense(8, activation="relu", name="dense_3"), layers.Dense(2, name="dense_4")])
    model.set_weights([value for name, value in weights.items()
                       if name.rsplit("/", 1)[1] in ("kernel", "bias", "gamma", "beta", "moving_mean", "moving_variance")])
    return model


@pytest.mark.parametrize("junk", [{"layer": None}, {"layer": {"class_name": 3, "config": {}}}, {}])
def test_a_wrapper_without_a_readable_layer_is_refused_by_name(junk, tmp_path):
    """A crafted wrapper configuration is no layer the forward pass knows: refused naming it, nothing written."""
    import h5py
    import shutil

    crafted = tmp_path / "crafted.h5"
    shutil.copyfile(QAT, crafted)
    with h5py.File(crafted, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        wrapper = next(layer for layer in config["config"]["layers"] if layer["config"]["name"] == "quant_dense_4")
        wrapper["config"] = {"name": "quant_dense_4", **junk}
        handle.attrs["model_config"] = json.dumps(config)
    with pytest.raises(converter.ConverterError, match="quant_dense_4"):
        converter.export(crafted, tmp_path / "out", formats=["c"], options={"c": {"inference": True}})
    assert not (tmp_path / "out" / "manifest.json").exists()
