"""The direct HDF5 reader: same records as get_weights() without Keras, and files Keras cannot load."""
import json
import os
import shutil
import subprocess
import sys

import h5py
import numpy as np
import pytest

import converter
from converter.readers import read_model
from conftest import ALL_MODEL_FILES, FIXTURES, ROOT, SEED_H5, SEED_KERAS, assert_bit_identical, reference_weights


def records(weights) -> list[tuple]:
    return [(t.name, t.layer, t.role, t.layer_index, t.dtype, t.shape, t.trainable, t.sha256, t.owner_class)
            for t in weights.tensors]


@pytest.mark.parametrize("path", ALL_MODEL_FILES, ids=lambda p: p.name)
def test_direct_reader_gives_the_same_records_as_get_weights(path, read_fixture):
    assert records(read_fixture(path, "h5")) == records(read_fixture(path, "keras"))


@pytest.mark.parametrize("path", ALL_MODEL_FILES, ids=lambda p: p.name)
def test_direct_reader_layers_match_the_keras_layers(path, read_fixture):
    direct, keras_read = read_fixture(path, "h5"), read_fixture(path, "keras")
    assert [(l.index, l.name, l.class_name, l.tensors) for l in direct.layers] == \
           [(l.index, l.name, l.class_name, l.tensors) for l in keras_read.layers]


