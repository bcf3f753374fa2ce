"""The direct reader: weights straight from the HDF5 data in ``.h5``, ``.weights.h5`` and ``.keras`` files.

No TensorFlow import, no model code: h5py reads the datasets and ``json`` the stored configuration.
It yields the same records as the ``get_weights()`` reader (names, order, roles, dtypes, bytes) for
every model both can read, and also reads what Keras 3 no longer loads: Keras 1/2 and tf.keras
files, Lambda layers, weights-only files.

Legacy HDF5 (``model.save("x.h5")`` and ``save_weights``) is followed through its ``layer_names`` and
``weight_names`` attributes, in the order they list; names differ by era (``convolution2d_1_W:0``,
``dense_1/kernel:0``, ``model/dense/kernel``) and are mapped to the Keras 3 layer chain. Keras 3
archives are read by ``keras3_groups``.
"""
from __future__ import annotations

import contextlib
import json
import re
import zipfile
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import Any

import h5py
import numpy as np

from .. import dtypes
from .. import layers as registry
from ..errors import ConverterError, InputInvalid
from ..naming import unique
from ..tensors import Layer, ModelWeights, Source, Tensor
from . import archive as archive_checks
from . import describe, h5check, keras3_groups
from .base import ReadOptions

NAME = "h5"
KINDS = frozenset({"keras", "h5"})
DESCRIPTION = "the direct HDF5 reader"


def prepare() -> None:
    """Nothing to prepare: h5py is imported with this module."""
def read(path: Path, kind: str, source: Source, options: ReadOptions = ReadOptions()) -> ModelWeights:
    """Read every weight of a model or weights file without Keras (after :mod:`h5check`'s checks).

    ``options.trust_code`` changes nothing: this reader never runs code from the file."""
    with _open_weights(path, kind) as handle:
        h5check.check(handle, _weights_name(path, kind), options.allow_sparse)
        if kind == "keras":
            with zipfile.ZipFile(path) as archive:
                config = json.loads(archive.read("config.json"))
            return keras3_groups.read(handle, config, path.name, source)
        return _read_hdf5(handle, path.name, source)


def check_safe(path: Path, kind: str, allow_sparse: bool = False) -> None:
    """Refuse what Keras refuses as unsafe in the HDF5 data (links, external storage, size bombs...)."""
    with _open_weights(path, kind) as handle:
        h5check.check(handle, _weights_name(path, kind), allow_sparse)


def _weights_name(path: Path, kind: str) -> str:
    return f"{path.name} ({archive_checks.WEIGHTS})" if kind == "keras" else path.name


@contextlib.contextmanager
def _open_weights(path: Path, kind: str) -> Iterator[h5py.File]:
    """The HDF5 weights of a file (an archive's ``model.weights.h5`` read in place); damage is InputInvalid."""
    try:
        with contextlib.ExitStack() as stack:
            source = stack.enter_context(archive_checks.open_member(path, archive_checks.WEIGHTS)) \
                if kind == "keras" else path
            yield stack.enter_context(h5py.File(source, "r"))
    except ConverterError:
        raise
    except Exception as error:  # h5py raises OSError, KeyError, ValueError, RuntimeError... on damaged data
        raise InputInvalid(f"cannot read the weights in {path.name}: {type(error).__name__}: {error}",
                           hint="The file is damaged or incomplete; download or save it again.") from None


def provenance(path: Path, kind: str) -> dict[str, str | None]:
    """What a file says about the Keras that wrote it: ``keras_version`` and ``backend`` (None if silent)."""
    try:
        if kind == "keras":
            with zipfile.ZipFile(path) as archive:
                metadata = json.loads(archive.read("metadata.json")) if "metadata.json" in archive.namelist() else {}
            return {"keras_version": metadata.get("keras_version"), "backend": metadata.get("backend")}
        with h5py.File(path, "r") as handle:
            root = handle["model_weights"] if "model_weights" in handle else handle
            return {key: _text_attr(handle.attrs, key) or _text_attr(root.attrs, key) for key in ("keras_version", "backend")}
    except Exception:  # damaged files: the reader itself reports the damage
        return {"keras_version": None, "backend": None}  # the reader itself reports the damage


