"""Ways in. :func:`read_model` identifies the input, checks it, and reads it with the chosen reader.

Every reader module has the face :class:`~converter.readers.base.Reader` describes and is registered
in :data:`READERS`; ``auto`` is not a reader but the order in which readers are tried for each kind of
input (:data:`AUTO`): Keras first, and the direct HDF5 reader when Keras cannot rebuild the model.

>>> {name: sorted(reader.KINDS) for name, reader in READERS.items()}["h5"]
['h5', 'keras']
>>> AUTO["h5"], AUTO["savedmodel"]
(('keras', 'h5'), ('savedmodel',))
"""
from __future__ import annotations

import logging
import re
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

from .. import choices
from ..errors import DamagedInput, InputInvalid, UnsafeInput, UsageError
from ..naming import encodable
from ..tensors import ModelWeights, Source
from . import archive, hdf5, inputs, probe, savedmodel
from . import keras as keras_reader
from .base import Reader, ReadOptions
from .inputs import is_model, is_savedmodel  # noqa: F401 -- part of this package's face

READERS: dict[str, Reader] = {reader.NAME: reader for reader in (keras_reader, hdf5, savedmodel)}
AUTO: dict[str, tuple[str, ...]] = {inputs.IN_MEMORY: ("keras",), "keras": ("keras", "h5"), "h5": ("keras", "h5"),
                                    inputs.SAVEDMODEL: ("savedmodel",)}
CHOICES = choices.READER_CHOICES  # declared apart for the command line; a test keeps both lists equal
_KIND_NAMES = {inputs.IN_MEMORY: "an in-memory keras.Model", inputs.SAVEDMODEL: "a SavedModel folder",
               "keras": "a .keras archive", "h5": "an HDF5 file"}
log = logging.getLogger("converter")


def read_model(source: Any, reader: str = "auto", trust_code: bool = False, allow_sparse: bool = False) -> ModelWeights:
    """Extract the weights of a ``keras.Model``, a model file or a SavedModel folder.

    ``reader`` is ``auto`` or a name in :data:`READERS`: ``keras`` loads the model (safe mode, no
    compile) and calls ``get_weights()``; ``h5`` reads the HDF5 data directly and never imports
    TensorFlow; ``savedmodel`` reads a SavedModel's checkpoint. ``auto`` tries :data:`AUTO`'s readers in
    order, saying in the log and the manifest why it moved on. ``trust_code`` turns Keras safe mode off:
    code stored in the file (Lambda layers) then runs. ``allow_sparse`` reads HDF5 datasets that declare
    far more data than the file stores (refused as size bombs otherwise).
    """
    options = ReadOptions(trust_code, allow_sparse)
    if reader not in CHOICES:
        raise UsageError(f"unknown reader {reader!r}", hint=f"Choose from: {', '.join(CHOICES)}.")
    kind, path = inputs.identify(source)
    chain = AUTO[kind] if reader == "auto" else (reader,)
    if kind not in READERS[chain[0]].KINDS:
        raise UsageError(f"the {reader} reader does not read {_KIND_NAMES[kind]}",
                         hint=f"Use [[--reader auto|reader='auto']], which reads it with: {', '.join(AUTO[kind])}.")
    if path is None:
        return _encodable(READERS[chain[0]].read(source, kind, Source(None, kind, None, chain[0]), options))
    with ThreadPoolExecutor(2) as background:  # hashlib and zlib release the GIL: both overlap the reading
        digest = background.submit(inputs.sha256, path)
        intact = background.submit(archive.check_crc, path, archive.WEIGHTS) if kind == "keras" else None
        try:
            weights = _read_checked(path, kind, chain, options)
        finally:  # a member read in place skips zipfile's CRC check; a damaged member also explains a failure
            if intact:
                intact.result()
        return _encodable(replace(weights, source=replace(weights.source, sha256=digest.result())))