def test_reader_h5_never_imports_tensorflow_and_nothing_imports_pandas():
    """TensorFlow costs ~4 s to import, pandas (which pyarrow pulls in on some calls) ~0.5 s and ~100 MB."""
    code = ("import sys, converter; converter.export('fixtures/seed_mlp.h5', sys.argv[1], reader='h5'); "
            "converter.inspect('fixtures/seed_mlp.keras', reader='h5'); assert converter.verify(sys.argv[1]).ok; "
            "assert not {'tensorflow', 'keras', 'pandas'} & set(sys.modules), "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('tensorflow', 'keras', 'pandas'))[:3]")
    result = subprocess.run([sys.executable, "-c", code, "/tmp/kw-no-tf"], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    shutil.rmtree("/tmp/kw-no-tf", ignore_errors=True)
    assert result.returncode == 0, result.stderr[-2000:]


def test_weights_only_files_get_layer_and_role_names(tmp_path, load_model):
    for source in (SEED_KERAS, FIXTURES / "zoo" / "conv_bn.keras", FIXTURES / "zoo" / "recurrent.keras"):
        model = load_model(source)
        weights_file = tmp_path / f"{source.stem}.weights.h5"
        model.save_weights(weights_file)
        direct = read_model(weights_file, "h5")
        assert [(t.name, t.role, t.sha256) for t in direct.tensors] == \
               [(t.name, t.role, t.sha256) for t in converter.extract(model)]
        auto = read_model(weights_file)  # Keras cannot load a weights-only file: auto falls back
        assert auto.source.reader == "h5" and "Keras could not read" in auto.source.note


def test_auto_falls_back_for_lambda_layers_without_running_their_code(tmp_path, keras_module, caplog):
    marker = tmp_path / "code-ran"
    layers = keras_module.layers
    inputs = keras_module.Input((3,))
    hidden = layers.Dense(4, name="d")(inputs)
    creates_marker = eval(f"lambda x: (open({str(marker)!r}, 'w').close(), x * 2)[1]")  # no closure to serialize
    touched = layers.Lambda(creates_marker, name="double")(hidden)
    model = keras_module.Model(inputs, layers.Dense(1, name="out")(touched), name="with_lambda")
    marker.unlink(missing_ok=True)  # building the model ran the lambda once; loading must not
    for suffix in (".h5", ".keras"):
        path = tmp_path / f"with_lambda{suffix}"
        model.save(path)
        with pytest.raises(converter.UnsafeInput):
            read_model(path, "keras")
        manifest = converter.export(path, tmp_path / suffix[1:])
        assert manifest["source"]["reader"] == "h5" and "Lambda layer" in manifest["source"]["note"]
        assert [t["name"] for t in manifest["tensors"]] == ["d/kernel", "d/bias", "out/kernel", "out/bias"]
        for tensor, array in zip(manifest["tensors"], reference_weights(model), strict=True):
            assert_bit_identical(converter.read(tmp_path / suffix[1:] / "with_lambda.npz")[tensor["name"]], array)
        assert not marker.exists()
    assert any("read with the direct HDF5 reader instead" in r.message for r in caplog.records)


def test_provenance_is_recorded():
    manifest = converter.inspect(SEED_H5, reader="h5")
    assert (manifest["source"]["keras_version"], manifest["source"]["backend"]) == ("3.15.1", "tensorflow")
    assert manifest["source"]["reader"] == "h5" and manifest["source"]["note"] is None
    assert converter.inspect(SEED_KERAS)["source"]["keras_version"] == "3.15.1"


def test_a_layer_name_without_its_group_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.h5"
    shutil.copy(SEED_H5, broken)
    with h5py.File(broken, "r+") as handle:
        del handle["model_weights/dense_1"]
    with pytest.raises(converter.InputInvalid, match="lists layer 'dense_1' in layer_names but has no group"):
        read_model(broken, "h5")


def test_a_missing_dataset_is_a_clear_error(tmp_path):
    broken = tmp_path / "broken.h5"
    shutil.copy(SEED_H5, broken)
    with h5py.File(broken, "r+") as handle:
        group = handle["model_weights/dense"]
        name = [n for n in group.attrs["weight_names"]][1]
        del group[name if isinstance(name, str) else name.decode()]
    with pytest.raises(converter.InputInvalid, match="layer 'dense' lists weight .* but the dataset is missing"):
        read_model(broken, "h5")


@pytest.mark.parametrize("keep", [0.3, 0.7])
def test_truncated_files_are_clear_errors(tmp_path, keep):
    for source in (SEED_H5, SEED_KERAS):
        data = source.read_bytes()
        cut = tmp_path / source.name
        cut.write_bytes(data[: int(len(data) * keep)])
        with pytest.raises(converter.InputInvalid) as caught:
            read_model(cut, "h5")
        assert source.name in str(caught.value) and "Traceback" not in str(caught.value)


def test_cli_reader_option(tmp_path, capsys):
    from converter.cli import main

    assert main(["inspect", str(SEED_H5), "--reader", "h5", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["source"]["reader"] == "h5"
    assert main(["export", str(SEED_KERAS), "-o", str(tmp_path), "-f", "npz", "--reader", "keras"]) == 0
    assert json.loads((tmp_path / "manifest.json").read_text())["source"]["reader"] == "keras"


LEGACY = FIXTURES / "legacy"  # written by tf_keras 2.21 (fixtures/make_legacy_fixtures.py)
LEGACY_RECURRENT_NAMES = [
    "lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel", "lstm/lstm_cell/bias",
    "bi/forward_gru/gru_cell/kernel", "bi/forward_gru/gru_cell/recurrent_kernel", "bi/forward_gru/gru_cell/bias",
    "bi/backward_gru/gru_cell/kernel", "bi/backward_gru/gru_cell/recurrent_kernel", "bi/backward_gru/gru_cell/bias",
    "td/dense/kernel", "td/dense/bias", "rnn/simple_rnn_cell/kernel", "rnn/simple_rnn_cell/recurrent_kernel",
    "rnn/simple_rnn_cell/bias", "out/kernel", "out/bias"]


def legacy_datasets(path) -> list:
    """Independently of the reader: the datasets the file lists, in layer_names/weight_names order."""
    with h5py.File(path, "r") as handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        return [root[layer][weight][()] for layer in root.attrs["layer_names"]
                for weight in root[layer].attrs.get("weight_names", [])]


@pytest.mark.parametrize("stem", ["legacy_recurrent", "legacy_conv"])
def test_tf_keras_files_that_keras3_refuses_are_read_exactly(stem):
    h5, archive = LEGACY / f"{stem}.h5", LEGACY / f"{stem}.keras"
    for path in (h5, archive):
        with pytest.raises(converter.InputInvalid):
            read_model(path, "keras")
    from_h5, from_archive = read_model(h5), read_model(archive)  # auto falls back to the direct reader
    assert from_h5.source.reader == from_archive.source.reader == "h5"
    assert records(from_h5) == records(from_archive)
    for tensor, array in zip(from_h5.tensors, legacy_datasets(h5), strict=True):
        assert_bit_identical(tensor.array, array)
    if stem == "legacy_recurrent":
        assert [t.name for t in from_h5.tensors] == LEGACY_RECURRENT_NAMES
        assert from_h5.source.keras_version == "2.21.0"


def test_tf_keras_weights_only_file_keeps_every_tensor_in_model_order():
    weights_only = read_model(LEGACY / "legacy_recurrent.weights.h5")
    full = read_model(LEGACY / "legacy_recurrent.h5")
    assert [t.sha256 for t in weights_only.tensors] == [t.sha256 for t in full.tensors]
    assert "layer order taken from where each layer's data lies" in weights_only.source.note
    assert [t.name for t in weights_only.tensors][:4] == ["lstm/lstm_cell/kernel", "lstm/lstm_cell/recurrent_kernel",
                                                         "lstm/lstm_cell/bias", "bidirectional/forward_layer/cell/kernel"]


def test_bfloat16_saved_to_legacy_h5_is_recovered_from_the_dtype_policy(tmp_path, load_model):
    """Keras writes bfloat16 weights to .h5 as opaque 2-byte data and cannot load the file back."""
    model = load_model(FIXTURES / "zoo" / "half.keras")
    model.save(tmp_path / "half.h5")
    from_h5 = read_model(tmp_path / "half.h5")
    assert [(t.name, t.dtype, t.sha256) for t in from_h5.tensors] == \
           [(t.name, t.dtype, t.sha256) for t in converter.extract(model)]
    assert from_h5.source.reader == "h5" and "bfloat16 weights recovered" in from_h5.source.note


def double(x):
    return x * 2


def test_a_lambda_wrapping_a_named_function_is_refused_as_code(tmp_path, keras_module):
    """A Lambda holds code whether it wraps a lambda or a def: exit 5 with the Keras reader, never 4."""
    inputs = keras_module.Input((3,))
    outputs = keras_module.layers.Dense(1, name="out")(keras_module.layers.Lambda(double, name="twice")(inputs))
    keras_module.Model(inputs, outputs, name="named").save(tmp_path / "named.keras")
    with pytest.raises(converter.UnsafeInput, match="Lambda layer 'twice' holds Python code"):
        read_model(tmp_path / "named.keras", "keras")
    assert [t.name for t in converter.extract(tmp_path / "named.keras")] == ["out/kernel", "out/bias"]


def test_a_weights_only_file_gets_one_line_of_information_about_its_order(tmp_path, load_model, capsys):
    from converter.cli import main

    load_model(SEED_KERAS).save_weights(tmp_path / "seed.weights.h5")
    assert main(["inspect", str(tmp_path / "seed.weights.h5")]) == 0
    lines = capsys.readouterr().err.splitlines()
    assert len(lines) == 1 and "read with the direct HDF5 reader instead" in lines[0]
    assert "not always the model's" in lines[0] and "input_invalid" not in lines[0] and "error" not in lines[0].lower()


def test_inspect_with_reader_h5_imports_no_format_library_it_does_not_write():
    """`inspect --reader h5` writes nothing: pyarrow (~30 ms) and TensorFlow are never imported (issue 18)."""
    code = ("import sys; from converter._launch import main; code = main(['inspect', 'fixtures/seed_mlp.keras', "
            "'--reader', 'h5']); assert code == 0; "
            "assert not {'pyarrow', 'tensorflow', 'keras', 'pandas'} & {m.split('.')[0] for m in sys.modules}, "
            "sorted(m for m in sys.modules if m.split('.')[0] in ('pyarrow', 'tensorflow', 'keras', 'pandas'))[:3]")
    result = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True,
                            env={**os.environ, "PYTHONPATH": str(ROOT)}, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]


def test_groups_named_with_gaps_in_their_counters_map_by_counter_order(keras_module, tmp_path):
    """tf.keras 2.13/2.14 counted every layer it built: four Dense layers stored as dense, dense_2, dense_4, dense_6
    (issue 25). The k-th Dense is the k-th group in counter order; every dataset is still read."""
    import zipfile

    import h5py

    keras = keras_module
    model = keras.Sequential([keras.Input((3,)), *(keras.layers.Dense(4 + i, name=f"d{i}") for i in range(4))])
    model.save(tmp_path / "m.keras")
    with zipfile.ZipFile(tmp_path / "m.keras") as archive:
        members = {name: archive.read(name) for name in archive.namelist()}
    (tmp_path / "w.h5").write_bytes(members["model.weights.h5"])
    with h5py.File(tmp_path / "w.h5", "r+") as handle:
        for old, new in (("dense_3", "dense_6"), ("dense_2", "dense_4"), ("dense_1", "dense_2")):
            handle.move(f"layers/{old}", f"layers/{new}")
        assert sorted(handle["layers"]) == ["dense", "dense_2", "dense_4", "dense_6"]
    members["model.weights.h5"] = (tmp_path / "w.h5").read_bytes()
    with zipfile.ZipFile(tmp_path / "gaps.keras", "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
    tensors = {t.name: t.array for t in converter.extract(tmp_path / "gaps.keras", reader="h5")}
    assert list(tensors) == [f"d{i}/{role}" for i in range(4) for role in ("kernel", "bias")]
    for i, layer in enumerate(model.layers):
        assert_bit_identical(tensors[f"d{i}/kernel"], layer.get_weights()[0])
        assert_bit_identical(tensors[f"d{i}/bias"], layer.get_weights()[1])


@pytest.mark.parametrize("held, named, kind", [(SEED_H5, "seed_mlp.keras", "HDF5 data"),
                                               (SEED_KERAS, "seed_mlp.h5", "a .keras (zip) archive")])
@pytest.mark.parametrize("reader", ["auto", "keras", "h5"])
def test_a_file_is_read_as_what_it_holds_whatever_its_name(held, named, kind, reader, tmp_path):
    """HDF5 saved under a .keras name (what tf.keras 2.x's model.save("m.keras") wrote) and a .keras archive named
    .h5: every reader reads the file as what it holds, bit for bit as under its right name, and says so."""
    misnamed = tmp_path / named
    shutil.copyfile(held, misnamed)
    expected = read_model(held, reader)
    weights = read_model(misnamed, reader)
    assert records(weights) == records(expected) and weights.source.format == expected.source.format
    assert weights.source.note.startswith(f"{named} holds {kind}")
    manifest = converter.export(misnamed, tmp_path / "out", formats=["npz", "c"], reader=reader)
    assert converter.verify(tmp_path / "out").ok and manifest["source"]["note"].startswith(f"{named} holds")
    with np.load(tmp_path / "out" / "seed_mlp.npz") as exported:
        for tensor in expected.tensors:
            assert_bit_identical(exported[tensor.name], tensor.array)


@pytest.mark.parametrize("path", ALL_MODEL_FILES, ids=lambda p: p.name)
def test_both_readers_state_one_model_in_the_manifest(path):
    """Name, class, inputs and outputs: the direct reader builds no model, so its input and output shapes come
    from the configuration (cgen.signature), equal to what Keras's model.inputs/outputs give."""
    assert converter.inspect(path, reader="h5")["model"] == converter.inspect(path, reader="keras")["model"]


def test_a_functional_model_saved_as_model_is_functional(tmp_path):
    """tf.keras before 2.4 saved functional models with class_name "Model"; Keras 3 loads them as Functional."""
    edited = tmp_path / "old_class.h5"
    shutil.copyfile(FIXTURES / "zoo" / "nested.h5", edited)
    with h5py.File(edited, "r+") as handle:
        config = json.loads(handle.attrs["model_config"])
        config["class_name"] = "Model"
        handle.attrs["model_config"] = json.dumps(config)
    assert read_model(edited, "h5").class_name == "Functional"


def test_a_quantization_aware_model_s_ranges_and_step_are_not_trainable():
    """tensorflow-model-optimization's wrappers create their quantizer ranges and step counter untrainable (Keras 3
    cannot load the file): the direct reader says so as tf_keras does (legacy_qat.trainable.json, written by
    fixtures/make_legacy_fixtures.py from the variables themselves)."""
    expected = json.loads((LEGACY / "legacy_qat.trainable.json").read_text())
    weights = read_model(LEGACY / "legacy_qat.h5")
    assert len(weights.tensors) == len(expected) == 32
    for tensor in weights.tensors:  # named with the wrapper first: quant_dense_3/dense_3/kernel is dense_3/kernel
        layer, *_, role = tensor.name.split("/")
        key = f"{layer}/{role}" if f"{layer}/{role}" in expected else f"{tensor.name.split('/')[1]}/{role}"
        assert tensor.trainable == expected[key], tensor.name
