"""The ``get_weights()`` reader: load with Keras (safe mode, no compile) and walk ``model.layers``.

Names are built from layer names, not from Keras's ``variable.path``, which differs between a
model loaded from ``.keras`` and from ``.h5`` (a nested model's layers lose their parent's name
in one and keep it in the other). Walking each top-level layer's sub-layer tree gives the same
chain of names either way: ``inner/d/kernel``, ``mha/query/kernel``, ``lstm/lstm_cell/bias``.
"""
from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import sys
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np

from .. import memory
from ..errors import DamagedInput, InputInvalid, UnsafeInput
from ..naming import unique
from ..tensors import Layer, ModelWeights, Source, Tensor
from . import archive, describe, inputs
from .describe import code_layers, layers_of_class
from .hdf5 import model_config
from .base import ReadOptions

NAME = "keras"
KINDS = frozenset({"keras.Model", "keras", "h5"})
DESCRIPTION = "Keras"


def prepare() -> None:
    """Import Keras (the slow part), while the caller checks the input."""
    import_keras()


def read(source: Any, kind: str, base: Source, options: ReadOptions = ReadOptions()) -> ModelWeights:
    """Every weight of an in-memory ``keras.Model``, or of a model file loaded with Keras."""
    if kind == "keras.Model":
        return extract(source, base)
    weights = extract(load(source, kind, options.trust_code), base)
    # The values share the variables' buffers (see snapshot): the model, a web of reference cycles that only a full
    # collection would free (~0.15 s once TensorFlow is loaded), holds nothing big and is left to the collector. What
    # loading freed in TensorFlow's threads' malloc arenas (~1x the weights, measured) goes back to the kernel.
    memory.release_free_memory()
    return weights

@contextlib.contextmanager
def native_stderr_silenced() -> Iterator[None]:
    """Hide what TensorFlow's C++ runtime prints to file descriptor 2 (CUDA probes, absl notices).

    ``TF_CPP_MIN_LOG_LEVEL`` does not cover messages logged before absl is initialised, so the
    descriptor itself is pointed at /dev/null; Python exceptions are unaffected. Set
    ``KERAS_WEIGHTS_NATIVE_LOGS=1`` to see them.
    """
    if os.environ.get("KERAS_WEIGHTS_NATIVE_LOGS"):
        yield
        return
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "wb") as sink:
        os.dup2(sink.fileno(), 2)
    try:
        yield
    finally:
        sys.stderr.flush()
        os.dup2(saved, 2)
        os.close(saved)


def import_keras():
    """Import Keras on the TensorFlow backend, quietly (costs ~5 s the first time)."""
    os.environ.setdefault("TF_CPP_MIN_LOG_LEVEL", "3")
    os.environ.setdefault("KERAS_BACKEND", "tensorflow")
    with native_stderr_silenced():
        import keras
    return keras


def load(path: Path, kind: str, trust_code: bool = False):
    """Load a model file without compiling it; safe mode stays on unless ``trust_code``."""
    keras = import_keras()
    with tempfile.TemporaryDirectory(prefix="keras-weights-") as folder:
        named = inputs.named_for_keras(path, kind, Path(folder))  # Keras picks its loader by the file's name
        try:
            with native_stderr_silenced():
                model = _load_archive_from_disk(keras, named, safe_mode=not trust_code) if kind == "keras" else None
                return model or keras.saving.load_model(named, compile=False, safe_mode=not trust_code)
        except Exception as error:  # Keras raises many types while deserializing
            raise _load_error(path, kind, error) from error


COPY_BLOCK = 2**20


def _load_archive_from_disk(keras: Any, path: Path, safe_mode: bool) -> Any | None:
    """``keras.saving.load_model`` for a plain ``.keras`` archive, with the weights read from a file on disk.

    ``load_model`` reads the whole ``model.weights.h5`` member into memory before loading it: one more
    copy of every weight at the peak. Here, with public calls only, the model is rebuilt from
    ``config.json`` (``deserialize_keras_object``, safe mode as asked) and the weights member is copied,
    1 MiB at a time (zipfile checks its CRC-32), to a temporary file that ``Model.load_weights`` reads:
    the same variables as ``load_model`` gives, which the tests check. It returns None, and the caller
    uses ``load_model``, for archives this cannot load the same way: with assets (vocabularies and other
    non-weight state), with objects shared by reference in the configuration, or a model that is not
    built once deserialized.
    """
    with zipfile.ZipFile(path) as zipped:
        if set(zipped.namelist()) != {"config.json", "metadata.json", archive.WEIGHTS}:
            return None
        config = json.loads(zipped.read("config.json"))
        if not _shares_only_values(config):
            return None
        config["compile_config"] = None
        model = keras.saving.deserialize_keras_object(config, safe_mode=safe_mode)
        if not getattr(model, "built", False):
            return None
        with tempfile.TemporaryDirectory(prefix="keras-weights-") as folder:
            weights = Path(folder) / archive.WEIGHTS
            with zipped.open(archive.WEIGHTS) as member, open(weights, "wb") as copy:
                shutil.copyfileobj(member, copy, COPY_BLOCK)
            model.load_weights(weights)
    return model


