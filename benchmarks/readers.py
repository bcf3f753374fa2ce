"""Whole-process time of `inspect` and `export` with the direct reader against the Keras reader.

    python benchmarks/readers.py                 # the seed model, 5 runs each
    python benchmarks/readers.py MODEL --runs 9

Each command runs as a fresh process (`python -m converter ...`), as a user or a CI job runs it, so
the Keras reader pays for importing TensorFlow and the direct reader does not. Prints the median
seconds of each and the ratio; the target is well under a second and at least 5x faster for `--reader h5`.
"""
from __future__ import annotations

import argparse
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent


def seconds(command: list[str]) -> float:
    start = time.perf_counter()
    subprocess.run([sys.executable, "-m", "converter", *command], cwd=ROOT, check=True, capture_output=True)
    return time.perf_counter() - start


def median_time(command: list[str], runs: int) -> float:
    return statistics.median(seconds(command) for _ in range(runs))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", nargs="?", default=str(ROOT / "fixtures" / "seed_mlp.keras"))
    parser.add_argument("--runs", type=int, default=5)
    args = parser.parse_args()
    print(f"{'command':<10} {'--reader h5 s':>14} {'--reader keras s':>17} {'keras/h5':>9}")
    with tempfile.TemporaryDirectory() as out:
        for name, command in (("inspect", ["inspect", args.model]),
                              ("export", ["export", args.model, "-o", out, "--force"])):
            direct = median_time([*command, "--reader", "h5"], args.runs)
            keras = median_time([*command, "--reader", "keras"], args.runs)
            print(f"{name:<10} {direct:>14.3f} {keras:>17.3f} {keras / direct:>8.1f}x")
    return 0


if __name__ == "__main__":
    sys.exit(main())
