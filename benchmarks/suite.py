"""The benchmark suite: synthetic models of ~1K, 1M, 10M and 100M parameters, stage by stage and side by side.

    python benchmarks/suite.py                                       # 1e3,1e6,1e7,1e8, median of 3 runs
    python benchmarks/suite.py --sizes 1e3,2.5e8 --repeat 1          # the 1 GB model (needs ~15 GB of free disk)
    python benchmarks/suite.py --sizes 1e3,1e6 --json results.json   # quick, and the rows as JSON

Each size is a seeded MLP of four Dense layers saved as .keras (and its weight bytes, concatenated, as
.bin for `xxd -i`). For each size:

1. Stages, in-process (benchmarks/stages.py): import, Keras load, extract (or the direct read), NaN/Inf
   scan, checksums, each writer and verify, with wall time and peak memory, for the default reader and
   for `--reader h5`.
2. Side by side, as whole fresh processes (the way users and CI jobs run them), each pair interleaved
   and the median of --repeat runs taken:
   - `export -f npz|safetensors|parquet` against a hand-written script with the same library
     (load_model, get_weights, then np.savez / safetensors' save_file / a pyarrow table written by
     pq.write_table): ratio = script time / ours, >= 0.9 means no slower (manifest and checksums included);
   - `export -f c --reader h5` against `xxd -i` on the same bytes: ratio = xxd time / ours;
   - `inspect --reader h5` against `inspect --reader keras`;
   - a full export (every format) with each reader: time and peak resident memory; "extra/weights" is
     the peak above the same export of the first (smallest) model, divided by the weight bytes;
   - `verify` of the full export;
   - the same full export (default reader) with and without `--quantize int8`, interleaved: what
     quantizing adds (issue 14: at most 50% at 100M parameters).

Then the seed model (fixtures/seed_mlp.keras): `inspect` and `export` with `--reader h5` against
`--reader keras`; then the figures as a user meets them (benchmarks/user_view.py, issue 18: a 32M-parameter
stack, best of two whole processes, the C stage alone against `xxd -i`, memory above the seed model's export;
`--no-user-view` leaves them out). The targets of issues 6 and 18 are checked at the end. Absolute times on a shared machine are
noise; the ratios, measured in one run, are the figures to quote.
"""
from __future__ import annotations

import argparse
import compileall
import functools
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ROOT / "fixtures" / "seed_mlp.keras"
LARGE = 10_000_000  # memory targets are checked from this many parameters up
SUSTAINED = 100_000_000  # C throughput is checked from here: below, ~0.6 s of start-up (Python, imports, the
                         # HDF5 probe, fsync) is most of a whole process, which the seed-model target covers