def model_config(path: Path, kind: str) -> dict | None:
    """The model configuration a file stores (legacy ``model_config`` or ``config.json``), or None."""
    try:
        if kind == "keras":
            with zipfile.ZipFile(path) as archive:
                return json.loads(archive.read("config.json"))
        with h5py.File(path, "r") as handle:
            return _json_attr(handle.attrs, "model_config")
    except Exception:  # damaged files: the reader itself reports the damage
        return None


def _read_hdf5(handle: h5py.File, file_name: str, source: Source) -> ModelWeights:
    root = handle["model_weights"] if "model_weights" in handle else handle
    if "layer_names" in root.attrs or "layer_names0" in root.attrs:
        return _read_legacy(handle, root, file_name, source)
    if "layers" in handle or "vars" in handle:
        return keras3_groups.read(handle, None, file_name, source)
    raise InputInvalid(f"{file_name} is an HDF5 file but holds no Keras weights (no layer_names, no layers group)",
                       hint="Pass a file written by Keras model.save() or save_weights().")


# --- legacy HDF5 -----------------------------------------------------------------------------

def _read_legacy(handle: h5py.File, root: h5py.Group, file_name: str, source: Source) -> ModelWeights:
    config = _json_attr(handle.attrs, "model_config")
    layer_configs = _layer_configs(config)
    model_name = (config or {}).get("config", {}).get("name", "") if isinstance((config or {}).get("config"), dict) else ""
    tensors, layers, used, notes, read = [], [], set(), [], set()
    for index, layer_name in enumerate(attribute_list(root.attrs, "layer_names")):
        if layer_name not in root:
            raise InputInvalid(f"{file_name} lists layer {layer_name!r} in layer_names but has no group for it",
                               hint="The file is inconsistent (truncated or edited); save it again.")
        class_name, layer_config = layer_configs.get(layer_name, ("", {}))
        nested = _nested_paths(layer_config) if registry.is_container(class_name) else {}
        mine = [_legacy_tensor(root[layer_name], weight_name, layer_name, index, class_name, layer_config, nested,
                               model_name, used, file_name, notes, read)
                for weight_name in attribute_list(root[layer_name].attrs, "weight_names")]
        tensors += mine
        layers.append(Layer(index, layer_name, class_name, describe.summary(layer_config), None, None,
                            tuple(t.name for t in mine)))
    _refuse_unread(root, read, file_name)
    if config is None and (source.keras_version or "").startswith("1") and source.backend != "tensorflow":
        notes.append("a Keras 1 file without configuration: kernels are in the layout of the backend that wrote "
                     "them (Theano: convolution kernels (out, in, kh, kw)), which the file does not record")
    note = "; ".join(filter(None, [source.note, *dict.fromkeys(notes)])) or None
    return ModelWeights(model_name or Path(file_name).stem, _model_class((config or {}).get("class_name", "")),
                        _input_shapes(config), None, tuple(layers), tuple(tensors), replace(source, note=note),
                        config=config if isinstance(config, dict) else None)


def _model_class(class_name: Any) -> str:
    """The model's class as Keras 3 builds it (what the Keras reader records): ``Model`` of old tf.keras files is
    ``Functional`` (``registry.KERAS3_CLASS``)."""
    return registry.KERAS3_CLASS.get(class_name, class_name) if isinstance(class_name, str) else ""


def _legacy_tensor(group: h5py.Group, weight_name: str, layer_name: str, index: int, class_name: str,
                   layer_config: dict, nested: dict[str, list[str]], model_name: str, used: set[str], file_name: str, notes: list[str],
                   read: set[str]) -> Tensor:
    if weight_name not in group:
        raise InputInvalid(f"{file_name}: layer {layer_name!r} lists weight {weight_name!r} but the dataset is missing",
                           hint="The file is inconsistent (truncated or edited); save it again.")
    parts = _relative_parts(weight_name, layer_name, model_name)
    parts, (owner_class, owner_config) = _keras3_chain(parts, class_name, layer_config, nested)
    name = unique(f"{layer_name}/{'/'.join(parts)}", used)
    trainable = describe.trainable(parts[-1], layer_config, class_name)
    array = keras3_groups.dataset_array(group[weight_name])
    read.add(group[weight_name].name)
    if array.dtype.kind == "V" and array.dtype.itemsize == 2 and "bfloat16" in (_policy(owner_config),
                                                                                 _policy(layer_config)):
        array = array.view(dtypes.by_name("bfloat16").numpy)  # Keras writes bfloat16 to .h5 as opaque 2-byte data
        notes.append("bfloat16 weights recovered from opaque 2-byte HDF5 data by their layers' dtype policy")
    return Tensor(name, layer_name, parts[-1], index, trainable, array, owner_class=owner_class,
                  kind=describe.kind(parts[-1], class_name))


