"""NumPy ``.npz``: one ``.npy`` member per tensor, keyed by the tensor's name.

Written with ``zipfile`` directly rather than ``np.savez`` so that member timestamps are fixed
and two exports give identical bytes. ``np.load(path, allow_pickle=False)`` reads it.
bfloat16 and float8 have no ``.npy`` type: they are stored as their uint16/uint8 bit patterns
(the manifest records the real dtype, and :func:`converter.read` restores it).
"""
from __future__ import annotations

import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import BinaryIO

import numpy as np

from .. import atomic, choices, dtypes
from ..naming import file_safe_keys
from ..tensors import ExportInfo, Tensor, raw_bytes

EXTENSIONS = (".npz",)
OPTIONS = choices.FORMAT_OPTIONS["npz"]


def files(stem: str, **_: object) -> list[str]:
    """The one file an export writes."""
    return [stem + EXTENSIONS[0]]


_FIXED_TIME = (1980, 1, 1, 0, 0, 0)  # the zip epoch: no wall-clock time in the output


def keys(tensors: Sequence[Tensor], stem: str = "", **_: object) -> dict[str, str]:
    """The npz key of each tensor: its name, or where the name is not safe as a zip member name (``../``,
    control characters, a ``.npy`` ending numpy would strip, a very long name) a mapped one
    (``naming.file_safe_keys``); the manifest records it."""
    return file_safe_keys([t.name for t in tensors], suffix=".npy")


def stored(tensor: Tensor) -> np.ndarray:
    """The array as written to the file: bit patterns for dtypes ``.npy`` cannot describe."""
    return tensor.array.view(dtypes.lookup(tensor.array.dtype).npz_storage)


def write(tensors: Sequence[Tensor], path: Path, *, info: ExportInfo | None = None,
          progress: Callable[[Tensor], None] | None = None) -> dict[str, str]:
    """Write ``tensors`` to ``path`` (no compression, deterministic bytes); return its sha256.

    zipfile goes back to fill in each member's header, so the file is hashed after it is written.
    """
    names = keys(tensors)
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_STORED, allowZip64=True) as archive:
        for tensor in tensors:
            member = zipfile.ZipInfo(f"{names[tensor.name]}.npy", date_time=_FIXED_TIME)
            member.external_attr = 0o644 << 16
            with archive.open(member, "w", force_zip64=True) as handle:
                _write_npy(handle, stored(tensor))
            if progress:
                progress(tensor)
    return {path.name: atomic.read_sha256(path)}


WRITE_BLOCK = 1 << 20  # bytes per write: np.lib.format.write_array copies 16 MiB at a time


def _write_npy(handle: BinaryIO, array: np.ndarray) -> None:
    """The bytes ``np.save`` writes (format 1.0 header, then the C-order data), without copying the data."""
    np.lib.format.write_array_header_1_0(handle, np.lib.format.header_data_from_array_1_0(array))
    data = raw_bytes(array)
    for start in range(0, len(data), WRITE_BLOCK):
        handle.write(data[start:start + WRITE_BLOCK])


def read(path: Path) -> dict[str, np.ndarray]:
    """Read every array, as stored, without allowing pickles.

    Each member must be stored (as :func:`write` writes them) and hold the data its ``.npy`` header
    declares, checked before numpy allocates the array: a crafted file cannot make us allocate more
    than it holds.
    """
    with zipfile.ZipFile(path) as archive:
        for info in archive.infolist():
            _check_member(archive, info)
    with np.load(path, allow_pickle=False) as archive:
        return {name: archive[name] for name in archive.files}


def _check_member(archive: zipfile.ZipFile, info: zipfile.ZipInfo) -> None:
    if info.compress_type != zipfile.ZIP_STORED:
        raise ValueError(f"member {info.filename} is compressed; keras-weights stores every member")
    with archive.open(info) as member:
        version = np.lib.format.read_magic(member)
        shape, _, dtype = _header(member, version)
        needed = int(np.prod(shape, dtype=np.int64)) * dtype.itemsize
    if needed > info.file_size:
        raise ValueError(f"member {info.filename} declares {needed:,} bytes of data but holds {info.file_size:,}")


def _header(member, version: tuple[int, int]) -> tuple[tuple[int, ...], bool, np.dtype]:
    if version == (1, 0):
        return np.lib.format.read_array_header_1_0(member)
    return np.lib.format.read_array_header_2_0(member)
