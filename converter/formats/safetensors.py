"""safetensors: keys are the tensor names; ``__metadata__`` holds string metadata with ``format``.

The file is laid out by hand (8-byte header length, JSON header, data) rather than through
``safetensors.serialize`` for two reasons found in safetensors 0.8.0: it writes ``__metadata__`` in
hash order, so two runs differ, and it copies raw memory without checking contiguity (upstream
issue 825). Every array we pass is canonical (C-contiguous, little-endian), and the files are read
back with safetensors' own ``safe_open``. Data follows the library's own order (larger items first,
then by name) so every tensor stays aligned to its item size for zero-copy loading.
"""
from __future__ import annotations

import json
import struct
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

from .. import atomic, choices, dtypes
from .._version import __version__
from ..tensors import ExportInfo, Tensor, raw_bytes

EXTENSIONS = (".safetensors",)
OPTIONS = choices.FORMAT_OPTIONS["safetensors"]


def files(stem: str, **_: object) -> list[str]:
    """The one file an export writes."""
    return [stem + EXTENSIONS[0]]


FORMAT = "np"  # value of the conventional ``format`` metadata key


def keys(tensors: Sequence[Tensor], stem: str = "", **_: object) -> dict[str, str]:
    """The safetensors key of each tensor: its name."""
    return {t.name: t.name for t in tensors}


def metadata(info: ExportInfo | None) -> dict[str, str]:
    """The string-only ``__metadata__`` block."""
    result = {"format": FORMAT, "producer": f"keras-weights {__version__}"}
    if info:
        result["model"] = info.model.name
        result["source"] = info.model.source.file or ""
    return result


def header(tensors: Sequence[Tensor], info: ExportInfo | None = None) -> tuple[bytes, list[Tensor]]:
    """The padded JSON header and the tensors in data order."""
    ordered = sorted(tensors, key=lambda t: (-t.array.dtype.itemsize, t.name))
    entries, offset = {"__metadata__": metadata(info)}, 0
    for tensor in ordered:
        code = dtypes.lookup(tensor.array.dtype).safetensors
        entries[tensor.name] = {"dtype": code, "shape": list(tensor.shape), "data_offsets": [offset, offset + tensor.nbytes]}
        offset += tensor.nbytes
    text = json.dumps(entries, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()
    text += b" " * (-len(text) % 8)
    return struct.pack("<Q", len(text)) + text, ordered


def write(tensors: Sequence[Tensor], path: Path, *, info: ExportInfo | None = None,
          progress: Callable[[Tensor], None] | None = None) -> dict[str, str]:
    """Write ``tensors`` to ``path``, streaming each tensor's bytes; return the file's sha256."""
    head, ordered = header(tensors, info)
    output = atomic.HashedOutput(path)
    with output as handle:
        handle.write(head)
        for tensor in ordered:
            handle.write(raw_bytes(tensor.array))
            if progress:
                progress(tensor)
    return {path.name: output.sha256}


MAX_HEADER = 100 * 2**20  # bytes: the limit the safetensors format sets for its JSON header


def read(path: Path) -> dict[str, np.ndarray]:
    """Every tensor, as read-only arrays mapped from the file (nothing is copied into memory).

    The file is first opened with safetensors' own ``safe_open``, which checks the header against the
    format's rules (offsets in bounds, contiguous, no overlap); the data is then mapped with numpy through
    our dtype table (``safe_open(framework="np")`` has no float8 types, so it cannot return every tensor).
    """
    from safetensors import safe_open

    with safe_open(path, framework="np"):
        pass
    with open(path, "rb") as handle:
        length = struct.unpack("<Q", handle.read(8))[0]
        if length > MAX_HEADER:
            raise ValueError(f"header of {length:,} bytes, above the format's {MAX_HEADER:,}")
        header = json.loads(handle.read(length))
    result = {}
    for name, entry in header.items():
        if name == "__metadata__":
            continue
        dtype = dtypes.by_safetensors_code(entry["dtype"]).numpy
        start, end = entry["data_offsets"]
        shape = tuple(entry["shape"])
        result[name] = (np.memmap(path, dtype, "r", offset=8 + length + start, shape=shape) if end > start
                        else np.zeros(shape, dtype))
    return result
