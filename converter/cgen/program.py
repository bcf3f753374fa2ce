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
