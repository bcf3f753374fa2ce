"""``keras-weights diff A B`` (``converter.diff``): what changed between two models or exports, tensor by tensor.

Each side is a model (file or ``keras.Model``) or an export folder. Tensors are matched by their Keras name;
what is left is matched by position when the shapes agree (a renamed layer). Exports in another layout, or
quantized, are compared as the Keras-layout float values they stand for (every recorded step undone,
``q * scale``), and the result says so. Equal means bit-identical by default (NaN equals NaN with the same
bits); ``atol``/``rtol`` loosen it to ``|a - b| <= atol + rtol * |b|``.

>>> result = diff("fixtures/seed_mlp.keras", "fixtures/golden")
>>> result.equal, len(result.tensors), result.tensors[0].status
(True, 6, 'equal')
"""
from __future__ import annotations

import math
import os
from dataclasses import asdict, dataclass, field
from typing import Any

import numpy as np

from .errors import UsageError
from .exports import Export, export_folder
from .readers import read_model


@dataclass
class TensorDiff:
    """One tensor's comparison."""

    name: str
    status: str                      # equal, changed, added, removed, renamed, reshaped, retyped
    other_name: str | None = None    # B's name where it differs (renamed)
    shape: list[int] | None = None
    other_shape: list[int] | None = None
    dtype: str | None = None
    other_dtype: str | None = None
    max_abs: float | None = None     # over the values finite on both sides
    max_rel: float | None = None
    changed: float | None = None     # fraction of values not equal (bit for bit, or beyond the tolerance)


@dataclass
class Diff:
    a: str
    b: str
    tensors: list[TensorDiff]
    notes: list[str] = field(default_factory=list)

    @property
    def equal(self) -> bool:
        return all(t.status == "equal" for t in self.tensors)

    def to_json(self) -> dict:
        """The comparison as JSON values: a figure too large for a float (a difference that overflowed) is the
        string ``"inf"``, so the document stays valid JSON."""
        return {"a": self.a, "b": self.b, "equal": self.equal, "notes": self.notes,
                "tensors": [{k: _json_number(v) for k, v in asdict(t).items()} for t in self.tensors]}


def diff(a: Any, b: Any, *, atol: float = 0.0, rtol: float = 0.0, reader: str = "auto") -> Diff:
    """Compare two models or exports (see the module's text)."""
    if atol < 0 or rtol < 0 or not np.isfinite(atol) or not np.isfinite(rtol):
        raise UsageError(f"atol and rtol must be finite and not negative. Received: atol={atol}, rtol={rtol}")
    notes: list[str] = []
    left, right = _tensors(a, reader, notes), _tensors(b, reader, notes)
    result = [_compare(name, array, right[name], atol, rtol) for name, array in left.items() if name in right]
    unmatched_left = {i: name for i, name in enumerate(left) if name not in right}
    unmatched_right = {i: name for i, name in enumerate(right) if name not in left}
    for position, name in list(unmatched_left.items()):  # renamed: the same position and shape on the other side
        partner = unmatched_right.get(position)
        if partner is not None and right[partner].shape == left[name].shape:
            compared = _compare(name, left[name], right[partner], atol, rtol)
            compared.status, compared.other_name = "renamed", partner
            result.append(compared)
            del unmatched_left[position], unmatched_right[position]
    result += [TensorDiff(name, "removed", shape=list(left[name].shape), dtype=left[name].dtype.name)
               for name in unmatched_left.values()]
    result += [TensorDiff(name, "added", other_shape=list(right[name].shape), other_dtype=right[name].dtype.name)
               for name in unmatched_right.values()]
    return Diff(_label(a), _label(b), result, list(dict.fromkeys(notes)))


