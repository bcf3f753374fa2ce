"""C writer throughput against `xxd -i` and a naive per-element Python formatter, on the same bytes.

    python benchmarks/c_writer.py                      # 1M, 10M and 100M float32 values
    python benchmarks/c_writer.py --sizes 1e6 --json out.json

Each size is a float32 tensor of seeded random normal values. Ours is `converter.formats.c.write`
(header + source, exact 9-digit decimal literals); `xxd -i` prints the same bytes as hex bytes; the
naive formatter writes `"%.8ef"` per element in a Python loop (exact too, but slow), and is skipped
above --naive-max values. Times are wall-clock seconds of one run each, measured side by side, so the
ratios are the figures to quote (absolute times on a shared machine are noise). Needs a few GB of
free disk for 100M values; everything is written to a temporary folder and removed.
"""
from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from converter.formats import c  # noqa: E402
from converter.tensors import Tensor  # noqa: E402


def timed(function) -> float:
    start = time.perf_counter()
    function()
    return time.perf_counter() - start


def ours(values: np.ndarray, folder: Path) -> float:
    tensor = Tensor("bench/kernel", "bench", "kernel", 0, True, values)
    return timed(lambda: c.write([tensor], folder / "ours.h"))


def xxd(raw: Path, folder: Path) -> float:
    with open(folder / "xxd.c", "wb") as out:
        return timed(lambda: subprocess.run(["xxd", "-i", str(raw)], stdout=out, check=True))


def naive(values: np.ndarray, folder: Path) -> float:
    def write() -> None:
        with open(folder / "naive.c", "w") as out:
            out.write(f"const float weights[{values.size}] = {{\n")
            for value in values.tolist():
                out.write("%.8ef, " % value)
            out.write("\n};\n")
    return timed(write)


def run(size: int, naive_max: int, folder: Path) -> dict:
    values = np.random.default_rng(size).normal(size=size).astype(np.float32)
    raw = folder / "weights.bin"
    values.tofile(raw)
    row = {"values": size, "bytes": values.nbytes, "ours_s": ours(values, folder), "xxd_s": xxd(raw, folder)}
    row["naive_s"] = naive(values, folder) if size <= naive_max else None
    row["ours_text_bytes"] = sum(p.stat().st_size for p in folder.glob("ours.*"))
    for path in folder.iterdir():
        path.unlink()
    return row


def table(rows: list[dict]) -> str:
    header = f"{'values':>11} {'MB':>7} {'ours s':>8} {'ours MB/s':>10} {'xxd -i s':>9} {'xxd MB/s':>9} " \
             f"{'ours/xxd':>9} {'naive s':>8} {'ours/naive':>11}"
    lines = [header, "-" * len(header)]
    for r in rows:
        mb = r["bytes"] / 1e6
        naive_cells = f"{r['naive_s']:>8.2f} {r['naive_s'] / r['ours_s']:>10.1f}x" if r["naive_s"] else f"{'-':>8} {'-':>11}"
        lines.append(f"{r['values']:>11,} {mb:>7.0f} {r['ours_s']:>8.2f} {mb / r['ours_s']:>10.1f} {r['xxd_s']:>9.2f} "
                     f"{mb / r['xxd_s']:>9.1f} {r['xxd_s'] / r['ours_s']:>8.1f}x {naive_cells}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--sizes", default="1e6,1e7,1e8", help="comma-separated value counts (default: 1e6,1e7,1e8)")
    parser.add_argument("--naive-max", type=float, default=1e7, help="largest size the naive formatter runs on")
    parser.add_argument("--json", type=Path, help="also write the rows as JSON here")
    args = parser.parse_args()
    if not shutil.which("xxd"):
        sys.exit("xxd is not installed (Debian: apt-get install xxd)")
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    with tempfile.TemporaryDirectory(prefix="kw-bench-") as folder:
        rows = [run(size, int(args.naive_max), Path(folder)) for size in sizes]
    print(table(rows))
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2) + "\n")
    return 0


if __name__ == "__main__":
    sys.exit(main())
