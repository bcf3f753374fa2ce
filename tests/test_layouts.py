"""Weight-file layouts that real files use and that once lost weights silently (fixtures/layouts/, made by
fixtures/make_layout_fixtures.py): every tensor is read, with the names and bytes Keras gives."""
import sys

import pytest

import converter
from converter.readers import read_model
from conftest import FIXTURES

LAYOUTS = FIXTURES / "layouts"
NESTED = FIXTURES / "zoo" / "nested.keras"


def records(weights):
    return [(t.name, t.role, t.layer_index, t.dtype, t.sha256) for t in weights.tensors]


@pytest.mark.parametrize("name", ["chunked_names.h5", "windows_2_15.keras", "tf_2_13.keras"])
def test_rewritten_layouts_give_every_tensor_of_the_original(name):
    assert records(read_model(LAYOUTS / name, "h5")) == records(read_model(NESTED, "keras"))
    assert records(read_model(LAYOUTS / name)) == records(read_model(NESTED, "keras"))  # auto: Keras or the fallback


def test_a_custom_layer_holding_a_sequential_is_read_whole_and_as_keras_names_it(keras_module):
    sys.path.insert(0, str(FIXTURES))
    from fixtures_custom import TransformerBlock

    keras_module.backend.clear_session()  # the block names its inner Dense layers from Keras's session counters
    model = keras_module.saving.load_model(LAYOUTS / "custom_block.keras", compile=False,
                                           custom_objects={"TransformerBlock": TransformerBlock})
    expected = [(t.name, t.sha256) for t in converter.extract(model)]
    direct = read_model(LAYOUTS / "custom_block.keras", "h5")
    assert [(t.name, t.sha256) for t in direct.tensors] == expected
    assert len(expected) == 16


def test_a_dataset_no_layer_reads_fails_the_export_instead_of_vanishing(tmp_path):
    import shutil

    import h5py

    path = tmp_path / "extra.h5"
    shutil.copy(FIXTURES / "seed_mlp.h5", path)
    with h5py.File(path, "r+") as handle:  # a weight the layer's weight_names do not list
        handle["model_weights/dense/seed_mlp/dense/extra"] = [1.0, 2.0]
    with pytest.raises(converter.InputInvalid, match=r"1 datasets of the weights are not listed .*/dense/extra"):
        read_model(path, "h5")
