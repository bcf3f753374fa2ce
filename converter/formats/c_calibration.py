"""Calibration for full-integer int8 (``--calibration SAMPLES``): the range of every value the forward pass keeps,
over the samples, as the float model computes it. The export's float C with the model's own float32 weights (not
the int8 ones the export stores) is built with the host compiler, its trace hook recording each traced value's
minimum and maximum, and run on the samples; the model inputs' ranges are the samples'. TFLite's calibration does
the same with its float model (minimum and maximum over the representative dataset, per tensor), so the two give
the same parameters; ranged on the int8 weights instead, the grid of each value shifted a little, and the error
against the float model came out up to 2x TFLite's (benchmarks/inference.py, small CNN and MobileNetV2).

A quantization-aware-trained model brings its own ranges (:func:`trained_ranges`): those its fake quantizers
learned for each layer's output and for the model's inputs, which full-integer int8 takes instead of calibrating.
"""
from __future__ import annotations

import os
import subprocess
import tempfile
import zipfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from .. import atomic
from .. import layers as registry
from ..errors import InputInvalid, UsageError
from ..tensors import ExportInfo, Tensor
from .c_build import TIMEOUT, CompilerUnusable, include_line
from .c_writer import Unit, emit

RECORD_H = "#include <stddef.h>\nvoid kw_record(const char *name, const float *values, size_t count);\n"
MAIN = """#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include {header}
typedef struct {{ const char *name; double lo, hi; }} kw_range;
static kw_range ranges[65536];
static size_t count;
void kw_record(const char *name, const float *values, size_t n) {{
    size_t i = 0;
    while (i < count && strcmp(ranges[i].name, name) != 0) ++i;
    if (i == count) {{
        if (count == sizeof ranges / sizeof ranges[0]) return;
        ranges[count].name = name;
        ranges[count].lo = INFINITY;
        ranges[count].hi = -INFINITY;
        ++count;
    }}
    for (size_t k = 0; k < n; ++k) {{
        const double v = values[k];
        if (v < ranges[i].lo) ranges[i].lo = v;
        if (v > ranges[i].hi) ranges[i].hi = v;
    }}
}}
int main(void) {{
    static float input[{m}_INPUT_SIZE], output[{m}_OUTPUT_SIZE];
    char *raw = malloc({m}_ARENA_BYTES + 16);
    void *arena = (void *)(((uintptr_t)raw + 15) & ~(uintptr_t)15);
    if (!raw) return 3;
    while (fread(input, sizeof input, 1, stdin) == 1)
        if ({prefix}_predict(input, output, arena) != 0) return 1;
    for (size_t i = 0; i < count; ++i) {{
        for (const char *c = ranges[i].name; *c; ++c) printf("%02x", (unsigned)(unsigned char)*c);
        printf(" %.17g %.17g\\n", ranges[i].lo, ranges[i].hi);
    }}
    free(raw);
    return 0;
}}
"""


