"""SavedModel folders: variables from the TensorFlow checkpoint, grouped by layer with role names."""
import numpy as np
import pytest

import converter
from converter.readers import read_model
from conftest import FIXTURES, ROOT, assert_bit_identical, reference_weights

CORPUS_SAVEDMODEL = ROOT.parent / "shared" / "corpus" / "tinyml-uraich" / "magic_wand_savedmodel"


def test_keras3_export_gives_every_variable_by_layer(tmp_path, load_model):
    model = load_model(FIXTURES / "zoo" / "conv_bn.keras")
    model.export(tmp_path / "exported", verbose=False)
    weights = read_model(tmp_path / "exported")
    expected = converter.extract(model)
    assert [(t.name, t.layer, t.role, t.trainable) for t in weights.tensors] == \
           [(t.name, t.layer, t.role, t.trainable) for t in expected]
    for tensor, array in zip(weights.tensors, reference_weights(model), strict=True):
        assert_bit_identical(tensor.array, array)
    assert "variables list" in weights.source.note and weights.source.format == "savedmodel"


def test_savedmodel_without_variables_is_a_clear_error(tmp_path, load_model):
    load_model(FIXTURES / "seed_mlp.keras").export(tmp_path / "sm", verbose=False)
    for item in (tmp_path / "sm" / "variables").iterdir():
        item.unlink()
    with pytest.raises(converter.InputInvalid, match="without variables/variables.index"):
        read_model(tmp_path / "sm")


@pytest.mark.skipif(not CORPUS_SAVEDMODEL.is_dir(), reason="../shared/corpus is not present")
def test_tf_keras_savedmodel_layers_hold_their_statistics_beside_them():
    weights = read_model(CORPUS_SAVEDMODEL)
    bn = [t for t in weights.tensors if t.layer == "batch_normalization"]
    assert [(t.role, t.trainable) for t in bn] == [("gamma", True), ("beta", True), ("moving_mean", False),
                                                   ("moving_variance", False)]
    assert [t.name for t in weights.tensors][:2] == ["conv2d/kernel", "conv2d/bias"]
    assert weights.layers[3].class_name == "BatchNormalization" and weights.source.sha256
    sibling = read_model(CORPUS_SAVEDMODEL.parent / "magic_wand_save_at_30.h5")  # same project, another epoch
    assert [(t.name, t.shape) for t in weights.tensors] == [(t.name, t.shape) for t in sibling.tensors]


@pytest.mark.parametrize("structure", ["sequential", "functional around one nested model"])
def test_keras3_export_names_match_the_model_without_its_own_name(tmp_path, keras_module, structure):
    """Keras 3 gives a Sequential model's variables paths starting with the model's name (``sm/d/kernel``);
    the names are those of the same model read in memory, and a functional model whose only weighted
    layer is a nested model keeps that layer's name."""
    keras = keras_module
    inner = keras.Sequential([keras.layers.Dense(2, name="e")], name="inner")
    if structure == "sequential":
        model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d"), inner], name="sm")
    else:
        inputs = keras.Input((3,))
        model = keras.Model(inputs, inner(inputs), name="sm")
    model.export(tmp_path / "exported", verbose=False)
    weights = read_model(tmp_path / "exported")
    expected = converter.extract(model)
    assert [(t.name, t.layer) for t in weights.tensors] == [(t.name, t.layer) for t in expected]
    assert not any(t.name.startswith("sm/") for t in weights.tensors)


def test_a_savedmodel_from_before_tensorflow_2_5_gives_layer_names_classes_and_its_forward_pass(tmp_path):
    """Before 2.5 the Keras metadata was in saved_model.pb (no keras_metadata.pb): fixtures/make_legacy_fixtures.py
    writes that layout from a tf_keras model. Real names and classes, and the C forward pass computes what
    tf_keras computed (legacy_savedmodel.io.npz)."""
    folder = FIXTURES / "legacy" / "legacy_savedmodel"
    assert not (folder / "keras_metadata.pb").exists()
    weights = read_model(folder)
    assert [t.name for t in weights.tensors][:3] == ["conv/kernel", "conv/bias", "bn/gamma"]
    assert [layer.class_name for layer in weights.layers] == ["Conv2D", "BatchNormalization", "ReLU", "Flatten",
                                                               "Dense"]
    assert weights.name == "legacy_savedmodel" and weights.class_name == "Sequential"
    manifest = converter.export(folder, tmp_path / "out", formats=["c"], options={"c": {"inference": True}})
    assert converter.verify(tmp_path / "out").ok
    from test_inference import SAMPLES, assert_close, run_c

    stored = np.load(FIXTURES / "legacy" / "legacy_savedmodel.io.npz")
    assert_close(run_c(tmp_path / "out", manifest, [stored["x"]], tmp_path), stored["y"].reshape(SAMPLES, -1))


def _copy(tmp_path):
    import shutil

    folder = tmp_path / "sm"
    shutil.copytree(FIXTURES / "legacy" / "legacy_savedmodel", folder)
    return folder


@pytest.mark.parametrize("linked", ["variables/variables.data-00000-of-00001", "variables/variables.index",
                                    "saved_model.pb", "variables"])
def test_a_symbolic_link_inside_a_savedmodel_is_refused(tmp_path, capsys, linked):
    """A SavedModel is untrusted input: a file of it that is a link elsewhere would make the export read another
    file (here the same bytes, so only the refusal tells). Exit 5, naming the link; nothing written."""
    from converter.cli import main

    folder = _copy(tmp_path)
    target = tmp_path / "elsewhere"
    (folder / linked).rename(target)
    (folder / linked).symlink_to(target)
    code = main(["export", str(folder), "-o", str(tmp_path / "out")])
    err = capsys.readouterr().err
    assert code == 5 and f"{linked} is a symbolic link" in err and "Traceback" not in err
    assert not (tmp_path / "out").exists()


def test_a_checkpoint_declaring_more_than_its_data_holds_is_refused_before_reading(tmp_path):
    """TensorFlow allocates each variable as the index declares before reading it: an index declaring more bytes
    than the data files hold (a crafted shape, or a truncated shard) is refused by the sizes alone."""
    folder = _copy(tmp_path)
    shard = folder / "variables" / "variables.data-00000-of-00001"
    shard.write_bytes(shard.read_bytes()[:64])
    with pytest.raises(converter.UnsafeInput, match=r"declares [\d,]+ bytes of variables .* more than the 64 bytes"):
        read_model(folder)


def test_a_fifo_inside_a_savedmodel_is_never_opened(tmp_path):
    import os

    folder = _copy(tmp_path)
    (folder / "keras_metadata.pb").unlink(missing_ok=True)
    os.mkfifo(folder / "keras_metadata.pb")
    with pytest.raises(converter.UnsafeInput, match="keras_metadata.pb is not a regular file"):
        read_model(folder)
