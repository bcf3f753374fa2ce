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

from . import formats as registry, manifest as manifests
from .errors import InputInvalid, InputNotFound, VerificationFailed

_PREFERRED = ("safetensors", "npz", "parquet", "c")  # the file read from an export folder


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
    from .readers import read_model

    path = Path(source)
    file, manifest = _file_and_manifest(path)
    if manifest is not None:
        _verify(file, manifest)
    arrays = _read(file, manifest)
    current = read_model(model)  # names, shapes and dtypes in model order, the variables' own order
    layout = manifest["options"]["layout"] if manifest else _guess_layout(arrays, current)
    wanted = _keras_arrays(arrays, layout, current, file.name)
    _assign(model, current, wanted)


def export_file(folder: Path, manifest: dict) -> Path:
    """The file of an export the weights are read from: safetensors first, then npz, Parquet, C (the ``.c``, or
    the header of a header-only export)."""
    listed = {}
    for entry in manifest["files"]:  # for C, the .c is listed after the .h and wins
        listed[entry["format"]] = folder / entry["path"]
    for name in _PREFERRED:
        if name in listed:
            return listed[name]
    raise InputInvalid(f"{folder}: the export lists no file to read weights from")


def _file_and_manifest(path: Path) -> tuple[Path, dict | None]:
    if path.is_dir():
        manifest = manifests.load(path)
        return export_file(path, manifest), manifest
    if not path.is_file():
        raise InputNotFound(f"no such file or folder: {path}")
    if path.suffix.lower() not in registry.EXTENSIONS:
        from .errors import UsageError

        raise UsageError(f"{path.name} is not an export: load takes an export folder, a file an export wrote "
                         "(.npz, .safetensors, .parquet, .c, .h) or a PyTorch state dict (.safetensors)",
                         hint="For a Keras weights file, use the model's own load_weights.")
    return path, manifests.beside(path)


def _verify(file: Path, manifest: dict) -> None:
    """What ``verify`` checks of the file the weights come from (its sha256, every tensor's bytes, shape and dtype,
    the quantization entries), before any weight is set: a changed bit or a relabelled dtype is exit 7."""
    from .verification import verify

    chosen = next(entry["format"] for entry in manifest["files"] if entry["path"] == file.name)
    report = verify(file.parent)
    problems = [f"{check.path}: {problem}" for check in report.files if check.format in (chosen, "quantization")
                for problem in check.problems]
    if problems:
        raise VerificationFailed(f"{file.parent}: the export does not hold what its manifest says, so nothing was "
                                 "loaded: " + "; ".join(problems[:5]) + (f"; and {len(problems) - 5} more"
                                                                         if len(problems) > 5 else ""))


def _read(file: Path, manifest: dict | None) -> dict[str, np.ndarray]:
    from .api import read

    return read(file, dequantize=manifest is not None and bool(manifest["options"].get("quantize")))


def _guess_layout(arrays: dict[str, np.ndarray], current) -> str:
    """A file without our manifest: Keras names, or the torch names of this model (a PyTorch state dict)."""
    if {t.name for t in current.tensors} <= set(arrays):
        return "keras"
    return "torch"


def _keras_arrays(arrays: dict[str, np.ndarray], layout: str, current, file_name: str) -> dict[str, np.ndarray]:
    """The Keras array of each of the model's tensors, from the stored ones (a layout's steps undone)."""
    from . import layouts

    if layout == "keras":
        return {t.name: arrays.get(t.name) for t in current.tensors} | _extra(arrays, {t.name for t in current.tensors})
    stored = layouts.apply(current.tensors, layout, current)  # what this model's export would hold, by name
    result = undo_layout(stored, arrays, {t.name: t.shape for t in current.tensors})
    return result | _extra(arrays, {t.name for t in stored})


