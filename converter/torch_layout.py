"""``--layout torch``: every tensor under the name and in the layout of the equivalent ``torch.nn`` module's
``state_dict()``, so that ``model.load_state_dict(safetensors.torch.load_file(path), strict=True)`` works.

The equivalent network is the natural one: channels-first feature maps through convolutions, pooling and
normalization, then ``nn.Flatten()``; RNNs with ``batch_first=True``. Each stored tensor records its Keras
name (``keras_name``) and what was done to it (``transform``, ``+``-joined steps):

- ``permute:A,B,...``: the Keras array's axes reordered (numpy ``transpose``);
- ``depthwise``: a depthwise kernel ``(k..., in, m)`` as ``[in * m, 1, k...]``;
- ``gates:1,0,2``: a recurrent tensor's gate blocks reordered (GRU z,r,h -> r,z,n);
- ``row:N``: row N of a stacked tensor (a GRU's two bias rows);
- ``flatten:S,C``: the input rows of a Dense after a Flatten of a channels-last map of S positions and C
  channels, put in channels-first order (torch flattens (C, H, W));
- ``zeros``, ``ones``, ``count``: a tensor torch has and Keras does not (an LSTM's ``bias_hh``, a
  BatchNorm without ``center``/``scale``, ``num_batches_tracked``);
- ``keras``: a tensor of a layer with no torch counterpart, kept as Keras holds it under ``<layer>.<role>``.

See docs/torch.md for the table and what to set on the torch side.
"""
from __future__ import annotations

import dataclasses
import math
from collections.abc import Sequence

import numpy as np

from . import layers, transforms
from .errors import InputInvalid
from .cgen import graph as graphs
from .cgen.codegen import shapes_of
from .tensors import ModelWeights, Tensor
from .transforms import Step

