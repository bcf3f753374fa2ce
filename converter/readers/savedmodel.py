"""TensorFlow SavedModel folders: variables from the checkpoint, grouped by layer with role names.

A SavedModel folder is untrusted input, as every model is: no graph function is loaded or run (TensorFlow reads
only the checkpoint, whose format is its own), every file read must be a regular file of the folder itself (a
symbolic link would make us read another file), and the variables may not declare more bytes than the data files
hold (TensorFlow allocates what the index declares before it reads: a crafted index could ask for terabytes).

Layer names, classes and configs (and the model's, for the forward pass) come from ``keras_metadata.pb`` (written
by tf.keras from TensorFlow 2.5 on), or before 2.5 from each Keras object's metadata inside ``saved_model.pb``; the
checkpoint's object graph gives each layer's variables in the order the layer tracks them, non-trainable ones
(BatchNorm statistics) right beside their layer. Optimizer slots are skipped.
"""
from __future__ import annotations

import json
import math
import os
import re
from dataclasses import replace
from pathlib import Path
from typing import Any

from ..errors import InputInvalid, UnsafeInput
from ..naming import unique
from ..tensors import Layer, ModelWeights, Source, Tensor
from . import describe
from .base import ReadOptions
from .keras import import_keras, native_stderr_silenced

NAME = "savedmodel"
KINDS = frozenset({"savedmodel"})
DESCRIPTION = "the SavedModel checkpoint reader"
_NOT_LAYERS = {"variables", "trainable_variables", "non_trainable_variables", "regularization_losses",
               "keras_api", "layer_metrics", "optimizer", "_default_save_signature"}


def prepare() -> None:
    """Import TensorFlow (through Keras, quietly), which reads the checkpoint."""
    import_keras()


def read(folder: Path, kind: str, source: Source, options: ReadOptions = ReadOptions()) -> ModelWeights:
    """Every variable of a SavedModel's Keras layers, in layer order (no graph function is loaded or run)."""
    index = folder / "variables" / "variables.index"
    if not index.is_file():
        raise InputInvalid(f"{folder.name} is a SavedModel folder without variables/variables.index",
                           hint="Copy the whole SavedModel folder, including its variables/ subfolder.")
    _refuse_foreign_files(folder)
    checkpoint, graph = _checkpoint(folder / "variables" / "variables")
    metadata = _keras_metadata(folder / "keras_metadata.pb")  # damage in it is reported whatever the layout
    root = graph.nodes[0]
    layer_refs = sorted((int(c.local_name.split("-")[1]), c.node_id) for c in root.children
                        if c.local_name.startswith("layer-"))
    if not layer_refs:  # exported by Keras 3 (model.export): no layer objects, only a variables list
        return _read_variable_list(checkpoint, graph, folder, source)
    metadata = metadata or _object_graph_metadata(folder / "saved_model.pb")  # before TensorFlow 2.5
    metadata = {path: _untupled(found) for path, found in metadata.items()}
    by_node = {}  # a layer is listed as layer-K and, with weights, also as layer_with_weights-J
    for child in root.children:
        by_node.setdefault(child.node_id, {}).update(metadata.get(f"root.{child.local_name}", {}))
    tensors, layers, used = [], [], set()
    for index_in_model, (position, node_id) in enumerate(layer_refs):
        info = by_node.get(node_id, {})
        layer_name = info.get("name") or f"layer_{position}"
        mine = []
        for full_name, key in _variables(graph, node_id, set()):
            parts = full_name.split(":")[0].split("/")
            chain = parts[parts.index(layer_name) + 1:] if layer_name in parts[:-1] else parts[-1:]
            name = unique("/".join([layer_name, *chain]), used)
            role = chain[-1]
            class_name = info.get("class_name", "")
            trainable = describe.trainable(role, info.get("config") or {}, class_name)
            mine.append(Tensor(name, layer_name, role, index_in_model, trainable, checkpoint.get_tensor(key),
                               owner_class=class_name, kind=describe.kind(role, class_name)))
        tensors += mine
        layers.append(Layer(index_in_model, layer_name, info.get("class_name", ""),
                            describe.summary(info.get("config", {}) or {}), None, None, tuple(t.name for t in mine)))
    model_info = metadata.get("root", {})
    config = model_info.get("config")
    serialized = {"class_name": model_info.get("class_name", ""), "config": config} if isinstance(config, dict) else None
    return ModelWeights(model_info.get("name") or folder.name, model_info.get("class_name", ""), None, None,
                        tuple(layers), tuple(tensors), source, config=serialized)


