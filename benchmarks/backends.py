"""The library call on each Keras backend beside the three lines a training script would write instead (issue 28).

    python benchmarks/backends.py [--params 84e6] [--backends tensorflow,torch,jax] [--formats safetensors,npz]

For each backend and format, in a process of its own (Keras picks its backend at import), a freshly built Dense
stack of about `--params` parameters is exported from memory by
- ours: `converter.export(model, out, formats=[format])`;
- the script: `arrays = {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}`, then
  `safetensors.numpy.save_file(arrays, path)` or `np.savez(path, **arrays)`.
Each side runs three times (`--repeat`), interleaved, and its best time counts; the files go to /dev/shm
(`--dir`), so that the disk's write-back does not decide the figures; "peak rise" is the process's peak resident memory
(VmHWM) above what it held once the model was built and its values computed (JAX computes them
asynchronously), as a multiple of the weights' bytes. Targets: script/ours at
least 1.0, and our peak rise no larger than the script's.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

CHILD = r"""
import json, os, sys, time
side, fmt, params, out = sys.argv[1], sys.argv[2], float(sys.argv[3]), sys.argv[4]
import numpy as np
import keras

def status(key):
    with open("/proc/self/status") as f:
        return next(int(line.split()[1]) for line in f if line.startswith(key)) * 1024

width = 4096
layers = max(1, round(params / (width * width + width)))
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((width,)), *(keras.layers.Dense(width) for _ in range(layers))])
weights = sum(int(np.prod(v.shape)) * 4 for v in model.weights)
for v in model.weights:  # JAX computes the initial values asynchronously: wait for them before measuring
    keras.ops.convert_to_numpy(keras.ops.max(v.value))
import converter  # each side's imports come before the clock, as at the top of a training script
from safetensors.numpy import save_file
base = status("VmRSS")
try:  # the peak so far was building the model (its initializers' temporaries): start the peak from here
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")
except OSError:
    pass
start = time.perf_counter()
if side == "ours":
    converter.export(model, out, formats=[fmt])
else:
    arrays = {v.path: keras.ops.convert_to_numpy(v) for v in model.weights}
    if fmt == "safetensors":
        save_file(arrays, os.path.join(out, "model.safetensors"))
    else:
        np.savez(os.path.join(out, "model.npz"), **arrays)
seconds = time.perf_counter() - start
print(json.dumps({"seconds": seconds, "rise": (status("VmHWM") - base) / weights, "params": weights // 4}))
"""


def run(backend: str, side: str, fmt: str, params: float, where: str | None) -> dict:
    with tempfile.TemporaryDirectory(prefix="kw-backends-", dir=where) as out:
        env = {**os.environ, "KERAS_BACKEND": backend, "TF_CPP_MIN_LOG_LEVEL": "3", "JAX_PLATFORMS": "cpu",
               "PYTHONPATH": str(ROOT)}
        done = subprocess.run([sys.executable, "-c", CHILD, side, fmt, str(params), out], capture_output=True,
                              text=True, env=env, check=True)
        return json.loads(done.stdout.splitlines()[-1])


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--params", type=float, default=84e6)
    parser.add_argument("--backends", default="tensorflow,torch,jax")
    parser.add_argument("--formats", default="safetensors,npz")
    parser.add_argument("--repeat", type=int, default=3, help="runs per side, interleaved; the best counts")
    parser.add_argument("--dir", default="/dev/shm" if Path("/dev/shm").is_dir() else None,
                        help="where the files go (default /dev/shm: memory, so that the disk's write-back does not "
                             "decide the figures)")
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    rows, checks = [], []
    print(f"{'backend':<11} {'format':<12} {'params':>8} {'ours s':>8} {'script s':>9} {'script/ours':>12} "
          f"{'rise ours':>10} {'rise script':>12}")
    for backend in args.backends.split(","):
        for fmt in args.formats.split(","):
            runs = {"ours": [], "script": []}
            for _ in range(args.repeat):
                for side in ("ours", "script"):
                    runs[side].append(run(backend, side, fmt, args.params, args.dir))
            best = {side: min(r["seconds"] for r in found) for side, found in runs.items()}
            rise = {side: min(r["rise"] for r in found) for side, found in runs.items()}
            ratio = best["script"] / best["ours"]
            params = runs["ours"][0]["params"]
            print(f"{backend:<11} {fmt:<12} {params / 1e6:>7.0f}M {best['ours']:>8.2f} {best['script']:>9.2f} "
                  f"{ratio:>12.2f} {rise['ours']:>9.2f}x {rise['script']:>11.2f}x", flush=True)
            rows.append({"backend": backend, "format": fmt, "params": params, "ours_s": best["ours"],
                         "script_s": best["script"], "ratio": ratio, "rise_ours": rise["ours"],
                         "rise_script": rise["script"]})
            checks.append((f"{backend} {fmt}: script/ours >= 1.0 ({ratio:.2f})", ratio >= 1.0))
            checks.append((f"{backend} {fmt}: peak rise no larger than the script's ({rise['ours']:.2f}x vs "
                           f"{rise['script']:.2f}x)", rise["ours"] <= rise["script"] + 0.02))
    for what, ok in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {what}")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0 if all(ok for _, ok in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
