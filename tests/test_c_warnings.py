"""The generated C in a firmware build: every variant (--c-arrays flat|nested x .h + .c | --c-header-only x float32 |
int8 | full-integer int8, with --c-inference) builds without a warning under -Wall -Wextra -Werror -pedantic as C99, C11, C++11 and
C++17, with gcc/g++ and clang where installed, and for Cortex-M0+ and M4 with arm-none-eabi-gcc: a firmware of two
translation units, one calling <prefix>_predict, the other only including the header."""
import shutil
import subprocess
from concurrent.futures import ThreadPoolExecutor

import pytest

import converter
from conftest import FIXTURES, calibration_samples, need, needs

WARNINGS = ["-Wall", "-Wextra", "-Werror", "-pedantic"]
HOST = [("gcc", ["-std=c99"]), ("gcc", ["-std=c11"]), ("g++", ["-x", "c++", "-std=c++11"]),
        ("g++", ["-x", "c++", "-std=c++17"]), ("clang", ["-std=c99"]), ("clang", ["-std=c11"]),
        ("clang++", ["-x", "c++", "-std=c++11"]), ("clang++", ["-x", "c++", "-std=c++17"])]
CORTEX_M = [("arm-none-eabi-gcc", ["-std=c99", "-mthumb", "-mcpu=cortex-m0plus", "-Os"]),
            ("arm-none-eabi-gcc", ["-std=c11", "-mthumb", "-mcpu=cortex-m4", "-mfpu=fpv4-sp-d16", "-mfloat-abi=hard",
                                   "-O2"])]
# A CNN with BatchNorm and ReLU (conv, depthwise, separable, pooling, activations) and a recurrent model (LSTM,
# GRU, embedding-free sequences): between them every kernel family the forward pass has.
MODELS = ["conv_bn", "recurrent"]


def _firmware(folder, prefix, header_only):
    """The two translation units of a firmware, and the export's source where it has one."""
    (folder / "main.c").write_text(f'#include "{prefix}.h"\nstatic float arena[{prefix.upper()}_ARENA_BYTES / 4 + 1];\n'
                                   f"int main(void) {{\n    float in[{prefix.upper()}_INPUT_SIZE] = {{0}};\n"
                                   f"    float out[{prefix.upper()}_OUTPUT_SIZE];\n"
                                   f"    return {prefix}_predict(in, out, arena);\n}}\n")
    (folder / "other.c").write_text(f'#include "{prefix}.h"\nint other(void);\nint other(void) {{ return 0; }}\n')
    return ["main.c", "other.c"] + ([] if header_only else [f"{prefix}.c"])


def _build(folder, units, cc, flags):
    result = subprocess.run([cc, *WARNINGS, *flags, "-c", *units], cwd=folder, capture_output=True, text=True,
                            timeout=300)
    return None if result.returncode == 0 else f"{cc} {' '.join(flags)}: {result.stderr[-1500:]}"


@pytest.fixture(scope="module")
def exports(tmp_path_factory):
    """Every variant of every model, exported once."""
    found = {}
    for model in MODELS:
        for arrays in ("flat", "nested"):
            for header_only in (False, True):
                for quantize in (None, "int8"):
                    folder = tmp_path_factory.mktemp(f"{model}_{arrays}_{int(header_only)}_{quantize}")
                    converter.export(FIXTURES / "zoo" / f"{model}.keras", folder, formats=["c"], quantize=quantize,
                                     options={"c": {"inference": True, "arrays": arrays, "header_only": header_only}})
                    found[(model, arrays, header_only, quantize)] = (folder, _firmware(folder, model, header_only))
    for arrays in ("flat", "nested"):  # full-integer int8 (--calibration) of the CNN
        for header_only in (False, True):
            folder = tmp_path_factory.mktemp(f"conv_bn_{arrays}_{int(header_only)}_full_int8")
            converter.export(FIXTURES / "zoo" / "conv_bn.keras", folder, formats=["c"], quantize="int8",
                             calibration=calibration_samples(FIXTURES / "zoo" / "conv_bn.keras"),
                             options={"c": {"inference": True, "arrays": arrays, "header_only": header_only}})
            found[("conv_bn", arrays, header_only, "full_int8")] = (folder, _firmware(folder, "conv_bn", header_only))
    return found


def _matrix(exports, compilers):
    jobs = [(folder, units, cc, flags) for folder, units in exports.values() for cc, flags in compilers]
    with ThreadPoolExecutor(4) as pool:
        failures = [f for f in pool.map(lambda job: _build(*job), jobs) if f]
    return len(jobs), failures


@needs("gcc", "g++")
def test_every_variant_builds_warning_free_on_the_host(exports):
    compilers = [(cc, flags) for cc, flags in HOST if shutil.which(cc)]  # clang where installed
    count, failures = _matrix(exports, compilers)
    assert count >= 20 * 4 and failures == [], "\n".join(failures[:3])


def test_every_variant_builds_warning_free_for_cortex_m(exports):
    need("arm-none-eabi-gcc")
    count, failures = _matrix(exports, CORTEX_M)
    assert count == 20 * 2 and failures == [], "\n".join(failures[:3])


@needs("gcc")
def test_the_build_fails_on_a_warning(tmp_path):
    """The matrix can fail: a unit with an unused variable does not build under these flags."""
    (tmp_path / "bad.c").write_text("int f(void) { int unused = 1; return 0; }\n")
    assert _build(tmp_path, ["bad.c"], "gcc", ["-std=c99"]) is not None
