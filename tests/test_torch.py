"""--layout torch: PyTorch loads the exported safetensors with load_state_dict(strict=True) into torch.nn
modules named after the Keras layers, and computes what Keras computes."""
import numpy as np
import pytest

import converter
from conftest import FIXTURES, SEED_KERAS, need_module

torch = need_module("torch")  # skipped without torch on a plain machine; required in CI (KERAS_WEIGHTS_REQUIRE_ALL)
from safetensors.torch import load_file  # noqa: E402

nn = torch.nn

SAMPLES = 4


class Twin(nn.Module):
    """The natural torch network of a Keras chain of layers: channels-first maps, batch_first RNNs."""

    def __init__(self, keras_model):
        super().__init__()
        self.steps = []
        self.layers = nn.ModuleDict()
        for layer in keras_model.layers:
            module = _module(layer)
            if isinstance(module, nn.Module) and any(True for _ in module.parameters()) or isinstance(module, nn.modules.batchnorm._BatchNorm):
                self.layers[layer.name] = module
            self.steps.append((layer, module))

    def state_names(self):
        return {f"{name}.{key}" for name, module in self.layers.items() for key in module.state_dict()}

    def load(self, state):
        # ModuleDict prefixes "layers."; the export names start at the Keras layer
        self.load_state_dict({f"layers.{k}": v for k, v in state.items()}, strict=True)

    def forward(self, x):
        for layer, module in self.steps:
            x = _run(layer, module, x)
        return x


def _activation(name):
    return {"linear": lambda x: x, "relu": torch.relu, "tanh": torch.tanh, "sigmoid": torch.sigmoid,
            "softmax": lambda x: torch.softmax(x, -1)}[name]


def _module(layer):
    cls, config = type(layer).__name__, layer.get_config()
    if cls == "Dense":
        return nn.Linear(layer.kernel.shape[0], config["units"], bias=config["use_bias"])
    if cls in ("Conv1D", "Conv2D", "Conv3D"):
        k = config["kernel_size"]
        conv = {"Conv1D": nn.Conv1d, "Conv2D": nn.Conv2d, "Conv3D": nn.Conv3d}[cls]
        return conv(layer.kernel.shape[-2], config["filters"], k, stride=config["strides"], padding=0,
                    dilation=config["dilation_rate"], bias=config["use_bias"])  # "same": padded in _run, as Keras does
    if cls in ("DepthwiseConv1D", "DepthwiseConv2D"):
        conv = nn.Conv1d if cls.endswith("1D") else nn.Conv2d
        inputs = layer.kernel.shape[-2]
        return conv(inputs, inputs * config["depth_multiplier"], config["kernel_size"], stride=config["strides"],
                    groups=inputs, bias=config["use_bias"])
    if cls in ("SeparableConv1D", "SeparableConv2D"):
        conv = nn.Conv1d if cls.endswith("1D") else nn.Conv2d
        inputs = layer.depthwise_kernel.shape[-2]
        inner = inputs * config["depth_multiplier"]
        module = nn.Module()
        module.depthwise = conv(inputs, inner, config["kernel_size"], stride=config["strides"], groups=inputs, bias=False)
        module.pointwise = conv(inner, config["filters"], 1, bias=config["use_bias"])
        return module
    if cls in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose"):
        assert config["padding"] == "valid"
        kind = {"Conv1DTranspose": nn.ConvTranspose1d, "Conv2DTranspose": nn.ConvTranspose2d,
                "Conv3DTranspose": nn.ConvTranspose3d}[cls]
        return kind(layer.kernel.shape[-1], config["filters"], config["kernel_size"], stride=config["strides"],
                    bias=config["use_bias"])
    if cls == "BatchNormalization":
        return nn.BatchNorm2d(layer.moving_mean.shape[0], eps=config["epsilon"]).eval()
    if cls == "LayerNormalization":
        return nn.LayerNorm(layer.gamma.shape[0], eps=config["epsilon"])
    if cls == "Embedding":
        return nn.Embedding(config["input_dim"], config["output_dim"])
    if cls in ("LSTM", "GRU", "SimpleRNN"):
        return getattr(nn, {"SimpleRNN": "RNN"}.get(cls, cls))(layer.cell.kernel.shape[0], config["units"], batch_first=True)
    if cls == "Bidirectional":
        inner = layer.forward_layer
        kind = getattr(nn, {"SimpleRNN": "RNN"}.get(type(inner).__name__, type(inner).__name__))
        return kind(inner.cell.kernel.shape[0], inner.units, batch_first=True, bidirectional=True)
    return None  # no weights: computed in _run


