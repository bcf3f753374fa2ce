"""``verify --predict MODEL``: build the exported forward pass with the host compiler, run it on seeded
random inputs and compare each output with Keras's ``model.predict`` on the same inputs.

For an int8 export the Keras model's quantized tensors are replaced by the export's own ``q * scale`` first
(the other tensors stay the model's), so the comparison measures the C code, not the quantization.
"""
from __future__ import annotations

import dataclasses
import re
import subprocess
import tempfile
import warnings
from pathlib import Path
from typing import Any

import numpy as np

from . import dtypes, exports, integer, layers
from .errors import InputInvalid, UnsafeInput
from .formats import c, c_build
from .cgen import graph as graphs
from .cgen.codegen import input_shapes
from .manifest import export_info, tensor_records
from .readers import open_keras_model, read_model
from .readers.keras import model_variables

SAMPLES = 8
TOLERANCE = 1e-4  # max abs difference allowed: TOLERANCE x (1 + max |y|)
INPUT_SCALES = (1.0, 30.0, 255.0)  # standard deviations tried in turn: unit-scale features, then pixel-like values

_MAIN = """#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include {header}
int main(void) {{
    static float input[{m}_INPUT_SIZE], output[{m}_OUTPUT_SIZE];
    char *raw = malloc({m}_ARENA_BYTES + 16);
    void *arena = (void *)(((uintptr_t)raw + 15) & ~(uintptr_t)15);
    if (!raw) return 3;
    while (fread(input, sizeof input, 1, stdin) == 1) {{
        if ({prefix}_predict(input, output, arena) != 0) return 1;
        fwrite(output, sizeof output, 1, stdout);
    }}
    free(raw);
    return 0;
}}
"""


def predict_problems(manifest: dict, arrays: dict[str, np.ndarray], source: Any, cc: str = "cc"
                     ) -> tuple[list[str], str, float | None]:
    """(problems, what was compared, the outputs' spread across the samples) for an export, from its C arrays as
    verified (``arrays``, by C key), against the model ``source``. The program is built from the C text regenerated
    from those values (``formats.c.regenerated``), never from the export folder's files."""

    if "inference" not in manifest:
        return ["the export has no forward pass (export it with -f c --c-inference)"], "nothing compared", None

    try:
        with warnings.catch_warnings():  # Keras's advice on how a legacy file was written is not ours to print
            warnings.simplefilter("ignore")
            model = open_keras_model(source)  # the checks every command applies to a model file
    except (InputInvalid, UnsafeInput) as error:
        raise _no_reference(source, "load", error) from None
    if not arrays:
        return ["the C files were not verified, so their forward pass is not built"], "nothing compared", None
    integer_pass = "activations" in manifest["inference"]
    if manifest["options"].get("quantize") and not integer_pass:  # full-integer int8 is measured against the model
        quantized = {t["name"] for t in manifest["tensors"] if "quantization" in t}
        _hold(model, _dequantized(manifest, arrays), read_model(model).tensors, quantized)
    try:
        inputs, expected = _varying(model, manifest)
    except Exception as error:
        raise _no_reference(source, "run", error) from None
    tensors, info = tensor_records(manifest, "c", arrays), export_info(manifest)
    program = _integer_program(manifest, tensors, info) if integer_pass else None
    if program is not None:  # generated once: the files and the numpy twin come from the same program
        info = dataclasses.replace(info, prepared={"c": program})
    with c.regenerated(manifest, tensors, info) as files:
        got = _run(files, manifest["options"]["c"]["prefix"], inputs, cc)
    if got.shape != expected.shape:
        return [f"the C code gives {got.shape[1]} output values a sample, Keras {expected.shape[1]}"], "outputs", None
    if integer_pass:
        return _integer_problems(manifest, program, inputs, got, expected, cc)
    error = float(np.max(np.abs(got.astype(np.float64) - expected))) if expected.size else 0.0
    bound = TOLERANCE * (1 + float(np.max(np.abs(expected)))) if expected.size else 0.0
    spread = _spread(expected)
    detail = f"{SAMPLES} samples, max abs difference {error:.3g} (bound {bound:.3g}), compiled with {cc}; " + (
        f"outputs spread {spread:.3g} across the samples" if spread else
        "the outputs do not depend on the inputs (the same for every sample), so this compares one constant")
    if not error <= bound:
        return [f"the C forward pass differs from model.predict by {error:.3g}, more than {bound:.3g}; compile it "
                f"with -D{manifest['options']['c']['prefix'].upper()}_TRACE_PRINT to see the first layer that differs"], \
            detail, spread
    return [], detail, spread


