"""``verify``: every file of an export read back with its own reader and checked against the manifest, and,
given the model, the manifest against the model. A foreign folder is read, never trusted (docs/safety.md).
"""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic, dtypes, layouts, manifest as manifests, quantize, readers
from . import formats as registry
from .errors import ConverterError, VerificationFailed
from .exports import declared_overflow
from .predict import predict_problems
from .tensors import canonical, sha256_of


@dataclass
class FileCheck:
    """What ``verify`` found for one file."""

    path: str
    format: str
    tensors: int = 0
    problems: list[str] = field(default_factory=list)
    compiled_with: str | None = None  # the compiler that built and checked this format's files
    detail: str | None = None         # what was checked, where no tensor count says it (verify --predict)
    output_spread: float | None = None  # verify --predict: the outputs' largest range across samples (0: constant)

    @property
    def ok(self) -> bool:
        return not self.problems


@dataclass
class Report:
    """The result of ``verify``: one :class:`FileCheck` per file the manifest lists."""

    folder: str
    files: list[FileCheck]

    @property
    def ok(self) -> bool:
        return bool(self.files) and all(f.ok for f in self.files)

    def raise_if_failed(self) -> None:
        """Raise :class:`VerificationFailed` naming the files with problems, if any.

        >>> verify("fixtures/golden").raise_if_failed()
        """
        failed = [f"{f.path}: {'; '.join(f.problems[:3])}" for f in self.files if not f.ok]
        if not self.ok:
            raise VerificationFailed(f"{self.folder}: " + (" | ".join(failed[:5]) or "no files to verify"))


def verify(folder: str | os.PathLike, *, compile: bool = False, cc: str = "cc", cflags: Sequence[str] = (),
           model: Any = None, reader: str = "auto", predict: Any = None) -> Report:
    """Re-read every file a manifest lists and check file and tensor checksums, shapes and dtypes.

    With ``compile=True``, formats that can be compiled (C) are also built with the compiler ``cc`` (and
    ``cflags``): with the host's compiler a program dumps every array, with a cross compiler each array's
    section is taken out of the objects; either way the bytes are checked. A missing or unusable compiler
    raises ``CompilerUnusable`` (a usage error), never a verification failure. With ``model`` (the file or
    ``keras.Model`` that was exported), the manifest is also checked against it: every tensor the model holds, no more, the same
    names and bytes (after the export's layout and quantization, recomputed from the model with their error figures).
    With ``predict`` (the model file or ``keras.Model``), the forward pass of a ``--c-inference`` export is built
    with ``cc`` and run on seeded inputs against ``model.predict``.

    >>> verify("fixtures/golden", model="fixtures/seed_mlp.keras").ok
    True
    """
    folder = Path(folder)
    manifest = manifests.load(folder)
    checks, held = [], {}
    for name in dict.fromkeys(entry["format"] for entry in manifest["files"]):
        entries = [entry for entry in manifest["files"] if entry["format"] == name]
        found, held[name] = _check_format(folder, name, entries, manifest, compile, cc, cflags)
        checks += found
    checks += _unlisted_outputs(folder, manifest)
    if any("quantization" in t for t in manifest["tensors"]):
        checks.append(_check_quantization(manifest))
    if model is not None:
        checks.append(_check_source(model, reader, manifest))
    if predict is not None and all(check.ok for check in checks):
        label = os.fspath(predict) if isinstance(predict, (str, os.PathLike)) else f"keras.Model {predict.name!r}"
        problems, detail, spread = predict_problems(manifest, held.get("c", {}), predict, cc)
        checks.append(FileCheck(label, "predict", problems=problems, detail=detail, output_spread=spread))
    return Report(str(folder), checks)


def _unlisted_outputs(folder: Path, manifest: dict) -> list[FileCheck]:
    """Files beside the manifest that look like export outputs but that it does not list: left by an earlier
    export, they would be picked up by a build that globs ``*.c`` and ship other weights."""
    listed = {entry["path"] for entry in manifest["files"]}
    found = sorted(p.name for p in folder.iterdir() if p.is_file() and p.suffix.lower() in registry.EXTENSIONS
                   and p.name not in listed and _written_by_us(p))
    return [FileCheck(name, registry.EXTENSIONS[Path(name).suffix.lower()],
                      problems=["looks like an export output but manifest.json does not list it (left by an earlier "
                                "export? remove it, or export again with --force)"]) for name in found]


SIGNATURES = (b"written by keras-weights", b'"producer":"keras-weights', b"keras_weights.manifest")


def _written_by_us(path: Path) -> bool:
    """Whether a file carries what our writers put in it (the C banner, safetensors' producer, Parquet's
    embedded manifest), so that a user's own main.c beside an export is left alone."""
    with open(path, "rb") as handle:
        head = handle.read(4096)
        handle.seek(max(0, path.stat().st_size - 2**20))
        tail = handle.read()
    return any(mark in head or mark in tail for mark in SIGNATURES)


def _check_source(source: Any, reader: str, manifest: dict) -> FileCheck:
    """The manifest against the model it claims to describe: the same tensors, names and bytes, none missing."""
    label = os.fspath(source) if isinstance(source, (str, os.PathLike)) else f"keras.Model {source.name!r}"
    check = FileCheck(label, "model")
    model = readers.read_model(source, reader)
    stored = layouts.apply(model.tensors, manifest["options"]["layout"], model)
    tensors = quantize.apply(stored, manifest["options"].get("quantize"), model.layers)
    listed = {t["name"]: t for t in manifest["tensors"]}
    for tensor in tensors:
        entry = listed.pop(tensor.name, None)
        if entry is None:
            check.problems.append(f"{tensor.name}: in the model but not in the export")
        elif entry["sha256"] != tensor.sha256:
            check.problems.append(f"{tensor.name}: the export's bytes are not the model's" +
                                  (f" {manifest['options']['quantize']} quantization" if tensor.quantization else ""))
        elif manifests.quantization_of(entry) != tensor.quantization:
            check.problems.append(f"{tensor.name}: the recorded quantization (scheme, axes, scale or error) is not "
                                  "what quantizing the model gives")
    check.problems += [f"{name}: in the export but not in the model" for name in listed]
    check.tensors = len(tensors)
    if len(tensors) != len(manifest["tensors"]):
        check.problems.append(f"the model holds {len(tensors)} tensors, the export {len(manifest['tensors'])}")
    return check


