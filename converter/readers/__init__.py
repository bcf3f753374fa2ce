"""Ways in. :func:`read_model` checks the input once, detects its kind by content, and picks a reader.

>>> sniff(b"\\x89HDF\\r\\n\\x1a\\n....")
'h5'
>>> sniff(b"PK\\x03\\x04....")
'keras'
"""
from __future__ import annotations

import gc
import hashlib
import logging
import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import memory
from ..atomic import read_sha256 as file_sha256
from ..errors import DamagedInput, InputInvalid, InputNotFound, UnsafeInput, UsageError
from ..tensors import ModelWeights, Source
from . import archive, hdf5, probe, savedmodel
from . import keras as keras_reader

_SIGNATURES = {b"\x89HDF\r\n\x1a\n": "h5", b"PK\x03\x04": "keras"}


def sniff(head: bytes) -> str | None:
    """The file kind from its first bytes: ``h5``, ``keras`` (zip) or None."""
    return next((kind for magic, kind in _SIGNATURES.items() if head.startswith(magic)), None)


def is_model(source: Any) -> bool:
    """True for an in-memory Keras model (checked without importing Keras)."""
    return hasattr(source, "layers") and hasattr(source, "get_weights") and not isinstance(source, (str, os.PathLike))


READERS = ("auto", "keras", "h5")
RELEASE_MODEL_ABOVE = 16 * 2**20  # weight bytes; a full collection costs ~0.15 s once TensorFlow is loaded
log = logging.getLogger("converter")


def read_model(source: Any, reader: str = "auto", trust_code: bool = False) -> ModelWeights:
    """Extract the weights of a ``keras.Model`` or of a model file with the chosen reader.

    ``keras`` loads the model (safe mode, no compile) and calls ``get_weights()``; ``h5`` reads the
    HDF5 data directly and never imports TensorFlow; ``auto`` uses ``keras`` when the model loads
    and falls back to ``h5`` when it cannot, saying why in the log and in the manifest.
    ``trust_code`` turns Keras safe mode off: code stored in the file (Lambda layers) then runs.
    """
    if reader not in READERS:
        raise UsageError(f"unknown reader {reader!r}. Received: reader={reader}", hint=f"Choose from: {', '.join(READERS)}.")
    if is_model(source):
        if reader == "h5":
            raise UsageError("the h5 reader reads files; an in-memory model is read with reader='keras' or 'auto'")
        return keras_reader.read(source, Source(None, "keras.Model", None, keras_reader.NAME))
    path = input_path(source)
    if savedmodel.is_savedmodel(path):
        if reader == "h5":
            raise UsageError(f"{path.name} is a SavedModel folder: the h5 reader reads HDF5 files",
                             hint="Use --reader auto (a SavedModel is read from its TensorFlow checkpoint).")
        return savedmodel.read(path, Source(path.name, "savedmodel", folder_sha256(path), savedmodel.NAME))
    kind = file_kind(path)
    with ThreadPoolExecutor(2) as background:  # hashlib and zlib release the GIL: both overlap the reading
        digest = background.submit(file_sha256, path)
        intact = background.submit(archive.check_crc, path, archive.WEIGHTS) if kind == "keras" else None
        try:
            weights = _read_file(path, kind, reader, trust_code)
        finally:  # the weights were read in place, not through zipfile, which checks the CRC; a damaged
            if intact:  # member also explains a failure to read it better than what failed
                intact.result()
        return replace(weights, source=replace(weights.source, sha256=digest.result()))


def _read_file(path: Path, kind: str, reader: str, trust_code: bool) -> ModelWeights:
    probed = probe.start(path, kind)  # a crash of the HDF5 library on a crafted file happens in a child, not here
    if reader != "h5":
        keras_reader.import_keras()  # ~4 s on one core while the probe runs on another
    probed()
    hdf5.check_safe(path, kind)  # what Keras refuses as unsafe is refused for every reader, never a fallback
    base = Source(path.name, kind, None, keras_reader.NAME, **hdf5.provenance(path, kind))
    if reader == "h5":
        return hdf5.read(path, kind, replace(base, reader=hdf5.NAME))
    try:
        model = keras_reader.load(path, kind, trust_code)
    except (InputInvalid, UnsafeInput) as error:
        if reader == "keras" or isinstance(error, DamagedInput):
            raise
        why = f"Keras could not load the model ({error.code}: {_first_sentence(str(error))})"
        log.warning("%s; reading the weights directly from the HDF5 data instead", why)
        weights = hdf5.read(path, kind, replace(base, reader=hdf5.NAME))
        note = f"{why}; weights read directly from the HDF5 data"
        return replace(weights, source=replace(weights.source, note="; ".join(filter(None, [note, weights.source.note]))))
    weights = keras_reader.read(model, base)
    del model
    if sum(t.nbytes for t in weights.tensors) > RELEASE_MODEL_ABOVE:
        gc.collect()  # a Keras model is a web of reference cycles: free its variables before any writer runs
        memory.release_free_memory()  # they were freed in TensorFlow's threads' arenas, which writers do not use
    return weights


def _first_sentence(text: str) -> str:
    return text.split(": ", 1)[-1].split(". ")[0][:200]


def input_path(source: Any) -> Path:
    """Validate a model path argument: a local, existing regular file."""
    if not isinstance(source, (str, os.PathLike)):
        raise UsageError(f"expected a keras.Model or a path. Received: {type(source).__name__}")
    text = os.fspath(source)
    if "://" in text:
        raise UsageError(f"remote paths are not read: {text}",
                         hint="Download the file first; keras-weights never uses the network.")
    path = Path(text)
    if not path.exists():
        raise InputNotFound(f"no such file: {text}")
    if path.is_dir():
        if (path / "saved_model.pb").exists():
            return path
        raise InputInvalid(f"{text} is a folder, not a model file or SavedModel",
                           hint="Pass a .keras or .h5 file, or a SavedModel folder (with saved_model.pb).")
    if not path.is_file():
        raise InputInvalid(f"{text} is not a regular file", hint="Pass a .keras or .h5 file.")
    return path


def file_kind(path: Path) -> str:
    """``keras`` or ``h5``, decided by the file's signature, not its extension."""
    with open(path, "rb") as handle:
        head = handle.read(8)
    kind = sniff(head)
    if kind is None:
        what = "empty" if not head else "neither an HDF5 file nor a .keras (zip) archive"
        raise InputInvalid(f"{path.name} is {what}", hint="Pass a model saved by Keras (model.save).")
    expected = {"h5": (".h5", ".hdf5"), "keras": (".keras",)}[kind]
    if path.suffix.lower() not in expected:
        raise InputInvalid(
            f"{path.name} holds {kind} data but its extension is {path.suffix or 'missing'}",
            hint=f"Rename it to end in {expected[0]} so Keras reads it as such.",
        )
    if kind == "keras":
        archive.check(path)
    return kind


def folder_sha256(folder: Path) -> str:
    """sha256 over a folder's files: each file's relative path and sha256, one line each, sorted."""
    lines = sorted(f"{p.relative_to(folder).as_posix()} {file_sha256(p)}\n" for p in folder.rglob("*") if p.is_file())
    return hashlib.sha256("".join(lines).encode()).hexdigest()

