"""The one dtype table. Every per-format type (safetensors code, npz storage, Parquet carrier) comes from it.

>>> lookup(np.dtype(">f4")).safetensors
'F32'
>>> lookup(np.dtype("bfloat16")).npz_storage
dtype('uint16')
>>> by_name("float16").parquet_carrier
dtype('float32')
"""
from __future__ import annotations

from dataclasses import dataclass

import ml_dtypes
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


TABLE: tuple[DType, ...] = (
    _entry(np.float64, "F64", "double"),
    _entry(np.float32, "F32", "float"),
    _entry(np.float16, "F16", "uint16_t", carrier=np.float32),
    _entry(ml_dtypes.bfloat16, "BF16", "uint16_t", storage=np.uint16, carrier=np.float32),
    _entry(ml_dtypes.float8_e4m3fn, "F8_E4M3", "uint8_t", storage=np.uint8, carrier=np.float32),
    _entry(ml_dtypes.float8_e5m2, "F8_E5M2", "uint8_t", storage=np.uint8, carrier=np.float32),
    _entry(np.int64, "I64", "int64_t"),
    _entry(np.int32, "I32", "int32_t"),
    _entry(np.int16, "I16", "int16_t", carrier=np.int32),
    _entry(np.int8, "I8", "int8_t", carrier=np.int32),
    _entry(np.uint64, "U64", "uint64_t"),
    _entry(np.uint32, "U32", "uint32_t", carrier=np.int64),
    _entry(np.uint16, "U16", "uint16_t", carrier=np.int32),
    _entry(np.uint8, "U8", "uint8_t", carrier=np.int32),
    _entry(np.bool_, "BOOL", "uint8_t"),
)
_BY_NAME = {d.name: d for d in TABLE}
_BY_SAFETENSORS = {d.safetensors: d for d in TABLE}
SUPPORTED = ", ".join(_BY_NAME)


def lookup(dtype: np.dtype) -> DType:
    """The table entry for a numpy dtype, whatever its byte order."""
    return by_name(np.dtype(dtype).name)


def by_name(name: str) -> DType:
    """The table entry for a dtype name as written in the manifest."""
    try:
        return _BY_NAME[name]
    except KeyError:
        raise UnsupportedDType(
            f"dtype {name!r} is not supported. Received: dtype={name}",
            hint=f"Supported dtypes: {SUPPORTED}.",
        ) from None


def by_safetensors_code(code: str) -> DType:
    """The table entry for a safetensors header code such as ``F32``."""
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