def _run(layer, module, x):
    cls, config = type(layer).__name__, layer.get_config()
    rank = x.dim()
    if cls == "Dense":
        return _activation(config["activation"])(module(x))
    if cls in ("Conv1D", "Conv1DTranspose", "DepthwiseConv1D"):  # sequences stay (N, L, C), as batch_first RNNs take them
        return _activation(config["activation"])(module(x.transpose(1, 2)).transpose(1, 2))
    if cls == "SeparableConv1D":
        return _activation(config["activation"])(module.pointwise(module.depthwise(x.transpose(1, 2))).transpose(1, 2))
    if cls == "Conv2D" and config["padding"] == "same":
        return _activation(config["activation"])(module(_same_padding(x, config)))
    if cls in ("Conv2D", "DepthwiseConv2D", "Conv2DTranspose", "Conv3D", "Conv3DTranspose"):
        return _activation(config["activation"])(module(x))
    if cls == "Rescaling":
        return x * config["scale"] + config["offset"]
    if cls == "SeparableConv2D":
        return _activation(config["activation"])(module.pointwise(module.depthwise(x)))
    if cls == "BatchNormalization":
        return module(x)
    if cls == "LayerNormalization":  # on the last axis of a channels-last layout
        return module(x.movedim(1, -1)).movedim(-1, 1) if rank > 2 else module(x)
    if cls in ("ReLU",):
        return torch.relu(x)
    if cls == "Activation":
        return _activation(config["activation"])(x)
    if cls == "MaxPooling2D":
        assert config["padding"] == "valid"
        return nn.functional.max_pool2d(x, config["pool_size"], config["strides"])
    if cls in ("GlobalAveragePooling1D",):
        return x.mean(dim=1)
    if cls in ("GlobalAveragePooling2D",):
        return x.mean(dim=(2, 3))
    if cls == "Flatten":
        return torch.flatten(x, 1)
    if cls in ("Dropout", "InputLayer"):
        return x
    if cls == "Embedding":
        return module(x.long())
    if cls in ("LSTM", "GRU", "SimpleRNN"):
        out, _ = module(x)
        return out if config["return_sequences"] else out[:, -1]
    if cls == "Bidirectional":
        out, _ = module(x)
        if layer.forward_layer.return_sequences:
            return out
        units = layer.forward_layer.units
        return torch.cat([out[:, -1, :units], out[:, 0, units:]], dim=1)
    raise AssertionError(f"no torch twin for {cls}")


