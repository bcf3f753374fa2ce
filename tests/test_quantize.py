"""Quantized exports: stored values and error figures against the definition (docs/quantization.md),
computed here independently of converter.quantize, read back with each format's own library."""
import json
import math
import subprocess

import ml_dtypes
import numpy as np
import pytest
from safetensors import safe_open

import converter
from converter.cli import main
from conftest import FIXTURES, ROOT, SEED_KERAS, need

CORPUS = ROOT.parent / "shared" / "corpus"
CORPUS_FILES = sorted(p for p in CORPUS.glob("*/*") if p.suffix in (".h5", ".keras"))

# The output-channel axes of each kernel of the model below, in Keras's layout, written out from the
# definition (not asked of the code under test).
ZOO_AXES = {
    "conv/kernel": (3,),                       # Conv2D (kh, kw, in, filters)
    "dw/kernel": (2, 3),                       # DepthwiseConv2D (kh, kw, in, multiplier)
    "sep/depthwise_kernel": (2, 3),
    "sep/pointwise_kernel": (3,),              # SeparableConv2D's 1x1 (1, 1, in * multiplier, filters)
    "tconv/kernel": (2,),                      # Conv2DTranspose (kh, kw, filters, in)
    "dense/kernel": (1,),
    "embed/embeddings": (1,),                  # Embedding (vocabulary, features): a feature per column
    "mha/query/kernel": (1, 2),                # (input, heads, key size)
    "mha/key/kernel": (1, 2),
    "mha/value/kernel": (1, 2),
    "mha/attention_output/kernel": (2,),       # (heads, value size, output)
    "lstm/lstm_cell/kernel": (1,),             # (input, 4 * units)
    "lstm/lstm_cell/recurrent_kernel": (1,),
    "head/kernel": (1,),
}


@pytest.fixture(scope="module")
def zoo(tmp_path_factory, keras_module):
    """A model with every kernel kind the rules name, seeded weights, and a Dense channel of zeros."""
    keras = keras_module
    image = keras.Input((8, 8, 3), name="image")
    x = keras.layers.Conv2D(4, 3, name="conv")(image)
    x = keras.layers.DepthwiseConv2D(3, depth_multiplier=2, name="dw")(x)
    x = keras.layers.SeparableConv2D(4, 1, name="sep")(x)
    x = keras.layers.Conv2DTranspose(3, 3, name="tconv")(x)
    x = keras.layers.Dense(5, name="dense")(keras.layers.GlobalAveragePooling2D(name="pool")(x))
    tokens = keras.Input((6,), dtype="int32", name="tokens")
    e = keras.layers.Embedding(20, 8, name="embed")(tokens)
    e = keras.layers.MultiHeadAttention(2, 4, name="mha")(e, e)
    e = keras.layers.LSTM(3, name="lstm")(e)
    out = keras.layers.Dense(2, name="head")(keras.layers.Concatenate(name="cat")([x, e]))
    model = keras.Model([image, tokens], out, name="zoo")
    rng = np.random.default_rng(14)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    kernel = model.get_layer("dense").kernel
    kernel.assign(np.concatenate([np.zeros((kernel.shape[0], 1), np.float32), np.asarray(kernel)[:, 1:]], axis=1))
    path = tmp_path_factory.mktemp("zoo") / "zoo.keras"
    model.save(path)
    return path


def original(path):
    return {t.name: t.array for t in converter.extract(path)}


def expected_int8(w: np.ndarray, axes: tuple[int, ...] | None) -> tuple[np.ndarray, np.ndarray]:
    """q and the scale (scale shape) by the definition."""
    w64 = w.astype(np.float64)
    others = tuple(a for a in range(w.ndim) if not axes or a not in axes)
    peak = np.abs(w64).max(axis=others, keepdims=True)
    scale = (peak / 127).astype(np.float32)
    scale[peak == 0] = 1
    q = np.clip(np.rint(w64 / scale.astype(np.float64)), -127, 127).astype(np.int8)
    return q, scale.reshape([w.shape[a] for a in axes] if axes else [1])