BUILD = """
import os, sys, math
os.environ["TF_CPP_MIN_LOG_LEVEL"] = "3"
import keras, numpy as np
n, path = int(sys.argv[1]), sys.argv[2]
width = max(2, round((math.sqrt(1 + 4 * n / 4) - 1) / 2))  # four layers of width * (width + 1) parameters
keras.utils.set_random_seed(0)
layers = [keras.layers.Dense(width, name=f"dense_{i}") for i in range(4)]
model = keras.Sequential([keras.Input((width,)), *layers], name="synthetic")
model.save(path)
with open(path + ".bin", "wb") as sink:
    for array in model.get_weights():
        sink.write(np.ascontiguousarray(array, "<f4").tobytes())
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


def remove(*paths: Path) -> None:
    for path in paths:
        shutil.rmtree(path) if path.is_dir() else path.unlink(missing_ok=True)


def measure(command: list[str], stdout: Path | None = None, fresh: tuple[Path, ...] = ()) -> tuple[float, int]:
    """Wall seconds and peak resident bytes of one process (and its children), writing to fresh outputs."""
    remove(*fresh)  # outside the timing: every run writes new files, none pays for deleting old ones
    os.sync()  # and none pays for writing back what an earlier run (or the model's build) left in the page cache
    sink = open(stdout, "wb") if stdout else subprocess.DEVNULL  # noqa: SIM115 -- closed below
    env = environment()
    start = time.perf_counter()
    process = subprocess.Popen(command, cwd=ROOT, stdout=sink, stderr=subprocess.PIPE, env=env)
    _, status, usage = os.wait4(process.pid, 0)
    elapsed = time.perf_counter() - start
    if stdout:
        sink.close()
    if os.waitstatus_to_exitcode(status) != 0:
        raise RuntimeError(f"failed: {' '.join(command)}\n{process.stderr.read().decode()[-2000:]}")
    return elapsed, usage.ru_maxrss * 1024


@functools.cache
def environment() -> dict[str, str]:
    """The measured processes' environment: this checkout's code, compiled as an installed copy is (pip compiles
    a package's modules when it installs it; PYTHONDONTWRITEBYTECODE would make every process compile the
    modules edited since the last run again, ~15 ms of a cold start). Compiled once per run of the suite."""
    compileall.compile_dir(ROOT / "converter", quiet=1)
    environ = {key: value for key, value in os.environ.items() if key != "PYTHONDONTWRITEBYTECODE"}
    return {**environ, "PYTHONPATH": str(ROOT), "TF_CPP_MIN_LOG_LEVEL": "3"}


def median_pair(first: tuple[list[str], dict], second: tuple[list[str], dict], repeat: int) -> list[tuple[float, int]]:
    """Median seconds and peak bytes of two commands (each with measure() options), run alternately so
    that machine noise hits both alike."""
    runs: tuple[list, list] = ([], [])
    for _ in range(repeat):
        for (command, options), results in zip((first, second), runs, strict=True):
            results.append(measure(command, **options))
    return [(statistics.median(r[0] for r in results), int(statistics.median(r[1] for r in results))) for results in runs]


def median_run(command: list[str], repeat: int, fresh: tuple[Path, ...] = ()) -> tuple[float, int]:
    runs = [measure(command, fresh=fresh) for _ in range(repeat)]
    return statistics.median(r[0] for r in runs), int(statistics.median(r[1] for r in runs))


def ours(*args: str) -> list[str]:
    return [sys.executable, "-m", "converter", *args]


def stages(model: Path, reader: str) -> dict:
    result = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "stages.py"), str(model), "--reader", reader,
                             "--json"], cwd=ROOT, check=True, capture_output=True, text=True,
                            env={**os.environ, "TF_CPP_MIN_LOG_LEVEL": "3"})
    return json.loads(result.stdout)


def run_size(size: int, folder: Path, repeat: int) -> dict:
    model = folder / f"m{size}.keras"
    subprocess.run([sys.executable, "-c", BUILD, str(size), str(model)], check=True, capture_output=True)
    weights = Path(f"{model}.bin")
    row: dict = {"parameters": weights.stat().st_size // 4, "weight_bytes": weights.stat().st_size}
    print(f"  {row['parameters']:,} parameters: stages", file=sys.stderr, flush=True)
    row["stages"] = {reader: stages(model, reader)["stages"] for reader in ("auto", "h5")}
    for fmt in ("npz", "safetensors", "parquet"):
        print(f"  {fmt} against the hand-written script", file=sys.stderr, flush=True)
        out, script_out = folder / f"o-{fmt}", folder / f"script-{fmt}"
        (mine, _), (script, script_peak) = median_pair(
            (ours("export", str(model), "-o", str(out), "-f", fmt, "-q"), {"fresh": (out,)}),
            ([sys.executable, "-c", SCRIPT, str(model), fmt, str(script_out)], {"fresh": (Path(f"{script_out}.{fmt}"),)}),
            repeat)
        row[fmt] = {"ours_s": mine, "script_s": script, "ratio": script / mine, "script_peak_bytes": script_peak}
        remove(out, Path(f"{script_out}.{fmt}"))  # a 250M-parameter model's outputs take ~25 GB otherwise
    print("  C against xxd -i", file=sys.stderr, flush=True)
    out, xxd_out = folder / "o-c", folder / "xxd.c"
    (mine, _), (xxd, _) = median_pair(
        (ours("export", str(model), "-o", str(out), "-f", "c", "-q", "--reader", "h5"), {"fresh": (out,)}),
        (["xxd", "-i", str(weights)], {"stdout": xxd_out, "fresh": (xxd_out,)}), repeat)
    row["c"] = {"ours_s": mine, "xxd_s": xxd, "ratio": xxd / mine, "ours_bytes": (out / f"m{size}.c").stat().st_size,
                "xxd_bytes": xxd_out.stat().st_size}
    remove(out, xxd_out)
    print("  readers, full exports, verify", file=sys.stderr, flush=True)
    (direct, _), (keras, _) = median_pair((ours("inspect", str(model), "--reader", "h5"), {}),
                                          (ours("inspect", str(model), "--reader", "keras"), {}), repeat)
    row["inspect"] = {"h5_s": direct, "keras_s": keras, "ratio": keras / direct}
    for reader in ("auto", "h5"):
        seconds, peak = median_run(ours("export", str(model), "-o", str(folder / "all"), "-q", "--reader", reader), repeat,
                                   fresh=(folder / "all",))
        row[f"export_{reader}"] = {"seconds": seconds, "peak_bytes": peak}
    row["verify_s"] = median_run(ours("verify", str(folder / "all")), repeat)[0]
    print("  full export with and without --quantize int8", file=sys.stderr, flush=True)
    remove(folder / "all")
    (plain, _), (quantized, quantized_peak) = median_pair(
        (ours("export", str(model), "-o", str(folder / "all"), "-q"), {"fresh": (folder / "all",)}),
        (ours("export", str(model), "-o", str(folder / "int8"), "-q", "--quantize", "int8"), {"fresh": (folder / "int8",)}),
        repeat)
    row["quantize"] = {"plain_s": plain, "int8_s": quantized, "ratio": quantized / plain, "int8_peak_bytes": quantized_peak}
    remove(*folder.iterdir())
    return row


def seed_readers(repeat: int) -> dict:
    with tempfile.TemporaryDirectory(prefix="kw-seed-") as out:
        commands = {"inspect": ["inspect", str(SEED)], "export": ["export", str(SEED), "-o", out, "--force", "-q"]}
        result = {}
        for name, command in commands.items():
            (direct, _), (keras, _) = median_pair((ours(*command, "--reader", "h5"), {}),
                                                  (ours(*command, "--reader", "keras"), {}), repeat)
            result[name] = {"h5_s": direct, "keras_s": keras, "ratio": keras / direct}
        return result


def extra(row: dict, base: dict, reader: str) -> float:
    return (row[f"export_{reader}"]["peak_bytes"] - base[f"export_{reader}"]["peak_bytes"]) / row["weight_bytes"]


def script_extra(row: dict, base: dict) -> float:
    """The same measure for the hand-written npz script: what Keras's load_model alone costs."""
    return (row["npz"]["script_peak_bytes"] - base["npz"]["script_peak_bytes"]) / row["weight_bytes"]


