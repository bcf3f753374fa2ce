"""Pure helpers for the C writer: identifiers, escaped text, and exact literals.

Identifiers are ASCII, lowercase, never reserved (no leading underscore, no double underscore,
never a keyword because they always start with the prefix and an underscore):

>>> identifier("Conv 2D/kernel:0"), identifier("Über.Schicht"), identifier("层/bias")
('conv_2d_kernel_0', 'uber_schicht', 'u5c42_bias')
>>> unique_identifiers(["a.b", "a_b", "Dense/k", "dense/k"], "m", reserved=["m_tensors"])
{'a.b': 'm_a_b', 'a_b': 'm_a_b_2', 'Dense/k': 'm_dense_k', 'dense/k': 'm_dense_k_2'}

Text from the model goes into comments and strings only through these escapes:

>>> comment_text('x */ y\\n/*z')
'x * / y\\\\n/ *z'
>>> c_string('a"b\\\\c??=é')
'"a\\\\"b\\\\\\\\c\\\\?\\\\?=\\\\303\\\\251"'

Every float32 value gets a fixed-width literal that reads back bit-identical:

>>> [float32_literal(v) for v in (1.0, -0.0, 0.1, 3.4028235e38, 1e-45)]
[' 1.00000000e+00f', '-0.00000000e+00f', ' 1.00000001e-01f', ' 3.40282347e+38f', ' 1.40129846e-45f']
>>> float32_literal(float("-inf")), float32_literal(float("nan"))
('-NET_INFF', 'NET_NANF("0x0")')
"""
from __future__ import annotations

import functools
import json
import os
import re
from collections import deque
from concurrent.futures import ThreadPoolExecutor
import unicodedata
from collections.abc import Iterable, Iterator, Sequence

import numpy as np

from .dtypes import DType
from .naming import unique

LINE_WIDTH = 120


# --- identifiers and text --------------------------------------------------------------------

def identifier(text: str) -> str:
    """An identifier fragment for ``text``: lowercase ASCII letters, digits and single underscores."""
    parts = []
    for char in text:
        if char.isascii():
            parts.append(char.lower() if char.isalnum() else "_")
        else:
            ascii_form = unicodedata.normalize("NFKD", char).encode("ascii", "ignore").decode()
            parts.append(ascii_form.lower() if ascii_form.isalnum() else f"_u{ord(char):x}_")
    return re.sub(r"_+", "_", "".join(parts)).strip("_")


MAX_IDENTIFIER = 200  # characters of a name kept in its identifier (C99 guarantees 63 significant ones)


def unique_identifiers(names: Sequence[str], prefix: str, reserved: Iterable[str] = (),
                       namespaces: Sequence[str] = ()) -> dict[str, str]:
    """``prefix_<identifier>`` for each name, made unique (case-insensitively) by ``_2``, ``_3``...; a fragment that
    falls in one of the generated code's ``namespaces`` (``kw_``: its kernels) is moved out of it with ``t_``.

    >>> unique_identifiers(["dense/kernel", "kw_dense_f32", "predict"], "p", ["p_predict"], ["kw_"])
    {'dense/kernel': 'p_dense_kernel', 'kw_dense_f32': 'p_t_kw_dense_f32', 'predict': 'p_predict_2'}
    """
    taken = {r.lower() for r in reserved}  # identifiers are lower case: unique regardless of case

    def fragment(name: str) -> str:
        text = identifier(name)[:MAX_IDENTIFIER] or "tensor"
        return "t_" + text if text.startswith(tuple(namespaces)) else text

    return {name: unique(f"{prefix}_{fragment(name)}", taken, start=2) for name in names}


def comment_text(text: str) -> str:
    """``text`` safe inside a ``/* */`` comment: ASCII, one line, cannot close or open a comment."""
    escaped = json.dumps(text, ensure_ascii=True)[1:-1]
    return escaped.replace("*/", "* /").replace("/*", "/ *")


def c_string(text: str) -> str:
    """A C/C++ string literal holding ``text`` as UTF-8, with octal escapes for anything unusual."""
    out = []
    for byte in text.encode("utf-8"):
        char = chr(byte)
        if char in '"\\?':  # '?' too, so no trigraph can form
            out.append("\\" + char)
        elif 32 <= byte < 127:
            out.append(char)
        else:
            out.append(f"\\{byte:03o}")
    return '"' + "".join(out) + '"'


# --- literals --------------------------------------------------------------------------------

