"""Names in the C output: file names, the identifier prefix and each tensor's identifier, and how the arrays
lay out in flash and their int8 scales."""
from __future__ import annotations

import re
from collections.abc import Iterable, Sequence

import numpy as np

from .. import c_text, choices
from ..errors import UsageError
from ..tensors import Tensor


DEFAULT_ALIGN = choices.C_DEFAULT_ALIGN


# Headers of the C library and of common embedded toolchains: a generated header of the same name would
# shadow them for every file compiled with the export's folder on the include path.
SYSTEM_HEADERS = frozenset({
    "assert", "complex", "ctype", "errno", "fenv", "float", "inttypes", "iso646", "limits", "locale", "math",
    "setjmp", "signal", "stdalign", "stdarg", "stdatomic", "stdbit", "stdbool", "stdckdint", "stddef", "stdint",
    "stdio", "stdlib", "stdnoreturn", "string", "tgmath", "threads", "time", "uchar", "wchar", "wctype",
    "arduino", "pgmspace", "unistd", "fcntl", "alloca", "malloc", "memory", "cmsis_compiler", "arm_math",
})


def files(stem: str, *, header_only: bool = False, **_: object) -> list[str]:
    """``<stem>.h`` and ``<stem>.c``, or the header alone; ``<stem>_weights`` for a stem that would shadow a
    system header.

    >>> files("seed_mlp"), files("stdint", header_only=True)
    (['seed_mlp.h', 'seed_mlp.c'], ['stdint_weights.h'])
    """
    base = f"{stem}_weights" if stem.lower() in SYSTEM_HEADERS else stem
    return [base + ".h"] if header_only else [base + ".h", base + ".c"]


def scale_indexing(shape: Sequence[int], axes: Sequence[int] | None) -> tuple[int, int]:
    """(count, stride) of an int8 tensor's scales: element ``n`` (flat, C order) has scale
    ``(n / stride) % count``. The channel axes are contiguous (``quantize.channel_axes``).

    >>> scale_indexing((4, 20), [1]), scale_indexing((3, 3, 8, 2), [2, 3]), scale_indexing((20, 4), [0]), scale_indexing((4, 4), None)
    ((20, 1), (16, 1), (20, 4), (1, 16))
    """
    if not axes:
        return 1, max(1, int(np.prod(shape)))
    count = int(np.prod([shape[a] for a in axes]))
    stride = int(np.prod(shape[max(axes) + 1:]))
    return count, max(1, stride)


def prefix_for(stem: str, prefix: str = "") -> str:
    """The identifier prefix: the one given (checked), else derived from the file stem.

    >>> prefix_for("seed_mlp"), prefix_for("2024 Model-v1"), prefix_for("x", "Net")
    ('seed_mlp', 'w_2024_model_v1', 'net')
    """
    if prefix:
        if not re.fullmatch(r"[A-Za-z][A-Za-z0-9]*(_[A-Za-z0-9]+)*", prefix):
            raise UsageError(f"C prefix must be letters, digits and single inner underscores, starting with a letter. "
                             f"Received: prefix={prefix!r}")
        return prefix.lower()
    derived = c_text.identifier(stem) or "weights"
    return derived if derived[0].isalpha() else f"w_{derived}"


# Names the generated text defines beside the arrays: tables, types, the forward pass and its trace, and the
# identifiers whose shape macros would be the forward pass's (p_input -> P_INPUT_SIZE); its kernels are p_kw_*.
_RESERVED = ("tensors", "layers", "tensor", "layer", "tensor_t", "layer_t", "predict", "trace_print", "input",
             "output", "arena")


_NAMESPACES = ("kw_",)


def keys(tensors: Sequence[Tensor], stem: str, *, prefix: str = "", **_: object) -> dict[str, str]:
    """The C identifier of each tensor's array: unique, stable, valid C and C++, never a name the generated code
    defines (a tensor named ``kw_dense_f32`` or ``input`` gets ``p_t_kw_dense_f32``, ``p_input_2``).

    >>> from converter.tensors import Tensor
    >>> import numpy as np
    >>> keys([Tensor(n, "l", "r", 0, True, np.zeros(1, np.float32)) for n in ("kw_dense_f32", "input")], "m")
    {'kw_dense_f32': 'm_t_kw_dense_f32', 'input': 'm_input_2'}
    """
    chosen = prefix_for(stem, prefix)
    return c_text.unique_identifiers([t.name for t in tensors], chosen, [f"{chosen}_{n}" for n in _RESERVED],
                                     _NAMESPACES)


def flash_by_layer(tensors: Iterable[tuple[str, int]], align: int = DEFAULT_ALIGN) -> dict[str, int]:
    """The bytes each layer's arrays take in the firmware, from (layer, tensor bytes) pairs: every array is
    rounded up to the alignment (an empty tensor has no array); layers in first-seen order.

    >>> flash_by_layer([("d", 20), ("d", 4), ("e", 0)]), flash_by_layer([("d", 20), ("d", 4)], align=4)
    ({'d': 48, 'e': 0}, {'d': 24})
    """
    layers: dict[str, int] = {}
    for layer, nbytes in tensors:
        layers[layer] = layers.get(layer, 0) + -(-nbytes // align) * align
    return layers