_VALUE_MODULES = ("keras.initializers", "keras.regularizers", "keras.constraints")


def _shares_only_values(config: Any) -> bool:
    """True unless an object other than a dtype policy, initializer, regularizer or constraint is shared by
    reference (``shared_object_id``): those are values, the same whether deserialized once or twice.

    >>> policy = {"module": "keras", "class_name": "DTypePolicy", "shared_object_id": 1}
    >>> _shares_only_values({"layers": [{"config": {"dtype": policy}}]})
    True
    >>> _shares_only_values({"layers": [{"module": "keras.layers", "class_name": "Dense", "shared_object_id": 2}]})
    False
    """
    if isinstance(config, list):
        return all(_shares_only_values(item) for item in config)
    if not isinstance(config, dict):
        return True
    shared_value = str(config.get("class_name", "")).endswith("Policy") or config.get("module") in _VALUE_MODULES
    if "shared_object_id" in config and not shared_value:
        return False
    return all(_shares_only_values(item) for item in config.values())


def _load_error(path: Path, kind: str, error: Exception) -> Exception:
    if isinstance(error, zipfile.BadZipFile):  # damage (a CRC-32 mismatch): no other reader can do better
        return DamagedInput(f"{path.name} is damaged: {error}",
                            hint="The .keras file is damaged; save or download it again.")
    message = " ".join(str(error).split())[:400]
    layers = code_layers(model_config(path, kind))  # a Lambda holds code whatever Keras says (a lambda or a def)
    if layers or "safe_mode" in message or "arbitrary code execution" in message:
        shown = ", ".join(repr(n) for n in layers[:5]) + (f" and {len(layers) - 5} more" if len(layers) > 5 else "")
        what = (f"Lambda layer {shown} holds" if len(layers) == 1 else f"Lambda layers {shown} hold") if layers \
            else "the file holds"
        return UnsafeInput(
            f"refused to load {path.name} with Keras: {what} Python code that Keras would run",
            hint="keras-weights runs no code from a model file unless told to (--trust-model-code); "
                 "the weights can still be read directly (--reader auto or h5).",
        )
    unknown = re.search(r"Could not locate class '([^']+)'", str(error))
    if unknown:
        names = layers_of_class(model_config(path, kind), unknown.group(1))
        return InputInvalid(
            f"Keras could not rebuild the model in {path.name}: "
            + (f"layer {', '.join(repr(n) for n in names[:5])} uses " if names else "it uses ")
            + f"class '{unknown.group(1)}', which Keras 3 cannot locate (a custom class, or a configuration "
              "written by an older Keras)",
            hint="The weights can still be read directly (--reader auto or h5); no custom code is needed for that.",
        )
    return InputInvalid(
        f"Keras could not rebuild the model in {path.name}: {type(error).__name__}: {message}",
        hint="The file may have been saved by an older Keras, or be damaged or incomplete.",
    )


def extract(model: Any, source: Source) -> ModelWeights:
    """Every weight of ``model`` (a ``keras.Model``) in model order."""
    tensors, layers, seen, used = [], [], set(), set()
    for index, layer in enumerate(model.layers):
        owners = _variable_owners(layer)
        mine = []
        for variable in layer.weights:  # what layer.get_weights() returns, value for value, without its copies
            if id(variable) in seen:  # shared with an earlier layer: exported once
                continue
            seen.add(id(variable))
            value = snapshot(variable)
            path, owner = owners.get(id(variable), (f"{layer.name}/{_short_name(variable)}", layer))
            role = _short_name(variable)
            mine.append(Tensor(unique(path, used), layer.name, role, index, bool(variable.trainable), value,
                               owner_class=type(owner).__name__, kind=describe.kind(role, type(layer).__name__)))
        tensors += mine
        layers.append(_describe(index, layer, tuple(t.name for t in mine)))
    return ModelWeights(
        name=model.name, class_name=type(model).__name__,
        inputs=_shapes(lambda: model.inputs), outputs=_shapes(lambda: model.outputs),
        layers=tuple(layers), tensors=tuple(tensors), source=source, config=_serialized(model),
    )


