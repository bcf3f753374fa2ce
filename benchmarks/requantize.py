"""What the full-integer int8 pass's requantization costs per output value, as the generated code does it.

    python benchmarks/requantize.py [--flags "-O3 -march=native"] [--values 4096]

Builds the int8 kernels' own `kw_q8_row` (TFLite's MultiplyByQuantizedMultiplier on each int32 sum, then the
clamp and the narrowing to int8) with `cc`, runs it over `values` sums with per-channel multipliers and shifts
like an export's (100 rounds, best of 20) and prints nanoseconds per value. Times the number of values a model's
layers requantize, it is a floor under the int8 pass's time that no faster multiply-accumulate can remove
(MobileNetV2 0.35/96: 543,216 values, from its Conv2D, DepthwiseConv2D, Dense, Add and global pooling outputs).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from converter import c_kernels as kernels  # noqa: E402
from converter.cgen.program import BLOCKING, RESTRICT  # noqa: E402

MAIN = """
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double now(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e9 + t.tv_nsec;
}
int main(int argc, char **argv) {
    const size_t n = (size_t)atol(argv[1]);
    int32_t *sums = malloc(n * 4), *acc = malloc(n * 4), *mult = malloc(n * 4), *shift = malloc(n * 4),
            *bias = calloc(n, 4);
    int8_t *y = malloc(n);
    srand(1);
    for (size_t i = 0; i < n; ++i) {  /* sums of a few hundred products; Q31 multipliers of either sign, < 1 */
        sums[i] = rand() % 2000000 - 1000000;
        mult[i] = (1 << 30) + rand() % (1 << 30);
        mult[i] = i % 7 ? mult[i] : -mult[i];
        shift[i] = -(int32_t)(rand() % 12);
    }
    const kw_q8 q = {bias, mult, shift, 0, -3, -128, 127};
    double best = 1e300;
    long check = 0;
    for (int t = 0; t < 20; ++t) {
        double spent = 0.0;
        for (int r = 0; r < 100; ++r) {
            for (size_t i = 0; i < n; ++i) acc[i] = sums[i];  /* kw_q8_row works in place */
            const double start = now();
            kw_q8_row(acc, y, n, &q, 0);
            spent += now() - start;
            check += y[r % n];
        }
        best = spent / 100 / n < best ? spent / 100 / n : best;
    }
    printf("%.3f ns per value (check %ld)\\n", best, check);
    return 0;
}
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--flags", default="-O3 -march=native")
    parser.add_argument("--values", type=int, default=4096)
    arguments = parser.parse_args()
    source = ("#define _POSIX_C_SOURCE 199309L\n#include <stddef.h>\n#include <stdint.h>\n" + RESTRICT + BLOCKING
              + kernels.integer({"requantize", "q8_row"}) + MAIN)
    with tempfile.TemporaryDirectory() as folder:
        (Path(folder) / "requantize.c").write_text(source)
        subprocess.run(["cc", "-std=c99", *arguments.flags.split(), "requantize.c", "-o", "requantize"], cwd=folder,
                       check=True)
        result = subprocess.run(["./requantize", str(arguments.values)], cwd=folder, check=True, capture_output=True,
                                text=True)
    print(f"{arguments.flags}: {result.stdout.strip()}")


if __name__ == "__main__":
    main()
