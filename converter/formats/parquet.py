"""Apache Parquet: one row per tensor, queryable as-is by pyarrow, pandas, Polars and DuckDB.

Columns: ``name``, ``layer``, ``role``, ``layer_index``, ``trainable``, ``kind`` (``weight``, or what
quantization-aware training keeps beside the weights: ``quantizer_range``, ``training_state``), ``dtype``,
``shape`` (list of int64), ``values`` (the flattened C-order values, a ``large_list`` when a tensor exceeds
2**31 - 1 values), ``sha256``, and ``payload_index`` / ``payload_bits``. ``values`` has one Arrow type for the
whole file: the tensors' own type when they share one carrier (float32 for float32/float16/bfloat16 models),
float64 when they do not, except in a
quantized export, whose int8 tensors ride in float32 beside their float32 scales (exact, half the size). Every dtype
is stored exactly: a value the ``values`` type cannot carry bit for bit (a NaN payload, a 64-bit
integer beyond 2**53 beside float tensors) has its flat position in ``payload_index`` and its exact
bits (as unsigned integers) in ``payload_bits``, and :func:`read` puts them back. The manifest (without
its ``files`` list, which would have to contain this file's own checksum) is in the file's key-value
metadata under ``keras_weights.manifest``.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path

import importlib

import numpy as np

from .. import atomic, choices, dtypes
from ..tensors import ExportInfo, Tensor
from .base import DECLARED_PER_FILE_BYTE

EMBEDS_MANIFEST = True  # its key-value metadata holds the manifest: the export computes the checksums first

class _OnFirstUse:
    """A module imported the first time it is used: pyarrow takes ~30 ms to import, and a command that writes no
    Parquet (inspect, export -f c) never pays it."""

    def __init__(self, name: str) -> None:
        self._name, self._module = name, None

    def __getattr__(self, attribute: str):
        if self._module is None:
            self._module = importlib.import_module(self._name)
        return getattr(self._module, attribute)


pa = _OnFirstUse("pyarrow")
pq = _OnFirstUse("pyarrow.parquet")

EXTENSIONS = (".parquet",)
OPTIONS = choices.FORMAT_OPTIONS["parquet"]


def files(stem: str, **_: object) -> list[str]:
    """The one file an export writes."""
    return [stem + EXTENSIONS[0]]


MANIFEST_KEY = b"keras_weights.manifest"


def keys(tensors: Sequence[Tensor], stem: str = "", **_: object) -> dict[str, str]:
    """The Parquet key of each tensor: the ``name`` of its row."""
    return {t.name: t.name for t in tensors}


def values_type(tensors: Sequence[Tensor]) -> np.dtype:
    """The one element type of the ``values`` column that holds every tensor exactly.

    >>> import numpy as np
    >>> t = lambda dtype: Tensor("x", "x", "x", 0, True, np.zeros(1, dtype))
    >>> values_type([t(np.float16), t(np.float32)]), values_type([t(np.float32), t(np.int64)])
    (dtype('float32'), dtype('float64'))
    """
    carriers = {dtypes.lookup(t.array.dtype).parquet_carrier for t in tensors} or {np.dtype(np.float32)}
    if len(carriers) == 1:
        return carriers.pop()
    # float64 for mixed dtypes, as exports have always been written; a quantized export (new in manifest 1.1)
    # takes float32 when it carries every value exactly (int8 and 16-bit values do), not twice the bytes
    if any(t.quantization for t in tensors) and all(t.array.dtype.name in _EXACT_IN_FLOAT32 for t in tensors):
        return np.dtype(np.float32)
    return np.dtype(np.float64)


_EXACT_IN_FLOAT32 = frozenset({"float32", "float16", "bfloat16", "float8_e4m3fn", "float8_e5m2", "int8", "uint8",
                               "int16", "uint16", "bool"})


def _may_lose_bits(tensor: Tensor, carrier: np.dtype) -> bool:
    """Whether some value of ``tensor`` may not survive the trip through ``carrier`` bit for bit."""
    return bool(tensor.non_finite[0]) or (tensor.array.dtype.itemsize == 8 and tensor.array.dtype != carrier)


ROW_GROUP_VALUES = 1 << 17  # small tensors share a row group up to about this many values; a larger one has its own
LIST_LIMIT = 2**31 - 1  # the most values a 32-bit-offset list holds; a file with a larger tensor uses large_list
_TEXT_COLUMNS = ("name", "layer", "role", "kind", "dtype")


def schema(carrier: np.dtype, manifest_json: str = "", *, large: bool = False) -> pa.Schema:
    """The file's columns; ``values`` holds ``carrier`` elements (64-bit offsets if ``large``); the manifest goes in
    the metadata."""
    metadata = {MANIFEST_KEY: manifest_json} if manifest_json else None
    values = (pa.large_list if large else pa.list_)(pa.from_numpy_dtype(carrier))
    return pa.schema([
        ("name", pa.string()), ("layer", pa.string()), ("role", pa.string()), ("layer_index", pa.int32()),
        ("trainable", pa.bool_()), ("kind", pa.string()), ("dtype", pa.string()), ("shape", pa.list_(pa.int64())),
        ("values", values), ("sha256", pa.string()),
        ("payload_index", pa.list_(pa.int64())), ("payload_bits", pa.list_(pa.uint64())),
    ], metadata=metadata)


def row(tensor: Tensor, carrier: np.dtype) -> dict:
    """The one row of a tensor; its ``values`` are a view of the tensor's own buffer when the carrier is its type.

    >>> t = Tensor("d/k", "d", "k", 0, True, np.zeros((300, 1000), np.float32))
    >>> r = row(t, np.dtype(np.float32))
    >>> len(r["values"]), np.shares_memory(r["values"], t.array)
    (300000, True)
    """
    flat = tensor.array.reshape(-1)
    with np.errstate(invalid="ignore", over="ignore"):  # what does not survive is kept in payload_bits
        carried = flat.astype(carrier, copy=False)  # a view when no conversion is needed
    index, bits = _lost_bits(flat, carried) if _may_lose_bits(tensor, carrier) else ([], [])
    return {"name": tensor.name, "layer": tensor.layer, "role": tensor.role, "layer_index": tensor.layer_index,
            "trainable": tensor.trainable, "kind": tensor.kind, "dtype": tensor.dtype,
            "shape": np.array(tensor.shape, np.int64), "values": carried, "sha256": tensor.sha256,
            "payload_index": np.array(index, np.int64), "payload_bits": np.array(bits, np.uint64)}


def _batch(parts: Sequence[dict], file_schema: pa.Schema) -> pa.Table:
    """Rows as an Arrow table, built from buffers: ``pa.array`` imports pandas whenever it is installed
    (half a second and ~170 MB of start-up for nothing)."""
    columns = []
    for field in file_schema:
        values = [row[field.name] for row in parts]
        if pa.types.is_string(field.type):
            columns.append(_strings(values))
        elif pa.types.is_boolean(field.type):
            columns.append(_booleans(values))
        elif pa.types.is_list(field.type) or pa.types.is_large_list(field.type):
            columns.append(_lists(values, field.type))
        else:
            columns.append(_numbers(np.array(values, field.type.to_pandas_dtype())))
    return pa.Table.from_arrays(columns, schema=file_schema)


def _numbers(values: np.ndarray) -> pa.Array:
    if values.dtype == np.bool_:  # Arrow packs booleans into bits
        return _booleans(values)
    values = np.ascontiguousarray(values)
    return pa.Array.from_buffers(pa.from_numpy_dtype(values.dtype), len(values), [None, pa.py_buffer(values)])


def _strings(texts: list[str]) -> pa.Array:
    encoded = [t.encode("utf-8") for t in texts]
    offsets = np.concatenate([[0], np.cumsum([len(e) for e in encoded])]).astype(np.int32)
    return pa.Array.from_buffers(pa.string(), len(texts), [None, pa.py_buffer(offsets), pa.py_buffer(b"".join(encoded))])


def _booleans(flags: list[bool] | np.ndarray) -> pa.Array:
    bits = np.packbits(np.array(flags, bool), bitorder="little")
    return pa.Array.from_buffers(pa.bool_(), len(flags), [None, pa.py_buffer(bits)])


def _lists(parts: list[np.ndarray], list_type: pa.DataType) -> pa.Array:
    """A list column, one list per array; one array (a large tensor's row) is used in place, not copied."""
    large = pa.types.is_large_list(list_type)
    offsets = np.concatenate([[0], np.cumsum([len(p) for p in parts])]).astype(np.int64 if large else np.int32)
    joined = parts[0] if len(parts) == 1 else np.concatenate(parts)
    values = _numbers(joined.astype(list_type.value_type.to_pandas_dtype(), copy=False))
    return (pa.LargeListArray if large else pa.ListArray).from_arrays(_numbers(offsets), values)


def _lost_bits(original: np.ndarray, carried: np.ndarray) -> tuple[list[int], list[int]]:
    """Positions in ``original`` (and exact bits) of values the carrier type changes: NaN payloads, and
    64-bit integers that float64 rounds."""
    bits_type = np.dtype(f"<u{original.dtype.itemsize}")
    with np.errstate(invalid="ignore", over="ignore"):  # 2**64 - 1 rounds to 2**64, beyond uint64: recorded
        back = carried.astype(original.dtype)
    changed = np.flatnonzero(back.view(bits_type) != original.view(bits_type))
    return changed.tolist(), original.view(bits_type)[changed].astype(np.uint64).tolist()


def write(tensors: Sequence[Tensor], path: Path, *, info: ExportInfo | None = None,
          progress: Callable[[Tensor], None] | None = None) -> dict[str, str]:
    """Write ``tensors`` to ``path``, one row per tensor, streaming: small tensors share row groups of about
    ``ROW_GROUP_VALUES`` values, a larger tensor is a row group of its own.

    Measured on 1M-10M float32 weights: dictionary encoding of the values cost 5x the time and ~30x
    their size in memory, and snappy 7x the time for no smaller file (weights do not compress).
    A row's values are the tensor's own buffer (no copy when it is of the carrier type), but pyarrow's writer builds
    the repetition and definition levels of a whole row group before it writes a page: ~17 bytes per value of the
    largest tensor (measured: 532 MB for one row of 32M float32 values, 2.4 MB for the same values as 245 rows), so
    the writer's peak is about 4x the largest float32 tensor, never the whole model.
    """
    carrier = values_type(tensors)
    large = any(t.array.size > LIST_LIMIT for t in tensors)
    file_schema = schema(carrier, info.manifest_json if info else "", large=large)
    output = atomic.HashedOutput(path)
    with output as sink, pq.ParquetWriter(sink, file_schema, use_dictionary=list(_TEXT_COLUMNS), compression="none",
                                          data_page_version="1.0") as writer:
        pending, size = [], 0
        for tensor in tensors:
            if pending and size + tensor.array.size > ROW_GROUP_VALUES:
                writer.write_table(_batch(pending, file_schema))
                pending, size = [], 0
            pending.append(row(tensor, carrier))
            size += tensor.array.size
            if progress:
                progress(tensor)
        if pending:
            writer.write_table(_batch(pending, file_schema))
    pa.default_memory_pool().release_unused()  # hand the writer's buffers back (measured: 15 MB kept at 1M values)
    return {path.name: output.sha256}


def read(path: Path) -> dict[str, np.ndarray]:
    """Read every tensor back, one row group at a time, into an array of its recorded dtype and shape.

    Files written before one row per tensor (until December 2026) split tensors above 131,072 values over
    consecutive rows whose ``offset`` column says where each starts; they read the same.
    A file is foreign input: the shapes its rows declare may not add up to more than the file can hold, and every
    tensor's rows must cover each of its values exactly once (no value is left as uninitialised memory).
    """
    arrays: dict[str, np.ndarray] = {}
    covered: dict[str, list[tuple[int, int]]] = {}
    handle = pq.ParquetFile(path)
    columns = ["name", "dtype", "shape", "payload_index", "payload_bits"]
    split_rows = "offset" in handle.schema_arrow.names
    budget = [DECLARED_PER_FILE_BYTE * atomic.stored_size(path) + 2**20]  # bytes the declared shapes may take
    for group in range(handle.num_row_groups):
        data = handle.read_row_group(group, columns=[*columns, "values", *(["offset"] if split_rows else [])])
        values = data.column("values").combine_chunks()
        flat, bounds = _numpy(values.flatten()), _numpy(values.offsets)
        offsets = data.column("offset").to_pylist() if split_rows else [0] * data.num_rows
        fields = zip(*(data.column(c).to_pylist() for c in columns), offsets, bounds[:-1], bounds[1:], strict=True)
        for name, dtype, shape, index, bits, offset, start, end in fields:
            numpy_dtype = dtypes.by_name(dtype).numpy
            if name not in arrays:
                arrays[name] = _allocated(name, shape, numpy_dtype, budget)
            target = arrays[name].reshape(-1)
            if target.dtype != numpy_dtype or not 0 <= offset <= target.size - (end - start):
                raise ValueError(f"tensor {name!r}: a row of {end - start} {dtype} values at offset {offset} does not "
                                 f"fit its {target.dtype.name} array of {target.size}")
            covered.setdefault(name, []).append((offset, int(end - start)))
            with np.errstate(invalid="ignore", over="ignore"):  # such values come from payload_bits below
                target[offset:offset + end - start] = flat[start:end].astype(numpy_dtype)
            if index:
                target.view(f"<u{numpy_dtype.itemsize}")[index] = bits
    for name, array in arrays.items():
        _check_covered(name, covered[name], array.size)
    return arrays


def _allocated(name: str, shape: object, dtype: np.dtype, budget: list[int]) -> np.ndarray:
    """An empty array for a tensor's declared shape, within what is left of the file's byte budget."""
    if not isinstance(shape, list) or any(not isinstance(n, int) or n < 0 for n in shape):
        raise ValueError(f"tensor {name!r}: shape {str(shape)[:80]} is not a list of sizes")
    nbytes = int(np.prod(shape, dtype=object)) * dtype.itemsize
    budget[0] -= nbytes
    if budget[0] < 0:
        raise ValueError(f"tensor {name!r} declares {nbytes:,} bytes: its rows declare more than the file can hold")
    return np.empty(shape, dtype)


def _check_covered(name: str, rows: list[tuple[int, int]], size: int) -> None:
    """Every value of the tensor in exactly one row: the rows, sorted by offset, follow each other from 0 to size."""
    at = 0
    for offset, length in sorted(rows):
        if offset != at:
            what = "hold the same values twice" if offset < at else f"leave values {at} to {offset - 1} out"
            raise ValueError(f"tensor {name!r}: its rows {what}")
        at += length
    if at != size:
        raise ValueError(f"tensor {name!r}: its rows hold {at} of its {size} values")


def _numpy(array: pa.Array) -> np.ndarray:
    """An Arrow array without nulls as a numpy view; ``to_numpy`` would import pandas (~0.5 s, ~100 MB)."""
    if pa.types.is_boolean(array.type):
        bits = np.frombuffer(array.buffers()[1], np.uint8)
        return np.unpackbits(bits, bitorder="little")[array.offset:array.offset + len(array)].astype(bool)
    dtype = np.dtype(array.type.to_pandas_dtype())
    return np.frombuffer(array.buffers()[1], dtype, count=len(array), offset=array.offset * dtype.itemsize)


def embedded_manifest(path: Path) -> dict | None:
    """The manifest stored in the file's key-value metadata, if any."""
    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata[MANIFEST_KEY]) if MANIFEST_KEY in metadata else None