def _check_quantization(manifest: dict) -> FileCheck:
    """What a quantized tensor's entry promises a reader: a float32 scale tensor of the right shape, channel
    axes inside the tensor, and a stored dtype the scheme defines."""
    check = FileCheck("manifest.json", "quantization")
    entries = {t["name"]: t for t in manifest["tensors"]}
    stored_dtype = {"int8_symmetric": "int8", "float16": "float16", "bfloat16": "bfloat16"}
    for entry in manifest["tensors"]:
        q = manifests.quantization_of(entry)
        if q is None:
            continue
        check.tensors += 1
        name = entry["name"]
        if entry["dtype"] != stored_dtype[q.scheme]:
            check.problems.append(f"{name}: {q.scheme} stores {stored_dtype[q.scheme]}, the manifest says {entry['dtype']}")
        if q.axis is not None and any(a >= len(entry["shape"]) for a in q.axis):
            check.problems.append(f"{name}: channel axes {list(q.axis)} outside its {len(entry['shape'])} dimensions")
            continue
        scale = entries.get(q.scale) if q.scale else None
        if q.scale and scale is None:
            check.problems.append(f"{name}: its scale tensor {q.scale} is not in the manifest")
        elif scale is not None and (scale["dtype"] != "float32"
                                    or tuple(scale["shape"]) != quantize.scale_shape(entry["shape"], q.axis)):
            check.problems.append(f"{name}: its scale tensor {q.scale} is {scale['dtype']}{scale['shape']}, not float32"
                                  f"{list(quantize.scale_shape(entry['shape'], q.axis))}")
    return check


def _check_format(folder: Path, name: str, entries: list[dict], manifest: dict, compile: bool, cc: str,
                  cflags: Sequence[str]) -> tuple[list[FileCheck], dict[str, np.ndarray]]:
    """Check one format's files: each file's hash, then every tensor once, wherever the format keeps it; return the
    checks and the arrays read back by key (what a build regenerates the C text from)."""
    checks = [FileCheck(entry["path"], name) for entry in entries]
    overflow = declared_overflow(folder, manifest, name)  # a crafted manifest must not make us allocate for it
    if overflow:
        checks[0].problems.append(overflow)
        return checks, {}
    found: dict[str, tuple[np.ndarray, FileCheck]] = {}
    for check, entry in zip(checks, entries, strict=True):
        found.update({key: (array, check) for key, array in _read_checked(folder, entry, check).items()})
    expected = {t["keys"][name]: t for t in manifest["tensors"] if name in t["keys"]}
    for key, tensor in expected.items():
        array, check = found.get(key, (None, checks[-1]))
        check.problems += _tensor_problems(key, array, tensor)
        check.tensors += array is not None
    for key, (_, check) in found.items():
        if key not in expected:
            check.problems.append(f"{key}: not in the manifest")
    module = registry.get(name) if name in registry.FORMATS else None
    paths = [folder / e["path"] for e in entries]
    arrays = {key: array for key, (array, _) in found.items()}
    if hasattr(module, "text_problems") and all(c.ok for c in checks):
        records, info = manifests.tensor_records(manifest, name, arrays), manifests.export_info(manifest)
        try:
            checks[0].problems += module.text_problems(paths, manifest, records, info)
        except ConverterError as error:  # what the manifest records cannot be written again: not an export of ours
            checks[0].problems.append(f"the manifest's options and graph do not regenerate this text: {error}")
    if compile and hasattr(module, "compile_problems") and all(c.ok for c in checks):
        checks[0].problems += module.compile_problems(manifest, records, info, cc, cflags)
        for check in checks:
            check.compiled_with = cc
    return checks, (arrays if all(c.ok for c in checks) else {})


def _read_checked(folder: Path, entry: dict, check: FileCheck) -> dict[str, np.ndarray]:
    path = folder / entry["path"]
    if not path.is_file():
        check.problems.append("file is missing")
        return {}
    if atomic.read_sha256(path) != entry["sha256"]:
        check.problems.append("file sha256 differs from the manifest")
    try:
        return registry.get(entry["format"]).read(path)
    except Exception as error:  # any reader failure is a verification finding, not a crash
        check.problems.append(f"cannot be read as {entry['format']}: {type(error).__name__}: {error}")
        return {}


def _tensor_problems(key: str, array: np.ndarray | None, tensor: dict) -> list[str]:
    if array is None:
        return [f"{key}: missing"]
    array = dtypes.restore(array, tensor["dtype"])
    if array.dtype.name != tensor["dtype"] or list(array.shape) != tensor["shape"]:
        return [f"{key}: {array.dtype.name}{list(array.shape)} but the manifest says {tensor['dtype']}{tensor['shape']}"]
    if sha256_of(canonical(array)) != tensor["sha256"]:
        return [f"{key}: bytes differ from the manifest's sha256"]
    if (tensor.get("quantization") or {}).get("scheme") == "int8_symmetric" and array.size and array.min() < -127:
        return [f"{key}: holds -128, outside symmetric int8 (-127..127)"]
    return []
