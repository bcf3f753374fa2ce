"""The C writer compiled for real: gcc in C99/C11 and g++ in C++11/C++17, all warnings as errors.

A harness includes the generated header, walks the tensor table and dumps every array's bytes; the
dump must equal what Keras's get_weights() returns, byte for byte.
"""
import json
import re
import shutil
import subprocess

import numpy as np
import pytest

import converter
from conftest import FIXTURES, SEED_KERAS, ZOO_KERAS, need, needs, reference_weights
from converter.formats import c
from converter.formats.c_build import HARNESS  # dumps every array through the tensor table
from converter.tensors import canonical

pytestmark = needs("gcc", "g++")

WARNINGS = ["-Wall", "-Wextra", "-Werror", "-pedantic"]
C_STANDARDS = ["-std=c99", "-std=c11"]
CXX_STANDARDS = ["-std=c++11", "-std=c++17"]

def run(command: list[str], cwd) -> bytes:
    result = subprocess.run(command, cwd=cwd, capture_output=True, timeout=600)
    assert result.returncode == 0, result.stderr.decode(errors="replace")[-3000:]
    return result.stdout


def export_c(model_path, out, **options) -> dict:
    return converter.export(model_path, out, formats=["c"], options={"c": options} if options else None)


def expected_bytes(load_model, model_path) -> bytes:
    arrays = reference_weights(load_model(model_path))
    return b"".join(canonical(a).tobytes() for a in arrays)


def build_and_dump(out, manifest, compiler: str, standard: str, extra_sources=(), harness_suffix=".c") -> bytes:
    header = next(f["path"] for f in manifest["files"] if f["path"].endswith(".h"))
    prefix = c.prefix_for(header[:-2], manifest["options"]["c"]["prefix"])
    (out / f"harness{harness_suffix}").write_text(HARNESS.format(header=f"\"{header}\"", macro=prefix.upper(), prefix=prefix))
    objects = []
    for source in [f["path"] for f in manifest["files"] if f["path"].endswith(".c")]:
        run(["gcc", "-std=c99", *WARNINGS, "-c", source, "-o", f"{source}.o"], out)  # the weights are C
        objects.append(f"{source}.o")
    run([compiler, standard, *WARNINGS, f"harness{harness_suffix}", *extra_sources, *objects, "-o", "harness"], out)
    return run(["./harness"], out)


@pytest.fixture(scope="module")
def zoo_exports(tmp_path_factory):
    root = tmp_path_factory.mktemp("c")
    return {path: (root / path.stem, export_c(path, root / path.stem)) for path in [SEED_KERAS, *ZOO_KERAS]}


@pytest.mark.parametrize("standard", C_STANDARDS + CXX_STANDARDS)
@pytest.mark.parametrize("path", [SEED_KERAS, *ZOO_KERAS], ids=lambda p: p.stem)
def test_compiled_arrays_hold_exactly_the_get_weights_bytes(zoo_exports, load_model, path, standard):
    out, manifest = zoo_exports[path]
    compiler, suffix = ("g++", ".cpp") if "++" in standard else ("gcc", ".c")
    dump = build_and_dump(out, manifest, compiler, standard, harness_suffix=suffix)
    assert dump == expected_bytes(load_model, path)


@pytest.mark.parametrize("standard", C_STANDARDS + CXX_STANDARDS)
@pytest.mark.parametrize("arrays", ["flat", "nested"])
def test_single_header_compiles_and_holds_the_bytes(tmp_path, load_model, standard, arrays):
    path = FIXTURES / "zoo" / "special_values.keras"
    manifest = export_c(path, tmp_path, header_only=True, arrays=arrays)
    assert [f["path"] for f in manifest["files"]] == ["special_values.h"]
    compiler, suffix = ("g++", ".cpp") if "++" in standard else ("gcc", ".c")
    assert build_and_dump(tmp_path, manifest, compiler, standard, harness_suffix=suffix) == expected_bytes(load_model, path)


