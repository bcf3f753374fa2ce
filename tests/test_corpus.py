"""Real files from public repositories (../shared/corpus, skipped when absent).

Until the direct reader lands, a file Keras 3 cannot load must give a clear ConverterError; every file
it can load must export and verify.
"""
from pathlib import Path

import pytest

import converter
from conftest import ROOT, assert_bit_identical, reference_weights

CORPUS = ROOT.parent / "shared" / "corpus"
FILES = sorted(p for p in CORPUS.glob("*/*") if p.suffix in (".h5", ".keras") or (p / "saved_model.pb").exists())


@pytest.mark.skipif(not FILES, reason="../shared/corpus is not present")
@pytest.mark.parametrize("path", FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_file_exports_exactly_or_fails_clearly(path: Path, tmp_path, load_model):
    try:
        manifest = converter.export(path, tmp_path)
    except converter.ConverterError as error:
        assert type(error) is not converter.ConverterError and error.exit_code in (4, 5)
        assert path.name in str(error) and error.hint
        assert not any(tmp_path.iterdir()), "a failed export left files behind"
        return
    assert converter.verify(tmp_path).ok
    arrays = converter.read(tmp_path / manifest["files"][0]["path"])
    for tensor, expected in zip(manifest["tensors"], reference_weights(load_model(path)), strict=True):
        assert_bit_identical(arrays[tensor["name"]], expected)