def _refuse_unread(root: h5py.Group, read: set[str], file_name: str) -> None:
    """Every dataset of the weights must be some layer's weight: one left over means a layout not understood."""
    unread: list[str] = []
    root.visititems(lambda name, item: unread.append(item.name) if isinstance(item, h5py.Dataset)
                    and item.name not in read and not item.name.startswith("/optimizer_weights/") else None)
    keras3_groups.refuse_unread(unread, file_name, "are not listed by any layer's weight_names")


def _policy(config: dict) -> str | None:
    """The name of a layer's dtype policy: ``"bfloat16"``, or ``{"class_name": "DTypePolicy", "config": {...}}``."""
    dtype = config.get("dtype")
    if isinstance(dtype, dict):
        dtype = (dtype.get("config") or {}).get("name")
    return dtype if isinstance(dtype, str) else None


def _relative_parts(weight_name: str, layer_name: str, model_name: str) -> list[str]:
    """A weight's path below its layer: ``dense_1/kernel:0`` -> [kernel]; Keras 1 ``dense_1_W:0`` -> [W]."""
    text = re.sub(r":\d+$", "", weight_name)
    parts = text.split("/")
    if len(parts) == 1:  # Keras 1: <layer>_<role>
        role = text[len(layer_name) + 1:] if text.startswith(layer_name + "_") else text
        return [role]
    if layer_name in parts[:-1]:
        return parts[parts.index(layer_name) + 1:]
    return parts[1:] if parts[0] == model_name else parts  # weights of a nested model's own layers


def _keras3_chain(parts: list[str], class_name: str, config: dict, nested: dict[str, list[str]]
                  ) -> tuple[list[str], tuple[str, dict]]:
    """Insert the sub-layers Keras 3 puts between a layer and its variables; return the owner's class and config.

    Keras 2 stored ``lstm_1/kernel:0`` where Keras 3 has ``lstm_1/lstm_cell/kernel``, and
    ``bidirectional_1/forward_lstm_1/kernel:0`` for ``.../forward_lstm_1/lstm_cell/kernel``.
    """
    cell = registry.spec(class_name).cell
    if cell and len(parts) == 1:
        parts = [keras3_groups.snake_case(cell), parts[0]]
    inner = config.get("layer") if isinstance(config.get("layer"), dict) else None
    inner_cell = registry.spec(inner.get("class_name")).cell if inner else None
    if inner_cell and registry.spec(class_name).children and len(parts) == 2:
        parts = [parts[0], keras3_groups.snake_case(inner_cell), parts[1]]
    elif inner and len(parts) == 1:  # TimeDistributed and other single-layer wrappers
        parts = [inner.get("config", {}).get("name", "layer"), parts[0]]
    elif nested and len(parts) > 1:
        parts = _nested_chain(parts, nested)
    return parts, _owner(parts[:-1], class_name, config)


MAX_NAME_PARTS = 16  # slashes a layer's own name may hold, as far as nested weights are matched


def _nested_chain(parts: list[str], nested: dict[str, list[str]]) -> list[str]:
    """A nested layer's weight path with the models between put back (``_nested_paths``). Keras 2 allowed slashes
    in layer names, and its variable names do not say where a name ends: the longest leading run of parts that
    names a layer is that layer.

    >>> _nested_chain(["layer1", "conv", "kernel"], {"layer1/conv": ["model_2", "layer1/conv"]})
    ['model_2', 'layer1/conv', 'kernel']
    >>> _nested_chain(["d", "kernel"], {"d": ["block", "d"]}), _nested_chain(["x", "kernel"], {})
    (['block', 'd', 'kernel'], ['x', 'kernel'])
    """
    for end in range(min(len(parts) - 1, MAX_NAME_PARTS), 0, -1):  # bounded: a crafted name may hold many slashes
        found = nested.get("/".join(parts[:end]))
        if found:
            return [*found, *parts[end:]]
    return parts