def _words(strings: Iterable[str]) -> np.ndarray:
    return np.array([int.from_bytes(s.encode(), "little") for s in strings], np.uint32)


@functools.cache
def _literal_words() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """A float32 literal is 16 bytes: sign, d.dddddddd, e, exponent sign, two digits, f; built from 4 words
    looked up in these tables (made on first use: ~3 ms that a command writing no C does not pay)."""
    return (_words(f"{s}{d // 10}.{d % 10}" for s in " -" for d in range(100)),
            _words(f"{i:04d}" for i in range(10000)),
            _words(f"{i:03d}e" for i in range(1000)),
            _words(f"{'-' if k < 0 else '+'}{abs(k):02d}f" for k in range(-60, 61)))


POW10 = 10.0 ** np.arange(-60, 61, dtype=np.float64)  # POW10[k + 60] == 10**k
# Per biased binary exponent: floor(log10) of the binade's smallest value, the next power of ten (the
# binade holds at most one), and the scale that turns a value into nine digits for either case.
_EXP10 = np.floor((np.arange(256) - 127) * np.log10(2)).astype(np.int32)
_NEXT_POWER = POW10[np.clip(_EXP10 + 61, 0, 120)]
_SCALE = np.stack([POW10[np.clip(68 - _EXP10, 0, 120)], POW10[np.clip(67 - _EXP10, 0, 120)]], axis=1).reshape(-1)


def float32_tokens(values: np.ndarray) -> np.ndarray:
    """Fixed-width literals ``±d.dddddddde±XXf`` for finite float32 values, as an (N, 16) uint8 array.

    Nine significant digits always identify a float32; the digits come from float64 arithmetic and
    are checked by converting them back, so a wrong digit can never be written silently.
    """
    bits = np.ascontiguousarray(values, dtype="<f4").reshape(-1).view(np.uint32)
    magnitude = bits & np.uint32(0x7FFFFFFF)
    value = magnitude.view(np.float32).astype(np.float64)
    binade = (magnitude >> 23).astype(np.intp)
    upper = value >= _NEXT_POWER[binade]  # floor(log10(value)) is _EXP10 or one more
    exponent = _EXP10[binade] + upper
    scale = _SCALE[binade * 2 + upper]  # row binade, column upper (fancy indexing releases the GIL; np.take does not)
    tiny = magnitude < 0x00800000  # zeros and subnormals: their binary exponent says nothing
    if tiny.any():
        small = value[tiny]
        exponent[tiny] = np.floor(np.log10(np.where(small > 0, small, 1.0)))
        scale[tiny] = POW10[68 - exponent[tiny]]
    mantissa = np.rint(value * scale)
    carry = mantissa >= 1e9  # 9.999999995e.. rounds up to the next decade
    if carry.any():
        exponent[carry] += 1
        scale[carry] /= 10
        mantissa[carry] = np.rint(value[carry] * scale[carry])
    digits = mantissa.astype(np.int32)
    if not np.array_equal((digits / scale).astype(np.float32).view(np.uint32), magnitude):
        raise AssertionError("float32 literal does not round-trip")  # cannot happen; guards the arithmetic
    thousands = digits // 1000  # two divisions instead of four: the rest by multiply and subtract
    leading = thousands // 10000
    w0, w1, w2, w3 = _literal_words()
    words = np.empty((bits.size, 4), np.uint32)
    words[:, 0] = w0[(bits >> 31).view(np.int32) * 100 + leading]
    words[:, 1] = w1[thousands - leading * 10000]
    words[:, 2] = w2[digits - thousands * 1000]
    words[:, 3] = w3[exponent + 60]
    return words.view(np.uint8)


def float32_literal(value: float, prefix: str = "NET") -> str:
    """One exact float32 literal (special values through the header's macros)."""
    return _float_tokens(np.array([value], np.float32), prefix)[0]


def _nan_token(bits: int, mantissa_bits: int, prefix: str, suffix: str) -> str:
    quiet = 1 << (mantissa_bits - 1)
    mantissa = bits & ((1 << mantissa_bits) - 1)
    sign = "-" if bits >> (mantissa_bits + (8 if suffix else 11)) else ""
    kind, payload = ("NAN", mantissa & (quiet - 1)) if mantissa & quiet else ("SNAN", mantissa)
    return f'{sign}{prefix}_{kind}{suffix}("0x{payload:x}")'


def _special(value: np.floating, bits: int, prefix: str, suffix: str) -> str:
    if np.isnan(value):
        return _nan_token(bits, 23 if suffix else 52, prefix, suffix)
    return f"{'-' if value < 0 else ''}{prefix}_INF{suffix}"