def _integer_program(manifest: dict, tensors, info):
    """The full-integer int8 program of an export, regenerated from its values and manifest."""
    options = manifest["options"]["c"]
    header = next(f["path"] for f in manifest["files"] if f["path"].endswith(".h"))
    names = c.keys(tensors, header[:-2], prefix=options["prefix"])
    return c.inference_program(tensors, names, options["prefix"], info, options.get("input_shape", ""),
                               nested=options.get("arrays") == "nested")


def _integer_problems(manifest: dict, program, inputs: list[np.ndarray], got: np.ndarray, expected: np.ndarray,
                      cc: str) -> tuple[list[str], str, float | None]:
    """Full-integer int8: the C outputs against the numpy twin of the same integer arithmetic, bit for bit (the
    finding), and against Keras's float model (reported: the error quantization makes)."""
    params = {a["name"]: (a["scale"], a["zero_point"]) for a in manifest["inference"]["activations"]}
    graph = graphs.from_json(manifest["inference"]["graph"])
    twin = []
    for sample in range(SAMPLES):
        quantized = [integer.quantize(x[sample], *params[name]) for name, x in zip(graph.inputs, inputs)]
        outputs = program.reference(quantized)
        twin.append(np.concatenate([integer.dequantize(y, *params_of_output).reshape(-1) for y, params_of_output
                                    in zip(outputs, program.output_parameters)]))
    twin = np.array(twin, np.float32)
    differing = int(np.sum(got.view(np.uint32) != twin.view(np.uint32)))
    error = float(np.max(np.abs(got.astype(np.float64) - expected))) if expected.size else 0.0
    rmse = float(np.sqrt(np.mean((got.astype(np.float64) - expected) ** 2))) if expected.size else 0.0
    spread = _spread(expected)
    detail = (f"{SAMPLES} samples, full-integer int8, compiled with {cc}: {differing} of {got.size} outputs differ from "
              f"the numpy twin of its integer arithmetic; against Keras's float model max abs difference {error:.3g}, "
              f"RMSE {rmse:.3g}; outputs spread {spread:.3g} across the samples")
    problems = [] if differing == 0 else [
        f"{differing} of {got.size} int8 outputs differ from the numpy twin of the same integer arithmetic (the C "
        f"code or the compiler does not compute what converter.integer defines)"]
    return problems, detail, spread


def _spread(outputs: np.ndarray) -> float:
    """The largest range of one output value across the samples: 0 when every sample gives the same outputs."""
    return float(np.max(np.ptp(outputs, axis=0))) if outputs.size else 0.0


def _varying(model: Any, manifest: dict) -> tuple[list[np.ndarray], np.ndarray]:
    """Seeded inputs and Keras's outputs, drawn wider until the outputs vary across the samples (an untrained
    network often gives one answer to unit-scale inputs); the last draw if none does."""
    for scale in INPUT_SCALES:
        inputs = _inputs(model, manifest, scale)
        expected = _keras_outputs(model, inputs)
        if _spread(expected) > 0:
            break
    return inputs, expected


def _no_reference(source: Any, what: str, error: Exception):
    if isinstance(error, UnsafeInput):  # refused as unsafe: said as such, exit 5
        return error
    name = getattr(source, "name", None) or Path(source).name
    message = " ".join(re.sub(r"\x1b\[[0-9;]*m", "", str(error)).split())[:300]  # Keras colours its messages
    return InputInvalid(f"Keras cannot {what} {name}, so --predict has no reference to compare with: "
                        f"{type(error).__name__}: {message}",
                        hint="--predict needs a model Keras 3 can run; verify the export without it.")


