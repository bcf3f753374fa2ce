"""GroupNormalization, supported everywhere from one registry module (converter/layers/group_normalization.py):
its weights from both readers, int8 (it stays float), PyTorch's nn.GroupNorm both ways, the C forward pass and
the report. The models are real Keras models, saved and read back; the peers are real (torch, gcc, Chromium)."""
import numpy as np
import pytest

import converter
from converter.cli import main
from conftest import assert_bit_identical, need_module, needs

torch = need_module("torch")
from safetensors.torch import load_file  # noqa: E402

# (groups, scale, center): groups=-1 is one group per channel; the flags drop gamma or beta
VARIANTS = [(4, True, True), (-1, True, True), (2, False, True), (1, True, False), (8, False, False)]


def _model(keras, groups, scale, center, seed=0):
    """Conv2D -> GroupNormalization -> ReLU -> GAP -> Dense, weights random (gamma and beta too)."""
    keras.utils.set_random_seed(seed)
    x = keras.Input((6, 5, 3), name="x")
    y = keras.layers.Conv2D(8, 3, padding="same", name="conv")(x)
    y = keras.layers.GroupNormalization(groups=groups, scale=scale, center=center, epsilon=1e-3, name="gn")(y)
    y = keras.layers.ReLU(name="relu")(y)
    y = keras.layers.GlobalAveragePooling2D(name="gap")(y)
    model = keras.Model(x, keras.layers.Dense(2, name="head")(y), name=f"gn_{groups}_{int(scale)}{int(center)}")
    rng = np.random.default_rng(seed)
    for weight in model.get_layer("gn").weights:
        weight.assign(rng.normal(1.0 if "gamma" in weight.path else 0.0, 0.5, weight.shape).astype("float32"))
    return model


@pytest.fixture(scope="module", params=VARIANTS, ids=lambda v: f"groups{v[0]}-scale{int(v[1])}-center{int(v[2])}")
def saved(request, keras_module, tmp_path_factory):
    model = _model(keras_module, *request.param)
    path = tmp_path_factory.mktemp("gn") / f"{model.name}.keras"
    model.save(path)
    return request.param, model, path


@pytest.mark.parametrize("reader", ["keras", "h5"])
def test_both_readers_give_gamma_and_beta_exactly_and_in_order(saved, reader, tmp_path):
    (_, scale, center), model, path = saved
    converter.export(path, tmp_path, formats=["npz"], reader=reader)
    arrays = converter.read(tmp_path / f"{model.name}.npz")
    layer = model.get_layer("gn")
    roles = [role for role, on in (("gamma", scale), ("beta", center)) if on]
    assert [name for name in arrays if name.startswith("gn/")] == [f"gn/{role}" for role in roles]
    for role, value in zip(roles, layer.get_weights(), strict=True):
        assert_bit_identical(arrays[f"gn/{role}"], value)


def test_int8_keeps_gamma_and_beta_float32_and_quantizes_the_kernels(saved, tmp_path):
    _, model, path = saved
    converter.export(path, tmp_path, formats=["safetensors"], quantize="int8")
    file = tmp_path / f"{model.name}.safetensors"
    raw, dequantized = converter.read(file), converter.read(file, dequantize=True)
    assert raw["conv/kernel"].dtype == np.int8
    # the variable's own name, not w.path: a Keras call that failed earlier in the session (the hostile model's)
    # can leave its name scope open, and every later path starts with it
    for name, value in zip([f"gn/{w.path.rsplit('/', 1)[-1]}" for w in model.get_layer("gn").weights],
                           model.get_layer("gn").get_weights()):
        assert raw[name].dtype == np.float32
        assert_bit_identical(dequantized[name], value)


def _torch_twin(groups, scale, center):
    gn = torch.nn.GroupNorm(8 if groups == -1 else groups, 8, eps=1e-3, affine=scale or center)
    return torch.nn.ModuleDict({"conv": torch.nn.Conv2d(3, 8, 3, padding=1), "gn": gn,
                                "head": torch.nn.Linear(8, 2)})


