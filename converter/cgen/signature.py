"""A model's input and output shapes from its configuration alone, as Keras's ``model.inputs``/``model.outputs``
give them: for readers that do not build the model (the direct HDF5 reader), so that two readers of one file
give one manifest."""
from __future__ import annotations

from typing import Any

from ..errors import InputInvalid
from ..tensors import ModelWeights
from .codegen import shapes_of
from .graph import from_config


def model_signature(model: ModelWeights) -> tuple[Any, Any]:
    """``(inputs, outputs)``: each a list of shapes with the batch axis first (``[[None, 4]]``), or None where the
    configuration does not tell (no configuration, an input of unknown dimensions, a layer whose output shape the
    layer registry does not know).

    >>> from converter.readers import read_model
    >>> model_signature(read_model("fixtures/seed_mlp.keras", reader="h5"))
    ([[None, 4]], [[None, 1]])
    """
    if not isinstance(model.config, dict):
        return None, None
    try:
        graph = from_config(model.config)
    except InputInvalid:
        return None, None
    batches = [graph.node(name).config.get("batch_shape") or graph.node(name).config.get("batch_input_shape")
               for name in graph.inputs]
    if not graph.inputs or not all(isinstance(b, list) and b for b in batches):
        return None, None
    inputs = [list(b) for b in batches]
    shapes = shapes_of(graph, model)
    if any(ref[1] != 0 or ref[0] not in shapes for ref in graph.outputs):
        return inputs, None
    return inputs, [[batches[0][0], *shapes[ref[0]]] for ref in graph.outputs]