def _read_variable_list(checkpoint: Any, graph: Any, folder: Path, source: Source) -> ModelWeights:
    """Keras 3 exports track ``variables`` in model order; each variable's path names its layer."""
    listing = next((c.node_id for c in graph.nodes[0].children if c.local_name == "variables"), None)
    if listing is None:
        raise InputInvalid(f"{folder.name}: the SavedModel has neither Keras layers nor a variables list",
                           hint="Save the model with Keras (model.save or model.export).")
    entries = sorted(graph.nodes[listing].children, key=lambda c: int(c.local_name))
    values = [next(a for a in graph.nodes[child.node_id].attributes if a.name == "VARIABLE_VALUE") for child in entries]
    paths = [value.full_name.split(":")[0] for value in values]
    model_name = _model_name_in_front(paths, _call_scopes(folder / "saved_model.pb"))
    if model_name:
        paths = [path.split("/", 1)[1] for path in paths]
    tensors, used, order = [], set(), {}
    for value, path in zip(values, paths):
        layer_name = path.split("/")[0]
        index = order.setdefault(layer_name, len(order))
        role = path.split("/")[-1]
        tensors.append(Tensor(unique(path, used), layer_name, role, index, describe.trainable(role, {}),
                              checkpoint.get_tensor(value.checkpoint_key)))
    layers = tuple(Layer(i, name, "", {}, None, None, tuple(t.name for t in tensors if t.layer == name))
                   for name, i in order.items())
    note = "SavedModel without Keras layer metadata: layers and order taken from the exported variables list"
    return ModelWeights(model_name or folder.name, "", None, None, layers, tuple(tensors), replace(source, note=note))


def _model_name_in_front(paths: list[str], scopes: set[str]) -> str | None:
    """The model's own name, when every variable path starts with it, else None.

    Keras 3 gives a Sequential model's variables paths like ``sm/d/kernel``, a functional model's start at
    its layers (``d/kernel``, ``inner/e/kernel``). The exported call graph's ops sit under the model's name
    scope either way (``sm_1/d_1/MatMul``): a first component shared by every path that is also the graph's
    only first scope is the model's name, not a layer's.

    >>> _model_name_in_front(["sm/d/kernel", "sm/inner/e/kernel"], {"sm_1"})
    'sm'
    >>> _model_name_in_front(["inner/e/kernel", "inner/e/bias"], {"sm_1"}) is None  # one nested model's layers
    True
    """
    firsts = {path.split("/")[0] for path in paths}
    if len(firsts) != 1 or any(path.count("/") < 2 for path in paths) or len(scopes) != 1:
        return None
    first = firsts.pop()
    return first if re.fullmatch(re.escape(first) + r"(_\d+)?", next(iter(scopes))) else None


def _call_scopes(path: Path) -> set[str]:
    """First name scopes of the variable reads in the exported functions (not the save and restore ones)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(path.read_bytes())
    except Exception:  # a damaged graph only costs the name check; the checkpoint holds the weights
        return set()
    return {node.name.split("/")[0] for graph in saved.meta_graphs for function in graph.graph_def.library.function
            if "_traced_" not in function.signature.name
            for node in function.node_def if node.op == "ReadVariableOp" and "/" in node.name}


def _variables(graph: Any, node_id: int, seen: set[int]) -> list[tuple[str, str]]:
    """(full name, checkpoint key) of the variables under a node: its own first, then sub-layers'."""
    own, nested = [], []
    for child in graph.nodes[node_id].children:
        if child.local_name in _NOT_LAYERS or child.local_name.startswith("_") or child.node_id in seen:
            continue
        seen.add(child.node_id)
        node = graph.nodes[child.node_id]
        values = [a for a in node.attributes if a.name == "VARIABLE_VALUE"]
        if values:
            own.append((values[0].full_name or child.local_name, values[0].checkpoint_key))
        else:
            nested += _variables(graph, child.node_id, seen)
    return own + nested


