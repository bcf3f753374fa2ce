"""Keras 3 weight files (``model.weights.h5`` inside ``.keras``, and ``.weights.h5``), read without Keras.

Keras 3 stores each layer's own variables as ``<path>/vars/0``, ``vars/1``, ... (trainable ones first,
as ``layer.weights`` lists them), under groups named by class and counter (``layers/dense_1``), not by
layer name, and sub-layers under their attribute names (``cell``, ``forward_layer``, ``query_dense``).
``config.json`` gives the layer order, names, classes and configs; the ``name`` attribute Keras writes on
each ``vars`` group gives sub-layer names. Variables have no names in the file, so roles come from the
layer registry (``converter.layers``: the order in which each class creates its variables); a class it does not
know gets roles ``var_0``, ``var_1``, ... and the manifest says so.
"""
from __future__ import annotations

import re
from collections.abc import Iterator
from dataclasses import replace

import h5py
import numpy as np

from .. import dtypes
from .. import layers as registry
from ..errors import InputInvalid
from ..naming import unique
from ..tensors import Layer, ModelWeights, Source, Tensor
from . import describe

class Store:
    """The groups of a Keras 3 weights file by their Keras 3 path, whichever Keras wrote them, and which of its
    datasets were read.

    tf.keras 2.13 and 2.14 wrote ``_layer_checkpoint_dependencies`` where Keras 3 writes ``layers``, under
    layer names; tf.keras 2.15 on Windows wrote each group as one flat name joined by backslashes
    (``layers\\dense``). Both are mapped to the Keras 3 path (``layers/dense``).
    """

    def __init__(self, handle: h5py.File) -> None:
        self.groups: dict[str, h5py.Group] = {}
        self.datasets: dict[str, str] = {}  # HDF5 name -> Keras 3 path, for every dataset of the file
        self.offsets: dict[str, int] = {}   # Keras 3 path -> where the dataset's data lies in the file
        self.read: set[str] = set()
        handle.visititems(self._index)

    def _index(self, name: str, item: h5py.HLObject) -> None:
        path = keras3_path(name)
        if isinstance(item, h5py.Group):
            self.groups.setdefault(path, item)
        else:
            self.datasets[item.name] = path
            offset = item.id.get_offset()
            if offset is not None:
                self.offsets[path] = offset

    def arrays(self, path: str) -> list[np.ndarray]:
        """The variables a layer at ``path`` holds itself (``<path>/vars/0``, ``1``, ...), marked as read."""
        group = self.groups.get(f"{path}/vars" if path else "vars")
        if group is None:
            return []
        datasets = [group[key] for key in sorted(group, key=_index_order) if isinstance(group[key], h5py.Dataset)]
        self.read.update(dataset.name for dataset in datasets)
        return [dataset_array(dataset) for dataset in datasets]

    def children(self, path: str) -> list[str]:
        """Names of the groups directly below ``path``."""
        prefix = f"{path}/" if path else ""
        return sorted({p[len(prefix):].split("/")[0] for p in self.groups if p.startswith(prefix) and p != path})

    def vars_name(self, path: str) -> str | None:
        """The layer name Keras wrote on a ``vars`` group, if any."""
        group = self.groups.get(f"{path}/vars" if path else "vars")
        value = group.attrs.get("name") if group is not None else None
        return value.decode() if isinstance(value, bytes) else value

    def first_offset(self, path: str) -> float:
        """Where the first dataset below ``path`` lies in the file (Keras writes layers in model order)."""
        prefix = f"{path}/"
        return min((offset for p, offset in self.offsets.items() if p.startswith(prefix)), default=float("inf"))

    def unread(self) -> list[str]:
        """Datasets no layer read, outside optimizer and metric state."""
        return sorted(name for name, path in self.datasets.items()
                      if name not in self.read and path.split("/")[0] not in NOT_WEIGHTS)


NOT_WEIGHTS = ("optimizer", "metrics")  # top-level groups of training state, never exported


def keras3_path(name: str) -> str:
    r"""A group's Keras 3 path, whichever Keras named it.

    >>> keras3_path("layers\\functional\\layers\\dense/vars"), keras3_path("_layer_checkpoint_dependencies/dense/vars")
    ('layers/functional/layers/dense/vars', 'layers/dense/vars')
    """
    parts = name.replace("\\", "/").split("/")
    return "/".join("layers" if part == "_layer_checkpoint_dependencies" else part for part in parts)


def _index_order(key: str) -> tuple[int, str]:
    return (int(key), "") if key.isdigit() else (1 << 62, key)  # "10" after "9"