def _nested_paths(config: dict) -> dict[str, list[str]]:
    """Each layer's name -> the names from a model down to it, its own layers first, then those of the models
    nested in it (breadth first, a name seen nearer the top winning). Keras 3 names the weights of a model nested in
    a nested model after the innermost model's layers alone (``proj/kernel`` in group ``tower`` for
    ``tower/block/proj``), so the models between are found here; built once per layer, in one pass over its
    configuration, however many weights a crafted file lists.

    >>> tower = {"layers": [{"class_name": "Dense", "config": {"name": "d"}},
    ...                     {"class_name": "Functional", "config": {"name": "block", "layers": [
    ...                         {"class_name": "Dense", "config": {"name": "proj"}}]}}]}
    >>> paths = _nested_paths(tower)
    >>> paths["proj"], paths["d"], "nope" in paths
    (['block', 'proj'], ['d'], False)
    """
    paths: dict[str, list[str]] = {}
    level = [(config, [])]
    for _ in range(64):  # a crafted file's nesting is bounded
        below = []
        for model, above in level:
            entries = model.get("layers") if isinstance(model, dict) else None
            for entry in entries if isinstance(entries, list) else []:
                child = entry.get("config") if isinstance(entry, dict) else None
                if isinstance(child, dict) and isinstance(child.get("name"), str):
                    paths.setdefault(child["name"], [*above, child["name"]])
                    if registry.is_container(entry.get("class_name")):
                        below.append((child, [*above, child["name"]]))
        level = below
    return paths


def _owner(chain: list[str], class_name: str, config: dict) -> tuple[str, dict]:
    """Class and config of the sub-layer that owns a variable, following the chain of names through the config."""
    for name in chain:
        by_name = {c.get("name"): (e.get("class_name", ""), c) for e in config.get("layers", []) or []
                   for c in [e.get("config", {})]}
        if name in by_name:
            class_name, config = by_name[name]
            continue
        attribute = ("cell" if registry.spec(class_name).cell else "forward_layer" if name.startswith("forward_")
                     else "backward_layer" if name.startswith("backward_") else
                     keras3_groups.child_attribute(class_name, name) or "layer")
        class_name, config, _ = keras3_groups.child_identity(class_name, config, attribute)
    return class_name, config


def _layer_configs(config: dict | None) -> dict[str, tuple[str, dict]]:
    """Layer name -> (class, config) from a legacy model_config, whatever its era's shape."""
    if not config:
        return {}
    body = config.get("config", {})
    entries = body.get("layers", []) if isinstance(body, dict) else body  # Keras < 2.2 Sequential: a bare list
    result = {}
    for entry in entries:
        layer_config = entry.get("config", {})
        result[layer_config.get("name", "")] = (entry.get("class_name", ""), layer_config)
    return result


def _input_shapes(config: dict | None) -> Any:
    shapes = [c.get("batch_input_shape") or c.get("batch_shape") for _, c in _layer_configs(config).values()
              if c.get("batch_input_shape") or c.get("batch_shape")]
    return [describe.jsonable(s) for s in shapes] or None


def attribute_list(attrs: h5py.AttributeManager, name: str) -> list[str]:
    """A list attribute that Keras may have split into chunks (an HDF5 attribute holds at most 64 KB):
    ``name``, or ``name0``, ``name1``, ... in order (a nested model of a few hundred weights needs them).

    >>> import io
    >>> with h5py.File(io.BytesIO(), "w") as f:
    ...     f.attrs["weight_names0"], f.attrs["weight_names1"] = [b"a", b"b"], [b"c"]
    ...     attribute_list(f.attrs, "weight_names")
    ['a', 'b', 'c']
    """
    if name in attrs:
        return _strings(attrs[name])
    chunks, index = [], 0
    while f"{name}{index}" in attrs:
        chunks += _strings(attrs[f"{name}{index}"])
        index += 1
    return chunks


def _strings(values: Any) -> list[str]:
    return [v.decode("utf-8") if isinstance(v, bytes) else str(v) for v in np.atleast_1d(values).tolist()] \
        if len(np.atleast_1d(values)) else []


def _text_attr(attrs: h5py.AttributeManager, key: str) -> str | None:
    value = attrs.get(key)
    return value.decode("utf-8") if isinstance(value, bytes) else (str(value) if value is not None else None)


def _json_attr(attrs: h5py.AttributeManager, key: str) -> dict | None:
    text = _text_attr(attrs, key)
    try:
        return json.loads(text) if text else None
    except ValueError:
        return None