def _checkpoint(prefix: Path) -> tuple[Any, Any]:
    import_keras()  # sets up TensorFlow quietly
    with native_stderr_silenced():
        import tensorflow as tf
        from tensorflow.core.protobuf import trackable_object_graph_pb2
    try:
        checkpoint = tf.train.load_checkpoint(str(prefix))
        _refuse_oversized(checkpoint, prefix.parent, tf.string)
        graph = trackable_object_graph_pb2.TrackableObjectGraph()
        graph.ParseFromString(checkpoint.get_tensor("_CHECKPOINTABLE_OBJECT_GRAPH"))
    except UnsafeInput:
        raise
    except Exception as error:  # TensorFlow raises its own error types for damaged checkpoints
        raise InputInvalid(f"cannot read the SavedModel checkpoint {prefix.parent.parent.name}/variables: "
                           f"{type(error).__name__}: {' '.join(str(error).split())[:200]}",
                           hint="The folder is damaged or incomplete; copy it again.") from None
    return checkpoint, graph


# The files of a SavedModel the reader opens: beside saved_model.pb, and in variables/ (the index and data shards).
_READ_FILES = ("saved_model.pb", "keras_metadata.pb")
_VARIABLES_FILES = re.compile(r"variables\.(index|data-\d+-of-\d+)")


def _refuse_foreign_files(folder: Path) -> None:
    """Every file the reader (or TensorFlow's checkpoint reader) opens must be a regular file of the folder itself:
    a symbolic link, or a FIFO or device, in a SavedModel would make the export read something else."""
    variables = folder / "variables"
    found = [folder / name for name in _READ_FILES if os.path.lexists(folder / name)] + [variables]
    if not variables.is_symlink() and variables.is_dir():
        found += [path for path in variables.iterdir() if _VARIABLES_FILES.fullmatch(path.name)]
    for path in found:
        where = path.relative_to(folder).as_posix()
        if path.is_symlink():
            raise UnsafeInput(f"{folder.name}: {where} is a symbolic link (to {os.readlink(path)!r}); a SavedModel's "
                              "files are read only from the folder itself",
                              hint="Copy the SavedModel with its links resolved (cp -rL) if you trust where they point.")
        if path is not variables and not path.is_file():
            raise UnsafeInput(f"{folder.name}: {where} is not a regular file (a FIFO or device is never opened)",
                              hint="Copy the whole SavedModel folder again.")


def _refuse_oversized(checkpoint: Any, variables: Path, string_dtype: Any) -> None:
    """The checkpoint's variables may together declare no more bytes than its data shards hold: TensorFlow allocates
    each tensor as its index declares before it reads the data, so a crafted index could ask for terabytes."""
    held = sum(path.stat().st_size for path in variables.iterdir() if path.name.startswith("variables.data-"))
    dtypes = checkpoint.get_variable_to_dtype_map()
    declared, largest = 0, ("", 0)
    for name, shape in checkpoint.get_variable_to_shape_map().items():
        dtype = dtypes.get(name)
        if dtype is None or dtype == string_dtype:  # strings hold what the data file gives them
            continue
        size = math.prod(int(n) for n in shape) * dtype.size
        declared += size
        largest = max(largest, (name, size), key=lambda pair: pair[1])
    if declared > held:
        raise UnsafeInput(f"{variables.parent.name}/variables: the checkpoint declares {declared:,} bytes of "
                          f"variables (the largest, {largest[0]!r}, {largest[1]:,}), more than the {held:,} bytes its "
                          "data files hold", hint="The checkpoint is truncated or crafted; copy the SavedModel again.")


