"""The whole pipeline on synthetic models, stage by stage, as whole processes, with peak memory.

    python benchmarks/suite.py                     # ~1K, 1M and 10M parameters
    python benchmarks/suite.py --sizes 1e3,1e8 --json results.json

For each size a Dense model of about that many float32 parameters is saved as .keras. Then, each as a
fresh process whose wall time and peak resident memory (ru_maxrss) are measured side by side:

- `export -f <format>` for npz, safetensors and parquet, against a hand-written script with the same
  library (load_model, get_weights, then np.savez / safetensors.numpy.save_file / a pyarrow table of
  list<float> rows): ratio = script time / our time (>= 0.9 means we are no slower, manifest and
  checksums included);
- `export -f c --reader h5` against `xxd -i` on the same weight bytes (ratio = xxd time / our time);
- `inspect --reader h5` against `inspect --reader keras`;
- `verify` of the full export;
- peak memory of a full export above that of the ~1K model, as a multiple of the weight bytes.
"""
from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent

BUILD = """
import os, sys, math
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np
n, path = int(sys.argv[1]), sys.argv[2]
width = max(2, int(math.sqrt(n)))
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((width,)), keras.layers.Dense(width, name="dense")], name="synthetic")
model.save(path)
model.get_layer("dense").get_weights()[0].astype("<f4").tofile(path + ".bin")
"""

SCRIPT = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np
model = keras.saving.load_model(sys.argv[1], compile=False)
arrays = {f"{layer.name}/{w.name}": a for layer in model.layers for w, a in zip(layer.weights, layer.get_weights())}
kind, out = sys.argv[2], sys.argv[3]
if kind == "npz":
    np.savez(out + ".npz", **arrays)
elif kind == "safetensors":
    from safetensors.numpy import save_file
    save_file(arrays, out + ".safetensors", metadata={"format": "np"})
else:
    import pyarrow as pa, pyarrow.parquet as pq
    pq.write_table(pa.table({"name": list(arrays), "values": [a.reshape(-1) for a in arrays.values()]}), out + ".parquet")
"""


def measure(command: list[str], stdout=subprocess.DEVNULL) -> tuple[float, int]:
    """Wall seconds and peak resident bytes of one process."""
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=stdout, stderr=subprocess.DEVNULL,
                               env={**os.environ, "PYTHONPATH": str(ROOT)})
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"failed: {' '.join(command)}")
    return elapsed, usage.ru_maxrss * 1024


def ours(*args: str) -> list[str]:
    return [sys.executable, "-m", "converter", *args]


def run_size(size: int, folder: Path) -> dict:
    model = folder / f"m{size}.keras"
    subprocess.run([sys.executable, "-c", BUILD, str(size), str(model)], check=True, capture_output=True)
    weight_bytes = model.with_suffix(".keras.bin").stat().st_size
    row = {"parameters_target": size, "weight_bytes": weight_bytes}
    for fmt in ("npz", "safetensors", "parquet"):
        mine, _ = measure(ours("export", str(model), "-o", str(folder / f"o-{fmt}"), "-f", fmt, "--force", "-q"))
        script, _ = measure([sys.executable, "-c", SCRIPT, str(model), fmt, str(folder / f"script-{fmt}")])
        row[f"{fmt}_s"], row[f"{fmt}_script_s"], row[f"{fmt}_ratio"] = mine, script, script / mine
    row["c_s"], _ = measure(ours("export", str(model), "-o", str(folder / "o-c"), "-f", "c", "--force", "-q", "--reader", "h5"))
    with open(folder / "xxd.c", "wb") as sink:
        row["xxd_s"], _ = measure(["xxd", "-i", str(model.with_suffix(".keras.bin"))], stdout=sink)
    row["c_ratio"] = row["xxd_s"] / row["c_s"]
    row["inspect_h5_s"], _ = measure(ours("inspect", str(model), "--reader", "h5"))
    row["inspect_keras_s"], _ = measure(ours("inspect", str(model), "--reader", "keras"))
    row["reader_ratio"] = row["inspect_keras_s"] / row["inspect_h5_s"]
    row["export_all_s"], row["export_all_peak"] = measure(ours("export", str(model), "-o", str(folder / "all"), "--force", "-q"))
    row["verify_s"], _ = measure(ours("verify", str(folder / "all")))
    for path in folder.glob("*"):
        subprocess.run(["rm", "-rf", str(path)], check=True) if path.name != model.name else None
    model.unlink()
    return row


def table(rows: list[dict]) -> str:
    base = rows[0]["export_all_peak"]
    lines = [f"{'params':>11} {'npz':>6} {'safet.':>6} {'parquet':>7} {'C/xxd':>6} {'h5/keras':>8} {'export s':>8} "
             f"{'verify s':>8} {'peak MB':>8} {'extra/weights':>13}"]
    for r in rows:
        extra = (r["export_all_peak"] - base) / r["weight_bytes"] if r is not rows[0] else float("nan")
        lines.append(f"{r['weight_bytes'] // 4:>11,} {r['npz_ratio']:>6.2f} {r['safetensors_ratio']:>6.2f} "
                     f"{r['parquet_ratio']:>7.2f} {r['c_ratio']:>5.1f}x {r['reader_ratio']:>7.1f}x {r['export_all_s']:>8.2f} "
                     f"{r['verify_s']:>8.2f} {r['export_all_peak'] / 2**20:>8.0f} {extra:>13.2f}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1e3,1e6,1e7", help="parameter counts; the first is the memory baseline")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kw-suite-") as folder:
        rows = [run_size(int(float(s)), Path(folder)) for s in args.sizes.split(",")]
    print(table(rows))
    print("npz/safetensors/parquet: hand-written script time / ours (>= 0.9 is the target); C/xxd: xxd -i time / ours;\n"
          "h5/keras: inspect with the Keras reader / with the direct reader; extra/weights: peak memory of a full export\n"
          "above the smallest model's, divided by the weight bytes (<= 2.5 is the target)")
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
