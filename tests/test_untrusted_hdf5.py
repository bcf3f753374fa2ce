"""Crafted HDF5 data that would make a reader leave the file or exhaust memory: refused (exit 5) by every
reader, never a fallback, nothing written, and nothing of the other file in any output."""
import os
import shutil
import zipfile

import h5py
import numpy as np
import pytest

import converter

from converter.cli import main
from conftest import SEED_H5, SEED_KERAS

SECRET = b"TOP-SECRET-KEY-0123456789abcdef-" * 4  # 128 bytes, the size of a 32-value float32 dataset
H5_TARGET = "model_weights/dense_2/seed_mlp/dense_2/kernel"  # (10, 1) float32 in the seed .h5
KERAS_TARGET = "layers/dense_2/vars/0"                        # the same kernel in the .keras archive


def replace_dataset(handle: h5py.File, target: str, make) -> None:
    """Swap ``target`` for what ``make(parent_group, name)`` creates under the same name."""
    parent, name = target.rsplit("/", 1)
    del handle[target]
    make(handle[parent], name)


def external_storage(secret_file):
    return lambda group, name: group.create_dataset(name, (10, 1), "<f4", external=[(str(secret_file), 0, 40)])


def external_link(other_file):
    return lambda group, name: group.__setitem__(name, h5py.ExternalLink(str(other_file), "/data"))


def soft_link(group, name):
    group[name] = h5py.SoftLink("/" + group.name.strip("/") + "/bias")


def virtual_dataset(other_file):
    def make(group, name):
        layout = h5py.VirtualLayout((10, 1), "<f4")
        layout[:] = h5py.VirtualSource(str(other_file), "data", shape=(10, 1))
        group.create_virtual_dataset(name, layout)
    return make


def reference_dataset(group, name):
    dataset = group.create_dataset(name, (10,), h5py.ref_dtype)
    dataset[0] = group.file.ref


def size_bomb(group, name):  # 2**28 float32 values declared, none written: a 1 GiB allocation from a tiny file
    group.create_dataset(name, (2**14, 2**14), "<f4", chunks=(256, 256), compression="gzip")


CASES = {
    "external storage": (external_storage, "stored in other files"),
    "external link": (external_link, "external link"),
    "soft link": (lambda _: soft_link, "soft link"),
    "virtual dataset": (virtual_dataset, "virtual dataset"),
    "references": (lambda _: reference_dataset, "references"),
    "size bomb": (lambda _: size_bomb, "size bomb"),
}


@pytest.fixture
def secret(tmp_path):
    """A file the crafted model points at: raw bytes and, for links and virtual datasets, HDF5."""
    raw = tmp_path / "secret.bin"
    raw.write_bytes(SECRET)
    other = tmp_path / "secret.h5"
    with h5py.File(other, "w") as handle:
        handle["data"] = np.frombuffer(SECRET[:40], "<f4").reshape(10, 1)
    return raw, other


def crafted_h5(tmp_path, case, secret):
    maker, _ = CASES[case]
    path = tmp_path / "crafted.h5"
    shutil.copy(SEED_H5, path)
    with h5py.File(path, "r+") as handle:
        replace_dataset(handle, H5_TARGET, maker(secret[1] if "link" in case or "virtual" in case else secret[0]))
    return path


def crafted_keras(tmp_path, case, secret):
    maker, _ = CASES[case]
    weights = tmp_path / "model.weights.h5"
    with zipfile.ZipFile(SEED_KERAS) as archive:
        weights.write_bytes(archive.read("model.weights.h5"))
        members = {name: archive.read(name) for name in archive.namelist() if name != "model.weights.h5"}
    with h5py.File(weights, "r+") as handle:
        replace_dataset(handle, KERAS_TARGET, maker(secret[1] if "link" in case or "virtual" in case else secret[0]))
    path = tmp_path / "crafted.keras"
    with zipfile.ZipFile(path, "w") as archive:
        for name, data in members.items():
            archive.writestr(name, data)
        archive.write(weights, "model.weights.h5")
    return path


@pytest.mark.parametrize("reader", ["auto", "h5", "keras"])
@pytest.mark.parametrize("kind", ["h5", "keras"])
@pytest.mark.parametrize("case", list(CASES))
def test_crafted_hdf5_is_refused_by_every_reader(tmp_path, capsys, secret, case, kind, reader):
    model = (crafted_h5 if kind == "h5" else crafted_keras)(tmp_path, case, secret)
    out = tmp_path / "out"
    code = main(["export", str(model), "-o", str(out), "--reader", reader])
    _, err = capsys.readouterr()
    assert code == 5, err
    assert CASES[case][1] in err and "Traceback" not in err
    assert "instead" not in err  # a refusal is never a reason to fall back
    assert not out.exists()


def test_the_refusal_names_the_object_and_the_other_file(tmp_path, capsys, secret):
    model = crafted_h5(tmp_path, "external storage", secret)
    assert main(["inspect", str(model)]) == 5
    err = capsys.readouterr().err
    assert f"/{H5_TARGET}" in err and str(secret[0]) in err


def test_external_storage_on_a_fifo_is_refused_without_opening_it(tmp_path, capsys, secret):
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    model = crafted_h5(tmp_path, "external storage", (fifo, None))  # reading it would block forever
    assert main(["inspect", str(model), "--reader", "h5"]) == 5


def test_nothing_of_the_other_file_reaches_an_output_when_checks_pass(tmp_path, secret):
    """The control: the same crafting with a plain dataset exports, so the refusals above are the checks'."""
    model = crafted_h5(tmp_path, "external storage", secret)
    with h5py.File(model, "r+") as handle:
        replace_dataset(handle, H5_TARGET, lambda g, n: g.create_dataset(n, data=np.ones((10, 1), "<f4")))
    assert main(["export", str(model), "-o", str(tmp_path / "out"), "--reader", "h5", "-q"]) == 0
    for output in (tmp_path / "out").iterdir():
        assert SECRET[:16] not in output.read_bytes()


def test_a_size_bomb_of_10_to_the_12_values_is_refused_quickly(tmp_path, capsys):
    """Declared, chunked and compressed, never written: neither the probe nor a reader decompresses it."""
    import time

    import h5py

    model = tmp_path / "bomb.h5"
    shutil.copy(SEED_H5, model)
    with h5py.File(model, "r+") as handle:
        replace_dataset(handle, H5_TARGET, lambda g, n: g.create_dataset(n, (10**6, 10**6), "<f4", chunks=(1024, 1024),
                                                                        compression="gzip"))
    started = time.monotonic()
    assert main(["inspect", str(model), "--reader", "h5"]) == 5
    assert "size bomb" in capsys.readouterr().err and time.monotonic() - started < 30


def test_allow_sparse_reads_a_genuinely_sparse_dataset(tmp_path):
    """A dataset declared but never written (all fill values) is read when the user says the file is sparse."""
    import h5py

    model = tmp_path / "sparse.h5"
    shutil.copy(SEED_H5, model)
    with h5py.File(model, "r+") as handle:
        replace_dataset(handle, H5_TARGET, lambda g, n: g.create_dataset(n, (5000, 5000), "<f4", chunks=(500, 500),
                                                                        compression="gzip", fillvalue=0.5))
    with pytest.raises(converter.UnsafeInput, match="size bomb"):
        converter.extract(model, reader="h5")
    tensors = {t.name: t for t in converter.extract(model, reader="h5", allow_sparse=True)}
    assert tensors["dense_2/kernel"].shape == (5000, 5000) and float(tensors["dense_2/kernel"].array[0, 0]) == 0.5
