"""The manifest: golden file for the seed model, schema, determinism, independent checksums."""
import hashlib
import json

import jsonschema
import pytest

import converter
from converter import manifest as manifests
from conftest import ALL_MODEL_FILES, GOLDEN, SEED_KERAS, reference_weights


def without_volatile(manifest: dict) -> dict:
    """Drop what legitimately changes with library versions: producer versions and Parquet's bytes."""
    copy = json.loads(json.dumps(manifest))
    copy.pop("producer")
    for entry in copy["files"]:
        if entry["format"] == "parquet":  # pyarrow writes its own version into the file
            entry.pop("bytes"), entry.pop("sha256")
    return copy


@pytest.fixture(scope="module")
def seed_export(tmp_path_factory):
    out = tmp_path_factory.mktemp("seed")
    return out, converter.export(SEED_KERAS, out)


def test_seed_export_matches_the_golden_manifest(seed_export):
    out, manifest = seed_export
    golden = json.loads((GOLDEN / "manifest.json").read_text())
    assert without_volatile(manifest) == without_volatile(golden)
    for name in ("seed_mlp.npz", "seed_mlp.safetensors", "seed_mlp.h", "seed_mlp.c"):
        assert (out / name).read_bytes() == (GOLDEN / name).read_bytes()


def test_golden_checksums_agree_with_get_weights_computed_independently(load_model):
    golden = json.loads((GOLDEN / "manifest.json").read_text())
    arrays = reference_weights(load_model(SEED_KERAS))
    assert [t["sha256"] for t in golden["tensors"]] == [hashlib.sha256(a.astype("<f4").tobytes()).hexdigest() for a in arrays]
    assert golden["source"]["sha256"] == hashlib.sha256(SEED_KERAS.read_bytes()).hexdigest()
    assert golden["model"]["parameters"] == 4 * 20 + 20 + 20 * 10 + 10 + 10 * 1 + 1


def test_manifest_file_is_canonical_json(seed_export):
    out, manifest = seed_export
    text = (out / "manifest.json").read_text()
    assert text == json.dumps(manifest, sort_keys=True, indent=2, allow_nan=False) + "\n"
    assert str(out) not in text and "/" not in manifest["source"]["file"]


def test_layers_carry_the_config_needed_to_use_the_weights(seed_export):
    layers = seed_export[1]["layers"]
    assert [(layer["name"], layer["config"]["units"], layer["config"]["activation"]) for layer in layers] == [
        ("dense", 20, "relu"), ("dense_1", 10, "relu"), ("dense_2", 1, "linear")]
    assert layers[0]["input_shape"] == [None, 4] and layers[2]["output_shape"] == [None, 1]
    assert layers[0]["tensors"] == ["dense/kernel", "dense/bias"]


def test_tensor_entries_list_every_format_key(seed_export):
    tensor = seed_export[1]["tensors"][0]
    assert tensor["keys"] == {"npz": "dense/kernel", "parquet": "dense/kernel", "safetensors": "dense/kernel",
                              "c": "seed_mlp_dense_kernel"}
    assert (tensor["dtype"], tensor["byte_order"], tensor["nbytes"], tensor["shape"]) == ("float32", "little", 320, [4, 20])


def test_two_exports_are_byte_identical(tmp_path):
    first = converter.export(SEED_KERAS, tmp_path / "a")
    converter.export(SEED_KERAS, tmp_path / "b")
    for entry in first["files"] + [{"path": "manifest.json"}]:
        assert (tmp_path / "a" / entry["path"]).read_bytes() == (tmp_path / "b" / entry["path"]).read_bytes()


@pytest.mark.parametrize("path", ALL_MODEL_FILES, ids=lambda p: p.name)
def test_every_fixture_manifest_validates_against_the_schema(path):
    manifest = converter.inspect(path)
    jsonschema.Draft202012Validator(manifests.schema()).validate(manifest)


def test_schema_rejects_what_it_should():
    manifest = json.loads((GOLDEN / "manifest.json").read_text())
    validator = jsonschema.Draft202012Validator(manifests.schema())
    validator.validate(manifest)
    bad = [("tensors", 0, "dtype", "complex64"), ("tensors", 0, "sha256", "xyz"), ("files", 0, "path", "/abs/file.npz")]
    for *where, key, value in bad:
        broken = json.loads(json.dumps(manifest))
        target = broken
        for step in where:
            target = target[step]
        target[key] = value
        assert not validator.is_valid(broken), (where, key)


def test_parquet_embeds_the_manifest_without_its_file_list(seed_export):
    from converter.formats import parquet

    out, manifest = seed_export
    embedded = parquet.embedded_manifest(out / "seed_mlp.parquet")
    assert embedded == {**manifest, "files": []}


def test_the_manifest_records_the_prefix_the_c_identifiers_really_have_and_names_the_tool(tmp_path):
    manifest = converter.export(SEED_KERAS, tmp_path, formats=["c"])
    assert manifest["options"]["c"]["prefix"] == "seed_mlp"
    assert manifest["tensors"][0]["keys"]["c"].startswith("seed_mlp_")
    assert manifest["producer"]["keras-weights"] == converter.__version__ and "converter" not in manifest["producer"]


def test_producer_versions_are_the_installed_ones():
    """Read from the dist-info folders' names (no importlib.metadata import at start-up): the same versions."""
    from importlib import metadata

    from converter import manifest

    expected = {name: metadata.version(name) for name in manifest._PRODUCER_PACKAGES}
    assert {name: version for name, version in manifest.producer().items() if name != "keras-weights"} == expected
    assert manifest._installed_versions()["numpy"] == metadata.version("numpy")