def broadcast(scale: np.ndarray, shape, axes) -> np.ndarray:
    return scale.reshape([n if axes and a in axes else 1 for a, n in enumerate(shape)])


def measured_error(w: np.ndarray, back: np.ndarray) -> tuple[float, float, float | None]:
    e = back.astype(np.float64) - w.astype(np.float64)
    signal, noise = float(np.sum(w.astype(np.float64) ** 2)), float(np.sum(e ** 2))
    snr = 10 * math.log10(signal / noise) if signal > 0 and noise > 0 else None
    return float(np.abs(e).max()), math.sqrt(noise / e.size), snr


def same_snr(recorded: float | None, measured: float | None) -> bool:
    """Equal up to summation order (the exporter sums block by block); None only where undefined."""
    return recorded is None if measured is None else recorded == pytest.approx(measured, rel=1e-12)


def stored_arrays(folder, manifest) -> dict[str, dict[str, np.ndarray]]:
    """Every file read with its own library (numpy, safetensors, pyarrow via converter.read, the C parser)."""
    by_format = {}
    for entry in manifest["files"]:
        path = folder / entry["path"]
        if entry["format"] == "npz":
            with np.load(path, allow_pickle=False) as npz:
                arrays = {k: npz[k] for k in npz.files}
        elif entry["format"] == "safetensors":
            with safe_open(path, framework="np") as handle:
                arrays = {k: handle.get_tensor(k) for k in handle.keys()}
        elif path.suffix == ".h":
            continue
        else:
            arrays = converter.formats.get(entry["format"]).read(path)
        keys = {t["keys"][entry["format"]]: t["name"] for t in manifest["tensors"]}
        by_format[entry["format"]] = {keys[k]: v for k, v in arrays.items()}
    return by_format


@pytest.fixture(scope="module")
def int8_export(zoo, tmp_path_factory):
    folder = tmp_path_factory.mktemp("int8")
    return folder, converter.export(zoo, folder, quantize="int8")


def test_int8_stores_the_definition_in_every_format(zoo, int8_export):
    folder, manifest = int8_export
    model = original(zoo)
    entries = {t["name"]: t for t in manifest["tensors"]}
    assert [t["name"] for t in manifest["tensors"] if t["name"] in model] == list(model)  # model order kept
    for format_name, arrays in stored_arrays(folder, manifest).items():
        for name, w in model.items():
            if name in ZOO_AXES:
                axes = ZOO_AXES[name]
                q, scale = expected_int8(w, axes)
                assert arrays[name].dtype == np.int8 and np.array_equal(arrays[name], q), (format_name, name)
                assert arrays[name + ":scale"].tobytes() == scale.tobytes(), (format_name, name)
                recorded = entries[name]["quantization"]
                assert recorded["axis"] == (axes[0] if len(axes) == 1 else list(axes))
                assert recorded["scale"] == name + ":scale" and entries[name]["source_dtype"] == "float32"
            else:  # biases, statistics: as the model holds them
                assert arrays[name].tobytes() == w.tobytes() and "quantization" not in entries[name], name
    assert set(ZOO_AXES) <= set(model)
    zero_channel_scale = stored_arrays(folder, manifest)["npz"]["dense/kernel:scale"][0]
    assert zero_channel_scale == 1.0 and not stored_arrays(folder, manifest)["npz"]["dense/kernel"][:, 0].any()