@pytest.mark.parametrize("path, declaration", [
    (FIXTURES / "zoo" / "conv_bn.keras", "extern const float conv_bn_conv_kernel[3][3][3][4];"),
    (FIXTURES / "zoo" / "recurrent.keras", "extern const float recurrent_lstm_lstm_cell_kernel[3][16];"),
], ids=["conv_bn", "recurrent"])
def test_nested_arrays_index_like_the_keras_array(tmp_path, load_model, path, declaration):
    manifest = export_c(path, tmp_path, arrays="nested")
    header = (tmp_path / manifest["files"][0]["path"]).read_text()
    assert declaration in header
    assert build_and_dump(tmp_path, manifest, "gcc", "-std=c99") == expected_bytes(load_model, path)


def test_two_translation_units_include_the_header_and_link(tmp_path, load_model):
    for header_only in (False, True):
        out = tmp_path / str(header_only)
        manifest = export_c(SEED_KERAS, out, header_only=header_only)
        (out / "other.c").write_text('#include "seed_mlp.h"\nfloat other(void) { return seed_mlp_dense_bias[0]; }\n')
        dump = build_and_dump(out, manifest, "gcc", "-std=c99", extra_sources=["other.c"])
        assert dump == expected_bytes(load_model, SEED_KERAS)


def test_header_survives_arduino_style_min_max_abs_macros(tmp_path, load_model):
    manifest = export_c(SEED_KERAS, tmp_path)
    harness = HARNESS.format(header="\"seed_mlp.h\"", macro="SEED_MLP", prefix="seed_mlp")
    arduino = "#define min(a,b) ((a)<(b)?(a):(b))\n#define max(a,b) ((a)>(b)?(a):(b))\n#define abs(x) ((x)>0?(x):-(x))\n"
    (tmp_path / "harness.cpp").write_text(arduino + harness)
    run(["gcc", "-std=c99", *WARNINGS, "-c", "seed_mlp.c", "-o", "seed_mlp.o"], tmp_path)
    run(["g++", "-std=c++11", *WARNINGS, "harness.cpp", "seed_mlp.o", "-o", "harness"], tmp_path)
    assert run(["./harness"], tmp_path) == expected_bytes(load_model, SEED_KERAS)
    assert manifest["files"][0]["path"] == "seed_mlp.h"


def test_arrays_are_const_aligned_and_placeable(tmp_path):
    export_c(SEED_KERAS, tmp_path)
    program = """
    #include <stdint.h>
    #include "seed_mlp.h"
    int main(void) {
        size_t i;
        for (i = 0; i < SEED_MLP_TENSOR_COUNT; ++i)
            if ((uintptr_t)seed_mlp_tensors[i].data % 64 != 0) return 1;
        return 0;
    }
    """
    (tmp_path / "align.c").write_text(program)
    flags = ["-DSEED_MLP_ALIGNMENT=64", '-DSEED_MLP_STORAGE=__attribute__((section(".rodata.weights")))']
    run(["gcc", "-std=c99", *WARNINGS, *flags, "-c", "seed_mlp.c", "-o", "seed_mlp.o"], tmp_path)
    run(["gcc", "-std=c99", *WARNINGS, *flags, "align.c", "seed_mlp.o", "-o", "align"], tmp_path)
    run(["./align"], tmp_path)
    if shutil.which("objdump"):  # the section the user asked for is in the object file
        assert ".rodata.weights" in run(["objdump", "-h", "seed_mlp.o"], tmp_path).decode()
    text = (tmp_path / "seed_mlp.c").read_text()
    assert text.count("SEED_MLP_ALIGN(SEED_MLP_ALIGNMENT) const float ") == 6


