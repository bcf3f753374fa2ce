"""Parse an untrusted HDF5 file once in a child process first, so a crash in the HDF5 library on a
crafted file becomes a clear error instead of taking the whole program down.

The child imports only h5py, walks every group, attribute and dataset (reading the data in bounded
slices, which runs the decompression filters too) and exits. Dying by a signal means the file crashes
the HDF5 library: it is reported as corrupt. Any ordinary error is left to the real reader to report.
"""
from __future__ import annotations

import functools
import signal
import subprocess
import sys
from pathlib import Path

from ..errors import InputInvalid

WALK = r"""
import io, sys, zipfile
import h5py

def visit(name, item):
    for key in item.attrs:
        item.attrs[key]
    if isinstance(item, h5py.Dataset) and item.shape is not None and item.size:
        rows = max(1, 2**20 // max(1, item.dtype.itemsize * (item.size // max(1, item.shape[0] if item.shape else 1))))
        for start in range(0, item.shape[0] if item.shape else 1, rows):
            item[start:start + rows] if item.shape else item[()]

path, kind = sys.argv[1], sys.argv[2]
if kind == "keras":
    with zipfile.ZipFile(path) as archive:
        source = io.BytesIO(archive.read("model.weights.h5"))
else:
    source = path
try:
    with h5py.File(source, "r") as handle:
        for key in handle.attrs:
            handle.attrs[key]
        handle.visititems(visit)
except Exception:
    sys.exit(3)  # an ordinary error: the real reader reports it with context
"""


def check(path: Path, kind: str, timeout: float = 600) -> None:
    """Raise :class:`InputInvalid` if reading ``path`` crashes or hangs the HDF5 library."""
    status = path.stat()
    _check(str(path.resolve()), status.st_size, status.st_mtime_ns, kind, timeout)


@functools.lru_cache(maxsize=256)  # the same unchanged file needs probing once per process
def _check(path_text: str, size: int, mtime: int, kind: str, timeout: float) -> None:
    path = Path(path_text)
    try:
        result = subprocess.run([sys.executable, "-I", "-c", WALK, str(path), kind], capture_output=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise InputInvalid(f"{path.name}: reading its HDF5 data did not finish in {timeout:.0f} s",
                           hint="The file is damaged or built to hang the reader; do not use it.") from None
    if result.returncode < 0:
        name = signal.Signals(-result.returncode).name
        raise InputInvalid(f"{path.name} is corrupt: the HDF5 library crashed ({name}) while reading it",
                           hint="The file is damaged or built to crash HDF5 readers; download or save it again.")