def ratio_table(rows: list[dict]) -> str:
    lines = [(f"{'parameters':>11} {'weights MB':>10} {'npz':>5} {'safet.':>6} {'parquet':>7} {'C/xxd':>6} {'h5/keras':>8} "
             f"{'export s':>8} {'verify s':>8} {'extra/weights':>13} {'(h5 reader)':>11} {'(script)':>8} {'int8/plain':>10}")]
    for r in rows:
        base_row = r is rows[0]
        memory = ("-", "-", "-") if base_row else (f"{extra(r, rows[0], 'auto'):.2f}", f"{extra(r, rows[0], 'h5'):.2f}",
                                                   f"{script_extra(r, rows[0]):.2f}")
        lines.append(f"{r['parameters']:>11,} {r['weight_bytes'] / 2**20:>10.1f} {r['npz']['ratio']:>5.2f} "
                     f"{r['safetensors']['ratio']:>6.2f} {r['parquet']['ratio']:>7.2f} {r['c']['ratio']:>5.1f}x "
                     f"{r['inspect']['ratio']:>7.1f}x {r['export_auto']['seconds']:>8.2f} {r['verify_s']:>8.2f} "
                     f"{memory[0]:>13} {memory[1]:>11} {memory[2]:>8} {r['quantize']['ratio']:>10.2f}")
    return "\n".join(lines)


def stage_table(row: dict) -> str:
    names = list(dict.fromkeys(s["stage"] for reader in ("h5", "auto") for s in row["stages"][reader]))
    names.sort(key=lambda n: min(i for reader in row["stages"].values() for i, s in enumerate(reader) if s["stage"] == n))
    by_reader = {reader: {s["stage"]: s for s in stages} for reader, stages in row["stages"].items()}
    lines = [(f"{row['parameters']:,} parameters ({row['weight_bytes'] / 2**20:.1f} MB of weights): seconds and peak MB "
             "above the stage's start"), f"{'stage':<26} {'default reader':>18} {'--reader h5':>18}"]
    for name in names:
        cells = []
        for reader in ("auto", "h5"):
            s = by_reader[reader].get(name)
            cells.append(f"{s['seconds']:>7.2f} s {s['peak_above_start'] / 2**20:>6.1f} MB" if s else "-")
        lines.append(f"{name:<26} {cells[0]:>18} {cells[1]:>18}")
    return "\n".join(lines)