def read(handle: h5py.File, config: dict | None, file_name: str, source: Source) -> ModelWeights:
    """Every weight in a Keras 3 weights file, grouped by top-level layer, in model order.

    Every dataset of the file outside optimizer and metric state must be read by some layer: one left
    over means a layout this reader does not know, and is an error rather than a silently smaller export.
    """
    handle = Store(handle)
    model_class = (config or {}).get("class_name", "")
    model_config = (config or {}).get("config", {})
    notes: list[str] = []
    entries = list(_layer_entries(handle, "", model_class, model_config) if config else _entries_from_groups(handle, "", notes))
    tensors, layers, used = [], [], set()
    for index, (path, class_name, layer_config, layer_name) in enumerate(entries):
        mine = []
        for parts, owner, role, array in _walk(handle, path, class_name, layer_config, notes):
            name = unique("/".join([layer_name, *parts, role]), used)
            mine.append(Tensor(name, layer_name, role, index, describe.trainable(role, layer_config, class_name), array,
                               owner_class=owner, kind=describe.kind(role, class_name)))
        tensors += mine
        layers.append(Layer(index, layer_name, class_name, describe.summary(layer_config), None, None,
                            tuple(t.name for t in mine)))
    name = model_config.get("name") or handle.vars_name("") or file_name.split(".")[0]
    note = "; ".join(dict.fromkeys(notes)) or None
    refuse_unread(handle.unread(), file_name, "are in a layout the direct reader does not know")
    return ModelWeights(name, model_class, None, None, tuple(layers), tuple(tensors),
                        replace(source, note=note) if note else source, config=config if isinstance(config, dict) else None)


def _layer_entries(handle: Store, path: str, class_name: str, config: dict) -> Iterator[tuple]:
    """(group path, class, config, name) of a container's layers, named the way Keras saved them: Keras 3
    by class and counter (``layers/dense_1``), tf.keras 2.13/2.14 by layer name."""
    counters: dict[str, int] = {}
    entries = [entry for entry in config.get("layers", [])
               if not (class_name == registry.SEQUENTIAL and entry.get("class_name") == registry.INPUT)]  # none there
    by_counter = _groups_by_counter(handle, path, entries)
    for entry in entries:
        entry_class = entry.get("class_name", "")
        snake = snake_case(entry_class)
        group = _counted(snake, counters)
        layer_config = entry.get("config", {})
        name = layer_config.get("name", group)
        by_name = f"{path}layers/{name}"
        chosen = f"{path}layers/{group}"
        if chosen not in handle.groups and by_name in handle.groups:  # tf.keras 2.13/2.14: by layer name
            chosen = by_name
        elif snake in by_counter:
            chosen = f"{path}layers/{by_counter[snake][counters[snake]]}"
        yield chosen, entry_class, layer_config, name


def _groups_by_counter(handle: Store, path: str, entries: list) -> dict[str, list[str]]:
    """Groups named by class and counter with gaps in the counters (tf.keras 2.13/2.14 counted every layer it ever
    built: ``dense``, ``dense_2``, ``dense_4``), in counter order, for each class that has exactly as many such
    groups as layers: the k-th layer of a class is then its k-th group, as Keras named them."""
    present = handle.children(f"{path}layers")
    wanted: dict[str, int] = {}
    for entry in entries:
        snake = snake_case(entry.get("class_name", ""))
        wanted[snake] = wanted.get(snake, 0) + 1
    found = {}
    for snake, count in wanted.items():
        groups = sorted((g for g in present if re.fullmatch(rf"{re.escape(snake)}(_\d+)?", g)), key=_natural)
        consecutive = [snake] + [f"{snake}_{i}" for i in range(1, count)]
        if len(groups) == count and groups != consecutive:
            found[snake] = groups
    return found


def _entries_from_groups(handle: Store, path: str, notes: list[str]) -> Iterator[tuple]:
    """Without a configuration (a ``.weights.h5`` file, or a container inside a custom layer): layers by
    group, classes guessed from group names.

    The file does not record the layers' order (HDF5 lists groups by name), but Keras writes them in
    model order into a fresh file, so each layer's first data offset gives that order back.
    """
    base = f"{path}/layers" if path else "layers"
    groups = handle.children(base)
    if groups:
        if path:
            notes.append(f"layers of {path}, which have no configuration: their order taken from where their data "
                         "lies in the file")
        else:
            notes.append("a weights-only file: layer order taken from where each layer's data lies in the file, which "
                         "is not always the model's (load by name, not with model.set_weights in this order)")
    for group in sorted(groups, key=lambda g: (handle.first_offset(f"{base}/{g}"), _natural(g))):
        yield f"{base}/{group}", guess_class(group), {}, handle.vars_name(f"{base}/{group}") or group


def guess_class(name: str) -> str:
    """A known layer class from a Keras-made name (``dense_3``, ``forward_lstm``, ``lstm_cell``), or ""."""
    return _CLASS_BY_SNAKE.get(re.sub(r"^(forward|backward)_|_\d+$", "", name), "")


def _walk(handle: Store, path: str, class_name: str, config: dict, notes: list[str]) -> Iterator[tuple]:
    """(sub-layer names, owner class, role, array) for a layer's own variables, then its sub-layers'."""
    arrays = handle.arrays(path)
    for role, array in zip(_roles(class_name, config, len(arrays), notes), arrays, strict=True):
        yield [], class_name, role, array
    for child, child_class, child_config, child_name in _children(handle, path, class_name, config, notes):
        for parts, owner, role, array in _walk(handle, child, child_class, child_config, notes):
            yield [child_name, *parts], owner, role, array


