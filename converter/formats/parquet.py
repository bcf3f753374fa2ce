"""Apache Parquet: one row per tensor, queryable as-is by pyarrow, pandas, Polars and DuckDB.

Columns: ``name``, ``layer``, ``role``, ``layer_index``, ``trainable``, ``dtype``, ``shape``
(list of int64), ``values`` (the flattened C-order values), ``sha256``, and ``payload_index`` /
``payload_bits``. ``values`` has one Arrow type for the whole file, the narrowest that holds every
tensor's values exactly (float32 for float32/float16/bfloat16 models, float64 once float64 or mixed
int/float tensors appear). A NaN keeps its payload in ``values`` only if the conversion to that type
keeps it; where it does not, ``payload_index`` lists the flat positions and ``payload_bits`` their
exact bits (as unsigned integers), and :func:`read` puts them back. The manifest (without its
``files`` list, which would have to contain this file's own checksum) is in the file's key-value
metadata under ``keras_weights.manifest``.
"""
from __future__ import annotations

import json
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

from .. import dtypes
from ..errors import UnsupportedDType
from ..tensors import Tensor

EXTENSIONS = (".parquet",)
OPTIONS: dict = {}


def files(stem: str) -> list[str]:
    """The one file an export writes."""
    return [stem + EXTENSIONS[0]]
MANIFEST_KEY = b"keras_weights.manifest"
_FLOAT64_EXACT = {np.dtype(np.float32), np.dtype(np.float64), np.dtype(np.int32)}


def keys(tensors: Sequence[Tensor], stem: str = "") -> dict[str, str]:
    """The Parquet key of each tensor: the ``name`` of its row."""
    return {t.name: t.name for t in tensors}


def values_type(tensors: Sequence[Tensor]) -> np.dtype:
    """The one element type of the ``values`` column that holds every tensor exactly.

    >>> import numpy as np
    >>> t = lambda dtype: Tensor("x", "x", "x", 0, True, np.zeros(1, dtype))
    >>> values_type([t(np.float16), t(np.float32)]), values_type([t(np.float32), t(np.int8)])
    (dtype('float32'), dtype('float64'))
    """
    carriers = {dtypes.lookup(t.array.dtype).parquet_carrier for t in tensors} or {np.dtype(np.float32)}
    if len(carriers) == 1:
        return carriers.pop()
    if carriers <= _FLOAT64_EXACT:
        return np.dtype(np.float64)
    raise UnsupportedDType(
        f"one Parquet values column cannot hold {sorted(c.name for c in carriers)} values exactly",
        hint="Export the 64-bit integer tensors to npz or safetensors instead (-f npz,safetensors).",
    )


def table(tensors: Sequence[Tensor], manifest: Mapping | None = None,
          progress: Callable[[Tensor], None] | None = None) -> pa.Table:
    """The Arrow table written to the file.

    Columns are built from buffers rather than with ``pa.array``, which imports pandas whenever it is
    installed (half a second and ~170 MB of start-up for nothing).
    """
    carrier = values_type(tensors)
    flat = []  # the values in the carrier type, one array per tensor
    for tensor in tensors:
        flat.append(tensor.array.reshape(-1).astype(carrier, copy=False))  # a view when no conversion is needed
        if progress:
            progress(tensor)
    payloads = [_lost_bits(t, f) for t, f in zip(tensors, flat, strict=True)]
    columns = {
        "name": _strings([t.name for t in tensors]),
        "layer": _strings([t.layer for t in tensors]),
        "role": _strings([t.role for t in tensors]),
        "layer_index": _numbers(np.array([t.layer_index for t in tensors], np.int32)),
        "trainable": _booleans([t.trainable for t in tensors]),
        "dtype": _strings([t.dtype for t in tensors]),
        "shape": _lists([np.array(t.shape, np.int64) for t in tensors], np.int64),
        "values": _lists(flat, carrier),
        "sha256": _strings([t.sha256 for t in tensors]),
        "payload_index": _lists([np.array(index, np.int64) for index, _ in payloads], np.int64),
        "payload_bits": _lists([np.array(bits, np.uint64) for _, bits in payloads], np.uint64),
    }
    metadata = {MANIFEST_KEY: json.dumps(manifest, sort_keys=True, allow_nan=False)} if manifest else None
    return pa.Table.from_arrays(list(columns.values()), names=list(columns), metadata=metadata)


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


def _lists(parts: list[np.ndarray], dtype: np.dtype) -> pa.Array:
    """A list column: one list per array; 64-bit offsets once there are 2**31 values or more."""
    sizes = np.array([len(p) for p in parts], np.int64)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    joined = parts[0] if len(parts) == 1 else np.concatenate(parts) if parts else np.zeros(0, dtype)
    values = _numbers(joined.astype(dtype, copy=False))
    if offsets[-1] < 2**31:
        return pa.ListArray.from_arrays(_numbers(offsets.astype(np.int32)), values)
    return pa.LargeListArray.from_arrays(_numbers(offsets), values)


def _lost_bits(tensor: Tensor, carried: np.ndarray) -> tuple[list[int], list[int]]:
    """Flat positions (and exact bits) of values the carrier type changes: only ever NaN payloads."""
    if not tensor.non_finite[0]:
        return [], []
    original = tensor.array.reshape(-1)
    bits_type = np.dtype(f"<u{original.dtype.itemsize}")
    changed = np.flatnonzero(carried.astype(original.dtype).view(bits_type) != original.view(bits_type))
    return changed.tolist(), original.view(bits_type)[changed].astype(np.uint64).tolist()


def write(tensors: Sequence[Tensor], path: Path, *, manifest: Mapping | None = None,
          progress: Callable[[Tensor], None] | None = None) -> None:
    """Write ``tensors`` to ``path`` as one row each."""
    # Measured on 1M-10M float32 weights: dictionary encoding cost 5x the time and ~30x their size in
    # memory for a larger file, and snappy 7x the time for no smaller file (weights do not compress).
    # One row group per tensor bounds the writer's buffers by the largest tensor, not the model.
    pq.write_table(table(tensors, manifest, progress), path, use_dictionary=["name", "layer", "role", "dtype"],
                   compression="none", row_group_size=1)


def read(path: Path) -> dict[str, np.ndarray]:
    """Read every row back into an array of its recorded dtype and shape."""
    columns = ["name", "dtype", "shape", "payload_index", "payload_bits"]
    data = pq.read_table(path, columns=[*columns, "values"])
    values = data.column("values").combine_chunks()
    flat = values.flatten().to_numpy(zero_copy_only=False)
    offsets = values.offsets.to_numpy()
    rows = zip(*(data.column(c).to_pylist() for c in columns), offsets[:-1], offsets[1:], strict=True)
    return {name: _restored(flat[start:end], dtypes.by_name(dtype).numpy, index, bits).reshape(shape)
            for name, dtype, shape, index, bits, start, end in rows}


def _restored(carried: np.ndarray, dtype: np.dtype, index: list[int], bits: list[int]) -> np.ndarray:
    array = carried.astype(dtype)
    if index:
        array.view(f"<u{dtype.itemsize}")[index] = bits
    return array


def embedded_manifest(path: Path) -> dict | None:
    """The manifest stored in the file's key-value metadata, if any."""
    metadata = pq.read_schema(path).metadata or {}
    return json.loads(metadata[MANIFEST_KEY]) if MANIFEST_KEY in metadata else None