def test_pytorch_group_norm_loads_strictly_computes_what_keras_does_and_loads_back(saved, keras_module, tmp_path):
    (groups, scale, center), model, path = saved
    converter.export(path, tmp_path, formats=["safetensors"], layout="torch")
    state = load_file(str(tmp_path / f"{model.name}.safetensors"))
    twin = _torch_twin(groups, scale, center)
    twin.load_state_dict(state, strict=True)
    x = np.random.default_rng(1).normal(0, 1, (4, 6, 5, 3)).astype(np.float32)
    with torch.no_grad():
        y = twin["gn"](twin["conv"](torch.from_numpy(x).permute(0, 3, 1, 2)))
        y = twin["head"](torch.relu(y).mean(dim=(2, 3))).numpy()
    np.testing.assert_allclose(y, model.predict(x, verbose=0), rtol=1e-4, atol=1e-4)
    # and back: the state dict into a fresh Keras model gives every weight bit for bit (ones/zeros dropped)
    fresh = _model(keras_module, groups, scale, center, seed=7)
    converter.load_into(fresh, tmp_path / f"{model.name}.safetensors")
    for before, after in zip(model.get_weights(), fresh.get_weights(), strict=True):
        assert_bit_identical(after, before)


def test_a_group_norm_torch_cannot_compute_is_refused_by_name(keras_module, tmp_path, capsys):
    keras = keras_module
    x = keras.Input((4, 8), name="x")
    y = keras.layers.GroupNormalization(groups=2, axis=1, name="across_time")(x)
    path = tmp_path / "axis.keras"
    keras.Model(x, y).save(path)
    assert main(["export", str(path), "-o", str(tmp_path / "out"), "--layout", "torch"]) == 4
    assert "layer 'across_time' (GroupNormalization): axis=1" in capsys.readouterr().err


@needs("gcc")
@pytest.mark.parametrize("quantize", [None, "int8"])
def test_the_c_forward_pass_computes_what_keras_does(saved, quantize, tmp_path, capsys):
    _, _, path = saved
    args = ["export", str(path), "-o", str(tmp_path / "out"), "-f", "c", "--c-inference"]
    assert main(args + (["--quantize", quantize] if quantize else [])) == 0
    assert "kw_group_norm(" in next((tmp_path / "out").glob("*.c")).read_text()
    assert main(["verify", str(tmp_path / "out"), "--predict", str(path)]) == 0, capsys.readouterr()
    assert "predict      8 samples, max abs difference" in capsys.readouterr().out


def test_the_c_forward_pass_refuses_groups_that_do_not_divide_the_channels(keras_module, tmp_path, capsys):
    from converter.cgen import codegen, graph

    config = {"class_name": "Functional", "config": {"name": "m", "layers": [
        {"class_name": "InputLayer", "name": "x", "config": {"batch_shape": [None, 6], "name": "x"}, "inbound_nodes": []},
        {"class_name": "GroupNormalization", "name": "gn", "config": {"name": "gn", "groups": 4},
         "inbound_nodes": [{"args": [{"class_name": "__keras_tensor__", "config": {"keras_history": ["x", 0, 0]}}]}]}],
        "input_layers": [["x", 0, 0]], "output_layers": [["gn", 0, 0]]}}
    with pytest.raises(converter.InputInvalid, match=r"layer 'gn' \(GroupNormalization\): groups=4: a divisor of its 6"):
        codegen.generate(graph.from_config(config), {}, "m")


@needs("chromium")
def test_the_report_shows_its_weights(saved, tmp_path):
    from test_report import render

    (_, scale, center), _, path = saved
    page = converter.report(path, tmp_path / "gn.html")
    dom, console = render(page, tmp_path)
    assert console == []
    for role, on in (("gamma", scale), ("beta", center)):
        assert (f'data-name="gn/{role}"' in dom) == on