def undo_layout(stored, arrays: dict[str, np.ndarray], keras_shapes: dict[str, tuple[int, ...]]) -> dict[str, Any]:
    """Keras name -> Keras-layout array, from the arrays a layout stored (``stored``: their records, with the
    steps in ``transform``); None where one is missing, a ``Misfit`` where one has the wrong shape."""
    result: dict[str, Any] = {}
    for tensor in stored:
        key = tensor.keras_name or tensor.name
        second_bias = tensor.name.split(".")[-1].startswith("bias_hh") and tensor.transform == "zeros"
        if tensor.transform in ("ones", "count") or (tensor.transform == "zeros" and not second_bias):
            continue  # torch's own (num_batches_tracked, a BatchNorm's fixed weight or bias): nothing to take back
        value = arrays.get(tensor.name)
        if value is None:
            if not second_bias:
                result.setdefault(key, None)
            continue
        if tuple(value.shape) != tensor.shape:  # cannot be undone: reported in the stored names and shapes
            result[key] = Misfit(f"{key}: {tensor.name} has shape {list(value.shape)}, the model's needs "
                                  f"{list(tensor.shape)}")
            continue
        try:
            undone = _undo(tensor, np.asarray(value), keras_shapes.get(key))
        except (ValueError, IndexError, TypeError) as error:  # a recorded transform that does not fit the array
            result[key] = Misfit(f"{key}: the recorded transform {tensor.transform!r} cannot be undone on "
                                  f"{tensor.name} of shape {list(value.shape)} ({type(error).__name__})")
            continue
        if second_bias:  # an LSTM's or SimpleRNN's two biases, summed into Keras's one
            result[key] = None if result.get(key) is None else result[key] + undone
        elif tensor.transform.startswith("row:"):  # a GRU's two bias rows, stacked back
            row = int(tensor.transform.split("+")[0].split(":")[1])
            result.setdefault(key, [None, None])[row] = undone
        else:
            result[key] = undone
    for key, value in result.items():
        if isinstance(value, list) and not any(isinstance(v, Misfit) for v in value):
            result[key] = None if any(v is None for v in value) else np.stack(value)
    return result


class Misfit:
    """A stored tensor whose shape does not fit: the problem, said in the stored names."""

    def __init__(self, problem: str) -> None:
        self.problem = problem


def _extra(arrays: dict[str, np.ndarray], expected: set[str]) -> dict[str, Any]:
    return {f"\0extra:{name}": value for name, value in arrays.items() if name not in expected and not name.endswith(":scale")}


def _undo(tensor, value: np.ndarray, keras_shape: tuple[int, ...] | None) -> np.ndarray:
    """The inverse of the steps recorded in ``tensor.transform`` (``torch_layout``, ``layouts``)."""
    steps = [s for s in tensor.transform.split("+") if s not in ("none", "")]
    for step in reversed(steps):
        kind, _, numbers = step.partition(":")
        if kind in ("transpose",):
            value = value.T
        elif kind == "permute":
            order = [int(n) for n in numbers.split(",")]
            value = value.transpose(np.argsort(order))
        elif kind == "depthwise":
            rank = len(keras_shape) - 2
            value = value[:, 0].transpose(*range(1, rank + 1), 0).reshape(keras_shape)
        elif kind == "gates":
            order = [int(n) for n in numbers.split(",")]
            axis = value.ndim - 1
            parts = np.split(value, len(order), axis=axis)
            value = np.concatenate([parts[order.index(i)] for i in range(len(order))], axis=axis)
        elif kind == "flatten":
            positions, channels = (int(n) for n in numbers.split(","))
            value = value.reshape(channels, positions, -1).transpose(1, 0, 2).reshape(value.shape)
    return value


def _assign(model: Any, current, wanted: dict[str, Any]) -> None:
    problems = []
    extras = [name.split(":", 1)[1] for name in wanted if name.startswith("\0extra:")]
    if extras:
        problems.append(f"{len(extras)} tensors the model does not have: {', '.join(extras[:5])}")
    values = []
    for tensor in current.tensors:
        value = wanted.get(tensor.name)
        if isinstance(value, Misfit):
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


def model_variables(model: Any) -> list:
    """The model's variables in the order the Keras reader gives its tensors: each top-level layer's weights,
    a variable shared by several layers once."""
    seen, variables = set(), []
    for layer in model.layers:
        for variable in layer.weights:
            if id(variable) not in seen:
                seen.add(id(variable))
                variables.append(variable)
    return variables