def ranges(tensors: Sequence[Tensor], prefix: str, info: ExportInfo, input_shape: str, inputs: list[str],
           samples: list[np.ndarray], cc: str = "cc") -> dict[str, tuple[float, float]]:
    """(minimum, maximum) of each value the float forward pass traces, and of each model input, over ``samples``
    (one array per model input, samples on the first axis, in the order of ``inputs``); ``tensors``: the model's
    float weights."""
    found = {name: (float(np.nanmin(x)), float(np.nanmax(x))) for name, x in zip(inputs, samples)}
    flat = np.concatenate([np.asarray(x, np.float32).reshape(len(x), -1) for x in samples], axis=1).astype("<f4")
    unit = Unit(tensors, prefix, "calibration", info, "flat", 16, False, True, input_shape)
    with tempfile.TemporaryDirectory(prefix="keras-weights-calibration-") as work:
        folder = Path(work)
        emit(unit, folder / "calibration.h", lambda path: atomic.HashedOutput(path, text=True))
        (folder / "record.h").write_text(RECORD_H)
        (folder / "main.c").write_text(MAIN.format(header=include_line(folder / "calibration.h"), m=prefix.upper(),
                                                   prefix=prefix))
        binary = folder / "calibrate"
        hook = f"-D{prefix.upper()}_TRACE(name,values,count)=kw_record(name,values,count)"
        command = [cc, "-std=c99", "-O1", "-include", str(folder / "record.h"), hook, str(folder / "main.c"),
                   str(folder / "calibration.c"), "-o", str(binary), "-lm"]
        try:
            built = subprocess.run(command, capture_output=True, text=True, timeout=TIMEOUT)
        except FileNotFoundError:
            raise CompilerUnusable(f"--calibration runs the float forward pass, built with a C compiler: {cc!r} "
                                   "was not found", hint="Install one (gcc or clang) as cc, or set CC.") from None
        except subprocess.TimeoutExpired:
            raise CompilerUnusable(f"{cc} did not build the float forward pass for calibration in {TIMEOUT} s") from None
        if built.returncode != 0:
            raise CompilerUnusable(f"{cc} cannot build the float forward pass for calibration: "
                                   f"{built.stderr.strip()[-2000:]}")
        try:
            ran = subprocess.run([str(binary)], input=flat.tobytes(), capture_output=True, timeout=TIMEOUT)
        except subprocess.TimeoutExpired:
            raise InputInvalid(f"the float forward pass did not finish the {len(flat)} calibration samples in "
                               f"{TIMEOUT} s", hint="Give fewer samples.") from None
    if ran.returncode != 0:
        raise InputInvalid(f"the float forward pass stopped (exit {ran.returncode}) on the calibration samples")
    for line in ran.stdout.decode("ascii").splitlines():
        name, low, high = line.split(" ")
        found[bytes.fromhex(name).decode("utf-8", "surrogateescape")] = (float(low), float(high))
    bad = [name for name, (low, high) in found.items() if not (np.isfinite(low) and np.isfinite(high))]
    if bad:
        raise InputInvalid(f"the calibration samples give '{bad[0]}' no finite range (NaN or infinite values)",
                           hint="Give samples for which the model's values are finite.")
    return found


def trained_ranges(graph, tensors: Sequence[Tensor]) -> dict[str, tuple[float, float]]:
    """(minimum, maximum) of the values a quantization-aware model trained ranges for, by the name the forward pass
    traces them under (the registry's ``Spec.output_range`` of a node's class, or of the wrapper it was held in); a
    pass-through layer's range (tfmot's ``QuantizeLayer``) ranges its input too. Empty for any other model.

    >>> from converter.readers import read_model
    >>> from converter.cgen import graph as graphs
    >>> model = read_model("fixtures/legacy/legacy_qat.h5", "h5")
    >>> found = trained_ranges(graphs.from_config(model.config), model.tensors)
    >>> sorted(found), [round(v, 4) for v in found["quant_relu"]]
    (['input_4', 'quant_dense_3', 'quant_dense_4', 'quant_relu', 'quantize_layer'], [-5.976, 5.99])
    """
    by_layer: dict[str, dict[str, Any]] = {}
    for tensor in tensors:
        layer, _, role = tensor.name.rpartition("/")
        by_layer.setdefault(layer, {})[role] = tensor.array
    found: dict[str, tuple[float, float]] = {}
    for node in graph.nodes:
        spec = registry.spec(node.wrapper or node.class_name)
        trained = spec.output_range(by_layer.get(node.layer, {})) if spec.output_range is not None else None
        if trained is None:
            continue
        found[node.name] = trained
        if registry.spec(node.class_name).identity:
            for source, _ in node.inputs:
                found.setdefault(source, trained)
    return found


def default_compiler() -> str:
    """The compiler calibration builds with: $CC, else cc."""
    return os.environ.get("CC") or "cc"


MAX_SAMPLE_BYTES = 2**31 - 1  # the calibration samples held in memory at once
NPY_RATIO = 1000              # an .npz member may unpack to at most this many times its stored size (zip bombs)


