"""diff's costs that issue 23 bounded: matching renamed tensors (linear, not quadratic) and comparing a large tensor
(a block of values at a time, not float64 copies of the whole).

    python benchmarks/diff.py            # 20,000 renamed against 20,000; a 2**24-value float32 tensor

Measured on the 2-core machine (docs/performance.md): 0.36 s and 70 MB; before, 5.96 s and 856 MB.
"""
from __future__ import annotations

import argparse
import time
import tracemalloc

import numpy as np

from converter import compare


def renamed(count: int) -> float:
    """Seconds to diff ``count`` tensors against as many under other names (matched by position)."""
    left = {f"a{i}": np.full(1, i, np.float32) for i in range(count)}
    right = {f"b{i}": np.full(1, i, np.float32) for i in range(count)}
    original = compare._tensors
    compare._tensors = lambda source, reader, notes: left if source == "a" else right
    try:
        started = time.perf_counter()
        result = compare.diff("a", "b")
        seconds = time.perf_counter() - started
    finally:
        compare._tensors = original
    assert all(t.status == "renamed" for t in result.tensors)
    return seconds


def large(values: int) -> tuple[float, float]:
    """(seconds, traced peak MB) to compare two float32 tensors of ``values`` values, one in seven changed."""
    a = np.random.default_rng(0).standard_normal(values).astype(np.float32)
    b = a.copy()
    b[::7] += 1
    tracemalloc.start()
    started = time.perf_counter()
    compare._compare("t", a, b, 0.0, 0.0)
    seconds = time.perf_counter() - started
    peak = tracemalloc.get_traced_memory()[1] / 1e6
    tracemalloc.stop()
    return seconds, peak


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--renamed", type=int, default=20_000)
    parser.add_argument("--values", type=int, default=2**24)
    args = parser.parse_args()
    print(f"renamed {args.renamed:,} against {args.renamed:,}: {renamed(args.renamed):.2f} s")
    seconds, peak = large(args.values)
    print(f"compare {args.values:,} float32 values: {seconds:.2f} s, traced peak {peak:.0f} MB")


if __name__ == "__main__":
    main()