def test_hostile_names_give_valid_unique_identifiers_and_escaped_text(zoo_exports):
    out, manifest = zoo_exports[FIXTURES / "zoo" / "hostile.keras"]
    idents = [t["keys"]["c"] for t in manifest["tensors"]]
    assert len(set(i.lower() for i in idents)) == len(idents)
    assert all(i.isascii() and i.isidentifier() and "__" not in i and not i.startswith("_") for i in idents)
    assert idents[:10] == ["hostile_my_layer_kernel", "hostile_my_layer_bias", "hostile_a_b_kernel", "hostile_a_b_bias",
                           "hostile_a_b_kernel_2", "hostile_a_b_bias_2", "hostile_dense_kernel", "hostile_dense_bias",
                           "hostile_dense_kernel_2", "hostile_dense_bias_2"]
    assert "hostile_tensors_kernel" in idents  # a layer called "tensors" does not clash with the table
    for name in ("hostile.h", "hostile.c"):
        text = (out / name).read_text("ascii")  # ASCII only: reading fails otherwise
        code = re.sub(r'"(?:[^"\\]|\\.)*"', '""', text)  # string literals out of the way
        comments = re.findall(r"/\*(.*?)\*/", code, flags=re.DOTALL)
        assert all("/*" not in body for body in comments)  # no comment opens inside another
        uncommented = re.sub(r"/\*.*?\*/", "", code, flags=re.DOTALL)
        assert "/*" not in uncommented and "*/" not in uncommented
    table = (out / "hostile.c").read_text("ascii")
    assert '"new\\012line/kernel"' in table and '"evil*/kernel"' in table and '"\\?\\?/kernel"' in table


def test_float32_literals_round_trip_through_the_compiler(tmp_path):
    """200,000 random bit patterns (every class of float32) plus the special ones, compiled and dumped."""
    rng = np.random.default_rng(2026)
    bits = rng.integers(0, 2**32, size=200_000, dtype=np.uint64).astype(np.uint32)
    specials = np.array([0, 0x80000000, 1, 0x80000001, 0x007FFFFF, 0x00800000, 0x7F7FFFFF, 0xFF7FFFFF, 0x3F800000,
                         0x7F800000, 0xFF800000, 0x7FC00000, 0xFFC00000, 0x7FC12345, 0x7F800001, 0xFFBFFFFF,
                         0x4B800001, 0x33800000], np.uint32)
    values = np.concatenate([specials, bits]).view(np.float32)
    tensor = converter.Tensor("t/values", "t", "values", 0, True, values)
    c.write([tensor], tmp_path / "lits.h")
    manifest = {"files": [{"path": "lits.h"}, {"path": "lits.c"}], "options": {"c": {"prefix": ""}}}
    dump = build_and_dump(tmp_path, manifest, "gcc", "-std=c99")
    assert dump == values.tobytes()


def test_verify_compile_catches_a_changed_literal(tmp_path):
    export_c(SEED_KERAS, tmp_path)
    assert converter.verify(tmp_path, compile=True).ok
    source = tmp_path / "seed_mlp.c"
    text = source.read_text()
    first_digit = re.search(r"= \{\n +-?(\d)\.", text).start(1)  # the leading digit of the first value
    digit = text[first_digit]
    source.write_text(text[:first_digit] + str((int(digit) + 1) % 10) + text[first_digit + 1:])
    report = converter.verify(tmp_path)
    assert [p for f in report.files for p in f.problems] == [
        "file sha256 differs from the manifest", "seed_mlp_dense_kernel: bytes differ from the manifest's sha256"]


def test_compile_problems_reports_what_the_compiler_said(tmp_path):
    manifest = export_c(SEED_KERAS, tmp_path)
    from converter import manifest as manifests

    tensors = manifests.tensor_records(manifest, "c", c.read(tmp_path / "seed_mlp.c"))
    problems = c.compile_problems(manifest, tensors, manifests.export_info(manifest),
                                  cflags=["-DSEED_MLP_ALIGNMENT=3"])  # not a power of two
    assert len(problems) == 1 and problems[0].startswith("cc failed on the exported files:") and "align" in problems[0]


