"""Weights back into Keras: converter.load_into and `keras-weights load`, from every format and layout, and from
a state dict PyTorch wrote."""
import numpy as np
import pytest

import converter
from converter.cli import main
from conftest import FIXTURES, SEED_KERAS, assert_bit_identical, reference_weights

MODELS = ["conv_bn", "recurrent", "embedding"]


def fresh(keras_module, name):
    """The fixture model with every weight zeroed: whatever it holds afterwards came from the load."""
    model = keras_module.saving.load_model(FIXTURES / "zoo" / f"{name}.keras", compile=False)
    model.set_weights([np.zeros_like(w) for w in model.get_weights()])
    return model


@pytest.mark.parametrize("layout", ["keras", "dense_out_in", "torch"])
@pytest.mark.parametrize("name", MODELS)
def test_every_format_and_layout_loads_back_bit_identical(name, layout, keras_module, load_model, tmp_path):
    original = reference_weights(load_model(FIXTURES / "zoo" / f"{name}.keras"))
    manifest = converter.export(FIXTURES / "zoo" / f"{name}.keras", tmp_path, layout=layout)
    for entry in manifest["files"]:
        if entry["path"].endswith(".h"):
            continue
        model = fresh(keras_module, name)
        converter.load_into(model, tmp_path / entry["path"])
        for got, expected in zip(reference_weights(model), original, strict=True):
            assert_bit_identical(got, expected)
    model = fresh(keras_module, name)
    converter.load_into(model, tmp_path)  # the folder: its safetensors file
    for got, expected in zip(reference_weights(model), original, strict=True):
        assert_bit_identical(got, expected)


@pytest.mark.parametrize("layout", ["dense_out_in", "torch"])
def test_an_export_is_undone_by_the_steps_its_manifest_records(layout, keras_module, load_model, tmp_path, monkeypatch):
    """An export's own steps are undone: the layout is not applied again to the model to learn them (issue 24)."""
    from converter import layouts

    original = reference_weights(load_model(FIXTURES / "zoo" / "conv_bn.keras"))
    converter.export(FIXTURES / "zoo" / "conv_bn.keras", tmp_path, formats=["safetensors"], layout=layout)

    def not_again(*args, **kwargs):
        raise AssertionError("load applied the layout again")

    monkeypatch.setattr(layouts, "apply", not_again)
    model = fresh(keras_module, "conv_bn")
    converter.load_into(model, tmp_path)
    for got, expected in zip(reference_weights(model), original, strict=True):
        assert_bit_identical(got, expected)


def test_a_quantized_export_loads_dequantized(keras_module, tmp_path):
    converter.export(FIXTURES / "zoo" / "conv_bn.keras", tmp_path, formats=["npz"], quantize="int8")
    model = fresh(keras_module, "conv_bn")
    converter.load_into(model, tmp_path / "conv_bn.npz")
    dequantized = converter.read(tmp_path / "conv_bn.npz", dequantize=True)
    for got, expected in zip(reference_weights(model), dequantized.values(), strict=True):
        assert_bit_identical(got, expected)


@pytest.mark.parametrize("name", MODELS)
def test_a_state_dict_pytorch_wrote_loads_with_the_mapping_reversed(name, keras_module, load_model, tmp_path,
                                                                     torch_module):
    """No manifest: the torch names of this model are recognised; an LSTM's two biases are summed."""
    from safetensors.torch import load_file, save_file

    torch = torch_module
    converter.export(FIXTURES / "zoo" / f"{name}.keras", tmp_path / "out", formats=["safetensors"], layout="torch")
    state = load_file(tmp_path / "out" / f"{name}.safetensors")
    lstm_bias = [key for key in state if key.startswith("lstm.bias_hh")]
    for key in lstm_bias:
        state[key] = torch.full_like(state[key], 0.25)  # what training in torch gives: both biases used
    save_file(state, tmp_path / "from_torch.safetensors")  # as PyTorch writes it: no manifest beside
    model = fresh(keras_module, name)
    converter.load_into(model, tmp_path / "from_torch.safetensors")
    expected = reference_weights(load_model(FIXTURES / "zoo" / f"{name}.keras"))
    for position, (got, want) in enumerate(zip(reference_weights(model), expected, strict=True)):
        if lstm_bias and position == 2:  # lstm/lstm_cell/bias: bias_ih + bias_hh
            assert_bit_identical(got, want + np.float32(0.25))
        else:
            assert_bit_identical(got, want)


