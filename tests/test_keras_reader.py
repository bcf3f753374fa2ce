"""The get_weights() reader against Keras itself, over the seed model and the fixture zoo."""
import numpy as np
import pytest

import converter
from conftest import ALL_MODEL_FILES, FIXTURES, SEED_H5, SEED_KERAS, ZOO_H5, assert_bit_identical, need_module, \
    reference_weights


def test_seed_model_matches_the_classic_recipe():
    tensors = converter.extract(SEED_KERAS)
    assert [(t.name, t.shape) for t in tensors] == [
        ("dense/kernel", (4, 20)), ("dense/bias", (20,)), ("dense_1/kernel", (20, 10)),
        ("dense_1/bias", (10,)), ("dense_2/kernel", (10, 1)), ("dense_2/bias", (1,))]
    assert [(t.layer, t.role, t.layer_index) for t in tensors[:2]] == [("dense", "kernel", 0), ("dense", "bias", 0)]


@pytest.mark.parametrize("path", ALL_MODEL_FILES, ids=lambda p: p.name)
def test_every_tensor_is_bit_identical_to_get_weights(path, load_model, read_fixture):
    tensors = read_fixture(path).tensors
    expected = reference_weights(load_model(path))
    assert len(tensors) == len(expected)
    for tensor, array in zip(tensors, expected, strict=True):
        assert_bit_identical(tensor.array, array)


@pytest.mark.parametrize("h5", [SEED_H5, *ZOO_H5], ids=lambda p: p.stem)
def test_names_are_the_same_from_keras_and_h5(h5, read_fixture):
    from_h5 = [(t.name, t.layer, t.role, t.sha256) for t in read_fixture(h5).tensors]
    from_keras = [(t.name, t.layer, t.role, t.sha256) for t in read_fixture(h5.with_suffix(".keras")).tensors]
    assert from_h5 == from_keras


EXPECTED_NAMES = {
    "nested": ["inner/d/kernel", "inner/d/bias", "inner/e/kernel", "inner/e/bias", "head/kernel", "head/bias"],
    "shared": ["twice/kernel", "twice/bias", "out/kernel", "out/bias"],
    "no_bias": ["conv/kernel", "dense/kernel"],
    "conv_bn": ["conv/kernel", "conv/bias", "bn/gamma", "bn/beta", "bn/moving_mean", "bn/moving_variance", "head/kernel", "head/bias"],
    "embedding": ["embed/embeddings", "out/kernel", "out/bias"],
}


@pytest.mark.parametrize("model", EXPECTED_NAMES)
def test_names_follow_the_layer_chain(model, read_fixture):
    assert [t.name for t in read_fixture(FIXTURES / "zoo" / f"{model}.keras").tensors] == EXPECTED_NAMES[model]


def test_attention_and_recurrent_sub_layers_are_named_by_their_chain(read_fixture):
    names = [t.name for t in read_fixture(FIXTURES / "zoo" / "attention.keras").tensors]
    assert names[:2] == ["mha/query/kernel", "mha/query/bias"] and "mha/attention_output/kernel" in names
    recurrent = {t.name: t for t in read_fixture(FIXTURES / "zoo" / "recurrent.keras").tensors}
    assert recurrent["lstm/lstm_cell/recurrent_kernel"].role == "recurrent_kernel"
    assert recurrent["bi/backward_lstm/lstm_cell/bias"].layer == "bi"


def test_batchnorm_statistics_are_marked_non_trainable(read_fixture):
    flags = {t.role: t.trainable for t in read_fixture(FIXTURES / "zoo" / "conv_bn.keras").tensors if t.layer == "bn"}
    assert flags == {"gamma": True, "beta": True, "moving_mean": False, "moving_variance": False}


def test_float16_and_bfloat16_keep_their_dtypes(read_fixture):
    dtypes = {t.name: t.dtype for t in read_fixture(FIXTURES / "zoo" / "half.keras").tensors}
    assert dtypes["f16/kernel"] == "float16" and dtypes["bf16/bias"] == "bfloat16" and dtypes["f32/kernel"] == "float32"


def test_in_memory_model_gives_the_same_records_as_its_file(load_model, read_fixture):
    from_memory = converter.extract(load_model(FIXTURES / "zoo" / "nested.keras"))
    from_file = read_fixture(FIXTURES / "zoo" / "nested.keras").tensors
    assert [(t.name, t.sha256) for t in from_memory] == [(t.name, t.sha256) for t in from_file]


