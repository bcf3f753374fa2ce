"""Performance as a user meets it (issue 18): whole processes on a 32M-parameter three-layer Dense stack saved by
Keras as .keras, each figure the best of two runs, side by side in one run.

    python benchmarks/user_view.py [--json out.json] [--only formats|c|memory|inspect ...]

`benchmarks/suite.py` runs the same measurements after its own (`--no-user-view` leaves them out).

- npz / safetensors / Parquet: `keras-weights export -f FORMAT` (default reader) against the hand-written
  script of benchmarks/suite.py (load_model, get_weights, np.savez / save_file / pq.write_table);
  ratio = script time / ours (>= 1.0: we are no slower).
- C stage: (`export -f c` time) - (`export -f npz` time), against `xxd -i` of the same raw bytes into a header
  file; ratio = xxd time / C stage.
- cold `inspect --reader h5` of the seed model (best of 5) and its ratio to `--reader keras`.
- peak resident memory of `export -f npz,safetensors` above the same export of the seed model, over the
  weight bytes, with the default reader and with `--reader h5`; and the peak of `export -f parquet` (both readers)
  against the hand-written script's. Parquet is apart since one row per tensor (issue 25): pyarrow's writer builds
  the list levels of a whole row, ~17-22 bytes per value of the largest tensor, a cost no reader choice removes.
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
PARTS = ("formats", "c", "memory", "inspect")
WIDTH = 3265  # 3 x (3265 x 3265 + 3265) = 32.0M parameters


def best(command: list[str], runs: int = 2, **options) -> tuple[float, int]:
    results = [suite.measure(command, **options) for _ in range(runs)]
    return min(r[0] for r in results), min(r[1] for r in results)


def measure_formats(model: Path, folder: Path, row: dict) -> None:
    for fmt in ("npz", "safetensors", "parquet"):
        out, script_out = folder / f"o-{fmt}", folder / f"s-{fmt}"
        mine = best(suite.ours("export", str(model), "-o", str(out), "-f", fmt, "-q"), fresh=(out,))[0]
        script = best([sys.executable, "-c", suite.SCRIPT, str(model), fmt, str(script_out)],
                      fresh=(Path(f"{script_out}.{fmt}"),))[0]
        row[fmt] = {"ours_s": mine, "script_s": script, "ratio": script / mine}
        suite.remove(out, Path(f"{script_out}.{fmt}"))


def measure_c(model: Path, folder: Path, row: dict) -> None:
    """The C stage: `export -f c` minus `export -f npz` (measured here too, side by side), against `xxd -i`."""
    c_out, npz_out, header = folder / "o-c", folder / "o-npz", folder / "xxd.h"
    npz_time = best(suite.ours("export", str(model), "-o", str(npz_out), "-f", "npz", "-q"), fresh=(npz_out,))[0]
    c_time = best(suite.ours("export", str(model), "-o", str(c_out), "-f", "c", "-q"), fresh=(c_out,))[0]
    xxd = best(["xxd", "-i", str(model.with_suffix(".keras.bin"))], stdout=header, fresh=(header,))[0]
    stage = max(c_time - npz_time, 1e-3)
    row["c"] = {"export_c_s": c_time, "export_npz_s": npz_time, "stage_s": stage, "xxd_s": xxd, "ratio": xxd / stage}
    suite.remove(c_out, npz_out, header)


def measure_memory(model: Path, folder: Path, row: dict) -> None:
    seed_out, out, script_out = folder / "seed", folder / "all", folder / "script"
    for reader in ("auto", "h5"):
        flags = [] if reader == "auto" else ["--reader", "h5"]
        _, base = best(suite.ours("export", str(suite.SEED), "-o", str(seed_out), "-f", "npz,safetensors", "-q", *flags),
                       fresh=(seed_out,))
        _, peak = best(suite.ours("export", str(model), "-o", str(out), "-f", "npz,safetensors", "-q", *flags),
                       fresh=(out,))
        row[f"memory_{reader}"] = {"peak_bytes": peak, "base_bytes": base,
                                   "extra_over_weights": (peak - base) / row["weight_bytes"]}
        _, parquet_peak = best(suite.ours("export", str(model), "-o", str(out), "-f", "parquet", "-q", *flags),
                               fresh=(out,))
        row[f"memory_parquet_{reader}"] = {"peak_bytes": parquet_peak}
        suite.remove(seed_out, out)
    _, script = best([sys.executable, "-c", suite.SCRIPT, str(model), "parquet", str(script_out)],
                     fresh=(Path(f"{script_out}.parquet"),))
    row["memory_parquet_script"] = {"peak_bytes": script}
    suite.remove(Path(f"{script_out}.parquet"))


def measure_inspect(row: dict) -> None:
    direct = min(suite.measure(suite.ours("inspect", str(suite.SEED), "--reader", "h5"))[0] for _ in range(5))
    keras = min(suite.measure(suite.ours("inspect", str(suite.SEED), "--reader", "keras"))[0] for _ in range(3))
    row["inspect"] = {"h5_s": direct, "keras_s": keras, "ratio": keras / direct}


def run(parts: tuple[str, ...] = PARTS) -> dict:
    """Every figure of ``parts`` for the 32M-parameter stack, built in a temporary folder."""
    with tempfile.TemporaryDirectory(prefix="kw-user-") as work:
        folder = Path(work)
        model = folder / "stack.keras"
        subprocess.run([sys.executable, "-c", BUILD, str(WIDTH), str(model)], check=True, capture_output=True)
        weight_bytes = model.with_suffix(".keras.bin").stat().st_size
        row: dict = {"parameters": weight_bytes // 4, "weight_bytes": weight_bytes}
        for part in parts:
            print(f"user view: {part}", file=sys.stderr, flush=True)
            if part == "inspect":
                measure_inspect(row)
            else:
                {"formats": measure_formats, "c": measure_c, "memory": measure_memory}[part](model, folder, row)
    return row


def checks(row: dict) -> list[tuple[str, bool, str]]:
    """The targets of issue 18 whose figures ``row`` holds."""
    found = []
    if "npz" in row:
        for fmt, least in (("npz", 1.0), ("safetensors", 1.0), ("parquet", 1.0)):
            found.append((f"export -f {fmt} no slower than the hand-written script (>= {least})",
                          row[fmt]["ratio"] >= least, f"{row[fmt]['ratio']:.2f}"))
    if "c" in row:
        found.append(("C stage >= 5x xxd -i into a header", row["c"]["ratio"] >= 5, f"{row['c']['ratio']:.1f}x"))
    if "inspect" in row:
        found.append(("cold inspect --reader h5 <= 0.35 s and >= 10x --reader keras",
                      row["inspect"]["h5_s"] <= 0.35 and row["inspect"]["ratio"] >= 10,
                      f"{row['inspect']['h5_s']:.3f} s, {row['inspect']['ratio']:.1f}x"))
    for reader, most, label in (("auto", 2.0, "default reader"), ("h5", 1.2, "--reader h5")):
        if f"memory_{reader}" in row:
            figure = row[f"memory_{reader}"]["extra_over_weights"]
            found.append((f"peak memory of npz+safetensors above the seed model's <= {most}x the weights ({label})",
                          figure <= most, f"{figure:.2f}x"))
    if "memory_parquet_script" in row:
        script = row["memory_parquet_script"]["peak_bytes"]
        for reader in ("auto", "h5"):
            peak = row[f"memory_parquet_{reader}"]["peak_bytes"]
            found.append((f"peak memory of export -f parquet ({reader}) <= the hand-written script's", peak <= script,
                          f"{peak / 2**20:.0f} MB vs {script / 2**20:.0f} MB"))
    return found


def table(row: dict) -> str:
    lines = [f"{row['parameters'] / 1e6:.0f}M-parameter Dense stack ({row['weight_bytes'] / 2**20:.1f} MB), whole "
             "processes, best of two runs"]
    for fmt in ("npz", "safetensors", "parquet"):
        if fmt in row:
            r = row[fmt]
            lines.append(f"  {fmt:<12} ours {r['ours_s']:.2f} s   script {r['script_s']:.2f} s   ratio {r['ratio']:.2f}")
    if "c" in row:
        c = row["c"]
        lines.append(f"  C stage      {c['stage_s']:.2f} s (export -f c {c['export_c_s']:.2f} s - export -f npz "
                     f"{c['export_npz_s']:.2f} s)   xxd -i {c['xxd_s']:.2f} s   {c['ratio']:.1f}x")
    if "inspect" in row:
        i = row["inspect"]
        lines.append(f"  inspect      --reader h5 {i['h5_s']:.3f} s   --reader keras {i['keras_s']:.3f} s   {i['ratio']:.1f}x")
    for reader in ("auto", "h5"):
        if f"memory_{reader}" in row:
            r = row[f"memory_{reader}"]
            lines.append(f"  memory ({reader:<4}) peak {r['peak_bytes'] / 2**20:.0f} MB, seed export "
                         f"{r['base_bytes'] / 2**20:.0f} MB: {r['extra_over_weights']:.2f}x the weights (npz, safetensors)")
        if f"memory_parquet_{reader}" in row:
            lines.append(f"  memory ({reader:<4}) export -f parquet peak "
                         f"{row[f'memory_parquet_{reader}']['peak_bytes'] / 2**20:.0f} MB")
    if "memory_parquet_script" in row:
        lines.append(f"  memory script  pq.write_table peak {row['memory_parquet_script']['peak_bytes'] / 2**20:.0f} MB")
    lines += [f"  {'PASS' if ok else 'FAIL'}  {text}: {figure}" for text, ok, figure in checks(row)]
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--json", type=Path)
    parser.add_argument("--only", choices=PARTS, action="append", help="measure only these (repeatable)")
    args = parser.parse_args()
    row = run(tuple(args.only or PARTS))
    print(table(row))
    if args.json:
        args.json.write_text(json.dumps(row, indent=2) + "\n")
    return 0 if all(ok for _, ok, _ in checks(row)) else 1


if __name__ == "__main__":
    sys.exit(main())