def _float_tokens(values: np.ndarray, prefix: str) -> list[str]:
    """float32 literals as strings, specials included (the slow path, for tensors with NaN or Inf)."""
    finite = np.isfinite(values)
    tokens = [bytes(row).decode() for row in float32_tokens(np.where(finite, values, 0))]
    for i in np.flatnonzero(~finite):
        tokens[i] = _special(values[i], int(values[i:i + 1].view(np.uint32)[0]), prefix, "F")
    return tokens


def _double_tokens(values: np.ndarray, prefix: str) -> list[str]:
    """Shortest round-trip float64 literals (Python's repr is correctly rounded and exact)."""
    bits = values.view(np.uint64)
    return [repr(float(v)) if np.isfinite(v) else _special(v, int(b), prefix, "") for v, b in zip(values, bits, strict=True)]


INT_MIN = {"int32_t": "(-2147483647 - 1)", "int64_t": "(-INT64_C(9223372036854775807) - 1)"}  # no literal for it


def _int_tokens(values: np.ndarray, c_type: str) -> list[str]:
    if c_type in ("int64_t", "uint64_t"):
        wrap = "INT64_C" if c_type == "int64_t" else "UINT64_C"
        tokens = [f"{wrap}({v})" for v in values.tolist()]
    else:
        suffix = "u" if c_type.startswith("u") else ""
        tokens = [f"{v}{suffix}" for v in values.tolist()]
    if c_type in INT_MIN:
        minimum = int(np.iinfo(values.dtype).min)
        tokens = [INT_MIN[c_type] if v == minimum else t for v, t in zip(values.tolist(), tokens, strict=True)]
    return tokens


def _hex_tokens(values: np.ndarray) -> np.ndarray:
    """Bit patterns as fixed-width hex, ``0x3f80``, as an (N, width) uint8 array."""
    width = values.dtype.itemsize * 2
    table = _hex_table(width)
    return table[values.astype(np.int64)]


_HEX_TABLES: dict[int, np.ndarray] = {}


def _hex_table(width: int) -> np.ndarray:
    if width not in _HEX_TABLES:
        text = "".join(f"0x{i:0{width}x}" for i in range(16 ** width)).encode()
        _HEX_TABLES[width] = np.frombuffer(text, np.uint8).reshape(-1, width + 2)
    return _HEX_TABLES[width]


def tokens(values: np.ndarray, entry: DType, prefix: str) -> np.ndarray | list[str]:
    """Literals for a flat chunk of one tensor's values: a fixed-width (N, W) uint8 array or strings.

    ``prefix`` is the upper-case macro prefix used for NaN and infinity.
    """
    if entry.c_type == "float":
        return float32_tokens(values) if np.isfinite(values).all() else _float_tokens(values, prefix)
    if entry.c_type == "double":
        return _double_tokens(values, prefix)
    stored = values.view(entry.c_storage)
    if entry.numpy.kind != entry.c_storage.kind:  # float16, bfloat16, float8, bool: their bit patterns
        return _hex_tokens(stored)
    return _int_tokens(stored, entry.c_type)


SMALL_INTS = ("int8_t", "uint8_t", "int16_t", "uint16_t")
_INT_TABLES: dict[str, tuple[np.ndarray, np.ndarray, int]] = {}


def _int_table(c_type: str) -> tuple[np.ndarray, np.ndarray, int]:
    """Every literal of a small integer type, padded in a (K, W) uint8 array, with their lengths and the
    type's smallest value (row 0)."""
    if c_type not in _INT_TABLES:
        info = np.iinfo(np.dtype(c_type.replace("_t", "")))
        suffix = "u" if c_type.startswith("u") else ""
        texts = [f"{v}{suffix}".encode() for v in range(int(info.min), int(info.max) + 1)]
        width = max(map(len, texts))
        table = np.frombuffer(b"".join(t.ljust(width, b"\0") for t in texts), np.uint8).reshape(-1, width)
        _INT_TABLES[c_type] = table, np.array([len(t) for t in texts], np.intp), int(info.min)
    return _INT_TABLES[c_type]


