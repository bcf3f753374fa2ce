"""Library-level behaviour of export(): argument checks, all-or-nothing output."""
import numpy as np
import pytest

import converter
from conftest import FIXTURES, SEED_KERAS


@pytest.fixture(scope="module")
def int64_model(keras_module):
    """A model with an int64 weight that float64 cannot hold exactly (2**62 + 1) beside float32 weights."""

    class Counter(keras_module.layers.Layer):
        def build(self, input_shape):
            self.count = self.add_weight(shape=(2,), dtype="int64", initializer="zeros", trainable=False, name="count")

        def call(self, x):
            return x

    inputs = keras_module.Input((3,))
    outputs = keras_module.layers.Dense(2, name="dense")(Counter(name="counter")(inputs))
    model = keras_module.Model(inputs, outputs, name="counting")
    model.get_layer("counter").set_weights([np.array([2**62 + 1, -5], np.int64)])
    return model


@pytest.fixture
def failing_c_writer(monkeypatch):
    """The last format's writer fails as a full disk would, after the others have written their files."""
    import errno

    from converter.formats import c

    def write(*args, **kwargs):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(c, "write", write)


def test_a_failing_format_leaves_no_output_at_all(tmp_path, int64_model, failing_c_writer):
    with pytest.raises(converter.OutputError):
        converter.export(int64_model, tmp_path / "out")
    assert not (tmp_path / "out").exists() or not any((tmp_path / "out").iterdir())


def test_a_failing_forced_export_leaves_the_earlier_export_intact(tmp_path, int64_model, failing_c_writer):
    converter.export(int64_model, tmp_path, formats="npz,safetensors", stem="counting")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    with pytest.raises(converter.OutputError):
        converter.export(int64_model, tmp_path, force=True, stem="counting")
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert converter.verify(tmp_path).ok


def test_int64_weights_round_trip_through_every_format(tmp_path, int64_model):
    """Parquet holds 2**62 + 1 beside float32 weights exactly: float64 values, exact bits in payload_bits."""
    manifest = converter.export(int64_model, tmp_path)
    for name in ("counting.npz", "counting.safetensors", "counting.parquet"):
        assert converter.read(tmp_path / name)["counter/count"].tolist() == [2**62 + 1, -5]
    assert [f["format"] for f in manifest["files"]] == ["npz", "safetensors", "parquet", "c", "c"]
    assert converter.verify(tmp_path).ok


def test_a_failed_load_creates_no_output_folder(tmp_path):
    (tmp_path / "bad.keras").write_bytes(b"PK\x03\x04 not really a zip")
    with pytest.raises(converter.InputInvalid):
        converter.export(tmp_path / "bad.keras", tmp_path / "out")
    assert not (tmp_path / "out").exists()


@pytest.mark.parametrize("stem", ["../escape", "a/b", "", ".hidden"])
def test_stems_that_are_not_plain_file_names_are_refused(tmp_path, stem):
    with pytest.raises(converter.UsageError):
        converter.export(SEED_KERAS, tmp_path, stem=stem)


def test_output_path_that_is_a_file_is_refused(tmp_path):
    (tmp_path / "file").write_text("x")
    with pytest.raises(converter.OutputError):
        converter.export(SEED_KERAS, tmp_path / "file")


def test_unknown_format_is_a_usage_error_before_any_work(tmp_path):
    with pytest.raises(converter.UsageError, match="unknown format 'onnx'"):
        converter.export("does-not-matter.keras", tmp_path, formats=["onnx"])


def test_non_finite_values_are_exported_exactly_but_reported(tmp_path, caplog):
    special = FIXTURES / "zoo" / "special_values.keras"
    manifest = converter.export(special, tmp_path / "out", formats=["npz"])
    kernel = manifest["tensors"][0]
    assert (kernel["name"], kernel["nan"], kernel["inf"]) == ("f32/kernel", 3, 2)
    assert "tensor f32/kernel holds 3 NaN and 2 infinite values (first at index [0, 0])" in caplog.text
    assert converter.verify(tmp_path / "out").ok
    with pytest.raises(converter.NonFiniteValues, match="6 tensors of special_values.keras hold NaN"):
        converter.export(special, tmp_path / "refused", fail_on_non_finite=True)
    assert not (tmp_path / "refused").exists()
    assert converter.export(SEED_KERAS, tmp_path / "clean", formats=["npz"])["tensors"][0]["nan"] == 0


def test_progress_reports_tensors_and_bytes_per_format_and_nothing_is_printed(tmp_path, capsys):
    calls = []
    converter.export(SEED_KERAS, tmp_path, formats=["npz", "c"], progress=lambda *args: calls.append(args))
    assert capsys.readouterr() == ("", "")
    assert calls[0] == ("npz", 0, 6, 0, 1284) and calls[6] == ("npz", 6, 6, 1284, 1284)
    assert calls[-1] == ("c", 6, 6, 1284, 1284) and len(calls) == 14


def test_a_very_long_layer_name_exports_to_every_format_and_verifies(tmp_path, keras_module):
    inputs = keras_module.Input((2,))
    model = keras_module.Model(inputs, keras_module.layers.Dense(1, name="n" * 200_000)(inputs), name="long")
    manifest = converter.export(model, tmp_path)
    assert converter.verify(tmp_path).ok
    assert converter.read(tmp_path / "long.npz")["n" * 200_000 + "/kernel"].shape == (2, 1)
    assert all(len(key) < 300 for t in manifest["tensors"] for fmt, key in t["keys"].items() if fmt in ("npz", "c"))


def test_every_public_name_is_what_it_says_whatever_was_imported_first():
    """The package loads its names on first use; a submodule named like a function would shadow it once
    imported (converter.diff the module instead of the function): none is."""
    import importlib
    import pkgutil

    for module in pkgutil.iter_modules(converter.__path__):
        if module.name != "__main__":  # that one runs the command line
            importlib.import_module(f"converter.{module.name}")
    for name in converter.__all__:
        assert not type(getattr(converter, name)).__name__ == "module", name
    assert callable(converter.diff) and callable(converter.report) and callable(converter.load_into)
