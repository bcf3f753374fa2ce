"""keras-weights diff / converter.diff: two models or exports compared tensor by tensor."""
import json

import numpy as np
import pytest

import converter
from converter.cli import main
from conftest import FIXTURES, SEED_KERAS


def run(capsys, *argv):
    code = main([str(a) for a in argv])
    out, err = capsys.readouterr()
    return code, out, err


@pytest.fixture(scope="module")
def changed(tmp_path_factory, keras_module):
    """The seed model with one bias value changed."""
    model = keras_module.saving.load_model(SEED_KERAS, compile=False)
    model.layers[1].bias.assign(model.layers[1].bias + np.array([0.5] + [0.0] * 9, np.float32))
    path = tmp_path_factory.mktemp("changed") / "changed.keras"
    model.save(path)
    return path


def test_a_model_and_its_export_are_equal_bit_for_bit(capsys):
    code, out, _ = run(capsys, "diff", SEED_KERAS, FIXTURES / "golden")
    assert code == 0 and out.splitlines()[-1] == "equal: 6 equal"


def test_a_changed_weight_is_found_with_its_figures(changed, capsys):
    code, out, _ = run(capsys, "diff", SEED_KERAS, changed, "--json")
    result = json.loads(out)
    assert code == 1 and not result["equal"]
    (bias,) = [t for t in result["tensors"] if t["status"] != "equal"]
    assert bias["name"] == "dense_1/bias" and bias["status"] == "changed" and bias["changed"] == pytest.approx(0.1)
    assert bias["max_abs"] == pytest.approx(0.5, abs=1e-6)
    assert run(capsys, "diff", SEED_KERAS, changed, "--atol", "0.6")[0] == 0  # within the tolerance


def test_added_removed_renamed_and_reshaped_tensors(keras_module, tmp_path):
    keras = keras_module
    a = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="first"), keras.layers.Dense(2, name="gone")])
    b = keras.Sequential([keras.Input((4,)), keras.layers.Dense(3, name="renamed"), keras.layers.Dense(5, name="gone"),
                          keras.layers.Dense(1, name="new")])
    b.layers[0].set_weights(a.layers[0].get_weights())
    result = converter.diff(a, b)
    statuses = {t.name: (t.status, t.other_name) for t in result.tensors}
    assert statuses["first/kernel"] == ("renamed", "renamed/kernel") and statuses["gone/kernel"][0] == "reshaped"
    assert statuses["new/kernel"][0] == "added" and not result.equal
    assert [t.max_abs for t in result.tensors if t.name == "first/kernel"] == [0.0]


def test_quantized_and_torch_exports_are_compared_as_keras_layout_values(tmp_path, capsys):
    converter.export(FIXTURES / "zoo" / "conv_bn.keras", tmp_path, formats=["safetensors"], quantize="int8",
                     layout="torch")
    code, out, _ = run(capsys, "diff", FIXTURES / "zoo" / "conv_bn.keras", tmp_path)
    assert code == 1 and "compared in the Keras layout" in out and "int8 export" in out
    assert "conv/kernel  changed  (3, 3, 3, 4)" in out
    code, out, _ = run(capsys, "diff", FIXTURES / "zoo" / "conv_bn.keras", tmp_path, "--atol", "0.02")
    assert code == 0 and out.splitlines()[-1] == "equal: 8 equal"


def test_nan_equals_nan_with_the_same_bits(tmp_path, capsys):
    converter.export(FIXTURES / "zoo" / "special_values.keras", tmp_path, formats=["npz"])
    assert run(capsys, "diff", FIXTURES / "zoo" / "special_values.keras", tmp_path)[0] == 0


def test_errors_are_the_usual_ones(tmp_path, capsys):
    assert run(capsys, "diff", SEED_KERAS, tmp_path / "missing.keras")[0] == 3
    assert run(capsys, "diff", SEED_KERAS, SEED_KERAS, "--atol", "-1")[0] == 2
