"""Foreign export folders and model files, crafted as an attacker would (issue 23): every command reads them, none
trusts them. Each test builds its crafted input here and fails without the fix it covers."""
import json
import shutil

import pytest

import converter
from conftest import GOLDEN, SEED_KERAS
from converter import atomic
from converter.cli import main

needs_gcc = pytest.mark.skipif(not shutil.which("gcc"), reason="gcc not installed (Debian package gcc)")


def rewrite_manifest(folder, change=lambda manifest: None):
    """Apply ``change`` to the folder's manifest and record every listed file's current hash, as a forger would."""
    manifest = json.loads((folder / "manifest.json").read_text())
    change(manifest)
    for entry in manifest["files"]:
        path = folder / entry["path"]
        if path.is_file():
            entry["sha256"], entry["bytes"] = atomic.read_sha256(path), path.stat().st_size
    (folder / "manifest.json").write_text(json.dumps(manifest))
    return manifest


PLANTED = """#include_next <{name}>
__attribute__((constructor)) static void planted_{tag}(void) {{
    FILE *mark = fopen("{marker}", "w");
    if (mark) fclose(mark);
}}
"""


def plant_system_headers(folder, marker):
    """Headers named like the system's, beside the export: with the folder on the include path they would be
    included instead, and their constructor would run when the program does."""
    for tag, name in enumerate(["stdio.h", "stdint.h", "stddef.h", "stdlib.h", "math.h"]):
        prelude = "#include_next <stdio.h>\n" if name != "stdio.h" else ""
        (folder / name).write_text(prelude + PLANTED.format(name=name, tag=tag, marker=marker))


@pytest.fixture(scope="module")
def inference_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("inference") / "out"
    converter.export(SEED_KERAS, folder, formats=["c"], options={"c": {"inference": True}})
    return folder


