"""Parse an untrusted HDF5 file once in a child process first, so a crash in the HDF5 library on a
crafted file becomes a clear error instead of taking the whole program down.

The child imports only h5py, walks every group, attribute and dataset, reads the data of chunked
datasets (in bounded slices, so the chunk index and decompression code run) and exits. Contiguous
data, what Keras writes, needs no parsing to read, so the probe leaves it to the real reader. Dying by
a signal means the file crashes the HDF5 library: it is reported as corrupt. Any ordinary error is
left to the real reader to report.
"""
from __future__ import annotations

import signal
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

from ..errors import InputInvalid

WALK = r"""
import importlib.util, sys
import h5py

def visit(name, item):
    for key in item.attrs:
        item.attrs[key]
    if isinstance(item, h5py.Dataset) and item.id.get_create_plist().get_layout() == h5py.h5d.CHUNKED and item.size:
        rows = max(1, 2**20 // max(1, item.dtype.itemsize * (item.size // item.shape[0])))
        for start in range(0, item.shape[0], rows):
            item[start:start + rows]

path, kind, window = sys.argv[1], sys.argv[2], sys.argv[3]
source = path
if kind == "keras":  # the readers' own window.open_member, loaded by path: the child imports nothing of ours
    spec = importlib.util.spec_from_file_location("window", window)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    source = module.open_member(path, "model.weights.h5")
try:
    with h5py.File(source, "r") as handle:
        for key in handle.attrs:
            handle.attrs[key]
        handle.visititems(visit)
except Exception:
    sys.exit(3)  # an ordinary error: the real reader reports it with context
"""


PASSED: set[tuple[str, int, int, str]] = set()  # files already probed in this process, unchanged since


def start(path: Path, kind: str, timeout: float = 600) -> Callable[[], None]:
    """Start probing ``path`` in a child process; the returned function waits for the verdict.

    It raises :class:`InputInvalid` if reading the file crashed or hung the HDF5 library. Starting
    early lets the probe run on another core while the caller does other work (importing Keras).
    """
    status = path.stat()
    key = (str(path.resolve()), status.st_size, status.st_mtime_ns, kind)
    if key in PASSED:
        return lambda: None
    child = subprocess.Popen([sys.executable, "-I", "-c", WALK, key[0], kind, str(Path(__file__).with_name("window.py"))],
                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)

    def verdict() -> None:
        try:
            code = child.wait(timeout)
        except subprocess.TimeoutExpired:
            child.kill()
            child.wait()
            raise InputInvalid(f"{path.name}: reading its HDF5 data did not finish in {timeout:.0f} s",
                               hint="The file is damaged or built to hang the reader; do not use it.") from None
        if code < 0:
            name = signal.Signals(-code).name
            raise InputInvalid(f"{path.name} is corrupt: the HDF5 library crashed ({name}) while reading it",
                               hint="The file is damaged or built to crash HDF5 readers; download or save it again.")
        PASSED.add(key)

    return verdict


def check(path: Path, kind: str, timeout: float = 600) -> None:
    """Raise :class:`InputInvalid` if reading ``path`` crashes or hangs the HDF5 library."""
    start(path, kind, timeout)()
