"""Reading the C output back: parse the literals (``read``), as ``verify`` does; ``c_build`` checks what a real
compiler makes of them.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import numpy as np

from .. import dtypes
from ..c_text import INT_MIN, POW10

_DEFINITION = re.compile(r"^\w+\(\w+\) (?:static )?const (\w+) (\w+)((?:\[\d+\])+) \w+ = \{$")
_TABLE_ENTRY = re.compile(r'^  \{"(?:[^"\\]|\\.)*", (?:NULL /\* )?(\w+)(?: \*/)?, (\w+)_DTYPE_(\w+), (\d+), '
                          r'\{([\d, ]*)\}, (\d+)u, (\d+)u(?:, (?:NULL|\w+), \d+u, \d+u)?\},$')  # int8 exports: scale fields
_SPECIAL = re.compile(r'^(-?)\w+?_(INF|NAN|SNAN)(F?)(?:\("0x([0-9a-f]+)"\))?$')
_INT_MIN = {literal.replace(" ", ""): int(np.iinfo(dtypes.C_TYPES[c_type]).min) for c_type, literal in INT_MIN.items()}


PARSE_BLOCK = 4 * 2**20  # bytes of literals parsed at a time: the text of a whole tensor is never held


def read(path: Path) -> dict[str, np.ndarray]:
    """``{identifier: array}`` for every tensor the file defines, with its real dtype and shape.

    A header with declarations only (the ``.h`` beside a ``.c``) defines none.
    """
    values, table = {}, {}
    size = Path(path).stat().st_size
    with open(path, "rb") as handle:
        lines = _lines(handle)
        for raw in lines:
            line = raw.decode("ascii").rstrip("\n")
            match = _DEFINITION.match(line)
            if match:
                count = int(np.prod([int(n) for n in re.findall(r"\d+", match.group(3))], dtype=object))
                if 2 * count > size:  # every value takes two characters at least ("0,"): never allocate beyond that
                    raise ValueError(f"array {match.group(2)} declares {count:,} values, more than the file can hold")
                values[match.group(2)] = _read_block(lines, match.group(1), count)
                continue
            entry = _TABLE_ENTRY.match(line)
            if entry:
                ident, _, dtype_name, rank, dims = entry.group(1, 2, 3, 4, 5)
                shape = tuple(int(d) for d in dims.split(",")[: int(rank)]) if int(rank) else ()
                table[ident] = (dtype_name.lower(), shape)
    result = {}
    for ident, (dtype_name, shape) in table.items():
        entry = dtypes.by_name(dtype_name)
        if ident in values:
            flat = values[ident]
            result[ident] = (flat.view(entry.numpy) if flat.dtype != entry.numpy else flat).reshape(shape)
        elif int(np.prod(shape)) == 0:
            result[ident] = np.zeros(shape, entry.numpy)
    return result


MAX_LINE = 16 * 2**20  # bytes: our lines are at most 120 characters, or as long as an (escaped) tensor name


def _lines(handle) -> Iterator[bytes]:
    """The file's lines, refusing any longer than ``MAX_LINE`` (a 1 GB line would be held whole)."""
    while line := handle.readline(MAX_LINE + 1):
        if len(line) > MAX_LINE:
            raise ValueError(f"a line is longer than {MAX_LINE:,} bytes: not C text keras-weights writes")
        yield line


def _read_block(lines: Iterator[bytes], c_type: str, count: int) -> np.ndarray:
    """The ``count`` values of one array definition, up to its closing ``};``, parsed a few MB at a time."""
    result, filled, pending, size = np.empty(count, dtypes.C_TYPES[c_type]), 0, [], 0
    for line in lines:
        end = line.rstrip(b"\r\n") == b"};"
        if not end:
            pending.append(line)
            size += len(line)
        if pending and (size >= PARSE_BLOCK or end):
            part = _parse_values(b"".join(pending), c_type)
            if filled + part.size > count:
                raise ValueError(f"an array holds more values than the {count} it declares")
            result[filled:filled + part.size] = part
            filled, pending, size = filled + part.size, [], 0
        if end:
            break
    if filled != count:
        raise ValueError(f"an array holds {filled} values but declares {count}")
    return result


def _parse_values(text: bytes, c_type: str) -> np.ndarray:
    fast = _parse_float32_literals(text) if c_type == "float" else None
    if fast is not None:
        return fast
    tokens = [t for t in re.sub(rb"[{}\s]", b"", text).decode("ascii").split(",") if t]
    storage = np.dtype(dtypes.C_TYPES[c_type])
    if c_type == "float" or c_type == "double":
        return _parse_floats(tokens, storage)
    return np.array([_parse_int(t) for t in tokens], dtype=np.int64 if storage != np.uint64 else np.uint64).astype(storage)


def _parse_float32_literals(text: bytes) -> np.ndarray | None:
    """Our own fixed-width float32 literals (``-d.dddddddde+XXf``), parsed with array arithmetic.

    Every token has exactly one ``e``, so its position locates the token; anything else in the block
    (special values, hand edits) returns None and the general parser takes over.
    """
    data = np.frombuffer(text, np.uint8)
    marks = np.flatnonzero(data == ord("e"))
    if marks.size == 0 or marks.size != np.count_nonzero(data == ord(",")) or marks[0] < 11 or marks[-1] + 4 >= data.size:
        return None
    column = lambda offset: data[marks + offset]  # noqa: E731  (one character of every token)
    if (column(-9) != ord(".")).any() or (column(4) != ord("f")).any():
        return None
    mantissa = np.zeros(marks.size, np.int64)
    for offset in (-10, -8, -7, -6, -5, -4, -3, -2, -1):  # the nine digits around the point
        digit = column(offset).astype(np.int64) - ord("0")
        if ((digit < 0) | (digit > 9)).any():
            return None
        mantissa = mantissa * 10 + digit
    exponent = (column(2).astype(np.int64) - ord("0")) * 10 + column(3) - ord("0")
    exponent = np.where(column(1) == ord("-"), -exponent, exponent)
    value = (mantissa * POW10[exponent - 8 + 60]).astype(np.float32)
    return np.where(column(-11) == ord("-"), -value, value)


def _parse_floats(tokens: list[str], storage: np.dtype) -> np.ndarray:
    plain = [t[:-1] if t.endswith("f") else t for t in tokens]
    special = [i for i, t in enumerate(plain) if not t[-1:].isdigit()]
    for i in special:
        plain[i] = "0"
    result = np.array(plain, dtype=np.float64).astype(storage)  # ours have 9 (17) digits: no double rounding
    bits = result.view(np.uint32 if storage == np.float32 else np.uint64)
    for i in special:
        bits[i] = _special_bits(tokens[i], storage)
    return result


def _special_bits(token: str, storage: np.dtype) -> int:
    sign, kind, _, payload = _SPECIAL.match(token).groups()
    mantissa_bits, exponent_bits = (23, 8) if storage == np.float32 else (52, 11)
    value = ((1 << exponent_bits) - 1) << mantissa_bits
    if kind == "NAN":
        value |= (1 << (mantissa_bits - 1)) | int(payload, 16)
    elif kind == "SNAN":
        value |= int(payload, 16)
    return value | (1 << (mantissa_bits + exponent_bits) if sign else 0)


def _parse_int(token: str) -> int:
    if token in _INT_MIN:
        return _INT_MIN[token]
    return int(re.sub(r"^U?INT64_C\((.*)\)$", r"\1", token).rstrip("u"), 0)
