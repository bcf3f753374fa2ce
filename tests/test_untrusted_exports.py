"""Foreign export folders and model files, crafted as an attacker would (issue 23): every command reads them, none
trusts them. Each test builds its crafted input here and fails without the fix it covers."""
import json
import shutil

import numpy as np
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


# -- point 7: name clashes are refused, not written --------------------------------------------------------------
def test_two_tensors_with_one_torch_name_are_refused_naming_both(tmp_path, keras_module, capsys):
    keras = keras_module
    inner = keras.Sequential([keras.Input((3,)), keras.layers.Dense(2, name="d")], name="inner")
    x = keras.Input((3,), name="x")
    model = keras.Model(x, keras.layers.Concatenate()([inner(x), keras.layers.Dense(2, name="inner.d")(x)]), name="m")
    model.save(tmp_path / "clash.keras")
    assert main(["export", str(tmp_path / "clash.keras"), "-o", str(tmp_path / "out"), "--layout", "torch"]) == 4
    err = capsys.readouterr().err
    assert "maps two tensors to the name 'inner.d.weight': 'inner/d/kernel' and 'inner.d/kernel'" in err, err
    assert not (tmp_path / "out").exists()


def test_a_tensor_named_like_a_generated_kernel_or_macro_gets_another_identifier(tmp_path, keras_module):
    """A layer named kw_dense_f32 would define the forward pass's own kernel; one named input, its INPUT_SIZE."""
    keras = keras_module
    x = keras.Input((4,), name="x")
    y = keras.layers.Dense(3, name="input")(keras.layers.Dense(3, name="kw_dense_f32")(x))
    keras.Model(x, y, name="m").save(tmp_path / "m.keras")
    manifest = converter.export(tmp_path / "m.keras", tmp_path / "out", formats=["c"], options={"c": {"inference": True}})
    assert [t["keys"]["c"] for t in manifest["tensors"]] == ["m_t_kw_dense_f32_kernel", "m_t_kw_dense_f32_bias",
                                                             "m_input_kernel", "m_input_bias"]
    if shutil.which("gcc"):
        assert main(["verify", str(tmp_path / "out"), "--compile", "--predict", str(tmp_path / "m.keras")]) == 0


# -- point 8: diff in bounded memory and exact --------------------------------------------------------------------
def test_two_small_exports_declaring_huge_tensors_cost_no_memory(tmp_path):
    import subprocess
    import sys

    sides = []
    for side in ("a", "b"):
        folder = tmp_path / side
        converter.export(SEED_KERAS, folder, formats=["parquet"])
        parquet_with(folder, lambda rows: rows[0].update(shape=[2**28]))  # 1 GiB of float32 declared
        sides.append(str(folder))
    assert sum(p.stat().st_size for p in (tmp_path / "a").iterdir()) < 20_000
    # The command in a process of its own, which reports its peak (VmHWM: the new program's, not its parent's).
    script = ("import re, sys\nfrom converter.cli import main\ncode = main(sys.argv[1:])\n"
              "print(re.search(r'VmHWM:\\s+(\\d+)', open('/proc/self/status').read()).group(1))\nsys.exit(code)")
    result = subprocess.run([sys.executable, "-c", script, "diff", *sides], capture_output=True, text=True)
    assert result.returncode == 4 and "more than the file can hold" in result.stderr, result.stderr
    assert int(result.stdout.split()[-1]) < 400 * 1024  # ~110 MB of libraries (pyarrow, numpy); never the 1 GiB


def test_integers_are_compared_as_integers():
    from converter.compare import _compare

    a, b = np.array([2**62, 7], np.int64), np.array([2**62 + 1, 7], np.int64)
    assert _compare("t", a, b, 0.5, 0).status == "changed"
    assert _compare("t", a, b, 0.0, 0).changed == 0.5
    assert _compare("t", a, a.copy(), 0.0, 0).status == "equal"
    extremes = np.array([np.iinfo(np.int64).min], np.int64), np.array([np.iinfo(np.int64).max], np.int64)
    assert _compare("t", *extremes, 0, 0).max_abs == 2.0**64  # the whole range, no wrap to 1
    unsigned = np.array([2**64 - 1], np.uint64), np.array([2**64 - 2], np.uint64)
    assert _compare("t", *unsigned, 0.5, 0).status == "changed"


def test_json_stays_valid_with_a_difference_that_overflows(tmp_path, capsys, monkeypatch):
    from converter import compare

    sides = {"a": {"t": np.array([1.7e308], np.float64)}, "b": {"t": np.array([-1.7e308], np.float64)}}
    monkeypatch.setattr(compare, "_tensors", lambda source, reader, notes: sides[source])
    result = compare.diff("a", "b")
    text = json.dumps(result.to_json(), allow_nan=False)
    assert json.loads(text)["tensors"][0]["max_abs"] == "inf"


def test_renamed_tensors_are_matched_by_position_for_many_tensors(monkeypatch):
    """20,000 renamed against 20,000: matched one to one (the matching was quadratic: minutes here)."""
    from converter import compare

    n = 20_000
    left = {f"a{i}": np.full(1, i, np.float32) for i in range(n)}
    right = {f"b{i}": np.full(1, i, np.float32) for i in range(n)}
    monkeypatch.setattr(compare, "_tensors", lambda source, reader, notes: left if source == "a" else right)
    result = compare.diff("a", "b")
    assert len(result.tensors) == n and all(t.status == "renamed" and t.other_name == "b" + t.name[1:]
                                            for t in result.tensors)
