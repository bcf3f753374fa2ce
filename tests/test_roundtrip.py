"""End to end: export each fixture model to every format, read every file back, compare with get_weights()."""
import pytest

import converter
from conftest import ALL_MODEL_FILES, assert_bit_identical, reference_weights


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Every fixture model exported once to every format."""
    root = tmp_path_factory.mktemp("exports")
    return {path: (root / f"{path.stem}-{path.suffix[1:]}", converter.export(path, root / f"{path.stem}-{path.suffix[1:]}"))
            for path in ALL_MODEL_FILES}


@pytest.mark.parametrize("format_name", converter.FORMATS)
@pytest.mark.parametrize("path", ALL_MODEL_FILES, ids=lambda p: p.name)
def test_every_written_file_reads_back_bit_identical_to_get_weights(exports, load_model, path, format_name):
    out, manifest = exports[path]
    arrays = {}
    for entry in manifest["files"]:
        if entry["format"] == format_name:
            arrays.update(converter.read(out / entry["path"]))
    expected = reference_weights(load_model(path))
    keys = [t["keys"][format_name] for t in manifest["tensors"]]
    assert sorted(arrays) == sorted(keys)
    for key, array in zip(keys, expected, strict=True):
        assert_bit_identical(arrays[key], array)


@pytest.mark.parametrize("path", ALL_MODEL_FILES, ids=lambda p: p.name)
def test_verify_passes_on_every_export(exports, path):
    report = converter.verify(exports[path][0])
    assert report.ok and [f.path for f in report.files] == [f["path"] for f in exports[path][1]["files"]]
    assert list(dict.fromkeys(f.format for f in report.files)) == list(converter.FORMATS)
    tensors_found = {}
    for check in report.files:  # every tensor checked once per format, in whichever file holds it
        tensors_found[check.format] = tensors_found.get(check.format, 0) + check.tensors
    assert set(tensors_found.values()) == {exports[path][1]["model"]["tensors"]}


@pytest.mark.parametrize("format_name", converter.FORMATS)
def test_verify_catches_a_flipped_byte_in_tensor_data(tmp_path, format_name):
    manifest = converter.export(ALL_MODEL_FILES[0], tmp_path, formats=[format_name])
    path = tmp_path / manifest["files"][0]["path"]
    data = bytearray(path.read_bytes())
    position = {"parquet": len(data) // 3, "c": len(data) // 2}.get(format_name, len(data) - 5)
    data[position] ^= 0x01
    path.write_bytes(bytes(data))
    report = converter.verify(tmp_path)
    assert not report.ok
    assert any("sha256" in problem for problem in report.files[0].problems)


def test_verify_finds_a_tensor_whose_bytes_changed_even_when_the_file_hash_was_updated(tmp_path):
    """A file rewritten consistently (file hash patched too) is still caught by the tensor checksums."""
    import json

    import numpy as np

    manifest = converter.export(ALL_MODEL_FILES[0], tmp_path, formats=["npz"])
    arrays = converter.read(tmp_path / "seed_mlp.npz")
    arrays["dense/bias"] = arrays["dense/bias"] + np.float32(1)
    np.savez(tmp_path / "seed_mlp.npz", **arrays)
    manifest["files"][0]["sha256"] = converter.atomic.read_sha256(tmp_path / "seed_mlp.npz")
    manifest["files"][0]["bytes"] = (tmp_path / "seed_mlp.npz").stat().st_size
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    problems = converter.verify(tmp_path).files[0].problems
    assert problems == ["dense/bias: bytes differ from the manifest's sha256"]


def test_verify_reports_a_missing_file(tmp_path):
    converter.export(ALL_MODEL_FILES[0], tmp_path, formats=["npz", "safetensors"])
    (tmp_path / "seed_mlp.npz").unlink()
    report = converter.verify(tmp_path)
    assert [f.ok for f in report.files] == [False, True] and report.files[0].problems[0] == "file is missing"
    assert "dense/kernel: missing" in report.files[0].problems
