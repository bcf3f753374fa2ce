"""Foreign export folders and model files, crafted as an attacker would (issue 23): every command reads them, none
trusts them. Each test builds its crafted input here and fails without the fix it covers."""
import json
import shutil

import numpy as np
import pytest

import converter
from conftest import GOLDEN, SEED_KERAS, needs
from converter import atomic
from converter.cli import main

needs_gcc = needs("gcc")


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
    (lambda rows: rows[0].update(values=rows[0]["values"] * 2), "does not fit its float32 array of 80"),
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


@pytest.mark.parametrize("change", [lambda q: q.update(scale="dense/nothing"), lambda q: q.update(axis=5),
                                    lambda q: q.update(axis=[0, 1])])
def test_a_quantization_entry_that_does_not_fit_is_a_clear_error_for_diff(tmp_path, capsys, change):
    folder = tmp_path / "out"
    converter.export(SEED_KERAS, folder, formats=["npz"], quantize="int8")
    rewrite_manifest(folder, lambda m: change(m["tensors"][0]["quantization"]))
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


# -- point 9: no exit 70 on any input ------------------------------------------------------------------------------
def test_a_lone_surrogate_in_a_name_or_an_undecodable_file_name_is_written_escaped(tmp_path, capsys):
    import os

    from conftest import with_edited_config

    def rename(config):
        config["config"]["name"] = "model\udcff"
        config["config"]["layers"][1]["config"]["name"] = "dense\ud800"

    crafted = with_edited_config(SEED_KERAS, tmp_path / "crafted.keras", rename)
    undecodable = os.fsencode(str(tmp_path)) + b"/m\xff.keras"
    shutil.copy(crafted, undecodable)
    for source in (str(crafted), os.fsdecode(undecodable)):
        out = tmp_path / ("out" if source == str(crafted) else "out2")
        assert main(["export", source, "-o", str(out), "--reader", "h5"]) == 0, capsys.readouterr().err
        assert main(["verify", str(out)]) == 0
        assert main(["inspect", source, "--reader", "h5"]) == 0
        assert main(["report", source, "-o", str(out / "r.html"), "--reader", "h5"]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["model"]["name"] == "model\\udcff" and manifest["tensors"][0]["name"] == "dense\\ud800/kernel"
    assert json.loads((tmp_path / "out2" / "manifest.json").read_text())["source"]["file"] == "m\\udcff.keras"
    assert "internal error" not in capsys.readouterr().err


def float64_model(keras, tmp_path, value):
    x = keras.Input((2,), dtype="float64")
    dense = keras.layers.Dense(2, dtype="float64", name="d")
    model = keras.Model(x, dense(x), name="f64")
    dense.kernel.assign(np.full((2, 2), value))
    model.save(tmp_path / "f64.keras")
    return tmp_path / "f64.keras"


def test_int8_of_float64_extremes_is_refused_or_measured_never_an_internal_error(tmp_path, keras_module, capsys):
    huge = float64_model(keras_module, tmp_path, 1e300)
    assert main(["export", str(huge), "-o", str(tmp_path / "a"), "-f", "npz", "--quantize", "int8"]) == 4
    err = capsys.readouterr().err
    assert "tensor d/kernel holds values up to 1e+300: their int8 scale" in err and "Warning" not in err, err
    tiny = float64_model(keras_module, tmp_path, 1e-300)  # stored as all zeros: all signal lost, 0 dB
    assert main(["export", str(tiny), "-o", str(tmp_path / "b"), "-f", "npz", "--quantize", "int8",
                 "--min-snr", "10"]) == 4
    captured = capsys.readouterr()
    assert "d/kernel (0.0 dB)" in captured.err and "Warning" not in captured.err, captured.err


def test_a_report_of_a_float64_tensor_holding_two_adjacent_values(tmp_path, keras_module):
    path = float64_model(keras_module, tmp_path, 1.0)
    model = keras_module.saving.load_model(path)
    model.get_layer("d").kernel.assign(np.array([[1.0, np.nextafter(1.0, 2.0)]] * 2))
    model.save(path)
    assert main(["report", str(path), "-o", str(tmp_path / "r.html")]) == 0


def test_a_malformed_manifest_beside_a_file_given_to_load_is_exit_7(tmp_path, capsys):
    folder = tmp_path / "out"
    shutil.copytree(GOLDEN, folder)
    (folder / "manifest.json").write_text('{"schema": "keras-weights/manifest", "files": "x"}')
    assert main(["load", str(folder / "seed_mlp.npz"), str(SEED_KERAS), "-o", str(tmp_path / "n.keras")]) == 7
    assert "manifest schema" in capsys.readouterr().err


def test_a_transform_that_does_not_fit_its_array_is_a_clear_error(tmp_path, capsys):
    folder = tmp_path / "out"
    converter.export(SEED_KERAS, folder, formats=["npz"], layout="torch")
    rewrite_manifest(folder, lambda m: m["tensors"][0].update(transform="flatten:7,3+permute:1,0"))
    assert main(["diff", str(SEED_KERAS), str(folder)]) == 4
    err = capsys.readouterr().err
    assert "cannot be undone on dense.weight" in err and "internal error" not in err, err


# -- point 10: terminal and page hygiene ---------------------------------------------------------------------------
HOSTILE_NAME = "d\x1b[2J\x07\u202eevil"


def test_names_with_control_characters_are_escaped_on_the_terminal_and_marked_on_the_page(tmp_path, capsys):
    from conftest import with_edited_config

    def rename(config):
        config["config"]["layers"][1]["config"]["name"] = HOSTILE_NAME

    crafted = with_edited_config(SEED_KERAS, tmp_path / "crafted.keras", rename)
    for argv in (["inspect", str(crafted), "--reader", "h5"], ["export", str(crafted), "-o", str(tmp_path / "out"),
                                                                "--reader", "h5"],
                 ["diff", str(SEED_KERAS), str(tmp_path / "out"), "--all"], ["verify", str(tmp_path / "out")]):
        assert main(argv) in (0, 1), argv
        captured = capsys.readouterr()
        shown = captured.out + captured.err
        assert "\x1b" not in shown and "\x07" not in shown and "\u202e" not in shown, argv
        if argv[0] in ("inspect", "diff"):  # the name is there, escaped
            assert "d\\x1b[2J\\x07\\u202eevil" in shown, shown
    assert main(["report", str(tmp_path / "out"), "-o", str(tmp_path / "r.html")]) == 0
    page = (tmp_path / "r.html").read_text()
    assert "\u202e" not in page and "\x1b" not in page and '<span class="ctrl" title="invisible character">\\u202e' in page


def test_a_report_of_100000_tensors_stays_bounded():
    from converter.html_report import MAX_ROWS, MAX_SECTIONS, Stats, render

    tensors = [Stats(f"layer_{i}/kernel", f"layer_{i}", (3,), "float32", 3, 0.0, 1.0, 0.5, 0.1,
                     histogram=[1] * 40, edges=(0.0, 1.0), anomalies=["all zero (a dead layer)"] if i % 2 else [])
               for i in range(100_000)]
    layers = [{"index": i, "name": f"layer_{i}", "class": "Dense", "tensors": [f"layer_{i}/kernel"]} for i in range(100_000)]
    page = render("big", [("tensors", "100,000")], layers, tensors, None, None)
    assert len(page) < 20_000_000  # a few MB: 1,000 histograms, the rest as rows of figures
    assert page.count('<section class="tensor"') == MAX_SECTIONS
    assert f"{100_000 - MAX_SECTIONS - MAX_ROWS:,} more not shown" in page


# -- point 12: a mutation test over the manifest -----------------------------------------------------------------
def leaves(value, path=()):
    """Every (path, value) of a JSON document's leaves and containers."""
    yield path, value
    if isinstance(value, dict):
        for key, item in value.items():
            yield from leaves(item, (*path, key))
    elif isinstance(value, list):
        for index, item in enumerate(value[:3]):  # the first items stand for the rest
            yield from leaves(item, (*path, index))


def replacements(value):
    """Values of other kinds and ranges than ``value``: what a forger would try."""
    if isinstance(value, bool):
        return [not value, 1, "true", None]
    if isinstance(value, int):
        return [-1, 0, value + 1, 2**63, 1.5, "7", True, None]
    if isinstance(value, float):
        return [-value - 1.0, 1e308, 0.0, "x"]
    if isinstance(value, str):
        return ["", "-x", "../x", "a\x1b]0;t\x07b\u202e", "stdio.h", value + "_", 7, ["x"]]
    if isinstance(value, list):
        return [[], value + value[-1:] if value else [1], "x", {}]
    if isinstance(value, dict):
        return [{}, [], "x"]
    return [0, "x"]


def schema_valid_mutations(manifest, count, seed=0):
    """``count`` edits of one value each that the schema accepts, taken from every part of the manifest in turn (its
    options and file list as often as its long tensor list)."""
    import itertools
    import random

    import jsonschema

    from converter import manifest as manifests

    validator = jsonschema.Draft202012Validator(manifests.schema())
    candidates = [(path, new) for path, value in leaves(manifest) if path for new in replacements(value)]
    random.Random(seed).shuffle(candidates)
    sections: dict = {}
    for path, new in candidates:
        mutated = json.loads(json.dumps(manifest))
        target = mutated
        for key in path[:-1]:
            target = target[key]
        target[path[-1]] = new
        valid = sections.setdefault(path[0], [])
        if len(valid) < count and validator.is_valid(mutated):
            valid.append((path, mutated))
    interleaved = [c for group in itertools.zip_longest(*sections.values()) for c in group if c is not None]
    return interleaved[:count]


@pytest.fixture(scope="module")
def full_export(tmp_path_factory):
    folder = tmp_path_factory.mktemp("full") / "out"
    converter.export(SEED_KERAS, folder, options={"c": {"inference": True}})
    return folder


def test_schema_valid_edits_of_the_manifest_never_crash_run_code_or_write_outside(full_export, tmp_path, capsys):
    manifest = json.loads((full_export / "manifest.json").read_text())
    mutations = schema_valid_mutations(manifest, 60)
    assert len(mutations) == 60
    outcomes = []
    for number, (path, mutated) in enumerate(mutations):
        folder = tmp_path / f"m{number}" / "out"
        shutil.copytree(full_export, folder)
        marker = tmp_path / "code-ran"
        plant_system_headers(folder, marker)
        (folder / "manifest.json").write_text(json.dumps(mutated))
        before = sorted(p.name for p in folder.iterdir())
        codes = [main(["verify", str(folder)])]
        if shutil.which("gcc"):
            codes.append(main(["verify", str(folder), "--compile"]))
        codes += [main(["load", str(folder), str(SEED_KERAS), "-o", str(folder.parent / "new.keras")]),
                  main(["diff", str(SEED_KERAS), str(folder)]),
                  main(["report", str(folder), "-o", str(folder.parent / "r.html")])]
        err = capsys.readouterr().err
        assert 70 not in codes and "internal error" not in err, (path, codes, err[-2000:])
        assert not marker.exists(), path
        assert sorted(p.name for p in folder.iterdir()) == before, path
        assert sorted(p.name for p in folder.parent.iterdir()) in (["out"], ["new.keras", "out"], ["out", "r.html"],
                                                                   ["new.keras", "out", "r.html"]), path
        outcomes.append(codes[0])
    assert outcomes.count(0) < len(outcomes)  # most edits are found (some, such as a layer's input_shape, are free)


def test_a_string_of_the_manifest_cannot_leave_its_comment_in_the_c_text(tmp_path, capsys):
    """source_dtype is written into a C comment: only the known dtypes are accepted, and it is escaped anyway."""
    from converter import c_text

    folder = tmp_path / "out"
    converter.export(SEED_KERAS, folder, formats=["c"], quantize="int8")
    rewrite_manifest(folder, lambda m: m["tensors"][0].update(source_dtype="float32 */ int evil; /*"))
    assert main(["verify", str(folder), "--compile"]) == 7
    assert "source_dtype" in capsys.readouterr().err
    assert c_text.comment_text("a */ b /* c") == "a * / b / * c"


@pytest.mark.parametrize("units", ["abc", 2**40, -1, 2.5])
def test_a_recorded_graph_with_a_non_numeric_unit_count_is_exit_7(full_export, tmp_path, capsys, units):
    """The forward pass is regenerated from the recorded graph: a value the generator refuses is a finding."""
    folder = tmp_path / "out"
    shutil.copytree(full_export, folder)
    rewrite_manifest(folder, lambda m: m["inference"]["graph"]["nodes"][1]["config"].update(units=units))
    assert main(["verify", str(folder)]) == 7
    out = capsys.readouterr().out
    assert "do not regenerate this text" in out and "units=" in out, out


@pytest.mark.parametrize("change", [lambda m: m.pop("inference"), lambda m: m["options"]["c"].pop("inference"),
                                    lambda m: m.update(extra={"x": 1})])
def test_a_manifest_block_no_written_format_records_is_exit_7(full_export, tmp_path, capsys, change):
    folder = tmp_path / "out"
    shutil.copytree(full_export, folder)
    rewrite_manifest(folder, change)
    assert main(["verify", str(folder)]) == 7
    err = capsys.readouterr().err
    assert "holds values no keras-weights export has" in err or "manifest schema" in err, err
