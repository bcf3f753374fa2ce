"""A foreign export folder is read, never trusted: verify allocates no more than the files hold."""
import json
import shutil
import zipfile

import numpy as np

import converter
from converter import atomic
from conftest import GOLDEN


def copy_golden(tmp_path):
    shutil.copytree(GOLDEN, tmp_path / "out")
    return tmp_path / "out"


def rewrite_manifest(folder, change):
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    for entry in manifest["files"]:
        entry["sha256"], entry["bytes"] = atomic.read_sha256(folder / entry["path"]), (folder / entry["path"]).stat().st_size
    (folder / "manifest.json").write_text(json.dumps(manifest))


def test_an_npz_member_declaring_more_than_it_holds_is_not_allocated(tmp_path):
    folder = copy_golden(tmp_path)
    with zipfile.ZipFile(folder / "seed_mlp.npz", "w") as archive:  # a header claiming 2**33 float32 values
        header = np.lib.format.header_data_from_array_1_0(np.zeros(1, np.float32))
        header["shape"] = (2**33,)
        with archive.open("dense/kernel.npy", "w") as member:
            np.lib.format.write_array_header_1_0(member, header)
            member.write(b"\0" * 64)
    rewrite_manifest(folder, lambda m: None)
    report = converter.verify(folder)
    problems = [p for f in report.files for p in f.problems]
    assert not report.ok and any("declares 34,359,738,368 bytes of data but holds" in p for p in problems)


def test_a_manifest_declaring_huge_tensors_is_not_read(tmp_path):
    folder = copy_golden(tmp_path)
    rewrite_manifest(folder, lambda m: m["tensors"][0].update(nbytes=2**40))
    report = converter.verify(folder)
    assert not report.ok and all("more than" in f.problems[0] for f in report.files if f.problems)


def test_a_c_array_declaring_more_values_than_the_file_holds_is_refused(tmp_path):
    folder = copy_golden(tmp_path)
    source = folder / "seed_mlp.c"
    source.write_text(source.read_text().replace("seed_mlp_dense_kernel[80]", "seed_mlp_dense_kernel[999999999999]"))
    rewrite_manifest(folder, lambda m: None)
    problems = [p for f in converter.verify(folder).files for p in f.problems]
    assert any("declares 999,999,999,999 values, more than the file can hold" in p for p in problems)


def test_a_one_line_c_file_is_refused_without_holding_the_line(tmp_path):
    folder = copy_golden(tmp_path)
    with open(folder / "seed_mlp.c", "ab") as handle:
        handle.write(b"/*" + b"x" * (20 * 2**20) + b"*/\n")
    rewrite_manifest(folder, lambda m: None)
    problems = [p for f in converter.verify(folder).files for p in f.problems]
    assert any("a line is longer than" in p for p in problems)


def test_a_sparse_safetensors_file_is_not_read(tmp_path):
    """1 GiB of holes behind a valid header: the manifest's tensors cannot be in a file with no data blocks."""
    import struct

    folder = copy_golden(tmp_path)
    target = folder / "seed_mlp.safetensors"
    header = json.dumps({"dense/kernel": {"dtype": "F32", "shape": [2**28], "data_offsets": [0, 2**30]}}).encode()
    header += b" " * (-len(header) % 8)
    with open(target, "wb") as handle:
        handle.write(struct.pack("<Q", len(header)) + header)
        handle.truncate(8 + len(header) + 2**30)  # a hole: no disk blocks, reads as zeros

    def declare(manifest):
        manifest["tensors"][0].update(nbytes=2**30, shape=[2**28])

    rewrite_manifest(folder, declare)
    report = converter.verify(folder)
    problems = [p for f in report.files if f.format == "safetensors" for p in f.problems]
    assert problems and "more than safetensors files of" in problems[0] and problems[0].endswith("not read")