def small_int_lines(values: np.ndarray, c_type: str, indent: str = "  ") -> bytes:
    """``lines(tokens(values))`` for 8- and 16-bit integers, byte for byte, built by table lookup (int8
    weights of a quantized export are 100M values for a 100M-parameter model).

    >>> values = np.array([-128, 5, 127, 0], np.int8)
    >>> small_int_lines(values, "int8_t") == lines(_int_tokens(values, "int8_t"))
    True
    """
    if not values.size:
        return b""
    table, lengths, low = _int_table(c_type)
    index = values.astype(np.intp) - low
    size = lengths[index]
    width = int(size.max())
    per_line = max(1, (LINE_WIDTH - len(indent)) // (width + 2))
    count, cell = values.size, table.shape[1]
    ends = (np.arange(1, count + 1) % per_line == 0)
    ends[-1] = True
    continued = ends.copy()
    continued[-1] = False  # the last value's line break has no next line
    text = np.empty((count, cell + 2 + len(indent)), np.uint8)
    keep = np.zeros(text.shape, bool)
    text[:, :cell] = table[index]
    keep[:, :cell] = np.arange(cell) < size[:, None]
    text[:, cell] = ord(",")
    text[:, cell + 1] = np.where(ends, ord("\n"), ord(" "))
    keep[:, cell:cell + 2] = True
    if indent:
        text[:, cell + 2:] = np.frombuffer(indent.encode(), np.uint8)
        keep[:, cell + 2:] = continued[:, None]
    return indent.encode() + text[keep].tobytes()


def piece_lines(values: np.ndarray, entry: DType, prefix: str, indent: str = "  ") -> bytes | memoryview:
    """The initializer lines of a flat piece of one tensor."""
    if entry.c_type in SMALL_INTS and entry.numpy.kind == entry.c_storage.kind:
        return small_int_lines(values.view(entry.c_storage), entry.c_type, indent)
    return lines(tokens(values, entry, prefix), indent, view=True)


def lines(tokens: np.ndarray | list[str], indent: str = "  ", *, view: bool = False) -> bytes | memoryview:
    """Tokens as initializer lines: ``indent`` + ``tok, tok, ...,`` within ``LINE_WIDTH`` columns.

    With ``view``, fixed-width text may come back as a memoryview of the array it was laid out in (no copy).
    """
    if isinstance(tokens, np.ndarray):
        return _fixed_lines(tokens, indent, view)
    width = max((len(t) for t in tokens), default=1)
    per_line = max(1, (LINE_WIDTH - len(indent)) // (width + 2))
    rows = (", ".join(tokens[i:i + per_line]) for i in range(0, len(tokens), per_line))
    return "".join(f"{indent}{row},\n" for row in rows).encode()


def _fixed_lines(tokens: np.ndarray, indent: str, view: bool = False) -> bytes | memoryview:
    """Fixed-width tokens laid straight into their final place: indent, then ``tok, `` cells, newline."""
    count, width = tokens.shape
    per_line = max(1, (LINE_WIDTH - len(indent)) // (width + 2))
    rows, rest = divmod(count, per_line)
    out = np.empty((rows, len(indent) + per_line * (width + 2)), np.uint8)
    out[:, :len(indent)] = np.frombuffer(indent.encode(), np.uint8)
    cells = out[:, len(indent):].reshape(rows, per_line, width + 2)
    cells[:, :, :width] = tokens[:rows * per_line].reshape(rows, per_line, width)
    cells[:, :, width] = ord(",")
    cells[:, :, width + 1] = ord(" ")
    out[:, -1] = ord("\n")
    if not rest:
        return out.data if view else out.tobytes()
    tail = tokens[rows * per_line:]
    return out.tobytes() + indent.encode() + b" ".join(bytes(row) + b"," for row in tail) + b"\n"


CHUNK = 6 * 16384  # values per piece of text: a multiple of the 6 float32 literals per line


def render(array: np.ndarray, entry: DType, prefix: str, indent: str = "  ") -> Iterator[bytes | memoryview]:
    """The initializer lines of a whole tensor, in order, piece by piece (bounded memory).

    Large tensors are formatted on every core: numpy releases the GIL in the work that counts.
    """
    flat = array.reshape(-1)
    pieces = (flat[start:start + CHUNK] for start in range(0, flat.size, CHUNK))
    if flat.size <= CHUNK:
        yield from (piece_lines(piece, entry, prefix, indent) for piece in pieces)
        return
    workers = min(4, os.cpu_count() or 1)
    with ThreadPoolExecutor(workers) as pool:
        pending: deque = deque()
        for piece in pieces:
            pending.append(pool.submit(piece_lines, piece, entry, prefix, indent))
            if len(pending) > 2 * workers:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
