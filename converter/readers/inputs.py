"""What a model argument is, checked before any reader touches it: an in-memory model, a SavedModel folder,
or a local regular file whose signature (not its extension) says ``keras`` (zip) or ``h5``: a file is read as what
it holds, whatever its name (:func:`misnamed`).

>>> sniff(b"\\x89HDF\\r\\n\\x1a\\n...."), sniff(b"PK\\x03\\x04...."), sniff(b"GIF89a")
('h5', 'keras', None)
"""
from __future__ import annotations

import hashlib
import os
import shutil
from pathlib import Path
from typing import Any

from ..atomic import read_sha256
from ..errors import InputInvalid, InputNotFound, UsageError
from . import archive

IN_MEMORY, SAVEDMODEL = "keras.Model", "savedmodel"
HOLDS_HDF5 = frozenset({"keras", "h5"})  # kinds whose weights are HDF5 data (a .keras archive's model.weights.h5)
_SIGNATURES = {b"\x89HDF\r\n\x1a\n": "h5", b"PK\x03\x04": "keras"}
_EXTENSIONS = {"h5": (".h5", ".hdf5"), "keras": (".keras",)}
_NAMES = {"h5": "HDF5 file", "keras": ".keras archive"}
MODEL_SUFFIXES = (".weights.h5", ".keras", ".h5", ".hdf5")  # what a model file's name ends with, longest first


def sniff(head: bytes) -> str | None:
    """The file kind from its first bytes: ``h5``, ``keras`` (zip) or None."""
    return next((kind for magic, kind in _SIGNATURES.items() if head.startswith(magic)), None)


def is_model(source: Any) -> bool:
    """True for an in-memory Keras model (checked without importing Keras)."""
    return hasattr(source, "layers") and hasattr(source, "get_weights") and not isinstance(source, (str, os.PathLike))


def is_savedmodel(path: Path) -> bool:
    """A TensorFlow SavedModel folder (it holds ``saved_model.pb``)."""
    return path.is_dir() and (path / "saved_model.pb").is_file()


def identify(source: Any) -> tuple[str, Path | None]:
    """``(kind, path)`` of a model argument: kind is ``keras.Model``, ``savedmodel``, ``keras`` or ``h5``.

    Refuses remote paths, missing paths, folders that are not SavedModels, FIFOs and devices (never
    opened), files whose signature is neither HDF5 nor zip, and archives that fail ``archive.check``.
    """
    if is_model(source):
        return IN_MEMORY, None
    path = _local_path(source)
    if is_savedmodel(path):
        return SAVEDMODEL, path
    if path.is_dir():
        raise InputInvalid(f"{path} is a folder, not a model file or SavedModel",
                           hint="Pass a .keras or .h5 file, or a SavedModel folder (with saved_model.pb).")
    if not path.is_file():
        raise InputInvalid(f"{path} is not a regular file", hint="Pass a .keras or .h5 file.")
    kind = _file_kind(path)
    if kind == "keras":
        archive.check(path)
    return kind, path


def _local_path(source: Any) -> Path:
    if not isinstance(source, (str, os.PathLike)):
        raise UsageError(f"expected a keras.Model or a path. Received: {type(source).__name__}")
    text = os.fspath(source)
    if "://" in text:
        raise UsageError(f"remote paths are not read: {text}",
                         hint="Download the file first; keras-weights never uses the network.")
    if not Path(text).exists():
        raise InputNotFound(f"no such file: {text}")
    return Path(text)


def _file_kind(path: Path) -> str:
    with open(path, "rb") as handle:
        head = handle.read(8)
    kind = sniff(head)
    if kind is None:
        what = "empty" if not head else "neither an HDF5 file nor a .keras (zip) archive"
        raise InputInvalid(f"{path.name} is {what}", hint="Pass a model saved by Keras (model.save).")
    return kind


def misnamed(path: Path, kind: str) -> str | None:
    """What to say when a file's name does not match what it holds (HDF5 saved as ``model.keras``, as tf.keras 2.x
    did when asked to; a .keras archive named ``.h5``): it is read as what it is, and the manifest's note says so.

    >>> misnamed(Path("transformer.keras"), "h5"), misnamed(Path("m.h5"), "h5")
    ('transformer.keras holds HDF5 data, not a .keras (zip) archive: read as the HDF5 file it is', None)
    """
    if kind not in _EXTENSIONS or path.suffix.lower() in _EXTENSIONS[kind]:
        return None
    what = {"h5": "HDF5 data, not a .keras (zip) archive", "keras": "a .keras (zip) archive, not HDF5 data"}[kind]
    return f"{path.name} holds {what}: read as the {_NAMES[kind]} it is"


def named_for_keras(path: Path, kind: str, folder: Path) -> Path:
    """``path`` under a name whose extension matches its content, for Keras, which picks its loader by the name:
    the path itself, or a link (else a copy) in ``folder``."""
    if misnamed(path, kind) is None:
        return path
    target = folder / (path.stem + _EXTENSIONS[kind][0])
    try:
        target.symlink_to(path.resolve())
    except OSError:  # no symbolic links here (Windows without the privilege)
        shutil.copyfile(path, target)
    return target


def sha256(path: Path) -> str:
    """sha256 of a file, or of a folder: each file's relative path and sha256, one line each, sorted."""
    if not path.is_dir():
        return read_sha256(path)
    lines = sorted(f"{p.relative_to(path).as_posix()} {read_sha256(p)}\n" for p in path.rglob("*") if p.is_file())
    return hashlib.sha256("".join(lines).encode()).hexdigest()
