"""Performance as a user meets it (issue 18): whole processes on a 32M-parameter three-layer Dense stack saved by
Keras as .keras, each figure the best of two runs, side by side in one run.

    python benchmarks/user_view.py [--json out.json]

- npz / safetensors / Parquet: `keras-weights export -f FORMAT` (default reader) against the hand-written
  script of benchmarks/suite.py (load_model, get_weights, np.savez / save_file / pq.write_table);
  ratio = script time / ours (>= 1.0: we are no slower).
- C stage: (`export -f c` time) - (`export -f npz` time), against `xxd -i` of the same raw bytes into a header
  file; ratio = xxd time / C stage.
- cold `inspect --reader h5` of the seed model (best of 5) and its ratio to `--reader keras`.
- peak resident memory of `export -f npz,safetensors,parquet` above the same export of the seed model, over the
  weight bytes, with the default reader and with `--reader h5`.
"""
from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
import suite  # noqa: E402  (its measuring helpers and the hand-written script)

BUILD = """
import os, sys
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np
width, path = int(sys.argv[1]), sys.argv[2]
keras.utils.set_random_seed(0)
model = keras.Sequential([keras.Input((width,)), *(keras.layers.Dense(width, name=f"dense_{i}") for i in range(3))],
                         name="stack")
model.save(path)
with open(path + ".bin", "wb") as sink:
    for array in model.get_weights():
        sink.write(np.ascontiguousarray(array, "<f4").tobytes())
"""
WIDTH = 3265  # 3 x (3265 x 3265 + 3265) = 32.0M parameters


def best(command: list[str], runs: int = 2, **options) -> tuple[float, int]:
    results = [suite.measure(command, **options) for _ in range(runs)]
    return min(r[0] for r in results), min(r[1] for r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="kw-user-") as work:
        folder = Path(work)
        model = folder / "stack.keras"
        subprocess.run([sys.executable, "-c", BUILD, str(WIDTH), str(model)], check=True, capture_output=True)
        weights = model.with_suffix(".keras.bin")
        weight_bytes = weights.stat().st_size
        row: dict = {"parameters": weight_bytes // 4, "weight_bytes": weight_bytes}
        for fmt in ("npz", "safetensors", "parquet"):
            out, script_out = folder / f"o-{fmt}", folder / f"s-{fmt}"
            mine = best(suite.ours("export", str(model), "-o", str(out), "-f", fmt, "-q"), fresh=(out,))[0]
            script = best([sys.executable, "-c", suite.SCRIPT, str(model), fmt, str(script_out)],
                          fresh=(Path(f"{script_out}.{fmt}"),))[0]
            row[fmt] = {"ours_s": mine, "script_s": script, "ratio": script / mine}
            suite.remove(out, Path(f"{script_out}.{fmt}"))
        c_out, header = folder / "o-c", folder / "xxd.h"
        c_time = best(suite.ours("export", str(model), "-o", str(c_out), "-f", "c", "-q"), fresh=(c_out,))[0]
        xxd = best(["xxd", "-i", str(weights)], stdout=header, fresh=(header,))[0]
        stage = max(c_time - row["npz"]["ours_s"], 1e-3)
        row["c"] = {"export_c_s": c_time, "stage_s": stage, "xxd_s": xxd, "ratio": xxd / stage}
        suite.remove(c_out, header)
        seed_out = folder / "seed"
        for reader in ("auto", "h5"):
            flags = [] if reader == "auto" else ["--reader", "h5"]
            _, base = best(suite.ours("export", str(suite.SEED), "-o", str(seed_out), "-f", "npz,safetensors,parquet",
                                      "-q", *flags), fresh=(seed_out,))
            _, peak = best(suite.ours("export", str(model), "-o", str(folder / "all"), "-f", "npz,safetensors,parquet",
                                      "-q", *flags), fresh=(folder / "all",))
            row[f"memory_{reader}"] = {"peak_bytes": peak, "base_bytes": base, "extra_over_weights": (peak - base) / weight_bytes}
            suite.remove(seed_out, folder / "all")
        direct = min(suite.measure(suite.ours("inspect", str(suite.SEED), "--reader", "h5"))[0] for _ in range(5))
        keras = min(suite.measure(suite.ours("inspect", str(suite.SEED), "--reader", "keras"))[0] for _ in range(3))
        row["inspect"] = {"h5_s": direct, "keras_s": keras, "ratio": keras / direct}
    checks = [
        ("export -f npz no slower than the hand-written script (>= 1.0)", row["npz"]["ratio"] >= 1.0, f"{row['npz']['ratio']:.2f}"),
        ("export -f safetensors no slower than the script (>= 1.0)", row["safetensors"]["ratio"] >= 1.0,
         f"{row['safetensors']['ratio']:.2f}"),
        ("export -f parquet (keep >= 1.0)", row["parquet"]["ratio"] >= 1.0, f"{row['parquet']['ratio']:.2f}"),
        ("C stage >= 5x xxd -i into a header", row["c"]["ratio"] >= 5, f"{row['c']['ratio']:.1f}x"),
        ("cold inspect --reader h5 <= 0.35 s and >= 10x --reader keras",
         row["inspect"]["h5_s"] <= 0.35 and row["inspect"]["ratio"] >= 10,
         f"{row['inspect']['h5_s']:.3f} s, {row['inspect']['ratio']:.1f}x"),
        ("peak memory above the seed model's <= 2.0x the weights (default reader)",
         row["memory_auto"]["extra_over_weights"] <= 2.0, f"{row['memory_auto']['extra_over_weights']:.2f}x"),
        ("peak memory above the seed model's <= 1.2x the weights (--reader h5)",
         row["memory_h5"]["extra_over_weights"] <= 1.2, f"{row['memory_h5']['extra_over_weights']:.2f}x"),
    ]
    print(f"32M-parameter Dense stack ({row['weight_bytes'] / 2**20:.1f} MB), whole processes, best of two runs")
    for fmt in ("npz", "safetensors", "parquet"):
        r = row[fmt]
        print(f"  {fmt:<12} ours {r['ours_s']:.2f} s   script {r['script_s']:.2f} s   ratio {r['ratio']:.2f}")
    print(f"  C stage      {row['c']['stage_s']:.2f} s (export -f c {row['c']['export_c_s']:.2f} s)   xxd -i {row['c']['xxd_s']:.2f} s"
          f"   {row['c']['ratio']:.1f}x")
    print(f"  inspect      --reader h5 {row['inspect']['h5_s']:.3f} s   --reader keras {row['inspect']['keras_s']:.3f} s"
          f"   {row['inspect']['ratio']:.1f}x")
    for reader in ("auto", "h5"):
        r = row[f"memory_{reader}"]
        print(f"  memory ({reader:<4}) peak {r['peak_bytes'] / 2**20:.0f} MB, seed export {r['base_bytes'] / 2**20:.0f} MB: "
              f"{r['extra_over_weights']:.2f}x the weights")
    for text, ok, figure in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}: {figure}")
    if args.json:
        args.json.write_text(json.dumps(row, indent=2) + "\n")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