def _same_padding(x, config):
    """Keras's "same" padding: at stride 2 more on the bottom and right, which torch's padding="same" does not do."""
    pads = []
    for size, k, stride, dilation in zip(x.shape[2:], config["kernel_size"], config["strides"], config["dilation_rate"]):
        out = -(-size // stride)
        total = max((out - 1) * stride + (k - 1) * dilation + 1 - size, 0)
        pads.append((total // 2, total - total // 2))
    (top, bottom), (left, right) = pads
    return nn.functional.pad(x, (left, right, top, bottom))


def _torch_input(model, x):
    """Keras's channels-last sample as torch wants it: (N, C, H, W) for images, unchanged for sequences."""
    t = torch.from_numpy(x)
    if len(t.shape) >= 4:  # an image or a volume: channels first
        return t.permute(0, t.dim() - 1, *range(1, t.dim() - 1))
    return t


def _check(model, folder, x) -> float:
    twin = Twin(model)
    state = load_file(folder / f"{model.name}.safetensors")
    assert set(state) == twin.state_names(), set(state) ^ twin.state_names()
    twin.load(state)
    with torch.no_grad():
        got = twin(_torch_input(model, x)).numpy()
    expected = model.predict(x, verbose=0)
    got = got.reshape(expected.shape) if got.size == expected.size else got
    error = float(np.max(np.abs(got.astype(np.float64) - expected)))
    assert error <= 1e-4 * (1 + float(np.max(np.abs(expected)))), error
    return error


def _inputs(model, seed=0, integers=False):
    rng = np.random.default_rng(seed)
    shape = (SAMPLES, *model.inputs[0].shape[1:])
    return rng.integers(0, 10, shape).astype(np.float32) if integers else rng.normal(0, 1, shape).astype(np.float32)


@pytest.mark.parametrize("name", ["seed_mlp", "conv_bn", "recurrent"])
def test_pytorch_loads_the_export_strictly_and_computes_what_keras_does(name, load_model, tmp_path):
    path = SEED_KERAS if name == "seed_mlp" else FIXTURES / "zoo" / f"{name}.keras"
    model = load_model(path)
    converter.export(path, tmp_path, formats=["safetensors"], layout="torch", stem=model.name)
    _check(model, tmp_path, _inputs(model))


def _built(keras, name):
    L = keras.layers
    rng = np.random.default_rng(7)
    if name == "convolutions":
        layers = [keras.Input((12, 12, 3)), L.Conv2D(4, 3, strides=2, activation="relu", name="conv"),
                  L.BatchNormalization(epsilon=1e-3, name="bn"), L.DepthwiseConv2D(3, depth_multiplier=2, name="dw"),
                  L.BatchNormalization(center=False, scale=False, name="bn_plain"),
                  L.SeparableConv2D(5, 1, activation="tanh", name="sep"), L.Conv2DTranspose(3, 2, strides=2, name="up"),
                  L.LayerNormalization(name="ln"), L.Flatten(name="flat"), L.Dropout(0.1, name="drop"),
                  L.Dense(3, name="head")]
    elif name == "sequences":
        layers = [keras.Input((9,)), L.Embedding(10, 6, name="embed"), L.Conv1D(5, 3, name="conv1"),
                  L.Conv1DTranspose(4, 2, strides=2, name="up1"), L.DepthwiseConv1D(3, depth_multiplier=2, name="dw1"),
                  L.SeparableConv1D(4, 3, name="sep1"),
                  L.SimpleRNN(4, return_sequences=True, name="srnn"), L.GRU(3, return_sequences=True, name="gru"),
                  L.Bidirectional(L.GRU(2), name="bi"), L.Dense(2, name="out")]
    elif name == "volumes":
        layers = [keras.Input((6, 6, 6, 2)), L.Conv3D(3, 2, activation="relu", name="conv3"),
                  L.Conv3DTranspose(2, 2, strides=2, name="up3"), L.Flatten(name="flat"), L.Dense(2, name="head")]
    model = keras.Sequential(layers, name=name)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) if "variance" in v.path else
                       rng.normal(0, 0.4, w.shape).astype(w.dtype) for w, v in zip(model.get_weights(), model.weights)])
    return model


@pytest.mark.parametrize("name", ["convolutions", "sequences", "volumes"])
def test_every_mapping_loads_strictly_and_computes_what_keras_does(name, keras_module, tmp_path):
    model = _built(keras_module, name)
    model.save(tmp_path / f"{name}.keras")
    manifest = converter.export(tmp_path / f"{name}.keras", tmp_path / "out", formats=["safetensors"], layout="torch")
    _check(model, tmp_path / "out", _inputs(model, integers=name == "sequences"))
    assert converter.verify(tmp_path / "out", model=tmp_path / f"{name}.keras").ok
    assert all("keras_name" in t for t in manifest["tensors"]) and manifest["schema_version"] == "1.1"