def _children(handle: Store, path: str, class_name: str, config: dict, notes: list[str]) -> Iterator[tuple]:
    if "layers" in config:
        yield from _layer_entries(handle, f"{path}/", class_name, config)
        return
    if "layers" in handle.children(path):  # a container without configuration (a Sequential inside a custom layer)
        yield from _entries_from_groups(handle, path, notes)
    present = [name for name in handle.children(path) if name not in ("vars", "layers")]
    order = registry.spec(class_name).children or None
    if order is None and len(present) > 1:
        notes.append(f"order of the sub-layers of {class_name or 'an unknown layer class'} taken from the file")
    for attribute in [n for n in (order or ()) if n in present] + sorted(n for n in present if n not in (order or ())):
        child_path = f"{path}/{attribute}"
        child_class, child_config, default_name = child_identity(class_name, config, attribute)
        name = handle.vars_name(child_path) or default_name
        yield child_path, child_class or guess_class(name), child_config, name


def child_identity(parent: str, config: dict, attribute: str) -> tuple[str, dict, str]:
    """Class, config and fallback name of a sub-layer, from its parent's class and config."""
    spec = registry.spec(parent)
    inner = config.get("layer") if isinstance(config.get("layer"), dict) else {}
    if attribute == "cell":  # every recurrent cell creates kernel, recurrent_kernel, bias
        cell = spec.cell or registry.DEFAULT_CELL
        return cell, config, snake_case(cell) if spec.cell else attribute
    if attribute in ("forward_layer", "backward_layer", "layer") and inner:
        inner_config = config.get("backward_layer") if attribute == "backward_layer" and config.get("backward_layer") else inner
        name = inner_config.get("config", {}).get("name", attribute)
        prefix = {"forward_layer": "forward_", "backward_layer": "backward_"}.get(attribute, "")
        return inner_config.get("class_name", ""), inner_config.get("config", {}), prefix + name
    if spec.child_class and attribute in spec.child_names:
        return spec.child_class, {"use_bias": config.get("use_bias", True)}, spec.child_names[attribute]
    return "", {}, attribute


def child_attribute(parent: str, name: str) -> str | None:
    """The attribute under which ``parent`` keeps a sub-layer Keras names ``name`` (attention's ``query`` ->
    ``query_dense``), where the class fixes it."""
    return next((attribute for attribute, given in registry.spec(parent).child_names.items() if given == name), None)


def _roles(class_name: str, config: dict, count: int, notes: list[str]) -> list[str]:
    roles = list(registry.roles(class_name, config))
    if len(roles) == count:
        return roles
    if not config and roles[count:] == ["bias"]:  # no config to ask: a missing last bias is use_bias=False
        return roles[:count]
    if count:
        notes.append(f"variable roles of {class_name or 'an unknown layer class'} not known: named var_0, var_1, ...")
    return [f"var_{i}" for i in range(count)]


def dataset_array(dataset: h5py.Dataset) -> np.ndarray:
    """A dataset's values; bfloat16 (stored by Keras as opaque 2-byte data) comes back as bfloat16."""
    array = dataset[()]
    if dataset.attrs.get("dtype") in ("bfloat16", b"bfloat16"):
        array = np.asarray(array).view(dtypes.by_name("bfloat16").numpy)
    return np.asarray(array)


def refuse_unread(unread: list[str], file_name: str, why: str) -> None:
    """Fail naming the datasets no tensor holds: an export must never be silently smaller than the file."""
    if unread:
        shown = ", ".join(unread[:5]) + (f" and {len(unread) - 5} more" if len(unread) > 5 else "")
        raise InputInvalid(f"{file_name}: {len(unread)} datasets of the weights {why}, so no tensor would hold "
                           f"them: {shown}", hint="Nothing was exported rather than an export without them; try "
                                                  "--reader keras, and report the file's layout.")


def snake_case(name: str) -> str:
    """Keras's own class-name-to-group-name rule (keras.src.utils.naming.to_snake_case).

    >>> snake_case("LSTMCell"), snake_case("MultiHeadAttention"), snake_case("Conv2D")
    ('lstm_cell', 'multi_head_attention', 'conv2d')
    """
    name = re.sub(r"\W+", "", name)
    name = re.sub("(.)([A-Z][a-z]+)", r"\1_\2", name)
    return re.sub("([a-z])([A-Z])", r"\1_\2", name).lower()


def _counted(name: str, counters: dict[str, int]) -> str:
    if name in counters:
        counters[name] += 1
        return f"{name}_{counters[name]}"
    counters[name] = 0
    return name


def _natural(text: str) -> tuple:
    match = re.fullmatch(r"(.*?)(?:_(\d+))?", text)
    return match.group(1), int(match.group(2) or -1)


# The classes a group's name can tell: those with weights of their own, a cell, sub-layers, or layers inside.
_CLASS_BY_SNAKE = {snake_case(name): name for name in registry.classes()
                   if (spec := registry.spec(name)).roles or spec.cell or spec.children or spec.container}