def _json_number(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return "inf" if value > 0 else "-inf" if value < 0 else "nan"
    return value


def _label(source: Any) -> str:
    return os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"keras.Model {getattr(source, 'name', '?')!r}"


def _tensors(source: Any, reader: str, notes: list[str]) -> dict[str, np.ndarray]:
    """Keras name -> the Keras-layout array a model holds, or an export stands for."""
    folder = export_folder(source)
    if folder is not None:
        return Export.open(folder).keras_arrays(notes)
    return {t.name: t.array for t in read_model(source, reader).tensors}


BLOCK = 1 << 20  # values compared at a time: the float64 copies of a block, never of a whole tensor


def _compare(name: str, a: np.ndarray, b: np.ndarray, atol: float, rtol: float) -> TensorDiff:
    base = TensorDiff(name, "equal", shape=list(a.shape), other_shape=list(b.shape), dtype=a.dtype.name,
                      other_dtype=b.dtype.name)
    if a.shape != b.shape:
        base.status = "reshaped"
        return base
    if a.dtype != b.dtype:
        base.status = "retyped"
        if "float" not in a.dtype.name or "float" not in b.dtype.name:
            return base  # float values of both are still compared below, to show how far they moved
    if a.size == 0:
        return base
    if a.dtype == b.dtype and a.nbytes <= BLOCK and a.tobytes() == b.tobytes():  # the common case, at once
        base.max_abs = base.max_rel = base.changed = 0.0
        return base
    exact_integers = a.dtype == b.dtype and a.dtype.kind in "iu"
    figures = _Figures()
    for start in range(0, a.size, BLOCK):
        x, y = a.reshape(-1)[start:start + BLOCK], b.reshape(-1)[start:start + BLOCK]
        (_integer_block if exact_integers else _float_block)(x, y, atol, rtol, figures)
    base.max_abs, base.max_rel, base.changed = figures.max_abs, figures.max_rel, figures.unequal / a.size
    if figures.unequal and base.status == "equal":
        base.status = "changed"
    return base


class _Figures:
    """What the blocks of one tensor found: the largest differences and how many values are not equal."""

    def __init__(self) -> None:
        self.max_abs, self.max_rel, self.unequal = 0.0, 0.0, 0

    def add(self, difference: np.ndarray, scale: np.ndarray, unequal: int) -> None:
        if difference.size:
            self.max_abs = max(self.max_abs, float(difference.max()))
        moved = scale > 0
        if moved.any():
            self.max_rel = max(self.max_rel, float((difference[moved] / scale[moved]).max()))
        self.unequal += unequal


def _integer_block(x: np.ndarray, y: np.ndarray, atol: float, rtol: float, figures: _Figures) -> None:
    """Integers as integers: |x - y| exactly (as uint64, whatever the sign), so 2**62 and 2**62 + 1 differ."""
    high, low = np.maximum(x, y), np.minimum(x, y)
    exact = high.astype(np.uint64) - low.astype(np.uint64)  # modulo 2**64: exact, since 0 <= high - low < 2**64
    difference = exact.astype(np.float64)
    unequal = exact != 0
    if atol or rtol:
        unequal &= ~(difference <= atol + rtol * np.abs(y.astype(np.float64)))
    figures.add(difference, np.maximum(np.abs(x.astype(np.float64)), np.abs(y.astype(np.float64))),
                int(np.count_nonzero(unequal)))


def _float_block(x: np.ndarray, y: np.ndarray, atol: float, rtol: float, figures: _Figures) -> None:
    """Floats: bit for bit without a tolerance (NaN equals NaN with the same bits), else |x - y| <= atol + rtol |y|."""
    if atol == 0 and rtol == 0 and x.dtype == y.dtype:
        width = x.dtype.itemsize
        unequal = (x.view(np.uint8).reshape(-1, width) != y.view(np.uint8).reshape(-1, width)).any(axis=1)
    else:
        unequal = None
    with np.errstate(over="ignore", invalid="ignore"):  # float64 can overflow to inf: reported as such
        u, v = x.astype(np.float64), y.astype(np.float64)
        finite = np.isfinite(u) & np.isfinite(v)
        difference = np.abs(u - v)
        if unequal is None:
            close = finite & (difference <= atol + rtol * np.abs(v))
            unequal = ~(close | (np.isnan(u) & np.isnan(v)) | ((u == v) & ~finite))
        scale = np.where(finite, np.maximum(np.abs(u), np.abs(v)), 0.0)
    figures.add(difference[finite], scale[finite], int(np.count_nonzero(unequal)))
