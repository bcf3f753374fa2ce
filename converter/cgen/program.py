"""What both forward passes (float, ``codegen``; full-integer int8, ``integer_program``) are made into: the
:class:`Program`, and the pieces of C text they share."""
from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from ..c_text import c_string
from ..layers.emit import TRACE


@dataclass
class Program:
    header: str            # declarations for <stem>.h
    source: str            # kernels and predict, for the .c (static)
    arena_bytes: int
    input_size: int
    output_size: int
    reference: Any = None  # full-integer int8: the numpy twin of <prefix>_predict_int8 (int8 inputs -> outputs)
    output_parameters: tuple = ()  # full-integer int8: (scale, zero point) of each model output


# The kernels' pointer qualifier: C99's restrict, which C++ spells __restrict__ (GCC, Clang) or __restrict (MSVC).
RESTRICT = ("#ifndef KW_RESTRICT\n#if !defined(__cplusplus)\n#define KW_RESTRICT restrict\n"
            "#elif defined(__GNUC__) || defined(__clang__)\n#define KW_RESTRICT __restrict__\n"
            "#elif defined(_MSC_VER)\n#define KW_RESTRICT __restrict\n#else\n#define KW_RESTRICT\n#endif\n#endif\n\n")
def traced_inside(statement: str, layer: str, hook: str) -> str:
    """A trace inside a layer (``Call.trace``) as a call of the trace hook, named '<layer>/<label>'."""
    return re.sub(re.escape(TRACE) + r"\((\w+), ", lambda found: f"{hook}({c_string(layer + '/' + found.group(1))}, ",
                  statement)


# KW_SMALL (1 with -Os, which asks for the least code; either may be defined when compiling): the kernels' plain
# loops only. Register blocks of the kernels: KW_PANEL outputs at a time, 16 where the compiler has 256-bit vectors,
# else 8 (and either may be defined when compiling). KW_NO_UNROLL: see kw_dense.
BLOCKING = ("#ifndef KW_SMALL\n#ifdef __OPTIMIZE_SIZE__\n#define KW_SMALL 1\n#else\n#define KW_SMALL 0\n#endif\n#endif\n"
            "#ifndef KW_PANEL\n#if defined(__AVX__) || defined(__ARM_FEATURE_SVE)\n#define KW_PANEL 16\n#else\n"
            "#define KW_PANEL 8\n#endif\n#endif\n"
            "#if defined(__clang__) || (defined(__GNUC__) && __GNUC__ >= 8)\n#define KW_NO_UNROLL _Pragma(\"GCC unroll 1\")\n"
            "#else\n#define KW_NO_UNROLL\n#endif\n"
            "#ifdef FP_FAST_FMAF\n#define KW_MADD(a, b, c) fmaf((a), (b), (c))\n#else\n#define KW_MADD(a, b, c) ((a) * (b) + (c))\n"
            "#endif\n\n")