def snapshot(variable: Any) -> np.ndarray:
    """``variable.numpy()``, the value ``get_weights()`` returns, as a read-only array that shares the variable's
    buffer where the backend holds it in host memory: no second copy of the weights while the model is alive.

    - TensorFlow: a variable read as a tensor shares its buffer, and numpy views a tensor's buffer; when the
      variable is later assigned, TensorFlow copies on write, so the array stays the value it was read as.
    - JAX on the CPU: ``np.asarray`` of the array (``jax.Array.__array__``) is a view, and JAX arrays never change
      (an assigned variable gets a new one).
    - PyTorch on the CPU: ``Tensor.numpy()`` of the detached parameter is a view, made read-only here. Keras's
      torch variables are assigned in place, so the view follows a model trained further: the export reads it
      at once.
    - Anything else (a GPU's memory, bfloat16, which numpy has no view of, a read whose dtype or shape is not the
      variable's) takes ``variable.numpy()``: one copy.
    """
    value = getattr(variable, "value", None)
    array = _host_view(value)
    if array is None or array.dtype.name != str(variable.dtype) or array.shape != tuple(variable.shape):
        return variable.numpy()
    array.flags.writeable = False
    return array


def _host_view(value: Any) -> np.ndarray | None:
    """A numpy view of a backend tensor in host memory (public APIs of each backend), or None."""
    read = getattr(value, "read_value", None)  # a TensorFlow variable's
    try:
        if callable(read):
            return np.asarray(read())
        device = getattr(value, "device", None)
        if callable(getattr(value, "detach", None)) and getattr(device, "type", None) == "cpu":  # a torch tensor
            return value.detach().numpy()
        if callable(getattr(value, "devices", None)) and all(d.platform == "cpu" for d in value.devices()):  # JAX
            return np.asarray(value)
    except (TypeError, RuntimeError, ValueError, AttributeError):  # bfloat16, a tensor that needs grad...
        return None
    return None


def _serialized(model: Any) -> dict | None:
    """The model's configuration as Keras saves it (for generated inference code), or None if it has none."""
    try:
        import keras

        return json.loads(json.dumps(keras.saving.serialize_keras_object(model), default=str))
    except Exception:  # a subclassed model or a custom layer without get_config: the weights still export
        return None


def _variable_owners(layer: Any, prefix: str = "") -> dict[int, tuple[str, Any]]:
    """Map each variable of ``layer``'s tree to its name ``parent/child/.../variable`` and owning layer."""
    path = f"{prefix}{layer.name}/"
    owners = {}
    for sub in getattr(layer, "_layers", None) or []:
        for key, value in _variable_owners(sub, path).items():
            owners.setdefault(key, value)
    for variable in layer.weights:  # the deepest owner was recorded first; the rest are this layer's own
        owners.setdefault(id(variable), (path + _short_name(variable), layer))
    return owners


def _short_name(variable: Any) -> str:
    return str(variable.name).split("/")[-1].removesuffix(":0")


def _describe(index: int, layer: Any, tensor_names: tuple[str, ...]) -> Layer:
    config = layer.get_config() if hasattr(layer, "get_config") else {}
    return Layer(
        index=index, name=layer.name, class_name=type(layer).__name__,
        config=describe.summary(config),
        input_shape=_shapes(lambda: layer.input), output_shape=_shapes(lambda: layer.output),
        tensors=tensor_names,
    )


def _shapes(get: Any) -> Any:
    """Shapes of a (nested) structure of symbolic tensors; None when Keras cannot tell one."""
    try:
        structure = get()
    except (AttributeError, ValueError, RuntimeError, TypeError):
        return None
    if isinstance(structure, (list, tuple)):
        return [_shapes(lambda item=item: item) for item in structure]
    if isinstance(structure, dict):
        return {key: _shapes(lambda item=item: item) for key, item in sorted(structure.items())}
    shape = getattr(structure, "shape", None)
    return None if shape is None else [None if d is None else int(d) for d in shape]


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