def test_transposed_dense_layout_is_recorded_and_exact(tmp_path, load_model):
    manifest = converter.export(SEED_KERAS, tmp_path, formats=["c", "npz"], layout="dense_out_in")
    assert manifest["options"]["layout"] == "dense_out_in"
    kernel = manifest["tensors"][0]
    assert (kernel["shape"], kernel["transform"]) == ([20, 4], "transpose")
    assert manifest["tensors"][1]["transform"] == "none"
    arrays = reference_weights(load_model(SEED_KERAS))
    expected = b"".join(canonical(a.T if a.ndim == 2 else a).tobytes() for a in arrays)
    assert build_and_dump(tmp_path, manifest, "gcc", "-std=c11") == expected
    assert converter.read(tmp_path / "seed_mlp.npz")["dense/kernel"].tobytes() == canonical(arrays[0].T).tobytes()
    assert converter.verify(tmp_path, compile=True).ok


def test_lines_stay_short(zoo_exports):
    """Lines are at most 120 characters, except those that carry a (possibly long) tensor or layer name."""
    for out, manifest in zoo_exports.values():
        names = [t["name"] for t in manifest["tensors"]] + [t["keys"]["c"] for t in manifest["tensors"]]
        for entry in manifest["files"]:
            for line in (out / entry["path"]).read_text().splitlines():
                assert len(line) <= 120 or any(n.encode("unicode_escape").decode() in line or n in line for n in names), line


def test_verify_never_compiles_c_that_is_not_exactly_ours(tmp_path):
    """A crafted folder: extra code in the .c and a manifest whose checksums match it. The values still parse,
    but the text is not what the exporter writes for them, so verify fails and --compile runs nothing."""
    import json

    from converter import atomic
    from converter.cli import main

    converter.export(SEED_KERAS, tmp_path, formats=["c"])
    marker = tmp_path / "code-ran"
    source = tmp_path / "seed_mlp.c"
    source.write_text(source.read_text() + f'#include <stdlib.h>\n__attribute__((constructor)) static void evil(void) '
                                           f'{{ (void)system("touch {marker}"); }}\n')
    manifest = json.loads((tmp_path / "manifest.json").read_text())
    entry = next(f for f in manifest["files"] if f["path"] == "seed_mlp.c")
    entry["sha256"], entry["bytes"] = atomic.read_sha256(source), source.stat().st_size
    (tmp_path / "manifest.json").write_text(json.dumps(manifest))
    report = converter.verify(tmp_path, compile=True)
    assert not report.ok and "writes for these values and options (edited or foreign C)" in report.files[0].problems[0]
    assert report.files[0].compiled_with is None
    assert main(["verify", str(tmp_path), "--compile"]) == 7
    assert not marker.exists()


def test_verify_proves_the_text_of_every_option_combination(tmp_path):
    for options in ({}, {"header_only": True}, {"arrays": "nested", "align": 64, "prefix": "net"}):
        out = tmp_path / str(len(list(tmp_path.iterdir())))
        converter.export(FIXTURES / "zoo" / "special_values.keras", out, formats=["c"], options={"c": options})
        assert converter.verify(out).ok, converter.verify(out)


def test_a_model_named_like_a_system_header_does_not_shadow_it(tmp_path, load_model):
    shutil.copy(SEED_KERAS, tmp_path / "stdint.keras")
    manifest = converter.export(tmp_path / "stdint.keras", tmp_path / "out", formats=["c"])
    assert [f["path"] for f in manifest["files"]] == ["stdint_weights.h", "stdint_weights.c"]
    assert build_and_dump(tmp_path / "out", manifest, "gcc", "-std=c99") == expected_bytes(load_model, SEED_KERAS)


# special values (NaN payloads, infinities, denormals) on ARM; on AVR, whose double has 32 bits, float16,
# bfloat16 and float32 weights (float64 there is the next test)
CROSS = [("arm-none-eabi-gcc", "-mcpu=cortex-m4 -mthumb -O2", "special_values"), ("avr-gcc", "-mmcu=atmega328p -Os", "half")]


