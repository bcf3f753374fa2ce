"""Checks on untrusted HDF5 data, run before any reader (Keras's or ours) reads a value.

HDF5 can make a reader open other files: a dataset's raw data may live in external files, a link may
point into another file (external link) or elsewhere in this one (soft link), a virtual dataset maps
other files' data, and references point at other objects. Keras refuses every one of these when it
loads weights; we refuse them too, whichever reader runs, so that a file Keras refuses as unsafe is
never read by the direct reader instead. A dataset may also declare far more data than the file
holds (a size bomb: chunked, compressed, never written); such datasets are refused before anything
is allocated.

Only metadata is read: link types, dataset layouts and storage sizes, attribute types.
"""
from __future__ import annotations


import h5py
import numpy as np

from ..errors import InputInvalid, UnsafeInput
from .h5walk import MAX_EXPANSION, size_bomb


def check(handle: h5py.File | h5py.Group, file_name: str, allow_sparse: bool = False) -> None:
    """Raise :class:`UnsafeInput` naming the first object that would make a reader leave this file, or that
    declares far more data than it stores (unless ``allow_sparse``).

    >>> import io
    >>> buffer = io.BytesIO()
    >>> with h5py.File(buffer, "w") as f:
    ...     f["w"] = np.zeros(3)
    ...     f["alias"] = h5py.SoftLink("/w")
    >>> with h5py.File(buffer, "r") as f:
    ...     check(f, "m.h5")
    Traceback (most recent call last):
    ...
    converter.errors.UnsafeInput: refused m.h5: it holds a soft link at /alias (to /w), which Keras refuses to follow
    """
    problem = _attribute_problem(handle, "/") or \
        handle.visititems_links(lambda name, link: _link_problem(handle, name, link, allow_sparse))
    if problem:
        raise UnsafeInput(f"refused {file_name}: it holds {problem}",
                          hint="A Keras weights file never does; the file was built to read data from elsewhere "
                               "or to exhaust memory. Do not use it.")


def _link_problem(handle: h5py.Group, name: str, link: object, allow_sparse: bool) -> str | None:
    """What is wrong with one link and the object it leads to, or None (visiting goes on)."""
    path = "/" + name
    if isinstance(link, h5py.SoftLink):
        return f"a soft link at {path} (to {link.path}), which Keras refuses to follow"
    if isinstance(link, h5py.ExternalLink):
        return f"an external link at {path} (to {link.filename}:{link.path}), which Keras refuses to follow"
    if not isinstance(link, h5py.HardLink):  # what a damaged link type reads as: no reader can follow it
        raise InputInvalid(f"cannot read {path} in the HDF5 data: its link has an unknown type",
                           hint="The file is damaged; download or save it again.")
    item = handle[name]
    if problem := _attribute_problem(item, path):
        return problem
    return _dataset_problem(item, path, allow_sparse) if isinstance(item, h5py.Dataset) else None


def _attribute_problem(item: h5py.HLObject, where: str) -> str | None:
    for key in item.attrs:
        if _holds_reference(item.attrs.get_id(key).dtype):
            return f"a reference in attribute {key!r} of {where}, which Keras refuses"
    return None


def _dataset_problem(dataset: h5py.Dataset, path: str, allow_sparse: bool) -> str | None:
    if dataset.external:
        files = ", ".join(sorted({str(entry[0]) for entry in dataset.external}))
        return f"dataset {path} whose data is stored in other files ({files}), which Keras refuses to read"
    if dataset.is_virtual:
        return f"virtual dataset {path}, whose data comes from other files, which Keras refuses to read"
    if _holds_reference(dataset.dtype):
        return f"dataset {path} of references to other objects, which Keras refuses to read"
    if size_bomb(dataset) and not allow_sparse:
        declared, stored = dataset.size * dataset.dtype.itemsize, dataset.id.get_storage_size()
        return (f"dataset {path}, which declares {declared:,} bytes but stores {stored:,} "
                f"(more than {MAX_EXPANSION}x): a size bomb (--allow-sparse reads it, for a file you know is sparse)")
    return None


def _holds_reference(dtype: np.dtype) -> bool:
    """True for object and region references, also inside compound, array and variable-length types."""
    if h5py.check_dtype(ref=dtype) is not None:
        return True
    if dtype.fields:
        return any(_holds_reference(field[0]) for field in dtype.fields.values())
    if dtype.subdtype is not None:
        return _holds_reference(dtype.subdtype[0])
    base = h5py.check_dtype(vlen=dtype)
    return base not in (None, str, bytes) and _holds_reference(np.dtype(base))