def targets(rows: list[dict], seed: dict) -> list[tuple[str, bool, str]]:
    """Each target of issue 6 with whether it holds and the figures it rests on."""
    large = [r for r in rows[1:] if r["parameters"] >= LARGE]
    checks = []
    for fmt in ("npz", "safetensors", "parquet"):
        worst = min(r[fmt]["ratio"] for r in rows)
        checks.append((f"{fmt} export no slower than the hand-written script (ratio >= 0.9)", worst >= 0.9,
                       f"lowest ratio {worst:.2f}"))
    sustained = [r for r in rows if r["parameters"] >= SUSTAINED]
    if sustained:
        worst = min(r["c"]["ratio"] for r in sustained)
        checks.append(("C export >= 5x the throughput of xxd -i (whole processes, >= 100M parameters)", worst >= 5,
                       f"lowest {worst:.1f}x"))
        slowest = max(r["quantize"]["ratio"] for r in sustained)
        checks.append(("--quantize int8 adds at most 50% to the full export (default reader, >= 100M parameters)",
                       slowest <= 1.5, f"highest int8/plain {slowest:.2f}"))
    if large:
        for reader, label in (("auto", "default reader"), ("h5", "--reader h5")):
            worst = max(extra(r, rows[0], reader) for r in large)
            keras_alone = f"; the hand-written script (Keras's load_model) {max(script_extra(r, rows[0]) for r in large):.2f}x"
            checks.append((f"full export peak memory above the tiny model's <= 2.5x the weights ({label}, >= 10M parameters)",
                           worst <= 2.5, f"highest {worst:.2f}x" + (keras_alone if reader == "auto" else "")))
    for name in ("inspect", "export"):
        s = seed[name]
        checks.append((f"seed model {name} with --reader h5 under 1 s and >= 5x faster than --reader keras",
                       s["h5_s"] < 1 and s["ratio"] >= 5, f"{s['h5_s']:.3f} s, {s['ratio']:.1f}x"))
    return checks


def main() -> int:
    import user_view  # noqa: PLC0415 -- it imports this module for its helpers

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1e3,1e6,1e7,1e8", help="parameter counts; the first is the memory baseline")
    parser.add_argument("--repeat", type=int, default=3, help="runs of each whole-process measurement (median)")
    parser.add_argument("--json", type=Path, help="also write every figure as JSON here")
    parser.add_argument("--no-user-view", action="store_true", help="leave out benchmarks/user_view.py's figures")
    args = parser.parse_args()
    if not shutil.which("xxd"):
        parser.error("xxd is needed (apt install xxd)")
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="kw-suite-") as folder:
        rows = []
        for size in sizes:
            print(f"size {size:,}", file=sys.stderr, flush=True)
            rows.append(run_size(size, Path(folder), args.repeat))
    print("seed model readers", file=sys.stderr, flush=True)
    seed = seed_readers(max(args.repeat, 5))
    user = None if args.no_user_view else user_view.run()
    print(f"keras-weights benchmark suite: {os.cpu_count()} cores, Python {platform.python_version()}, "
          f"median of {args.repeat} runs\n")
    print(ratio_table(rows))
    print("\nnpz/safetensors/parquet: hand-written script time / ours (>= 0.9: no slower); C/xxd: xxd -i time / "
          "export -f c\n(whole processes); h5/keras: inspect with the Keras reader / with the direct reader; "
          "extra/weights: peak\nmemory of a full export above the first model's, divided by the weight bytes "
          "(default reader, --reader h5,\nand the hand-written npz script: Keras's load_model alone); int8/plain: full "
          "export time with --quantize int8 / without\n")
    for row in rows:
        print(stage_table(row) + "\n")
    print("seed model, whole processes, median of", max(args.repeat, 5))
    for name, s in seed.items():
        print(f"  {name:<8} --reader h5 {s['h5_s']:.3f} s   --reader keras {s['keras_s']:.3f} s   {s['ratio']:.1f}x")
    if user:
        print("\nas a user meets it (benchmarks/user_view.py)\n" + user_view.table(user))
    checks = targets(rows, seed) + (user_view.checks(user) if user else [])
    print("\ntargets")
    for text, ok, figures in checks:
        print(f"  {'PASS' if ok else 'FAIL'}  {text}: {figures}")
    if args.json:
        args.json.write_text(json.dumps({"cores": os.cpu_count(), "python": platform.python_version(),
                                         "repeat": args.repeat, "sizes": rows, "seed": seed, "user_view": user,
                                         "targets": [{"target": t, "pass": ok, "figures": f} for t, ok, f in checks]},
                                        indent=2) + "\n")
    return 0 if all(ok for _, ok, _ in checks) else 1


if __name__ == "__main__":
    sys.exit(main())