def apply(model: ModelWeights, tensors: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """The model's tensors as torch modules hold them, in model order."""
    if model.config is None:
        raise InputInvalid(f"{model.source.file or model.name}: --layout torch needs the model's configuration (layer "
                           "classes and options), which this input does not hold",
                           hint="Export a model saved whole (model.save), or use --layout keras.")
    graph = graphs.from_config(model.config)
    configs = {node.name.split("@")[0]: (node.class_name, node.config) for node in graph.nodes}
    flattened = _flattened_inputs(graph, model)
    out: list[Tensor] = []
    problems: list[str] = []
    for tensor in tensors:
        try:
            out += _map(tensor, configs, flattened)
        except _Unmappable as why:
            problems.append(str(why))
    if problems:
        raise InputInvalid("--layout torch cannot map this model exactly: " + "; ".join(dict.fromkeys(problems)),
                           hint="Use --layout keras for these weights; torch modules cannot compute what these layers do.")
    _refuse_clashes(out)
    return tuple(out)


def _refuse_clashes(stored: Sequence[Tensor]) -> None:
    """Two Keras tensors whose torch names are one (a layer named ``inner.d`` beside layer ``d`` inside ``inner``):
    refused naming both, since a state dict holds one tensor per name."""
    first: dict[str, Tensor] = {}
    for tensor in stored:
        other = first.setdefault(tensor.name, tensor)
        if other is not tensor:
            raise InputInvalid(f"--layout torch maps two tensors to the name {tensor.name!r}: {other.keras_name!r} and "
                               f"{tensor.keras_name!r}",
                               hint="Rename one of the layers in Keras, or use --layout keras (names with '/').")


class _Unmappable(Exception):
    pass


def _owner(tensor: Tensor) -> tuple[str, str]:
    """(the Keras layer path that owns the tensor, the rest): ``lstm/lstm_cell/kernel`` -> (``lstm``, ...)."""
    path, _, _ = tensor.name.rpartition("/")
    return path, tensor.role


def _torch(path: str, parameter: str) -> str:
    return ".".join([*path.split("/"), parameter])


def _with(tensor: Tensor, name: str, array: np.ndarray, *steps: Step) -> Tensor:
    """The record as torch stores it, with the steps that made it from the Keras array (``transforms``)."""
    return dataclasses.replace(tensor, name=name, array=array, transform=transforms.join(list(steps)),
                               keras_name=tensor.name)


def _permute(order) -> Step:
    return Step("permute", tuple(int(axis) for axis in order))


def _map(tensor: Tensor, configs: dict, flattened: dict) -> list[Tensor]:
    path, role = _owner(tensor)
    cls = tensor.owner_class
    w = tensor.array
    if layers.spec(cls) is not None and layers.spec(cls).layer:
        return _recurrent(tensor, path, role, configs)
    config = configs.get(path, ("", {}))[1]
    if cls == "Dense" and role == "kernel":
        if path in flattened:
            positions, channels = flattened[path]
            if positions * channels != w.shape[0]:  # the configuration and the weights disagree (a crafted file)
                raise _Unmappable(f"layer '{path}' (Dense): {w.shape[0]} inputs, its Flatten gives {positions * channels}")
            rows = w.reshape(positions, channels, -1).transpose(1, 0, 2).reshape(w.shape)
            return [_with(tensor, _torch(path, "weight"), rows.T, Step("flatten", (positions, channels)),
                          _permute((1, 0)))]
        return [_with(tensor, _torch(path, "weight"), w.T, _permute((1, 0)))]
    if cls in ("Conv1D", "Conv2D", "Conv3D") and role == "kernel":
        if int(config.get("groups", 1)) != 1:
            raise _Unmappable(f"layer '{path}' ({cls}): groups={config['groups']}")
        order = (w.ndim - 1, w.ndim - 2, *range(w.ndim - 2))
        return [_with(tensor, _torch(path, "weight"), w.transpose(order), _permute(order))]
    if cls in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose") and role == "kernel":
        order = (w.ndim - 1, w.ndim - 2, *range(w.ndim - 2))  # (k..., out, in) -> (in, out, k...)
        return [_with(tensor, _torch(path, "weight"), w.transpose(order), _permute(order))]
    if (cls.startswith("DepthwiseConv") and role == "kernel") or role == "depthwise_kernel":
        rank = w.ndim - 2
        channels = w.reshape(*w.shape[:rank], -1)  # (k..., in * m): output channel c * m + mm
        stored = channels.transpose(rank, *range(rank))[:, None]
        name = _torch(path, "depthwise.weight" if role == "depthwise_kernel" else "weight")
        return [_with(tensor, name, stored, Step("depthwise"))]
    if role == "pointwise_kernel":
        order = (w.ndim - 1, w.ndim - 2, *range(w.ndim - 2))
        return [_with(tensor, _torch(path, "pointwise.weight"), w.transpose(order), _permute(order))]
    if role == "bias" and cls.startswith("SeparableConv"):
        return [_with(tensor, _torch(path, "pointwise.bias"), w)]
    if cls == "BatchNormalization":
        return _normalization(tensor, path, role, config, batch=True)
    if cls == "LayerNormalization":
        return _normalization(tensor, path, role, config, batch=False)
    if cls == "Embedding" and role == "embeddings":
        return [_with(tensor, _torch(path, "weight"), w)]
    if role == "bias" and cls in ("Dense", "Conv1D", "Conv2D", "Conv3D", "Conv1DTranspose", "Conv2DTranspose",
                                  "Conv3DTranspose", "DepthwiseConv1D", "DepthwiseConv2D"):
        return [_with(tensor, _torch(path, "bias"), w)]
    return [_with(tensor, _torch(path, role), w, Step("keras"))]  # no torch counterpart: kept as Keras holds it


_NORM = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def _normalization(tensor: Tensor, path: str, role: str, config: dict, batch: bool) -> list[Tensor]:
    w = tensor.array
    stored = [_with(tensor, _torch(path, _NORM.get(role, role)), w)]
    # Keras keeps gamma, beta, moving_mean, moving_variance in that order; what torch has besides is added
    # after the last of them the layer holds, so that the module's state_dict is complete.
    if role == "moving_variance" or (not batch and role == ("beta" if config.get("center", True) else "gamma")):
        if not config.get("scale", True):
            stored.insert(0, _with(tensor, _torch(path, "weight"), np.ones(w.shape, w.dtype), Step("ones")))
        if not config.get("center", True):
            stored.insert(1 if not config.get("scale", True) else 0,
                          _with(tensor, _torch(path, "bias"), np.zeros(w.shape, w.dtype), Step("zeros")))
        if batch:
            stored.append(_with(tensor, _torch(path, "num_batches_tracked"), np.array(0, np.int64), Step("count")))
    return stored


def _recurrent(tensor: Tensor, path: str, role: str, configs: dict) -> list[Tensor]:
    """A cell's tensors as torch's RNN parameters of the layer (or of the Bidirectional around it)."""
    kind = layers.spec(tensor.owner_class).layer
    layer_path, _, _ = path.rpartition("/")  # lstm/lstm_cell -> lstm
    suffix, owner = "_l0", layer_path
    parent, _, last = layer_path.rpartition("/")
    if parent and configs.get(parent, ("",))[0] == "Bidirectional":
        owner = parent
        suffix = "_l0_reverse" if last.startswith("backward_") else "_l0"
        config = (configs[parent][1].get("backward_layer") if last.startswith("backward_") else None) or \
            configs[parent][1]["layer"]
        config = config.get("config", {})
    else:
        config = configs.get(layer_path, ("", {}))[1]
    _check_activations(kind, config, owner, inside_bidirectional=owner != layer_path)
    gates = layers.gates(kind)
    order = (1, 0, 2) if kind == "GRU" else tuple(range(gates))
    reorder = [] if order == tuple(range(gates)) else [Step("gates", order)]  # steps in the order done

    def blocks(array: np.ndarray, axis: int) -> np.ndarray:
        if array.shape[axis] % gates:
            raise _Unmappable(f"layer '{owner}' ({kind}): a weight of shape {list(array.shape)}, not {gates} gates")
        parts = np.split(array, gates, axis=axis)
        return np.concatenate([parts[i] for i in order], axis=axis)

    w = tensor.array
    name = lambda parameter: _torch(owner, parameter + suffix)  # noqa: E731
    if role in ("kernel", "recurrent_kernel"):
        parameter = "weight_ih" if role == "kernel" else "weight_hh"
        return [_with(tensor, name(parameter), blocks(w, 1).T, *reorder, _permute((1, 0)))]
    if role != "bias":
        raise _Unmappable(f"layer '{owner}' ({kind}): a weight '{role}' torch does not have")
    if kind == "GRU":
        if w.ndim != 2:
            raise _Unmappable(f"layer '{owner}' (GRU): reset_after=False (torch's GRU resets after the product)")
        return [_with(tensor, name("bias_ih"), blocks(w[0], 0), Step("row", (0,)), *reorder),
                _with(tensor, name("bias_hh"), blocks(w[1], 0), Step("row", (1,)), *reorder)]
    return [_with(tensor, name("bias_ih"), w), _with(tensor, name("bias_hh"), np.zeros_like(w), Step("zeros"))]


def _check_activations(kind: str, config: dict, owner: str, inside_bidirectional: bool) -> None:
    activation = config.get("activation", "tanh")
    allowed = ("tanh", "relu") if kind == "SimpleRNN" else ("tanh",)
    if activation not in allowed:
        raise _Unmappable(f"layer '{owner}' ({kind}): activation {activation!r} (torch's is {' or '.join(allowed)})")
    if kind != "SimpleRNN" and config.get("recurrent_activation", "sigmoid") != "sigmoid":
        raise _Unmappable(f"layer '{owner}' ({kind}): recurrent_activation {config['recurrent_activation']!r} "
                          "(torch's is sigmoid)")
    if kind == "GRU" and not config.get("reset_after", True):
        raise _Unmappable(f"layer '{owner}' (GRU): reset_after=False (torch's GRU resets after the product)")
    for option in ("stateful", "return_state") if inside_bidirectional else ("go_backwards", "stateful", "return_state"):
        if config.get(option):
            raise _Unmappable(f"layer '{owner}' ({kind}): {option}=True")


def _flattened_inputs(graph, model: ModelWeights) -> dict[str, tuple[int, int]]:
    """Dense layers that read a Flatten of a channels-last map (through layers that keep the values), with the
    map's positions and channels: torch flattens (C, H, W)."""
    shapes = shapes_of(graph, model)
    by_name = {node.name: node for node in graph.nodes}
    found = {}
    for node in graph.nodes:
        if node.class_name != "Dense" or len(node.inputs) != 1:
            continue
        source = by_name.get(node.inputs[0][0])
        while source is not None and layers.keeps_positions(source.class_name) and source.inputs:
            source = by_name.get(source.inputs[0][0])
        if source is None or source.class_name != "Flatten" or not source.inputs:
            continue
        shape = shapes.get(source.inputs[0][0]) or _recorded_input_shape(model, source.name)
        if shape is None:
            raise InputInvalid(f"--layout torch: cannot work out the shape that Flatten '{source.name}' flattens",
                               hint="Use --layout keras, or a model whose layers keras-weights knows.")
        if len(shape) >= 2:
            found[node.name] = (math.prod(shape[:-1]), shape[-1])
    return found


def _recorded_input_shape(model: ModelWeights, layer_name: str) -> tuple[int, ...] | None:
    """The input shape the reader recorded for a top-level layer (the Keras reader knows every layer's)."""
    layer = next((layer for layer in model.layers if layer.name == layer_name), None)
    shape = getattr(layer, "input_shape", None)
    if isinstance(shape, (list, tuple)) and len(shape) > 1 and all(isinstance(d, int) for d in shape[1:]):
        return tuple(shape[1:])
    return None
