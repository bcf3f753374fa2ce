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

import math
from collections.abc import Sequence

from . import layers
from .cgen import graph as graphs
from .cgen.codegen import shapes_of
from .errors import InputInvalid
from .layers import Site, Unmappable
from .tensors import ModelWeights, Tensor


def apply(model: ModelWeights, tensors: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """The model's tensors as torch modules hold them, in model order."""
    if model.config is None:
        raise InputInvalid(f"{model.source.file or model.name}: --layout torch needs the model's configuration (layer "
                           "classes and options), which this input does not hold",
                           hint="Export a model saved whole (model.save), or use --layout keras.")
    graph = graphs.from_config(model.config)
    configs = {node.layer: (node.class_name, node.config) for node in graph.nodes}
    modules = {node.layer: node.layer.rpartition("/")[0] for node in graph.nodes if node.wrapper}
    flattened = _flattened_inputs(graph, model)
    out: list[Tensor] = []
    problems: list[str] = []
    for tensor in tensors:
        try:
            out += _map(Site(tensor, configs, flattened, modules))
        except Unmappable as why:
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


def _map(site: Site) -> list[Tensor]:
    """One Keras tensor as its layer's torch module holds it (the registry's mapping), or kept as Keras holds it:
    also a quantizer's range or a step counter, which no torch module computes with."""
    mapping = layers.spec(site.tensor.owner_class).torch
    return mapping(site) if mapping is not None and site.tensor.kind == layers.WEIGHT else site.kept()


def _flattened_inputs(graph, model: ModelWeights) -> dict[str, tuple[int, int]]:
    """Dense layers that read a Flatten of a channels-last map (through layers that keep the values), with the
    map's positions and channels: torch flattens (C, H, W)."""
    shapes = shapes_of(graph, model)
    by_name = {node.name: node for node in graph.nodes}
    found = {}
    for node in graph.nodes:
        if not layers.spec(node.class_name).out_in or len(node.inputs) != 1:
            continue
        source = by_name.get(node.inputs[0][0])
        while source is not None and layers.keeps_positions(source.class_name) and source.inputs:
            source = by_name.get(source.inputs[0][0])
        if source is None or not layers.spec(source.class_name).flattens or not source.inputs:
            continue
        shape = shapes.get(source.inputs[0][0]) or _recorded_input_shape(model, source.name)
        if shape is None:
            raise InputInvalid(f"--layout torch: cannot work out the shape that Flatten '{source.name}' flattens",
                               hint="Use --layout keras, or a model whose layers keras-weights knows.")
        if len(shape) >= 2:
            found[node.layer] = (math.prod(shape[:-1]), shape[-1])
    return found


def _recorded_input_shape(model: ModelWeights, layer_name: str) -> tuple[int, ...] | None:
    """The input shape the reader recorded for a top-level layer (the Keras reader knows every layer's)."""
    layer = next((layer for layer in model.layers if layer.name == layer_name), None)
    shape = getattr(layer, "input_shape", None)
    if isinstance(shape, (list, tuple)) and len(shape) > 1 and all(isinstance(d, int) for d in shape[1:]):
        return tuple(shape[1:])
    return None