def _dequantized(manifest: dict, arrays: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Tensor name -> the float32 values a quantized export's tensors stand for, from its C arrays (by C key)."""
    named = {t["name"]: dtypes.restore(arrays[t["keys"]["c"]], t["dtype"]) for t in manifest["tensors"]}
    return exports.dequantized(named, manifest["tensors"])


def _hold(model: Any, dequantized: dict[str, np.ndarray], tensors, quantized: set[str]) -> None:
    """Give the Keras model the export's dequantized values of its quantized tensors (variables in model order)."""
    for tensor, variable in zip(tensors, model_variables(model), strict=True):
        if tensor.name in quantized:
            variable.assign(dequantized[tensor.name].astype(np.dtype(variable.dtype)))


def _inputs(model: Any, manifest: dict, scale: float = 1.0) -> list[np.ndarray]:
    """Seeded inputs: token ids below the vocabulary for inputs that feed an Embedding, normal floats of standard
    deviation ``scale`` otherwise."""

    graph = graphs.from_json(manifest["inference"]["graph"])
    shapes = input_shapes(graph, manifest["options"]["c"].get("input_shape", ""))
    rng = np.random.default_rng(0)
    arrays = []
    for name, shape in zip(graph.inputs, shapes):
        vocabulary = _embedding_vocabulary(graph, name)
        if vocabulary or "int" in str(model.inputs[len(arrays)].dtype):
            arrays.append(rng.integers(0, min(vocabulary or 10, 10), (SAMPLES, *shape)).astype(np.float32))
        else:
            arrays.append(rng.normal(0, scale, (SAMPLES, *shape)).astype(np.float32))
    return arrays


def _embedding_vocabulary(graph, name: str) -> int | None:
    for node in graph.nodes:
        if layers.spec(node.class_name).integer_input and any(source == name for source, _ in node.inputs):
            return int(node.config.get("input_dim", 10))
    return None


def _keras_outputs(model: Any, inputs: list[np.ndarray]) -> np.ndarray:
    outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    return np.concatenate([np.asarray(y, np.float64).reshape(SAMPLES, -1) for y in outputs], axis=1)


def _run(files: list[Path], prefix: str, inputs: list[np.ndarray], cc: str) -> np.ndarray:
    """The outputs of the program built from ``files`` (regenerated C) on ``inputs``; no folder on the include
    path, every file by its absolute path."""
    header = next(p for p in files if p.suffix == ".h")
    with tempfile.TemporaryDirectory(prefix="keras-weights-predict-") as work:
        main = Path(work) / "main.c"
        main.write_text(_MAIN.format(header=c_build.include_line(header), m=prefix.upper(), prefix=prefix))
        binary = Path(work) / "predict"
        sources = [str(p.resolve()) for p in files if p.suffix == ".c"]
        try:
            built = subprocess.run([cc, "-std=c99", "-O2", str(main), *sources, "-o", str(binary), "-lm"],
                                   capture_output=True, text=True, timeout=c_build.TIMEOUT)
        except FileNotFoundError:
            raise c_build.CompilerUnusable(f"compiler {cc!r} not found", hint="Install it, or pass --cc.") from None
        if built.returncode != 0:
            raise c_build.CompilerUnusable(f"{cc} cannot build the forward pass: {built.stderr.strip()[-2000:]}")
        flat = np.concatenate([x.reshape(SAMPLES, -1) for x in inputs], axis=1).astype("<f4")
        ran = subprocess.run([str(binary)], input=flat.tobytes(), capture_output=True, timeout=600)
        if ran.returncode != 0:
            return np.zeros((SAMPLES, 0))
        return np.frombuffer(ran.stdout, "<f4").reshape(SAMPLES, -1)