def test_int8_error_figures_are_the_measured_error_of_the_values_read_back(zoo, int8_export):
    folder, manifest = int8_export
    model = original(zoo)
    for entry in manifest["tensors"]:
        if "quantization" not in entry:
            continue
        w, axes = model[entry["name"]], ZOO_AXES[entry["name"]]
        q, scale = expected_int8(w, axes)
        back = q.astype(np.float32) * broadcast(scale, w.shape, axes)  # float32, as read(dequantize=True) gives
        max_abs, rmse, snr = measured_error(w, back)
        error = entry["quantization"]["error"]
        assert error["max_abs"] == max_abs
        assert error["rmse"] == pytest.approx(rmse, rel=1e-12) and same_snr(error["snr_db"], snr)
        dequantized = converter.read(folder / "zoo.safetensors", dequantize=True)[entry["name"]]
        assert dequantized.dtype == np.float32 and dequantized.tobytes() == back.tobytes()


def test_read_gives_stored_arrays_or_the_dequantized_model_tensors(zoo, int8_export):
    folder, manifest = int8_export
    model = original(zoo)
    for name in ("zoo.npz", "zoo.safetensors", "zoo.parquet", "zoo.c"):
        stored = converter.read(folder / name)
        assert list(stored) == [t["name"] for t in manifest["tensors"]] and stored["conv/kernel"].dtype == np.int8
        dequantized = converter.read(folder / name, dequantize=True)
        assert list(dequantized) == list(model)  # the model's tensors, no scale tensors
        assert dequantized["conv/bias"].tobytes() == model["conv/bias"].tobytes()
    with pytest.raises(converter.UsageError, match="dequantize needs the manifest.json"):
        (folder / "alone").mkdir(exist_ok=True)
        (folder / "alone" / "zoo.npz").write_bytes((folder / "zoo.npz").read_bytes())
        converter.read(folder / "alone" / "zoo.npz", dequantize=True)


def test_a_quantized_export_verifies_and_verify_recomputes_it_from_the_model(zoo, int8_export, tmp_path):
    folder, manifest = int8_export
    assert manifest["schema_version"] == "1.1" and manifest["options"]["quantize"] == "int8"
    report = converter.verify(folder, model=zoo)
    assert report.ok, report
    assert {f.format for f in report.files} >= {"quantization", "model"}
    edited = json.loads((folder / "manifest.json").read_text())  # a recorded axis that is not what was done
    entry = next(t for t in edited["tensors"] if t["name"] == "conv/kernel")
    entry["quantization"]["axis"] = 2
    copy = tmp_path / "edited"
    copy.mkdir()
    for item in folder.iterdir():
        if item.is_file():
            (copy / item.name).write_bytes(item.read_bytes())
    (copy / "manifest.json").write_text(json.dumps(edited))
    problems = [p for f in converter.verify(copy, model=zoo).files for p in f.problems]
    assert any("conv/kernel: its scale tensor conv/kernel:scale is float32[4], not float32[3]" in p for p in problems), problems
    assert any("conv/kernel: the recorded quantization" in p for p in problems), problems


def test_the_channel_axes_follow_a_transposed_layout(zoo, tmp_path):
    manifest = converter.export(zoo, tmp_path, formats=["npz"], quantize="int8", layout="dense_out_in")
    stored = converter.read(tmp_path / "zoo.npz")
    q, scale = expected_int8(original(zoo)["head/kernel"], (1,))
    assert np.array_equal(stored["head/kernel"], q.T) and stored["head/kernel:scale"].tobytes() == scale.tobytes()
    assert next(t for t in manifest["tensors"] if t["name"] == "head/kernel")["quantization"]["axis"] == 0
    assert converter.verify(tmp_path, model=zoo).ok