def test_what_torch_cannot_compute_is_refused_by_name(keras_module, tmp_path, capsys):
    from converter.cli import main

    keras = keras_module
    model = keras.Sequential([keras.Input((4, 2)), keras.layers.GRU(3, reset_after=False, name="old_gru"),
                              keras.layers.Dense(1, name="d")])
    model.save(tmp_path / "m.keras")
    assert main(["export", str(tmp_path / "m.keras"), "-o", str(tmp_path / "out"), "--layout", "torch"]) == 4
    err = capsys.readouterr().err
    assert "layer 'old_gru' (GRU): reset_after=False" in err and not (tmp_path / "out").exists()


def test_the_docs_example_runs_as_written_and_matches_keras(load_model, tmp_path, monkeypatch):
    from conftest import ROOT

    code = (ROOT / "docs" / "torch.md").read_text().split("```python\n")[1].split("```")[0]
    monkeypatch.chdir(tmp_path)
    converter.export(FIXTURES / "zoo" / "conv_bn.keras", tmp_path / "out", formats=["safetensors"], layout="torch")
    scope = {}
    exec(compile(code, "docs/torch.md", "exec"), scope)
    model = load_model(FIXTURES / "zoo" / "conv_bn.keras")
    expected = model.predict(scope["x"].permute(0, 2, 3, 1).numpy(), verbose=0)
    assert np.max(np.abs(scope["y"].detach().numpy() - expected)) <= 1e-4 * (1 + np.max(np.abs(expected)))


CORPUS_FILES = sorted(p for p in (FIXTURES.parent.parent / "shared" / "corpus").glob("*/*") if p.suffix in (".h5", ".keras"))


@pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus is not present")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_models_load_into_their_torch_twin(path, keras_module, tmp_path):
    """Real models Keras loads, made of layers the twin knows: loaded strictly by torch, computing what Keras does;
    the others are refused by name or have layers no torch module is written for here (skipped, with the reason)."""
    try:
        model = keras_module.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        pytest.skip(f"Keras cannot load it: {type(error).__name__}")
    try:
        converter.export(path, tmp_path, formats=["safetensors"], layout="torch", stem=model.name)
    except converter.InputInvalid as error:
        assert "--layout torch cannot map this model exactly: layer '" in str(error), error
        return
    if any(None in tuple(t.shape[1:]) for t in model.inputs):
        pytest.skip("an input of unknown length: the twin needs a fixed sample")
    try:
        twin_ok = all(_module(layer) is not None or type(layer).__name__ in _WEIGHTLESS for layer in model.layers)
    except Exception:
        twin_ok = False
    if not twin_ok:
        pytest.skip("a layer the test's torch twin does not build")
    integers = type(model.layers[0]).__name__ == "Embedding"
    _check(model, tmp_path, _inputs(model, integers=integers))


_WEIGHTLESS = {"ReLU", "Activation", "MaxPooling2D", "GlobalAveragePooling1D", "GlobalAveragePooling2D", "Flatten",
               "Dropout", "Rescaling", "InputLayer"}


def test_tensors_without_a_torch_counterpart_keep_their_keras_arrays_and_say_so(tmp_path):
    manifest = converter.export(FIXTURES / "zoo" / "preprocessing.keras", tmp_path, formats=["npz"], layout="torch")
    kept = {t["name"]: t for t in manifest["tensors"] if t["transform"] == "keras"}
    assert {"norm.mean", "norm.variance", "norm.count"} <= set(kept)
    assert kept["norm.mean"]["keras_name"] == "norm/mean"
    assert converter.verify(tmp_path, model=FIXTURES / "zoo" / "preprocessing.keras").ok