def samples_for(calibration: Any, inputs: list[str], shapes: list[tuple[int, ...]]) -> list[np.ndarray]:
    """The calibration samples as one float32 array per model input, ``(N, *shape)``: from an array (one input),
    a list of arrays or a dict by input name, or a path to a ``.npy`` (one input) or ``.npz`` (one array per input,
    named as the model's inputs). A file is untrusted input: no pickles, and no array declared larger than what its
    file can hold."""
    given = _load(Path(calibration)) if isinstance(calibration, (str, os.PathLike)) else calibration
    what = str(calibration) if isinstance(calibration, (str, os.PathLike)) else "the calibration samples"
    if isinstance(given, dict):
        unknown = sorted(set(given) - set(inputs))
        missing = [name for name in inputs if name not in given]
        if unknown or missing:
            raise UsageError(f"{what} holds arrays {sorted(given)}; the model's inputs are {inputs}",
                             hint="Name one array per model input, as model.inputs names them.")
        given = [given[name] for name in inputs]
    elif not isinstance(given, (list, tuple)):
        given = [given]
    if len(given) != len(inputs):
        raise UsageError(f"{what}: {len(given)} arrays for a model of {len(inputs)} inputs ({', '.join(inputs)})",
                         hint="Give an .npz with one array per input, named as model.inputs.")
    arrays = []
    for name, shape, array in zip(inputs, shapes, given):
        array = np.asarray(array)
        if array.dtype.kind not in "fiub" or array.ndim != len(shape) + 1 or tuple(array.shape[1:]) != tuple(shape) \
                or len(array) == 0:
            raise UsageError(f"{what}: input '{name}' needs samples of shape (N, {', '.join(map(str, shape))}) of "
                             f"numbers, N >= 1; got {array.dtype} {tuple(array.shape)}")
        arrays.append(array.astype(np.float32))
    if len({len(a) for a in arrays}) > 1:
        raise UsageError(f"{what}: the inputs have different numbers of samples ({[len(a) for a in arrays]})")
    return arrays


def _load(path: Path) -> Any:
    try:
        if path.suffix == ".npz":
            with zipfile.ZipFile(path) as archive:
                return {info.filename[:-4]: _member(archive, info, path) for info in archive.infolist()
                        if info.filename.endswith(".npy")}
        with open(path, "rb") as handle:
            _declared_bytes(handle, path.stat().st_size, path)
        return np.load(path, allow_pickle=False)
    except (OSError, ValueError, zipfile.BadZipFile, EOFError) as error:
        raise InputInvalid(f"{path.name}: not calibration samples numpy can read ({type(error).__name__}: {error})",
                           hint="Give a .npy (one input) or .npz (one array per input) of float samples.") from None


def _member(archive: zipfile.ZipFile, info: zipfile.ZipInfo, path: Path) -> np.ndarray:
    if info.file_size > NPY_RATIO * max(info.compress_size, 1) or info.file_size > MAX_SAMPLE_BYTES:
        raise ValueError(f"{info.filename} would unpack to {info.file_size:,} bytes")
    with archive.open(info) as handle:
        _declared_bytes(handle, info.file_size, path)
    with archive.open(info) as handle:
        return np.lib.format.read_array(handle, allow_pickle=False)


def _declared_bytes(handle, available: int, path: Path) -> None:
    """Refuse an .npy whose header declares more data than the file holds, before numpy allocates it."""
    version = np.lib.format.read_magic(handle)
    read_header = {(1, 0): np.lib.format.read_array_header_1_0, (2, 0): np.lib.format.read_array_header_2_0}.get(version)
    if read_header is None:
        raise ValueError(f"npy format version {version}")
    shape, _, dtype = read_header(handle)
    declared = int(np.prod(shape, dtype=object)) * dtype.itemsize
    if declared > available or declared > MAX_SAMPLE_BYTES:
        raise ValueError(f"an array of shape {shape} declared in {available:,} bytes")