@needs_gcc
def test_verify_compile_never_includes_a_header_planted_in_the_folder(tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(GOLDEN, folder)
    marker = tmp_path / "code-ran"
    plant_system_headers(folder, marker)
    assert main(["verify", str(folder), "--compile"]) == 0
    assert not marker.exists()


@needs_gcc
def test_verify_predict_never_includes_a_header_planted_in_the_folder(inference_export, tmp_path):
    folder = tmp_path / "out"
    shutil.copytree(inference_export, folder)
    marker = tmp_path / "code-ran"
    plant_system_headers(folder, marker)
    assert main(["verify", str(folder), "--predict", str(SEED_KERAS)]) == 0
    assert not marker.exists()


@pytest.mark.parametrize("name", ["-fplugin=evil.so.c", "@options.c", ".hidden.c", "sub/seed_mlp.c", "a\nb.c"])
def test_file_names_that_could_read_as_compiler_options_are_refused_by_the_schema(tmp_path, name, capsys):
    folder = tmp_path / "out"
    shutil.copytree(GOLDEN, folder)
    rewrite_manifest(folder, lambda m: next(f for f in m["files"] if f["path"] == "seed_mlp.c").update(path=name))
    assert main(["verify", str(folder), "--compile"]) == 7
    assert "manifest schema" in capsys.readouterr().err


@pytest.mark.parametrize("change, said", [
    (lambda m: m["options"]["c"].update(evil=1), "unknown c option(s) evil"),
    (lambda m: m["options"]["c"].update(prefix=["x"]), "c option prefix must be str"),
    (lambda m: m["options"]["c"].update(prefix="x */ #include"), "C prefix must be letters"),
    (lambda m: m["options"]["c"].update(align=3), "C alignment must be a power of two"),
    (lambda m: m["options"]["c"].update(align=2**20), "C alignment must be a power of two"),
    (lambda m: m["options"]["c"].update(header_only=1), "c option header_only must be bool"),
    (lambda m: m["options"]["c"].update(arrays="sideways"), "must be one of flat, nested"),
    (lambda m: m["files"].pop(next(i for i, f in enumerate(m["files"]) if f["path"] == "seed_mlp.h")),
     "are not the files c writes"),
    (lambda m: m["options"].update(fortran={}), "options for an unknown format 'fortran'"),
    (lambda m: m["tensors"][0].update(transform="permute:0,0"), "its numbers are not an order of axes"),
    (lambda m: m["tensors"][0].update(transform="explode"), "unknown step 'explode'"),
    (lambda m: m["tensors"][0]["keys"].pop("c"), "has no key in c"),
])
def test_a_schema_valid_but_wrong_manifest_is_a_clear_exit_7(tmp_path, capsys, change, said):
    folder = tmp_path / "out"
    shutil.copytree(GOLDEN, folder)
    rewrite_manifest(folder, change)
    assert main(["verify", str(folder), "--compile"]) == 7
    err = capsys.readouterr().err
    assert said in err and "internal error" not in err, err


# -- point 4: one way to open a model, for every command -------------------------------------------------------
CRASHING_BYTE = (7625, 235)  # tests/test_safety.py: this byte of the seed .h5 makes HDF5 1.14 die with SIGSEGV


def model_arguments(tmp_path):
    """Crafted model files: a FIFO (blocks whoever opens it), an external link to another file, a crashing file."""
    import os

    import h5py

    from conftest import SEED_H5

    fifo = tmp_path / "fifo.keras"
    os.mkfifo(fifo)
    linked = tmp_path / "linked.h5"
    shutil.copy(SEED_H5, linked)
    with h5py.File(linked, "r+") as handle:
        target = "model_weights/dense_2/seed_mlp/dense_2/kernel"
        del handle[target]
        handle[target] = h5py.ExternalLink("/etc/passwd", "/data")
    crashing = tmp_path / "crashing.h5"
    data = bytearray(SEED_H5.read_bytes())
    data[CRASHING_BYTE[0]] = CRASHING_BYTE[1]
    crashing.write_bytes(bytes(data))
    return {"fifo": (fifo, 4, "is not a regular file"), "external link": (linked, 5, "external link"),
            "crash": (crashing, 4, "crashing.h5")}


@pytest.mark.parametrize("case", ["fifo", "external link", "crash"])
def test_load_and_verify_predict_open_models_through_the_same_checks_as_export(tmp_path, capsys, inference_export,
                                                                                   case):
    path, code, said = model_arguments(tmp_path)[case]
    assert main(["load", str(GOLDEN), str(path), "-o", str(tmp_path / "new.keras")]) == code
    assert said in capsys.readouterr().err
    assert main(["verify", str(inference_export), "--predict", str(path)]) == code
    assert said in capsys.readouterr().err
    for other in (["diff", str(path), str(GOLDEN)], ["report", str(GOLDEN), "--model", str(path), "-o",
                                                      str(tmp_path / "r.html")]):
        assert main(other) == code, other
        assert said in capsys.readouterr().err
    assert not (tmp_path / "new.keras").exists()


# -- point 6: outputs of load and report are written as export writes ------------------------------------------
@pytest.mark.parametrize("command", ["load", "report"])
def test_a_planted_link_at_the_staging_name_or_the_output_is_never_written_through(tmp_path, capsys, command):
    outside = tmp_path / "outside"
    outside.mkdir()
    folder = tmp_path / "work"
    folder.mkdir()
    name = "new.keras" if command == "load" else "r.html"
    argv = (["load", str(GOLDEN), str(SEED_KERAS), "-o", str(folder / name)] if command == "load"
            else ["report", str(GOLDEN), "-o", str(folder / name)])
    for planted in (f".{name}.partial", f".{name}.partial.keras", f".new.partial.keras"):  # the old fixed names
        (folder / planted).symlink_to(outside / f"victim-{planted}")
    (folder / name).symlink_to(outside / "victim")  # a dangling link at the output itself
    assert main(argv) == 6
    assert "already exists" in capsys.readouterr().err
    assert main([*argv, "--force"]) == 0
    assert list(outside.iterdir()) == [] and (folder / name).is_file() and not (folder / name).is_symlink()


@pytest.mark.parametrize("command", ["load", "report"])
def test_a_missing_output_folder_or_a_folder_in_the_way_is_exit_6(tmp_path, capsys, command):
    def argv(target):
        return (["load", str(GOLDEN), str(SEED_KERAS), "-o", str(target)] if command == "load"
                else ["report", str(GOLDEN), "-o", str(target)])
    name = "new.keras" if command == "load" else "r.html"
    assert main(argv(tmp_path / "missing" / name)) == 6
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / name).mkdir()
    assert main([*argv(tmp_path / name), "--force"]) == 6
    assert "is a folder" in capsys.readouterr().err