def test_a_freshly_built_model_names_nested_layers_without_the_model_name(keras_module):
    """Keras's own variable.path includes the model name and differs by load route; ours does not."""
    layers = keras_module.layers
    inner = keras_module.Sequential([keras_module.Input((2,)), layers.Dense(3, name="d")], name="inner")
    inputs = keras_module.Input((2,))
    model = keras_module.Model(inputs, layers.Dense(1, name="top")(inner(inputs)), name="outer")
    assert [t.name for t in converter.extract(model)] == ["inner/d/kernel", "inner/d/bias", "top/kernel", "top/bias"]


def test_extraction_does_not_change_the_model(load_model):
    model = load_model(FIXTURES / "zoo" / "conv_bn.keras")
    before = [w.copy() for w in model.get_weights()]
    for tensor in converter.extract(model):
        assert not tensor.array.flags.writeable
    for old, new in zip(before, model.get_weights(), strict=True):
        np.testing.assert_array_equal(old, new)


def test_a_layer_shared_with_a_nested_model_is_exported_once(keras_module):
    layers = keras_module.layers
    common = layers.Dense(2, name="common")
    inner = keras_module.Sequential([keras_module.Input((2,)), common], name="inner")
    inputs = keras_module.Input((2,))
    model = keras_module.Model(inputs, common(inner(inputs)), name="outer")
    tensors = converter.extract(model)
    assert [t.name for t in tensors] == ["inner/common/kernel", "inner/common/bias"]


def test_keras_archives_are_loaded_with_public_calls_and_the_weights_from_disk(tmp_path, keras_module):
    """The loader that avoids load_model's in-memory copy of the weights runs for plain archives (stored or
    compressed) and gives what load_model gives; an archive with assets is left to load_model."""
    import zipfile

    from converter.readers.keras import _load_archive_from_disk

    def rewrite(target, compression, extra=()):
        with zipfile.ZipFile(SEED_KERAS) as old, zipfile.ZipFile(target, "w", compression) as new:
            for info in old.infolist():
                new.writestr(info.filename, old.read(info))
            for name in extra:
                new.writestr(name, b"vocabulary")
        return target

    compressed = rewrite(tmp_path / "compressed.keras", zipfile.ZIP_DEFLATED)
    with_assets = rewrite(tmp_path / "assets.keras", zipfile.ZIP_STORED, ["assets/vocab.txt"])
    expected = [w.tobytes() for w in keras_module.saving.load_model(SEED_KERAS, compile=False).get_weights()]
    for archive in (SEED_KERAS, compressed):
        model = _load_archive_from_disk(keras_module, archive, safe_mode=True)
        assert [w.tobytes() for w in model.get_weights()] == expected
    assert _load_archive_from_disk(keras_module, with_assets, safe_mode=True) is None


def test_only_the_public_keras_api_is_used():
    import re

    private = re.compile(r"(from|import)\s+keras\.src|from\s+keras\s+import\s+src|[\"']keras\.src")
    sources = {path.name: path.read_text() for path in (FIXTURES.parent / "converter").rglob("*.py")}
    assert [name for name, text in sources.items() if private.search(text)] == []


def test_a_model_of_another_backend_is_extracted_as_get_weights_returns_it(tmp_path):
    """A PyTorch-backend model in memory: the records are get_weights()'s values (tests/test_backends.py runs every
    format on the torch and JAX backends)."""
    import subprocess
    import sys

    need_module("torch")
    child = ("import os\nos.environ['KERAS_BACKEND'] = 'torch'\nimport keras, converter\n"
             "keras.utils.set_random_seed(0)\n"
             "model = keras.Sequential([keras.Input((3,)), keras.layers.Dense(4), keras.layers.BatchNormalization()])\n"
             "tensors = converter.extract(model)\n"
             "print(keras.backend.backend(), [t.array.tobytes() for t in tensors] == [w.tobytes() for w in model.get_weights()],"
             " len(tensors))\n")
    out = subprocess.run([sys.executable, "-c", child], capture_output=True, text=True, timeout=300,
                         env={"PYTHONPATH": str(FIXTURES.parent), "PATH": "/usr/bin:/bin"})
    assert out.stdout.split() == ["torch", "True", "6"], out.stderr[-2000:]