def _keras_metadata(path: Path) -> dict[str, dict]:
    """node_path -> metadata JSON from keras_metadata.pb (SavedMetadata: repeated SavedObject nodes = 1)."""
    if not path.is_file():
        return {}
    try:
        return _metadata_nodes(path.read_bytes())
    except (IndexError, ValueError, TypeError, AttributeError):  # truncated, or not the message it should be
        raise InputInvalid(f"{path.parent.name}/keras_metadata.pb is damaged or truncated",
                           hint="Copy the whole SavedModel folder again.") from None


def _object_graph_metadata(path: Path) -> dict[str, dict]:
    """node_path -> metadata JSON for the root and its children, where TensorFlow before 2.5 kept it: in each Keras
    object's ``user_object.metadata`` inside saved_model.pb (there is no keras_metadata.pb yet)."""
    from tensorflow.core.protobuf import saved_model_pb2

    saved = saved_model_pb2.SavedModel()
    try:
        saved.ParseFromString(path.read_bytes())
    except Exception:  # TensorFlow's own error types; the checkpoint, read already, holds the weights
        raise InputInvalid(f"{path.parent.name}/saved_model.pb is damaged or truncated",
                           hint="Copy the whole SavedModel folder again.") from None
    if not saved.meta_graphs:
        return {}
    nodes = saved.meta_graphs[0].object_graph_def.nodes
    if not nodes:
        return {}
    paths = [("root", 0)] + [(f"root.{child.local_name}", child.node_id) for child in nodes[0].children]
    result = {}
    for node_path, node_id in paths:
        text = nodes[node_id].user_object.metadata if 0 <= node_id < len(nodes) else ""
        try:
            found = json.loads(text) if text else None
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
            continue
        if isinstance(found, dict):
            result[node_path] = found
    return result


def _untupled(value: Any, depth: int = 0) -> Any:
    """The metadata's JSON with tf.keras's tuples (``{"class_name": "__tuple__", "items": [...]}``) as the lists
    a saved configuration holds elsewhere (``batch_input_shape: [null, 8, 8, 2]``).

    >>> _untupled({"batch_input_shape": {"class_name": "__tuple__", "items": [None, 8]}, "n": [1, {"a": 2}]})
    {'batch_input_shape': [None, 8], 'n': [1, {'a': 2}]}
    """
    if depth > 200:  # deeper than any model's configuration: a crafted file, left as it is
        return value
    if isinstance(value, dict):
        if value.get("class_name") == "__tuple__" and isinstance(value.get("items"), list):
            return [_untupled(item, depth + 1) for item in value["items"]]
        return {key: _untupled(item, depth + 1) for key, item in value.items()}
    if isinstance(value, list):
        return [_untupled(item, depth + 1) for item in value]
    return value


def _metadata_nodes(data: bytes) -> dict[str, dict]:
    result = {}
    for node in _fields(data).get(1, []):
        fields = _fields(node)
        node_path = fields.get(3, [b""])[0].decode("utf-8", "replace")
        try:
            result[node_path] = json.loads(fields.get(5, [b"{}"])[0])
        except (ValueError, RecursionError):  # not JSON, or nested deeper than Python parses
            continue
    return result


def _fields(data: bytes) -> dict[int, list]:
    """The length-delimited and varint fields of one protobuf message (wire types 0 and 2 only)."""
    fields: dict[int, list] = {}
    position = 0
    while position < len(data):
        key, position = _varint(data, position)
        number, wire_type = key >> 3, key & 7
        if wire_type == 0:
            value, position = _varint(data, position)
        elif wire_type == 2:
            length, position = _varint(data, position)
            if position + length > len(data):
                raise IndexError("a field runs past the end of the data")
            value, position = data[position:position + length], position + length
        else:
            raise ValueError(f"wire type {wire_type}")
        fields.setdefault(number, []).append(value)
    return fields


def _varint(data: bytes, position: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        byte = data[position]
        position += 1
        result |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return result, position