# -- point 11: the leftover cleanup removes what it says it removed --------------------------------------------
def test_a_leftover_that_is_a_link_is_removed_itself_and_what_it_names_is_kept(tmp_path):
    outside = tmp_path / "outside"
    (outside / "keep").mkdir(parents=True)
    folder = tmp_path / "out"
    folder.mkdir()
    (folder / f"{atomic.TEMP_PREFIX}999999999-x").symlink_to(outside)
    assert atomic.remove_stale(folder) == [f"{atomic.TEMP_PREFIX}999999999-x"]
    assert list(folder.iterdir()) == [] and (outside / "keep").is_dir()


# -- point 5: load checks what it loads; read is bounded and exact -----------------------------------------------
def test_load_refuses_a_flipped_bit_or_a_relabelled_dtype_naming_the_tensor(tmp_path, capsys):
    folder = tmp_path / "out"
    converter.export(SEED_KERAS, folder, formats=["npz", "safetensors"])
    data = bytearray((folder / "seed_mlp.safetensors").read_bytes())
    data[-1] ^= 1  # the last byte of the data: dense_2/kernel (safetensors stores tensors sorted by name)
    (folder / "seed_mlp.safetensors").write_bytes(bytes(data))
    rewrite_manifest(folder)  # the file's hash updated, as a forger would; the tensor's hash is not
    assert main(["load", str(folder), str(SEED_KERAS), "-o", str(tmp_path / "new.keras")]) == 7
    assert "seed_mlp.safetensors: dense_2/kernel: bytes differ from the manifest's sha256" in capsys.readouterr().err
    assert not (tmp_path / "new.keras").exists()
    relabelled = tmp_path / "relabelled"
    converter.export(SEED_KERAS, relabelled, formats=["npz"])
    rewrite_manifest(relabelled, lambda m: m["tensors"][0].update(dtype="int32"))
    assert main(["load", str(relabelled / "seed_mlp.npz"), str(SEED_KERAS), "-o", str(tmp_path / "new.keras")]) == 7
    assert "float32[4, 20] but the manifest says int32[4, 20]" in capsys.readouterr().err


def test_read_applies_the_declared_size_bound_before_reading(tmp_path):
    folder = tmp_path / "out"
    converter.export(SEED_KERAS, folder, formats=["npz"])
    rewrite_manifest(folder, lambda m: m["tensors"][0].update(nbytes=2**40))
    with pytest.raises(converter.InputInvalid, match="declares 1,099,511,628,740 bytes of tensors, more than npz files of 2,846 bytes can hold"):
        converter.read(folder / "seed_mlp.npz")


def parquet_with(folder, change):
    """The export's Parquet file with its rows changed by ``change(rows)`` (a list of dicts), metadata kept."""
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = folder / "seed_mlp.parquet"
    table = pq.read_table(path)
    rows = table.to_pylist()
    change(rows)
    pq.write_table(pa.Table.from_pylist(rows, schema=table.schema), path)
    rewrite_manifest(folder)


@pytest.mark.parametrize("change, said", [
    (lambda rows: rows[0].update(values=rows[0]["values"][:40]), "its rows hold 40 of its 80 values"),
    (lambda rows: rows.append(dict(rows[1])), "its rows hold the same values twice"),
    (lambda rows: rows[0].update(offset=10**12), "does not fit its float32 array of 80"),
    (lambda rows: rows[0].update(shape=[2**20, 2**20]), "more than the file can hold"),
])
def test_parquet_rows_that_do_not_cover_every_value_exactly_once_are_refused(tmp_path, capsys, change, said):
    folder = tmp_path / "out"
    converter.export(SEED_KERAS, folder, formats=["parquet"])
    parquet_with(folder, change)
    with pytest.raises(converter.InputInvalid, match=said):
        converter.read(folder / "seed_mlp.parquet")
    assert main(["diff", str(SEED_KERAS), str(folder)]) == 4  # never "equal" over uninitialised memory
    assert said in capsys.readouterr().err


def test_a_quantization_entry_whose_scale_is_missing_is_a_clear_error_for_diff(tmp_path, capsys):
    folder = tmp_path / "out"
    converter.export(SEED_KERAS, folder, formats=["npz"], quantize="int8")
    rewrite_manifest(folder, lambda m: m["tensors"][0]["quantization"].update(scale="dense/nothing"))
    assert main(["diff", str(SEED_KERAS), str(folder)]) == 4
    err = capsys.readouterr().err
    assert "tensor dense/kernel: its quantization entry" in err and "internal error" not in err
