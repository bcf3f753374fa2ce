"""Which layers are computed inside another's kernel: a zero padding a convolution reads as its own padding, and
the BatchNormalization and ReLU folded into the epilogue of the convolution or Dense before them."""
from __future__ import annotations

from typing import Any

from .. import layers
from ..layers.emit import POST, Call, Shape, Unsupported, finish_epilogue
from .graph import Graph


def weights_of(node, weights: dict[str, Any]) -> dict[str, Any]:
    """The weights of the layer a node uses, by role (a shared layer's later calls use its weights)."""
    layer = node.layer + "/"
    return {name[len(layer):]: ref for name, ref in weights.items() if name.startswith(layer)}


def sole_readers(graph: Graph) -> dict[str, Any]:
    """Node name -> the node that alone reads its output, as its one input, where no model output is that output
    and no other layer reads it (what may be folded into the node's kernel)."""
    uses: dict[str, list] = {}
    for node in graph.nodes:
        for ref in node.inputs:
            uses.setdefault(ref[0], []).append((node, ref[1]))
    outputs = {ref[0] for ref in graph.outputs}
    return {name: found[0][0] for name, found in uses.items()
            if len(found) == 1 and found[0][1] == 0 and len(found[0][0].inputs) == 1 and name not in outputs}


def fold(call: Call, shape: Shape, sole: dict[str, Any], weights: dict[str, Any]) -> list:
    """Fold the element-wise layers after a node into its kernel's epilogue (``call.post``), while each is the
    only reader of the one before and its ``Spec.c_fold`` accepts it (a BatchNormalization, then a ReLU); the nodes
    folded. Only where the kernel taking the epilogue is the node's last statement: an activation computed after it
    (a tanh) must come before a folded BatchNormalization."""
    post, found = call.post, []
    if post is None:
        return found
    takes = POST in call.statements[-1] if call.q8 is None else call.q8.epilogue  # its last kernel takes it
    reader = sole.get(call.node.name) if takes else None
    while reader is not None and layers.spec(reader.class_name).c_fold is not None:
        try:
            layers.spec(reader.class_name).c_fold(Call(reader, [shape], ["@IN0@"], weights_of(reader, weights)), post)
        except (Unsupported, KeyError, TypeError, ValueError, IndexError, AttributeError):
            break
        found.append(reader)
        reader = sole.get(reader.name)
    post.folded = [n.name for n in found]
    if call.q8 is None:  # full-integer int8 folds them into its requantization instead (layers.q8)
        finish_epilogue(call, shape[-1])
    return found


def padding_fused(sole: dict[str, Any]) -> set[str]:
    """Nodes whose sole reader (:func:`sole_readers`) is a layer whose emitter takes a padded input
    (``Spec.c_padded``): a zero padding there is never made."""
    return {name for name, reader in sole.items() if layers.spec(reader.class_name).c_padded}


def readers(graph: Graph) -> dict[tuple[str, int], int]:
    """How many times each layer output is read: by layers, and once more (for ever) by each model output."""
    counts: dict[tuple[str, int], int] = {}
    for ref in [ref for node in graph.nodes for ref in node.inputs] + list(graph.outputs):
        counts[ref] = counts.get(ref, 0) + 1
    return counts