@pytest.mark.parametrize("scheme, dtype", [("float16", np.float16), ("bfloat16", ml_dtypes.bfloat16)])
def test_float_casts_round_every_float32_tensor_to_nearest_even(zoo, tmp_path, scheme, dtype):
    manifest = converter.export(zoo, tmp_path, quantize=scheme)
    model = original(zoo)
    stored = stored_arrays(tmp_path, manifest)
    for name, w in model.items():
        cast = w.astype(dtype)  # numpy and ml_dtypes round to nearest even
        for format_name, arrays in stored.items():
            got = arrays[name].view(dtype) if arrays[name].dtype != dtype else arrays[name]
            assert got.tobytes() == cast.tobytes(), (format_name, name)
        entry = next(t for t in manifest["tensors"] if t["name"] == name)
        assert entry["dtype"] == np.dtype(dtype).name and entry["quantization"]["axis"] is None
        assert "scale" not in entry["quantization"]
        max_abs, rmse, snr = measured_error(w, cast.astype(np.float32))
        assert entry["quantization"]["error"]["max_abs"] == max_abs
        assert entry["quantization"]["error"]["rmse"] == pytest.approx(rmse, rel=1e-12)
        assert same_snr(entry["quantization"]["error"]["snr_db"], snr)
    assert converter.verify(tmp_path, model=zoo).ok
    assert len(manifest["tensors"]) == len(model)


@pytest.mark.parametrize("scheme, value", [("float16", 65520.0), ("bfloat16", float(np.finfo(np.float32).max))])
def test_a_value_beyond_the_targets_range_is_refused_by_name(tmp_path, keras_module, capsys, scheme, value):
    keras = keras_module
    model = keras.Sequential([keras.Input((2,)), keras.layers.Dense(2, name="big")])
    model.layers[0].kernel.assign(np.array([[1, 2], [3, value]], np.float32))
    model.save(tmp_path / "big.keras")
    code = main(["export", str(tmp_path / "big.keras"), "-o", str(tmp_path / "out"), "--quantize", scheme])
    err = capsys.readouterr().err
    assert code == 4 and f"tensor big/kernel holds {value!r} at index [1, 1], beyond {scheme}" in err, err
    assert not (tmp_path / "out").exists()
    if scheme == "float16":  # just inside: 65504 is float16's largest, 65519 rounds to it
        model.layers[0].kernel.assign(np.array([[1, 2], [3, 65519.0]], np.float32))
        model.save(tmp_path / "edge.keras")
        assert converter.export(tmp_path / "edge.keras", tmp_path / "edge", formats=["npz"], quantize="float16")
        assert converter.read(tmp_path / "edge" / "edge.npz")["big/kernel"][1, 1] == np.float16(65504)


def test_nan_or_infinity_cannot_be_quantized_to_int8(tmp_path, capsys):
    code = main(["export", str(FIXTURES / "zoo" / "special_values.keras"), "-o", str(tmp_path), "--quantize", "int8"])
    err = capsys.readouterr().err
    assert code == 4 and "tensor f32/kernel holds" in err and "int8 cannot hold them" in err
    assert not any(tmp_path.iterdir())


def test_min_snr_boundary(zoo, int8_export, tmp_path, capsys):
    _, manifest = int8_export
    lowest = min(t["quantization"]["error"]["snr_db"] for t in manifest["tensors"]
                 if "quantization" in t and t["quantization"]["error"]["snr_db"] is not None)
    assert converter.export(zoo, tmp_path / "at", formats=["npz"], quantize="int8", min_snr=lowest)
    code = main(["export", str(zoo), "-o", str(tmp_path / "above"), "-f", "npz", "--quantize", "int8",
                 f"--min-snr={float(np.nextafter(lowest, np.inf))!r}"])
    err = capsys.readouterr().err
    flagged = [line.split()[0] for line in err.splitlines() if line.endswith(f"below --min-snr {float(np.nextafter(lowest, np.inf)):g}")]
    assert code == 4 and "1 tensors fall below --min-snr" in err and len(flagged) == 1, err
    assert not (tmp_path / "above").exists()
    assert main(["export", str(zoo), "-o", str(tmp_path / "x"), "--min-snr", "30"]) == 2  # without --quantize
    capsys.readouterr()


