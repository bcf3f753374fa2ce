"""Weights back into Keras: ``load_into(model, source)`` sets a ``keras.Model``'s weights from an export folder
or any written file, in any layout (``keras``, ``dense_out_in``, ``torch``), quantized exports dequantized; or
from a state dict PyTorch wrote for a model mapped with ``--layout torch`` (a safetensors file without our
manifest). Every tensor is matched by name and checked (shape, dtype) before any is set: on any problem the
model is left unchanged.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np

from . import layouts, transforms
from .errors import InputInvalid, VerificationFailed
from .exports import Export
from .readers import read_model
from .readers.keras import model_variables
from .verification import verify


def load_into(model: Any, source: str | os.PathLike) -> None:
    """Set ``model``'s weights from ``source`` (an export folder or a file an export wrote, or a PyTorch state
    dict for the ``torch`` layout); raise :class:`InputInvalid` listing every missing, extra or mis-shaped tensor.

    >>> import converter, keras, tempfile
    >>> out = tempfile.mkdtemp()
    >>> _ = converter.export("fixtures/seed_mlp.keras", out, formats=["npz"])
    >>> model = keras.saving.load_model("fixtures/seed_mlp.keras")
    >>> _ = model.layers[0].kernel.assign(model.layers[0].kernel * 0)
    >>> load_into(model, out)
    >>> float(abs(model.layers[0].kernel).numpy().sum()) > 0
    True
    """
    export = Export.open(source)
    current = read_model(model)  # names, shapes and dtypes in model order, the variables' own order
    if export.manifest is not None:  # our export: the steps its manifest records are undone
        _verify(export.file, export.manifest)
        wanted = _by_keras_name(export.keras_arrays(), current)
    else:  # a bare file: Keras names, or a state dict PyTorch wrote for this model's torch twin
        arrays = export.arrays()
        wanted = _keras_arrays(arrays, _guess_layout(arrays, current), current)
    _assign(model, current, wanted)


def _verify(file: Path, manifest: dict) -> None:
    """What ``verify`` checks of the file the weights come from (its sha256, every tensor's bytes, shape and dtype,
    the quantization entries), before any weight is set: a changed bit or a relabelled dtype is exit 7."""
    chosen = next(entry["format"] for entry in manifest["files"] if entry["path"] == file.name)
    report = verify(file.parent)
    problems = [f"{check.path}: {problem}" for check in report.files if check.format in (chosen, "quantization")
                for problem in check.problems]
    if problems:
        raise VerificationFailed(f"{file.parent}: the export does not hold what its manifest says, so nothing was "
                                 "loaded: " + "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more"
                                                                         if len(problems) > 5 else ""))


def _guess_layout(arrays: dict[str, np.ndarray], current) -> str:
    """A file without our manifest: Keras names, or the torch names of this model (a PyTorch state dict)."""
    if {t.name for t in current.tensors} <= set(arrays):
        return "keras"
    return "torch"


def _keras_arrays(arrays: dict[str, np.ndarray], layout: str, current) -> dict[str, np.ndarray]:
    """The Keras array of each of the model's tensors from a file without a manifest. A PyTorch state dict records
    no steps, so they are the ones this model's torch mapping takes (the same typed steps an export records)."""
    if layout == "keras":
        return _by_keras_name(arrays, current)
    stored = layouts.apply(current.tensors, layout, current)  # the names and steps of this model's torch twin
    result = transforms.undo_layout(stored, arrays, {t.name: t.shape for t in current.tensors})
    return result | _extra(arrays, {t.name for t in stored})


def _by_keras_name(arrays: dict[str, np.ndarray], current) -> dict[str, Any]:
    """The model's tensors by name from arrays already in the Keras layout, and the arrays it has no tensor for."""
    return {t.name: arrays.get(t.name) for t in current.tensors} | _extra(arrays, {t.name for t in current.tensors})


def _extra(arrays: dict[str, np.ndarray], expected: set[str]) -> dict[str, Any]:
    return {f"\0extra:{name}": value for name, value in arrays.items() if name not in expected and not name.endswith(":scale")}


def _assign(model: Any, current, wanted: dict[str, Any]) -> None:
    problems = []
    extras = [name.split(":", 1)[1] for name in wanted if name.startswith("\0extra:")]
    if extras:
        problems.append(f"{len(extras)} tensors the model does not have: {', '.join(extras[:5])}")
    values = []
    for tensor in current.tensors:
        value = wanted.get(tensor.name)
        if isinstance(value, transforms.Misfit):
            problems.append(value.problem)
        elif value is None:
            problems.append(f"{tensor.name}: missing")
        elif tuple(value.shape) != tensor.shape:
            problems.append(f"{tensor.name}: shape {list(value.shape)}, the model's is {list(tensor.shape)}")
        elif np.dtype(value.dtype).name != tensor.dtype:
            problems.append(f"{tensor.name}: dtype {np.dtype(value.dtype).name}, the model's is {tensor.dtype}")
        values.append(value)
    if problems:
        raise InputInvalid("the weights do not fit the model, which is left unchanged: " + "; ".join(problems[:10])
                           + (f"; and {len(problems) - 10} more" if len(problems) > 10 else ""),
                           hint="Load an export of this model (the same layers), or fix the names listed.")
    for variable, value in zip(model_variables(model), values, strict=True):
        variable.assign(value)
