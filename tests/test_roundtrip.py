"""End to end: export each fixture model to every format, read every file back, compare with get_weights()."""
import numpy as np
import pytest

import converter
from conftest import ALL_MODEL_FILES, SEED_KERAS, assert_bit_identical, reference_weights


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
    names = [t["name"] for t in manifest["tensors"]]
    assert list(arrays) == names  # converter.read gives tensor names, in model order, for every format
    for name, array in zip(names, expected, strict=True):
        assert_bit_identical(arrays[name], array)


@pytest.mark.parametrize("path", ALL_MODEL_FILES, ids=lambda p: p.name)
def test_verify_passes_on_every_export(exports, path):
    report = converter.verify(exports[path][0])
    assert report.ok and [f.path for f in report.files] == [f["path"] for f in exports[path][1]["files"]]
    assert list(dict.fromkeys(f.format for f in report.files)) == list(converter.FORMATS)
    tensors_found = {}
    for check in report.files:  # every tensor checked once per format, in whichever file holds it
        tensors_found[check.format] = tensors_found.get(check.format, 0) + check.tensors
    assert set(tensors_found.values()) == {exports[path][1]["model"]["tensors"]}


@pytest.mark.parametrize("format_name", list(converter.FORMATS))
def test_verify_finds_a_changed_weight_by_its_tensor_checksum(tmp_path, format_name):
    """One weight changed in place and the file's hash in the manifest updated to match: only the tensor
    checksums can catch it, and verify must name the tensor."""
    import json

    from converter import c_text

    manifest = converter.export(SEED_KERAS, tmp_path, formats=[format_name])
    first = converter.extract(SEED_KERAS)[0]  # dense/kernel, the first array of every format
    entry = manifest["files"][-1]  # the .c file for C, the only file otherwise
    path = tmp_path / entry["path"]
    data = bytearray(path.read_bytes())
    if format_name == "c":
        value = first.array.reshape(-1)[0]
        literal = c_text.float32_literal(value).strip().encode()
        changed = c_text.float32_literal(np.nextafter(value, np.float32(np.inf))).strip().encode()
        data[data.index(literal):data.index(literal) + len(literal)] = changed
    else:
        data[data.index(first.array.tobytes()[:8]) + 2] ^= 0x01  # raw float32 bytes: each format stores them as-is
    path.write_bytes(bytes(data))
    if format_name == "npz":  # rewritten consistently: the member's CRC-32 matches its new bytes
        import zipfile

        from converter.readers.window import StoredMember

        with zipfile.ZipFile(path) as damaged:
            members = {}
            for info in damaged.infolist():
                with StoredMember(path, info.header_offset, info.file_size) as member:
                    members[info] = member.read()
        with zipfile.ZipFile(path, "w") as rebuilt:
            for info, member in members.items():
                rebuilt.writestr(info, member)
    entry["sha256"] = converter.atomic.read_sha256(path)
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    key = manifest["tensors"][0]["keys"][format_name]
    problems = [p for f in converter.verify(tmp_path).files for p in f.problems]
    assert problems == [f"{key}: bytes differ from the manifest's sha256"]


def test_verify_reports_a_missing_file(tmp_path):
    converter.export(ALL_MODEL_FILES[0], tmp_path, formats=["npz", "safetensors"])
    (tmp_path / "seed_mlp.npz").unlink()
    report = converter.verify(tmp_path)
    assert [f.ok for f in report.files] == [False, True] and report.files[0].problems[0] == "file is missing"
    assert "dense/kernel: missing" in report.files[0].problems


def test_verify_against_the_model_finds_a_tensor_left_out_of_the_export(tmp_path):
    """An export that lost a tensor (here: removed from the manifest and the file) verifies by itself; checked
    against its model it does not."""
    import json

    converter.export(SEED_KERAS, tmp_path, formats=["safetensors"], layout="dense_out_in")
    assert converter.verify(tmp_path, model=SEED_KERAS).ok
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["tensors"] = [t for t in manifest["tensors"] if t["name"] != "dense_1/bias"]
    import safetensors.numpy

    arrays = {k: v for k, v in safetensors.numpy.load_file(tmp_path / "seed_mlp.safetensors").items() if k != "dense_1/bias"}
    safetensors.numpy.save_file(arrays, tmp_path / "seed_mlp.safetensors", metadata={"format": "np"})
    manifest["files"][0]["sha256"] = converter.atomic.read_sha256(tmp_path / "seed_mlp.safetensors")
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    assert converter.verify(tmp_path).ok
    report = converter.verify(tmp_path, model=SEED_KERAS)
    assert report.files[-1].problems == ["dense_1/bias: in the model but not in the export",
                                         "the model holds 6 tensors, the export 5"]
