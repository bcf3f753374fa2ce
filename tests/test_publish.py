"""Publication is a transaction: never over a file that exists without --force (even one that appears while
the export runs), all or nothing with --force, and --force replaces the previous export whole."""
import errno
import os

import pytest

import converter
from converter import atomic
from conftest import SEED_KERAS


def test_a_file_that_appears_during_the_export_is_not_overwritten(tmp_path, monkeypatch):
    """Another export publishing the same stem between our check and our publication: we fail, it stays."""
    from converter import readers

    real = readers.read_model

    def read_then_race(*args, **kwargs):
        weights = real(*args, **kwargs)
        tmp_path.mkdir(exist_ok=True)
        (tmp_path / "seed_mlp.npz").write_bytes(b"the other export's file")
        return weights

    monkeypatch.setattr(readers, "read_model", read_then_race)
    with pytest.raises(converter.OutputError, match="seed_mlp.npz appeared while this export was written"):
        converter.export(SEED_KERAS, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["seed_mlp.npz"]
    assert (tmp_path / "seed_mlp.npz").read_bytes() == b"the other export's file"


def test_a_dangling_symlink_named_like_an_output_is_not_replaced(tmp_path):
    os.symlink(tmp_path / "nowhere", tmp_path / "seed_mlp.npz")
    with pytest.raises(converter.OutputError, match="seed_mlp.npz already exists"):
        converter.export(SEED_KERAS, tmp_path, formats="npz")
    assert os.readlink(tmp_path / "seed_mlp.npz") == str(tmp_path / "nowhere")


def test_a_forced_export_that_fails_while_publishing_leaves_the_earlier_export_whole(tmp_path, monkeypatch):
    converter.export(SEED_KERAS, tmp_path, formats="npz,c")
    before = {p.name: p.read_bytes() for p in tmp_path.iterdir()}
    real = atomic._place

    def full_disk_at_the_manifest(source, destination):
        if destination.name == "manifest.json":
            raise OSError(errno.ENOSPC, "No space left on device")
        real(source, destination)

    monkeypatch.setattr(atomic, "_place", full_disk_at_the_manifest)
    with pytest.raises(converter.OutputError, match="No space left"):
        converter.export(SEED_KERAS, tmp_path, formats="npz,safetensors", force=True)
    assert {p.name: p.read_bytes() for p in tmp_path.iterdir()} == before
    assert converter.verify(tmp_path).ok


def test_force_removes_the_previous_exports_files_it_does_not_write_again(tmp_path):
    converter.export(SEED_KERAS, tmp_path)
    (tmp_path / "notes.txt").write_text("mine")  # not an export output: left alone
    converter.export(SEED_KERAS, tmp_path, formats="npz", force=True)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["manifest.json", "notes.txt", "seed_mlp.npz"]


def test_the_stem_never_starts_with_a_dash(tmp_path):
    import shutil

    shutil.copy(SEED_KERAS, tmp_path / "-rf.keras")
    manifest = converter.export(tmp_path / "-rf.keras", tmp_path / "out", formats="c")
    assert [f["path"] for f in manifest["files"]] == ["rf.h", "rf.c"]


def test_existing_outputs_are_refused_before_the_model_is_read(tmp_path, monkeypatch):
    from converter import readers

    converter.export(SEED_KERAS, tmp_path, formats="npz")
    monkeypatch.setattr(readers, "read_model", lambda *a, **k: pytest.fail("the model was read before the refusal"))
    with pytest.raises(converter.OutputError, match="already exist"):
        converter.export(SEED_KERAS, tmp_path, formats="npz")


def test_verify_reports_an_output_the_manifest_does_not_list(tmp_path):
    """A C file of an earlier export is what a firmware build's *.c glob would take; a user's own file is not."""
    converter.export(SEED_KERAS, tmp_path / "old", formats="c", options={"c": {"prefix": "old"}})
    converter.export(SEED_KERAS, tmp_path, formats="npz")
    (tmp_path / "old" / "seed_mlp.c").rename(tmp_path / "old_model.c")
    (tmp_path / "main.c").write_text('#include "seed_mlp.h"\nint main(void) { return 0; }\n')
    report = converter.verify(tmp_path)
    assert not report.ok and [f.path for f in report.files if not f.ok] == ["old_model.c"]
