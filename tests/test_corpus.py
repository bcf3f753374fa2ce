"""Real files from public repositories (../shared/corpus, skipped when absent).

Every file, the SavedModel folder included, exports and verifies with the default reader.
Where Keras 3 loads the model, both readers give identical records; where it does not, the direct
reader's tensors are exactly the file's datasets, in the order its layer_names and weight_names give.
"""
from pathlib import Path

import h5py
import numpy as np
import pytest

import converter
from converter.readers import read_model
from conftest import ROOT, assert_bit_identical, reference_weights

CORPUS = ROOT.parent / "shared" / "corpus"
FILES = sorted(p for p in CORPUS.glob("*/*") if p.suffix in (".h5", ".keras") or (p / "saved_model.pb").exists())
pytestmark = pytest.mark.skipif(not FILES, reason="../shared/corpus is not present")


def records(weights) -> list[tuple]:
    return [(t.name, t.layer, t.role, t.layer_index, t.dtype, t.shape, t.trainable, t.sha256) for t in weights.tensors]


def datasets_in_file_order(path: Path) -> list[np.ndarray]:
    """Independently of the reader: the datasets a legacy HDF5 file lists, in the order it lists them."""
    def text(value):
        return value.decode() if isinstance(value, bytes) else str(value)

    with h5py.File(path, "r") as handle:
        root = handle["model_weights"] if "model_weights" in handle else handle
        return [np.asarray(root[text(layer)][text(weight)][()])
                for layer in root.attrs["layer_names"] for weight in root[text(layer)].attrs.get("weight_names", [])]


@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_file_exports_and_verifies(path: Path, tmp_path):
    manifest = converter.export(path, tmp_path)
    assert converter.verify(tmp_path).ok
    assert manifest["model"]["tensors"] > 0 and manifest["source"]["keras_version"] != ""


@pytest.mark.parametrize("path", [p for p in FILES if p.is_file()], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_both_readers_agree_or_the_direct_reader_matches_the_datasets(path: Path, load_model):
    direct = read_model(path, "h5")
    try:
        model = load_model(path)
    except Exception:  # Keras 3 cannot load it: compare with the file's own datasets
        arrays = datasets_in_file_order(path)
        assert len(arrays) == len(direct.tensors)
        for tensor, array in zip(direct.tensors, arrays, strict=True):
            assert_bit_identical(tensor.array, array)
        return
    assert records(direct) == records(read_model(path, "keras"))
    for tensor, array in zip(direct.tensors, reference_weights(model), strict=True):
        assert_bit_identical(tensor.array, array)