def _encodable(weights: ModelWeights) -> ModelWeights:
    """The records with every name, configuration string and the file name encodable as UTF-8 (``naming.encodable``):
    a crafted model's lone surrogates reach no writer. Most models have none, and are returned as they are."""
    text = (weights.name, weights.class_name, weights.source.file, weights.source.note,
            *(t.name for t in weights.tensors), *(t.layer for t in weights.tensors), *(t.role for t in weights.tensors))
    if all(s is None or encodable(s) is s for s in text) and encodable(weights.config) == weights.config \
            and all(encodable(layer.config) == layer.config and encodable(layer.name) is layer.name
                    for layer in weights.layers):
        return weights
    layers = tuple(replace(layer, name=encodable(layer.name), class_name=encodable(layer.class_name),
                           config=encodable(layer.config), tensors=encodable(layer.tensors)) for layer in weights.layers)
    tensors = tuple(replace(t, name=encodable(t.name), layer=encodable(t.layer), role=encodable(t.role),
                            keras_name=encodable(t.keras_name)) for t in weights.tensors)
    source = replace(weights.source, file=encodable(weights.source.file), note=encodable(weights.source.note))
    return replace(weights, name=encodable(weights.name), class_name=encodable(weights.class_name), layers=layers,
                   tensors=tensors, source=source, config=encodable(weights.config))


def open_keras_model(source: Any, trust_code: bool = False, allow_sparse: bool = False) -> Any:
    """A ``keras.Model`` loaded from a model file (safe mode, not compiled) through the same checks as
    :func:`read_model` (the path, the archive's bounds, the HDF5 probe in a child, what Keras refuses as unsafe):
    the one way every command that needs the model itself (``load``, ``verify --predict``) opens it. An in-memory
    model is returned as it is.

    >>> open_keras_model("fixtures/seed_mlp.keras").name
    'seed_mlp'
    """
    if is_model(source):
        return source
    kind, path = inputs.identify(source)
    if kind not in keras_reader.KINDS:
        raise UsageError(f"Keras 3 cannot load {_KIND_NAMES[kind]} as a model: {path}",
                         hint="Pass the .keras or .h5 file the model was saved as.")
    _check(path, kind, ReadOptions(trust_code, allow_sparse), keras_reader)
    return keras_reader.load(path, kind, trust_code)


def _check(path: Path, kind: str, options: ReadOptions, first: Reader) -> None:
    """Probe and check HDF5 data while the first reader prepares (imports what it needs)."""
    if kind in inputs.HOLDS_HDF5:
        with probe.started(path, kind) as verdict:  # a crash or hang of the HDF5 library happens there
            first.prepare()  # importing Keras takes ~4 s on one core while the probe runs on another
            verdict()
        hdf5.check_safe(path, kind, options.allow_sparse)  # what Keras refuses as unsafe is refused for every reader, never a fallback
    else:
        first.prepare()


def _read_checked(path: Path, kind: str, chain: tuple[str, ...], options: ReadOptions) -> ModelWeights:
    """Probe and check the input, then read along ``chain``."""
    _check(path, kind, options, READERS[chain[0]])
    base = Source(path.name, kind, None, chain[0], **(hdf5.provenance(path, kind) if kind in inputs.HOLDS_HDF5 else {}))
    return _read_along(path, kind, chain, base, options)


def _read_along(path: Path, kind: str, chain: tuple[str, ...], base: Source, options: ReadOptions) -> ModelWeights:
    """The first reader's result; when it cannot read the input (not damage), the next one's, with a note (and
    one when the file's name does not say what it holds)."""
    notes = [note] if (note := inputs.misnamed(path, kind)) else []
    for position, name in enumerate(chain):
        try:
            weights = READERS[name].read(path, kind, replace(base, reader=name), options)
        except (InputInvalid, UnsafeInput) as error:
            if position == len(chain) - 1 or isinstance(error, DamagedInput):
                raise
            why = f"{READERS[name].DESCRIPTION} could not read {path.name} ({_first_sentence(str(error))})"
            notes.append(f"{why}; read with {READERS[chain[position + 1]].DESCRIPTION} instead")
            continue
        if notes:  # one line of information: which reader ran, why, and what the file made it infer
            log.warning("%s", "; ".join(filter(None, [notes[-1], weights.source.note])))
        note = "; ".join(filter(None, [*notes, weights.source.note])) or None
        return replace(weights, source=replace(weights.source, note=note))
    raise AssertionError("unreachable: the last reader's error is raised")


def _first_sentence(text: str) -> str:
    """The reason in an error message, without the file name before it or a Python exception name.

    >>> _first_sentence("Keras could not rebuild the model in m.h5: ValueError: No model config found. More.")
    'No model config found'
    """
    reason = re.sub(r"^\w+(Error|Exception): ", "", text.split(": ", 1)[-1])
    return reason.split(". ")[0].rstrip(".")[:200]
