"""Where an export spends its time and memory: every stage of one real export, measured in-process.

    python benchmarks/stages.py MODEL [--reader auto|keras|h5]      # prints a table
    python benchmarks/stages.py MODEL --json                        # the rows as JSON (used by suite.py)
    python benchmarks/stages.py MODEL --trace                       # also what numpy and Python hold at each peak

Runs `converter.export(MODEL, tmp, every format)` and then `converter.verify(tmp)`, with a clock around
each stage: importing Keras, Keras's load, get_weights (extract) or the direct read, the tensors'
checksums and NaN/Inf scan, the manifest, each writer, and verify. The functions are the real ones,
only wrapped with a timer. Peak memory per stage is the highest resident size during the stage above the resident size at
its start: Linux resets the high-water mark when "5" is written to /proc/self/clear_refs.

With ``--trace``, tracemalloc also records the highest amount numpy arrays and Python objects held during each
stage (numpy reports its buffers to tracemalloc): the "traced" column. The rest of a stage's peak is native
memory (TensorFlow's tensors, h5py's and pyarrow's buffers, code pages of libraries loaded in the stage), so
the two columns together say whose copies of the weights exist at the peak. Tracing slows Python code down.
The last lines name the stage where the whole run peaked.
"""
from __future__ import annotations

import argparse
import functools
import json
import os
import sys
import tempfile
import time
import tracemalloc
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
START = time.perf_counter()


def memory() -> dict[str, int]:
    """Current and peak resident bytes of this process (VmRSS, VmHWM)."""
    with open("/proc/self/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    return {key: int(fields[key].split()[0]) * 1024 for key in ("VmRSS", "VmHWM")}


def reset_peak() -> bool:
    try:
        with open("/proc/self/clear_refs", "w") as handle:
            handle.write("5")
        return True
    except OSError:  # not Linux, or not allowed: peaks then include earlier stages
        return False


class Stages:
    """Times and peak memory of named stages, in the order they ran."""

    def __init__(self) -> None:
        self.rows: list[dict] = []

    def wrap(self, name: str, function):
        @functools.wraps(function)
        def timed(*args, **kwargs):
            exact = reset_peak()
            before = memory()["VmRSS"]
            if tracemalloc.is_tracing():
                tracemalloc.reset_peak()
            traced_before = tracemalloc.get_traced_memory()[0]
            start = time.perf_counter()
            try:
                return function(*args, **kwargs)
            finally:
                after = memory()
                self.rows.append({"stage": name, "seconds": time.perf_counter() - start,
                                  "peak_above_start": after["VmHWM"] - before, "resident_after": after["VmRSS"],
                                  "peak_resident": after["VmHWM"], "peak_exact": exact,
                                  "traced_peak_above_start": tracemalloc.get_traced_memory()[1] - traced_before
                                  if tracemalloc.is_tracing() else None})
        return timed


def profile(model: Path, reader: str) -> tuple[list[dict], int]:
    """Export ``model`` to every format and verify it, stage by stage; also return the weight bytes."""
    import converter
    from converter import formats, manifest, pipeline
    from converter.readers import hdf5, inputs
    from converter.readers import keras as keras_reader

    stages = Stages()
    stages.rows.append({"stage": "start + import converter", "seconds": time.perf_counter() - START,
                        "peak_above_start": memory()["VmHWM"], "resident_after": memory()["VmRSS"],
                        "peak_resident": memory()["VmHWM"], "peak_exact": True, "traced_peak_above_start": None})
    if reader != "h5":
        stages.wrap("import Keras", keras_reader.import_keras)()
    keras_reader.load = stages.wrap("load (Keras)", keras_reader.load)
    keras_reader.extract = stages.wrap("extract (get_weights)", keras_reader.extract)
    hdf5.read = stages.wrap("read (direct)", hdf5.read)
    inputs.identify = stages.wrap("check input", inputs.identify)
    pipeline.hash_and_scan = stages.wrap("checksums + NaN/Inf scan", pipeline.hash_and_scan)  # both run here, side by side
    manifest.build = stages.wrap("manifest", manifest.build)
    for name, module in formats.FORMATS.items():
        module.write = stages.wrap(f"write {name}", module.write)
    with tempfile.TemporaryDirectory(prefix="kw-stages-") as out:
        result = converter.export(model, out, reader=reader)
        report = stages.wrap("verify", converter.verify)(out)
        assert report.ok, report
    return stages.rows, result["model"]["bytes"]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--reader", default="auto")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON")
    parser.add_argument("--trace", action="store_true", help="also trace numpy's and Python's allocations (slower)")
    args = parser.parse_args()
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    from converter._launch import process_defaults

    process_defaults()  # as the command line does
    if args.trace:
        tracemalloc.start()
    rows, weight_bytes = profile(args.model, args.reader)
    if args.json:
        print(json.dumps({"weight_bytes": weight_bytes, "stages": rows}))
        return 0
    print(table(rows, weight_bytes))
    return 0


def table(rows: list[dict], weight_bytes: int) -> str:
    """The stages, then where the export (verify left out) peaked, in MB and in weights."""
    mb = 2**20
    lines = [f"{'stage':<26} {'seconds':>8} {'peak MB above start':>20} {'traced':>8} {'resident MB after':>18}"]
    for row in rows:
        traced = row.get("traced_peak_above_start")
        lines.append(f"{row['stage']:<26} {row['seconds']:>8.2f} {row['peak_above_start'] / mb:>20.1f} "
                     f"{'-' if traced is None else f'{traced / mb:.1f}':>8} {row['resident_after'] / mb:>18.1f}")
    export = [r for r in rows if r["stage"] not in ("verify", "start + import converter", "import Keras")]
    if export:
        start = export[0]["peak_resident"] - export[0]["peak_above_start"]  # resident when the model's read began
        top = max(export, key=lambda r: r["peak_resident"])
        lines.append(f"weights: {weight_bytes / mb:.1f} MB; the export peaked during '{top['stage']}' at "
                     f"{(top['peak_resident'] - start) / mb:.1f} MB above the resident size before the model was read "
                     f"({(top['peak_resident'] - start) / max(weight_bytes, 1):.2f}x the weights)")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