def test_missing_extra_or_misshaped_tensors_are_listed_and_the_model_is_left_unchanged(keras_module, tmp_path,
                                                                                       torch_module):
    from safetensors.torch import load_file, save_file

    torch = torch_module
    converter.export(FIXTURES / "zoo" / "conv_bn.keras", tmp_path / "out", formats=["safetensors"], layout="torch")
    state = load_file(tmp_path / "out" / "conv_bn.safetensors")
    del state["bn.running_var"]
    state["head.weight"] = state["head.weight"][:, :10].contiguous()
    state["stray.weight"] = torch.zeros(3)
    save_file(state, tmp_path / "broken.safetensors")
    model = fresh(keras_module, "conv_bn")
    before = [w.copy() for w in model.get_weights()]
    with pytest.raises(converter.InputInvalid) as caught:
        converter.load_into(model, tmp_path / "broken.safetensors")
    message = str(caught.value)
    assert "stray.weight" in message and "bn/moving_variance: missing" in message
    assert "head/kernel: head.weight has shape [2, 10], the model's needs [2, 64]" in message
    for got, was in zip(model.get_weights(), before, strict=True):
        assert_bit_identical(got, was)


def test_cli_load_writes_a_new_model_file(tmp_path, capsys, load_model, keras_module):
    converter.export(FIXTURES / "zoo" / "recurrent.keras", tmp_path / "out", layout="torch")
    model_file = FIXTURES / "zoo" / "recurrent.keras"
    assert main(["load", str(tmp_path / "out"), str(model_file), "-o", str(tmp_path / "back.keras")]) == 0
    assert main(["load", str(tmp_path / "out"), str(model_file), "-o", str(tmp_path / "back.keras")]) == 6  # exists
    assert main(["load", str(tmp_path / "out"), str(model_file), "-o", str(tmp_path / "back.weights.h5")]) == 0
    capsys.readouterr()
    back = keras_module.saving.load_model(tmp_path / "back.keras", compile=False)
    for got, expected in zip(reference_weights(back), reference_weights(load_model(model_file)), strict=True):
        assert_bit_identical(got, expected)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["back.keras", "back.weights.h5", "out"]


def test_a_file_no_export_writes_is_a_usage_error(keras_module, tmp_path):
    model = fresh(keras_module, "conv_bn")
    model.save_weights(tmp_path / "w.weights.h5")
    with pytest.raises(converter.UsageError, match="w.weights.h5 is not an export"):
        converter.load_into(model, tmp_path / "w.weights.h5")


def test_the_header_of_a_two_file_c_export_loads_its_values_from_the_source_beside(keras_module, tmp_path, capsys):
    """load takes any file export writes: the .h only declares the arrays, its .c holds them (issue 25)."""
    from converter.cli import main

    converter.export(FIXTURES / "zoo" / "conv_bn.keras", tmp_path / "out", formats=["c"])
    model = fresh(keras_module, "conv_bn")
    converter.load_into(model, tmp_path / "out" / "conv_bn.h")
    expected = reference_weights(keras_module.saving.load_model(FIXTURES / "zoo" / "conv_bn.keras", compile=False))
    for got, want in zip(reference_weights(model), expected, strict=True):
        assert_bit_identical(got, want)
    assert main(["load", str(tmp_path / "out" / "conv_bn.h"), str(FIXTURES / "zoo" / "conv_bn.keras"), "-o",
                 str(tmp_path / "loaded.keras")]) == 0
    assert converter.read(tmp_path / "out" / "conv_bn.h").keys() == converter.read(tmp_path / "out" / "conv_bn.c").keys()


@pytest.mark.parametrize("name, hint", [("state.pt", "save the state dict as safetensors"),
                                        ("weights.pth", "save the state dict as safetensors"),
                                        ("other.weights.h5", "the model's own load_weights"),
                                        ("notes.txt", "keras-weights export")])
def test_a_file_that_is_not_an_export_gets_a_hint_for_what_it_is(tmp_path, capsys, name, hint):
    """A pickled PyTorch file is not pointed to Keras's load_weights (issue 25 point 8)."""
    (tmp_path / name).write_bytes(b"\x80\x02}q\x00.")
    assert main(["load", str(tmp_path / name), str(SEED_KERAS), "-o", str(tmp_path / "back.keras")]) == 2
    err = capsys.readouterr().err
    assert hint in err and (name.endswith((".h5",)) or "load_weights" not in err)
