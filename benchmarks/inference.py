"""The generated C forward pass (export -f c --c-inference): time per inference, arena and code size.

    python benchmarks/inference.py            # seed MLP, a small CNN, MobileNetV2 (alpha 0.35, 96x96)
    python benchmarks/inference.py --json r.json

For each model, in one run on this machine: microseconds per sample of the generated C (gcc -O3 -march=native, one
thread, a loop of calls timed with clock_gettime, best of 5 batches), of Keras (`model(x)` on one sample,
median of many calls) and, when the `ai-edge-litert` package is installed, of its TFLite interpreter on the
model converted with `tf.lite.TFLiteConverter` (float32, one thread); the arena the C code needs; and the
Cortex-M4 code and weight sizes of the generated file (`arm-none-eabi-gcc -Os -mcpu=cortex-m4 -mthumb`).
The weights are seeded random (He-style normal, BatchNorm statistics near 1) so every layer does real work.
Target (issue 15): the C code within 3x of the LiteRT interpreter for the CNN and MobileNetV2.
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")  # no TensorFlow start-up or tracing lines
os.environ.setdefault("ABSL_MIN_LOG_LEVEL", "3")
ROOT = Path(__file__).resolve().parent.parent
C_FLAGS = ["-O3", "-march=native"]  # plain C99 the compiler vectorises for this CPU (as LiteRT picks its kernels)
sys.path.insert(0, str(ROOT))

TIMER = """#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
#include "{header}"
int main(int argc, char **argv) {{
    static float input[{m}_INPUT_SIZE], output[{m}_OUTPUT_SIZE];
    char *raw = malloc({m}_ARENA_BYTES + 16);
    void *arena = (void *)(((uintptr_t)raw + 15) & ~(uintptr_t)15);
    int calls = atoi(argv[1]);
    double best = 1e30;
    for (size_t i = 0; i < {m}_INPUT_SIZE; ++i) input[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    for (int batch = 0; batch < 5; ++batch) {{
        struct timespec start, end;
        clock_gettime(CLOCK_MONOTONIC, &start);
        for (int c = 0; c < calls; ++c) {prefix}_predict(input, output, arena);
        clock_gettime(CLOCK_MONOTONIC, &end);
        double us = ((end.tv_sec - start.tv_sec) * 1e9 + (end.tv_nsec - start.tv_nsec)) / 1e3 / calls;
        best = us < best ? us : best;
    }}
    printf("%.3f %g\\n", best, (double)output[0]);
    free(raw);
    return 0;
}}
"""


def _measured(value: int | None, width: int) -> str:
    """A size, or "-" where it could not be measured (no arm-none-eabi-gcc): never a 0 that looks measured."""
    return f"{value:>{width},}" if value else f"{'-':>{width}}"


def models(keras):
    import numpy as np

    keras.utils.set_random_seed(0)
    seed = keras.saving.load_model(ROOT / "fixtures" / "seed_mlp.keras", compile=False)
    L = keras.layers
    cnn = keras.Sequential([keras.Input((28, 28, 1)), L.Conv2D(8, 3, activation="relu"), L.MaxPooling2D(),
                            L.Conv2D(16, 3, activation="relu"), L.MaxPooling2D(), L.Flatten(),
                            L.Dense(10, activation="softmax")], name="small_cnn")
    mobilenet = keras.applications.MobileNetV2(input_shape=(96, 96, 3), alpha=0.35, weights=None)
    rng = np.random.default_rng(1)
    for model in (cnn, mobilenet):
        values = []
        for value, variable in zip(model.get_weights(), model.weights):
            if "variance" in variable.path or "gamma" in variable.path:
                values.append(rng.uniform(0.5, 1.5, value.shape).astype(value.dtype))
            else:
                fan_in = max(1, int(np.prod(value.shape[:-1])))
                values.append((rng.normal(0, 1, value.shape) * np.sqrt(2 / fan_in)).astype(value.dtype))
        model.set_weights(values)
    return {"seed_mlp": (seed, 20000), "small_cnn": (cnn, 2000), "mobilenet_v2_0.35_96": (mobilenet, 30)}


def time_c(model, folder: Path, calls: int) -> dict:
    import converter

    path = folder / f"{model.name}.keras"
    model.save(path)
    manifest = converter.export(path, folder / "c", formats=["c"], options={"c": {"inference": True}})
    prefix = manifest["options"]["c"]["prefix"]
    header = next(f["path"] for f in manifest["files"] if f["path"].endswith(".h"))
    source = folder / "c" / header.replace(".h", ".c")
    (folder / "timer.c").write_text(TIMER.format(header=header, m=prefix.upper(), prefix=prefix))
    subprocess.run(["gcc", "-std=c99", *C_FLAGS, "-I", str(folder / "c"), str(folder / "timer.c"), str(source), "-o",
                    str(folder / "timer"), "-lm"], check=True)
    us = float(subprocess.run([str(folder / "timer"), str(calls)], capture_output=True, text=True, check=True)
               .stdout.split()[0])
    return {"c_us": us, "arena_bytes": manifest["inference"]["arena_bytes"], **cortex_m4_sizes(source, folder)}


def cortex_m4_sizes(source: Path, folder: Path) -> dict:
    if not shutil.which("arm-none-eabi-gcc"):
        return {"m4_code_bytes": None, "m4_weight_bytes": None}
    obj = folder / "m4.o"
    subprocess.run(["arm-none-eabi-gcc", "-std=c99", "-Os", "-mcpu=cortex-m4", "-mthumb", "-ffunction-sections",
                    "-fdata-sections", "-c", str(source), "-o", str(obj)], check=True)
    sections = subprocess.run(["arm-none-eabi-size", "-A", str(obj)], capture_output=True, text=True, check=True).stdout
    code = weights = 0
    for line in sections.splitlines():
        parts = line.split()
        if len(parts) >= 2 and parts[1].isdigit():
            if parts[0].startswith(".text"):
                code += int(parts[1])
            elif parts[0].startswith(".rodata"):
                weights += int(parts[1])
    return {"m4_code_bytes": code, "m4_weight_bytes": weights}


def time_keras(model, calls: int) -> float:
    import numpy as np

    x = np.zeros((1, *model.inputs[0].shape[1:]), np.float32)
    model(x)
    samples = []
    for _ in range(max(20, min(calls, 300))):
        start = time.perf_counter()
        model(x)
        samples.append(time.perf_counter() - start)
    return statistics.median(samples) * 1e6


def time_litert(model, calls: int) -> float | None:
    try:
        from ai_edge_litert.interpreter import Interpreter
    except ImportError:
        return None
    import numpy as np
    import tensorflow as tf

    converter = tf.lite.TFLiteConverter.from_keras_model(model)
    interpreter = Interpreter(model_content=converter.convert(), num_threads=1)
    interpreter.allocate_tensors()
    detail = interpreter.get_input_details()[0]
    interpreter.set_tensor(detail["index"], np.zeros(detail["shape"], np.float32))
    interpreter.invoke()
    best = 1e30
    for _ in range(5):
        start = time.perf_counter()
        for _ in range(calls):
            interpreter.invoke()
        best = min(best, (time.perf_counter() - start) / calls)
    return best * 1e6


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    from converter.readers.keras import import_keras

    keras = import_keras()
    rows = {}
    with tempfile.TemporaryDirectory(prefix="kw-inference-") as work:
        for name, (model, calls) in models(keras).items():
            folder = Path(work) / name
            folder.mkdir()
            row = time_c(model, folder, calls)
            row["keras_us"] = time_keras(model, calls)
            row["litert_us"] = time_litert(model, calls)
            rows[name] = row
            print(f"{name}: {row}", file=sys.stderr, flush=True)
    print(f"{'model':<22} {'C us':>9} {'LiteRT us':>10} {'C/LiteRT':>8} {'Keras us':>9} {'arena B':>9} "
          f"{'M4 code B':>10} {'M4 weights B':>12}")
    for name, r in rows.items():
        litert = f"{r['litert_us']:>10.1f}" if r["litert_us"] else f"{'-':>10}"
        ratio = f"{r['c_us'] / r['litert_us']:>7.2f}x" if r["litert_us"] else f"{'-':>8}"
        print(f"{name:<22} {r['c_us']:>9.1f} {litert} {ratio} {r['keras_us']:>9.1f} {r['arena_bytes']:>9,} "
              f"{_measured(r['m4_code_bytes'], 10)} {_measured(r['m4_weight_bytes'], 12)}")
    checks = [(name, r["c_us"] <= 3 * r["litert_us"]) for name, r in rows.items()
              if name != "seed_mlp" and r["litert_us"]]
    for name, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: C within 3x of the LiteRT interpreter")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