@pytest.mark.parametrize("cc, cflags, model", CROSS, ids=["arm", "avr"])
@pytest.mark.parametrize("header_only", [False, True], ids=["source", "header"])
def test_verify_compiles_for_cross_targets_and_reads_every_array_from_the_objects(tmp_path, cc, cflags, model,
                                                                                  header_only):
    """A cross compiler's objects cannot run here: each array's own section is compared instead."""
    need(cc, cc.replace("gcc", "objcopy"))
    from converter.cli import main

    converter.export(FIXTURES / "zoo" / f"{model}.keras", tmp_path, formats=["c"], options={"c": {"header_only": header_only}})
    report = converter.verify(tmp_path, compile=True, cc=cc, cflags=cflags.split())
    assert report.ok and {f.compiled_with for f in report.files} == {cc}, report
    assert main(["verify", str(tmp_path), "--compile", "--cc", cc, f"--cflags={cflags}"]) == 0


@needs("avr-gcc", "avr-objcopy")
def test_float64_weights_on_avr_with_its_32_bit_double_are_reported(tmp_path):
    """avr-gcc's double is 32 bits unless -mdouble=64: the float64 arrays would not hold the weights."""
    converter.export(FIXTURES / "zoo" / "special_values.keras", tmp_path, formats=["c"])
    report = converter.verify(tmp_path, compile=True, cc="avr-gcc", cflags=["-mmcu=atmega328p"])
    problems = [p for f in report.files for p in f.problems]
    assert problems == ["special_values_f64_kernel: avr-gcc placed 64 bytes in the object, the manifest says 120",
                        "special_values_f64_bias: avr-gcc placed 16 bytes in the object, the manifest says 24"]


@needs("arm-none-eabi-gcc", "arm-none-eabi-objcopy")
def test_a_cross_compiled_array_that_differs_is_found(tmp_path):
    """The check reads real bytes: an array changed after export (manifest untouched) fails, by name."""
    converter.export(SEED_KERAS, tmp_path, formats=["c"])
    from converter.formats import c_build

    manifest = json.loads((tmp_path / "manifest.json").read_text())
    manifest["tensors"][1]["sha256"] = "0" * 64  # as if the bias in the file were not what the manifest records
    paths = [tmp_path / "seed_mlp.h", tmp_path / "seed_mlp.c"]
    problems = c_build.problems(paths, manifest, "seed_mlp", "arm-none-eabi-gcc", ["-mthumb"])
    assert problems == ["seed_mlp_dense_bias: the bytes arm-none-eabi-gcc placed in the object differ from the manifest's sha256"]


def test_a_missing_or_unusable_compiler_is_a_usage_error_not_a_failed_verification(tmp_path, capsys):
    from converter.cli import main

    converter.export(SEED_KERAS, tmp_path, formats=["c"])
    assert main(["verify", str(tmp_path), "--compile", "--cc", "no-such-gcc"]) == 2
    err = capsys.readouterr().err
    assert "compiler 'no-such-gcc' not found" in err and "OK" not in err
    assert main(["verify", str(tmp_path), "--compile", "--cc", "gcc", "--cflags=-mno-such-flag"]) == 2
    assert "cannot compile a trivial C file" in capsys.readouterr().err


@needs("avr-gcc", "avr-size")
def test_avr_sram_holds_no_tables_when_left_out_or_garbage_collected(tmp_path):
    """The tensor and layer tables (pointers and names) land in an ATmega's 2 KB of SRAM: 270 bytes for the seed
    model. -D<PREFIX>_NO_TABLES leaves them out, and --gc-sections drops them when nothing uses them."""
    export_c(SEED_KERAS, tmp_path)
    (tmp_path / "main.c").write_text('#include "seed_mlp.h"\nvolatile float sink;\n'
                                     "int main(void) { sink = pgm_read_float(&seed_mlp_dense_bias[0]); return 0; }\n")

    def sram(*flags):
        run(["avr-gcc", "-mmcu=atmega328p", "-Os", *flags, "main.c", "seed_mlp.c", "-o", "fw.elf"], tmp_path)
        text, data, bss = run(["avr-size", "fw.elf"], tmp_path).decode().splitlines()[1].split()[:3]
        return int(data) + int(bss)

    with_tables = sram()
    assert with_tables - sram("-DSEED_MLP_NO_TABLES") == 270
    assert with_tables - sram("-fdata-sections", "-Wl,--gc-sections") == 270
