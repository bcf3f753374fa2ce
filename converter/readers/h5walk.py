"""The HDF5 probe's child program: parse every object of an HDF5 file once, in a process of its own.

Run as ``python -I h5walk.py --serve`` by :mod:`converter.readers.probe`: it imports h5py once, then
for each request (a JSON line ``[FILE, KIND]``) forks a fresh child that parses the file, and answers
with the child's exit status (a line: the code, or minus the signal that killed it). ``python -I
h5walk.py FILE KIND`` parses one file in the process itself. It needs only the standard library and h5py (``window.py`` beside it is loaded by path for ``.keras`` archives), walks every group,
attribute and dataset, and reads the data of chunked datasets in slices of about 1 MiB, so that the chunk
index and the filters (decompression code) run. Contiguous data, what Keras writes, needs no parsing to
be read, so it is left to the real reader. Exit status: 0 parsed, 3 an ordinary error (left to the real
reader to report with context); death by a signal means the file crashes the HDF5 library.
"""
from __future__ import annotations

import functools
import importlib.util
import json
import os
import sys
from collections.abc import Callable
from pathlib import Path

import h5py

SLICE_BYTES = 2**20
SPARSE_FLOOR = 64 * 2**20   # bytes a dataset may declare whatever it stores (fill values, small sparse tensors)
MAX_EXPANSION = 100         # above the floor: declared bytes per stored byte (weights barely compress)


def walk(handle: h5py.File, on_read: Callable[[str, int], None] | None = None) -> None:
    """Touch every attribute and object of ``handle``, and read chunked data slice by slice."""
    def visit(name: str, item: h5py.HLObject) -> None:
        for key in item.attrs:
            item.attrs[key]
        if isinstance(item, h5py.Dataset) and item.id.get_create_plist().get_layout() == h5py.h5d.CHUNKED and item.size \
                and not size_bomb(item):  # h5check refuses it; decompressing it could take forever
            rows = max(1, SLICE_BYTES // max(1, item.dtype.itemsize * (item.size // item.shape[0])))
            for start in range(0, item.shape[0], rows):
                item[start:start + rows]
                if on_read:
                    on_read(name, start)

    for key in handle.attrs:
        handle.attrs[key]
    handle.visititems(visit)


def size_bomb(dataset: h5py.Dataset) -> bool:
    """Whether a dataset declares far more bytes than the file stores for it (the one rule: h5check uses it too)."""
    declared = dataset.size * dataset.dtype.itemsize
    return declared > SPARSE_FLOOR and declared > MAX_EXPANSION * dataset.id.get_storage_size()


@functools.cache
def _window():
    """``window.py`` (and zipfile, which it imports), loaded by path once: the serving worker loads it before
    its first fork, so no child pays the ~5 ms."""
    spec = importlib.util.spec_from_file_location("window", Path(__file__).with_name("window.py"))
    window = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(window)
    return window


def _open_source(path: str, kind: str):
    return _window().open_member(path, "model.weights.h5") if kind == "keras" else path


def main(argv: list[str]) -> int:
    path, kind = argv
    try:
        with h5py.File(_open_source(path, kind), "r") as handle:
            walk(handle)
    except Exception:
        return 3
    return 0


def serve(requests, replies) -> None:
    """Answer each request with the exit status of a child forked to parse it (single-threaded, so fork is safe).

    A crash or a hang stays in the child; the parent that sent the request kills this whole process group
    when it stops waiting. The loop ends when the requests end (the parent closed the pipe or died).
    """
    _window()
    for line in requests:
        path, kind = json.loads(line)
        child = os.fork()
        if child == 0:
            code = 3
            try:
                code = main([path, kind])
            finally:  # never back into the loop, whatever happened
                os._exit(code)
        _, status = os.waitpid(child, 0)
        replies.write(f"{os.waitstatus_to_exitcode(status)}\n")
        replies.flush()


if __name__ == "__main__":
    if sys.argv[1:] == ["--serve"]:
        serve(sys.stdin, sys.stdout)
    else:
        sys.exit(main(sys.argv[1:]))
