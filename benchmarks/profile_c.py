"""Per-layer time of the forward pass --c-inference generates: where a model's microseconds go.

    python benchmarks/profile_c.py MODEL.keras [--flags "-O3 -march=native"] [--quantize int8] [--calls 300]

Exports MODEL with --c-inference, compiles the generated file with `<PREFIX>_TRACE` defined as a timing hook (the
code calls it after each layer, or after each chain of layers folded into one kernel), runs `calls` predictions
on fixed inputs and prints each layer's mean microseconds, largest first, with the total. The hook's own cost is
two clock reads per layer (tens of nanoseconds).
"""
from __future__ import annotations

import argparse
import subprocess
import sys
import tempfile
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

HOOK = """#define _POSIX_C_SOURCE 199309L
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>
static double last, spent[4096];
static const char *names[4096];
static int count, at;
static double now(void) {{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return t.tv_sec * 1e6 + t.tv_nsec / 1e3;
}}
#define {m}_TRACE(name, values, n) do {{ double t = now(); if (at < 4096) {{ spent[at] += t - last; names[at] = name; }} \\
                                       at++; last = now(); }} while (0)
#include "{source}"
int main(int argc, char **argv) {{
    static float input[{m}_INPUT_SIZE], output[{m}_OUTPUT_SIZE];
    char *raw = malloc({m}_ARENA_BYTES + 64);
    void *arena = (void *)(((uintptr_t)raw + 63) & ~(uintptr_t)63);
    int calls = atoi(argv[1]);
    for (size_t i = 0; i < {m}_INPUT_SIZE; ++i) input[i] = (float)((i * 7919) % 1000) / 500.0f - 1.0f;
    for (int c = 0; c < calls; ++c) {{
        at = 0;
        last = now();
        {prefix}_predict(input, output, arena);
        count = at < 4096 ? at : 4096;
    }}
    for (int i = 0; i < count; ++i) printf("%s\\t%.3f\\n", names[i], spent[i] / calls);
    free(raw);
    return 0;
}}
"""


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("model", type=Path)
    parser.add_argument("--flags", default="-O3 -march=native")
    parser.add_argument("--quantize", default=None)
    parser.add_argument("--calls", type=int, default=300)
    args = parser.parse_args()
    import converter

    with tempfile.TemporaryDirectory(prefix="kw-profile-") as work:
        out = Path(work)
        manifest = converter.export(args.model, out, formats=["c"], quantize=args.quantize,
                                    options={"c": {"inference": True}})
        prefix = manifest["options"]["c"]["prefix"]
        source = next(f["path"] for f in manifest["files"] if f["path"].endswith(".c"))
        (out / "profile.c").write_text(HOOK.format(m=prefix.upper(), prefix=prefix, source=source))
        subprocess.run(["gcc", "-std=c99", *args.flags.split(), "-I", str(out), str(out / "profile.c"), "-o",
                        str(out / "profile"), "-lm"], check=True)
        lines = subprocess.run([str(out / "profile"), str(args.calls)], capture_output=True, text=True,
                               check=True).stdout.splitlines()
    rows = [(name, float(us)) for name, us in (line.rsplit("\t", 1) for line in lines)]
    total = sum(us for _, us in rows)
    print(f"{args.model.name} ({args.flags}{', ' + args.quantize if args.quantize else ''}): {total:,.1f} us per sample")
    for name, us in sorted(rows, key=lambda row: -row[1]):
        print(f"  {us:10.2f} us  {100 * us / total:5.1f}%  {name}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
