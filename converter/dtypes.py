"""The one dtype table. Every per-format type (safetensors code, npz storage, Parquet carrier) comes from it.

>>> lookup(np.dtype(">f4")).safetensors
'F32'
>>> by_name("bfloat16").npz_storage
dtype('uint16')
>>> by_name("float16").parquet_carrier
dtype('float32')
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from .errors import UnsupportedDType


@dataclass(frozen=True)
class DType:
    """One supported element type and how each format stores it."""

    name: str                   # numpy's name, also written in the manifest
    numpy: np.dtype             # the dtype get_weights() returns
    safetensors: str            # the safetensors header code
    npz_storage: np.dtype       # .npy has no bfloat16/float8: those are stored as their bit patterns
    parquet_carrier: np.dtype   # smallest Arrow-native type that holds every value exactly
    c_type: str                 # the C element type; 16/8-bit floats are unsigned bit patterns

    @property
    def c_storage(self) -> np.dtype:
        """The numpy dtype matching ``c_type`` (what C arrays hold)."""
        return np.dtype(C_TYPES[self.c_type])


C_TYPES = {"float": np.float32, "double": np.float64, "int8_t": np.int8, "int16_t": np.int16, "int32_t": np.int32,
           "int64_t": np.int64, "uint8_t": np.uint8, "uint16_t": np.uint16, "uint32_t": np.uint32, "uint64_t": np.uint64}


def _entry(numpy_type, safetensors: str, c_type: str, storage=None, carrier=None) -> DType:
    dtype = np.dtype(numpy_type)
    return DType(dtype.name, dtype, safetensors, np.dtype(storage or dtype), np.dtype(carrier or dtype), c_type)


# (numpy type or ml_dtypes name, safetensors code, C type, npz storage, Parquet carrier), in the table's order,
# which the C header's dtype codes follow. bfloat16 and float8 are ml_dtypes types: ml_dtypes (0.5-0.9 s to import)
# is imported the first time one of them is asked for, not at start-up.
_ROWS = (
    (np.float64, "F64", "double", None, None),
    (np.float32, "F32", "float", None, None),
    (np.float16, "F16", "uint16_t", None, np.float32),
    ("bfloat16", "BF16", "uint16_t", np.uint16, np.float32),
    ("float8_e4m3fn", "F8_E4M3", "uint8_t", np.uint8, np.float32),
    ("float8_e5m2", "F8_E5M2", "uint8_t", np.uint8, np.float32),
    (np.int64, "I64", "int64_t", None, None),
    (np.int32, "I32", "int32_t", None, None),
    (np.int16, "I16", "int16_t", None, np.int32),
    (np.int8, "I8", "int8_t", None, np.int32),
    (np.uint64, "U64", "uint64_t", None, None),
    (np.uint32, "U32", "uint32_t", None, np.int64),
    (np.uint16, "U16", "uint16_t", None, np.int32),
    (np.uint8, "U8", "uint8_t", None, np.int32),
    (np.bool_, "BOOL", "uint8_t", None, None),
)


def _name(kind) -> str:
    """A row's dtype name, without importing ml_dtypes for the rows that name their type."""
    return kind if isinstance(kind, str) else np.dtype(kind).name


_ML_DTYPES = {row[0]: row[1] for row in _ROWS if isinstance(row[0], str)}  # name -> safetensors code
_BY_NAME = {_name(kind): _entry(kind, code, c_type, storage, carrier)
            for kind, code, c_type, storage, carrier in _ROWS if kind not in _ML_DTYPES}
_BY_SAFETENSORS = {d.safetensors: d for d in _BY_NAME.values()}
SUPPORTED = ", ".join(_name(row[0]) for row in _ROWS)


def _with_ml_dtypes() -> None:
    """Add the ml_dtypes entries (importing ml_dtypes) once."""
    if next(iter(_ML_DTYPES)) in _BY_NAME:
        return
    import ml_dtypes

    for kind, code, c_type, storage, carrier in _ROWS:
        if isinstance(kind, str):
            entry = _entry(getattr(ml_dtypes, kind), code, c_type, storage, carrier)
            _BY_NAME[entry.name], _BY_SAFETENSORS[code] = entry, entry


def table() -> tuple[DType, ...]:
    """Every supported dtype, in the order of the C header's dtype codes (imports ml_dtypes)."""
    _with_ml_dtypes()
    return tuple(_BY_NAME[_name(row[0])] for row in _ROWS)


def __getattr__(name: str):
    if name == "TABLE":  # the whole table, ml_dtypes included, on first use
        return table()
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


def lookup(dtype: np.dtype) -> DType:
    """The table entry for a numpy dtype, whatever its byte order."""
    return by_name(np.dtype(dtype).name)


def by_name(name: str) -> DType:
    """The table entry for a dtype name as written in the manifest."""
    if name in _ML_DTYPES:
        _with_ml_dtypes()
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnsupportedDType(
            f"dtype {name!r} is not supported. Received: dtype={name}",
            hint=f"Supported dtypes: {SUPPORTED}.",
        ) from None


def by_safetensors_code(code: str) -> DType:
    """The table entry for a safetensors header code such as ``F32``."""
    if code in _ML_DTYPES.values():
        _with_ml_dtypes()
    try:
        return _BY_SAFETENSORS[code]
    except KeyError:
        raise UnsupportedDType(f"safetensors dtype {code!r} is not supported", hint=f"Supported: {SUPPORTED}.") from None


def little_endian(dtype: np.dtype) -> np.dtype:
    """The same dtype in little-endian byte order (no-op for one-byte and ml_dtypes types)."""
    return dtype.newbyteorder("<") if dtype.byteorder == ">" else dtype


def restore(array: np.ndarray, dtype_name: str | None) -> np.ndarray:
    """``array`` viewed as the recorded dtype when a format stored it as unsigned bit patterns (bfloat16 and
    float8 in npz); otherwise unchanged.

    >>> restore(np.array([0x3F80], np.uint16), "bfloat16").astype(np.float32)
    array([1.], dtype=float32)
    """
    if dtype_name is None or array.dtype.name == dtype_name:
        return array
    wanted = by_name(dtype_name).numpy
    bit_pattern = array.dtype.kind == "u" and array.dtype.itemsize == wanted.itemsize
    return array.view(wanted) if bit_pattern else array