def test_max_bytes_boundary_counts_the_c_arrays_with_their_alignment(zoo, tmp_path, capsys):
    manifest = converter.inspect(zoo, quantize="int8")
    needed = sum(-(-t["nbytes"] // 16) * 16 for t in manifest["tensors"])  # every array starts on 16 bytes
    assert converter.export(zoo, tmp_path / "fits", formats=["c"], quantize="int8", max_bytes=needed)
    code = main(["export", str(zoo), "-o", str(tmp_path / "over"), "-f", "c", "--quantize", "int8",
                 "--max-bytes", str(needed - 1)])
    err = capsys.readouterr().err
    assert code == 4 and f"need {needed:,} bytes as C arrays (16-byte alignment included), 1 more than" in err, err
    assert "largest layers: " in err and not (tmp_path / "over").exists()
    aligned_4 = sum(-(-t["nbytes"] // 4) * 4 for t in manifest["tensors"])
    assert converter.export(zoo, tmp_path / "fits4", formats=["c"], quantize="int8", max_bytes=aligned_4,
                            options={"c": {"align": 4}})
    assert main(["export", str(SEED_KERAS), "-o", str(tmp_path / "k"), "-f", "c", "--max-bytes", "1K"]) == 4
    # 320 + 80 + 800 + 40 + 40 + 4 bytes of float32, each array padded to 16: 320 + 80 + 800 + 48 + 48 + 16
    assert "need 1,312 bytes" in capsys.readouterr().err and main(
        ["export", str(SEED_KERAS), "-o", str(tmp_path / "k"), "-f", "c", "--max-bytes", "2K"]) == 0
    out = capsys.readouterr().out.split("Flash budget: ")[1].splitlines()
    assert out[0] == "1,312 of 2,048 bytes (64%), 736 left"
    assert [line.split()[:2] for line in out[1:]] == [["dense_1", "848"], ["dense", "400"], ["dense_2", "64"]]


def test_the_export_prints_the_error_table_and_the_flash_it_takes(zoo, tmp_path, capsys):
    assert main(["export", str(zoo), "-o", str(tmp_path), "--quantize", "int8", "--reader", "h5", "--verbose"]) == 0
    out = capsys.readouterr().out
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    rows = {line.split()[0]: line.split() for line in out.splitlines() if line.split() and line.split()[0] in ZOO_AXES}
    assert set(rows) == set(ZOO_AXES)
    conv = next(t for t in manifest["tensors"] if t["name"] == "conv/kernel")
    assert rows["conv/kernel"][1:5] == ["int8_symmetric", "3", f"{108 * 4:,}", f"{108 + 16:,}"]
    assert rows["conv/kernel"][7] == f"{conv['quantization']['error']['snr_db']:.1f}"
    flash = sum(-(-t["nbytes"] // 16) * 16 for t in manifest["tensors"])
    assert f"C arrays: {flash:,} bytes of flash (16-byte alignment)" in out
    assert "tensors quantized" in out.splitlines()[-1]


def test_the_generated_c_dequantizes_by_its_own_table_as_python_does(zoo, int8_export, tmp_path):
    """A C program walks the tensor table and prints data[n] * scale[(n / scale_stride) % scale_count] for every
    int8 tensor: the header's formula gives exactly converter.read(dequantize=True)."""
    folder, manifest = int8_export
    main_c = tmp_path / "main.c"
    main_c.write_text('#include <stdio.h>\n#include "zoo.h"\nint main(void) {\n'
                      '  for (unsigned t = 0; t < ZOO_TENSOR_COUNT; t++) {\n'
                      '    const zoo_tensor_t *e = &zoo_tensors[t];\n    if (!e->scale) continue;\n'
                      '    for (size_t n = 0; n < e->size; n++) {\n'
                      '      float w = ((const int8_t *)e->data)[n] * e->scale[(n / e->scale_stride) % e->scale_count];\n'
                      '      printf("%s %a\\n", e->name, (double)w);\n    }\n  }\n  return 0;\n}\n')
    subprocess.run(["gcc", "-std=c99", "-Wall", "-Werror", "-I", str(folder), str(main_c), str(folder / "zoo.c"),
                    "-o", str(tmp_path / "walk")], check=True)
    printed = subprocess.run([str(tmp_path / "walk")], capture_output=True, text=True, check=True).stdout.split("\n")
    dequantized = converter.read(folder / "zoo.npz", dequantize=True)
    expected = [(name, float(v)) for name in ZOO_AXES for v in dequantized[name].reshape(-1)]
    got = [(line.split(" ")[0], float.fromhex(line.split(" ")[1])) for line in printed if line]
    assert sorted(got) == sorted(expected) and len(got) == sum(dequantized[n].size for n in ZOO_AXES)


CROSS = [("cc", []), ("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-O2"]), ("avr-gcc", ["-mmcu=atmega328p", "-Os"])]


@pytest.mark.parametrize("cc, cflags", CROSS, ids=["host", "arm", "avr"])
@pytest.mark.parametrize("header_only", [False, True], ids=["source", "header"])
def test_int8_c_compiles_and_holds_the_exact_bytes(zoo, tmp_path, cc, cflags, header_only):
    need(cc, "objcopy" if cc == "cc" else cc.replace("gcc", "objcopy"))
    converter.export(zoo, tmp_path, formats=["c"], quantize="int8", options={"c": {"header_only": header_only}})
    report = converter.verify(tmp_path, compile=True, cc=cc, cflags=cflags)
    assert report.ok and {f.compiled_with for f in report.files if f.format == "c"} == {cc}, report


def test_without_quantize_nothing_changes(tmp_path):
    """The golden export (fixtures/golden, a 1.0 manifest) is what an export without --quantize writes."""
    converter.export(SEED_KERAS, tmp_path)
    for golden in (FIXTURES / "golden").iterdir():
        assert (tmp_path / golden.name).read_bytes() == golden.read_bytes(), golden.name
    assert json.loads((tmp_path / "manifest.json").read_text())["schema_version"] == "1.0"


LAST_AXIS_CLASSES = {"Dense", "Conv1D", "Conv2D", "LSTM", "GRU", "SimpleRNN", "Embedding", "Bidirectional",
                     "Sequential", "Functional"}  # the last two: a nested model of Dense layers (zoo "nested")


def expected_axes(name: str, w: np.ndarray, layer_class: str) -> tuple[int, ...] | None:
    if layer_class == "MultiHeadAttention":  # (in, heads, size) projections; (heads, size, out) output
        return (w.ndim - 1,) if name.split("/")[-2] == "attention_output" else tuple(range(1, w.ndim))
    return (w.ndim - 1,) if layer_class in LAST_AXIS_CLASSES else None


ZOO_FILES = sorted((FIXTURES / "zoo").glob("*.keras"))


@pytest.mark.parametrize("path", [*ZOO_FILES, *CORPUS_FILES], ids=lambda p: f"{p.parent.name}/{p.name}")
def test_fixture_and_corpus_models_quantize_to_the_definition(path):
    """Real files: kernels of known classes per output channel, of unknown ones (a Keras 1 file without
    configuration) per tensor; everything else unchanged. A model holding NaN cannot be quantized."""
    if path.name == "special_values.keras":
        with pytest.raises(converter.QuantizationError, match="f32/kernel holds 3 NaN and 2 infinite values"):
            converter.inspect(path, reader="h5", quantize="int8")
        return
    manifest = converter.inspect(path, reader="h5", quantize="int8")
    model = {t.name: t.array for t in converter.extract(path, reader="h5")}
    classes = {layer["index"]: layer["class"] for layer in manifest["layers"]}
    stored = {t["name"]: t for t in manifest["tensors"]}
    quantized = 0
    for name, w in model.items():
        entry = stored[name]
        if "quantization" not in entry:
            assert entry["sha256"] == converter.tensors.sha256_of(converter.tensors.canonical(w))
            continue
        quantized += 1
        cls = classes[entry["layer_index"]]
        axes = expected_axes(name, w, cls)
        assert cls in LAST_AXIS_CLASSES or cls in ("", "MultiHeadAttention"), (name, cls)
        q, scale = expected_int8(w, axes)
        assert entry["sha256"] == converter.tensors.sha256_of(q), name
        assert stored[name + ":scale"]["sha256"] == converter.tensors.sha256_of(scale), name
    assert quantized


def test_hints_point_to_a_type_that_helps(tmp_path, capsys):
    """Over --max-bytes with int8 there is no smaller type; under --min-snr with float16, bfloat16 is coarser."""
    from converter.cli import main

    assert main(["export", str(SEED_KERAS), "-o", str(tmp_path / "a"), "-f", "c", "--quantize", "int8",
                 "--max-bytes", "10"]) == 4
    err = capsys.readouterr().err
    assert "int8 is the smallest type" in err and "--quantize int8 stores" not in err
    assert main(["export", str(SEED_KERAS), "-o", str(tmp_path / "b"), "-f", "npz", "--quantize", "float16",
                 "--min-snr", "500"]) == 4
    err = capsys.readouterr().err
    assert "without --quantize" in err and "bfloat16" not in err.split("hint", 1)[1]


def test_the_summary_lists_the_lowest_snr_tensors_and_verbose_lists_all(keras_module, tmp_path, capsys):
    """A quantized export of a deep model says the total and the 10 tensors of lowest SNR (issue 25); --verbose and
    --json give every tensor."""
    from converter.cli import main

    keras = keras_module
    keras.utils.set_random_seed(3)
    model = keras.Sequential([keras.Input((8,)), *(keras.layers.Dense(8, name=f"d{i:02d}") for i in range(14))])
    model.save(tmp_path / "deep.keras")
    args = ["export", str(tmp_path / "deep.keras"), "-o", str(tmp_path / "out"), "-f", "npz", "--quantize", "int8"]
    assert main(args) == 0
    short = capsys.readouterr().out
    rows = [line for line in short.splitlines() if line.startswith("d") and "int8_symmetric" in line]
    assert len(rows) == 10 and "... and 4 more tensors of higher SNR (--verbose lists all)" in short
    assert "Total: 14 of 28 tensors quantized" in short
    shown = {float(line.split()[-1]) for line in rows}
    all_snr = [t["quantization"]["error"]["snr_db"] for t in json.loads((tmp_path / "out" / "manifest.json").read_text())["tensors"]
               if t.get("quantization") and t["quantization"].get("error")]
    assert max(shown) <= sorted(all_snr)[9] + 0.05  # the ten lowest
    assert main(args + ["--force", "--verbose"]) == 0
    assert len([line for line in capsys.readouterr().out.splitlines() if "int8_symmetric" in line]) == 14


def test_inspect_quantize_totals_count_what_its_table_lists(capsys):
    """9 rows are 6 tensors and 3 int8 scales; the scales are not parameters; bytes as stored (issue 25 point 9)."""
    from converter.cli import main

    assert main(["inspect", str(SEED_KERAS), "--quantize", "int8", "--reader", "h5"]) == 0
    out = capsys.readouterr().out
    table = out.split("Quantization")[0]
    rows = [line for line in table.splitlines() if "/" in line and "(" in line]
    assert len(rows) == 9
    assert ("Total: 6 tensors and 3 scales (31 values) in 9 rows, 321 parameters, 538 bytes stored (1,284 before "
            "quantization)") in out
    assert main(["inspect", str(SEED_KERAS), "--reader", "h5"]) == 0
    assert "Total: 6 tensors, 321 parameters, 1,284 bytes\n" in capsys.readouterr().out
