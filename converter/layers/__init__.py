"""The layer registry: everything keras-weights knows of each Keras layer class, in one :class:`Spec` per class,
registered by class name from one module per layer family. A family module holds the whole of its classes'
knowledge: their weights' roles in creation order (the readers), where their kernels' output channels are (int8),
what they mean (recurrent gates, pass-through, elementwise), their PyTorch mapping (``to_torch.Site`` -> tensors,
with steps ``load`` inverts) and their C forward pass (``emit.Call`` -> output shape). Every other module asks here
instead of keeping its own table of class names; supporting a layer is one module (docs/architecture.md).

>>> spec("LSTM").gates, spec("GRUCell").gates, spec("Dropout").identity, spec("ReLU").identity
(4, 3, True, False)
>>> spec("Dense").channels, known("MyLayer"), spec("MyLayer").c, keeps_positions("ReLU"), keeps_positions("Flatten")
('last', False, None, True, False)
>>> roles("Dense", {"use_bias": False}), roles("MyLayer", {}), spec("LSTM").cell
(('kernel',), (), 'LSTMCell')
"""
from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from . import (
    activation,
    attention,
    conv,
    dense,
    embedding,
    group_normalization,
    merge,
    models,
    normalization,
    ops,
    passthrough,
    pooling,
    quantization_aware,
    recurrent,
    reshape,
    resizing,
)
from .emit import Call, Shape, Unsupported
from .models import KERAS3_CLASS, SEQUENTIAL
from .passthrough import INPUT
from .recurrent import DEFAULT_CELL
from .spec import BY_CLASS, QUANTIZER_RANGE, TRAINING_STATE, WEIGHT, Spec, find, register
from .to_torch import Site, Unmappable

__all__ = ["DEFAULT_CELL", "INPUT", "KERAS3_CLASS", "QUANTIZER_RANGE", "SEQUENTIAL", "TRAINING_STATE", "WEIGHT", "Call", "Shape", "Site", "Spec", "Unmappable", "Unsupported", "spec", "known", "gates",
           "roles", "identity_classes", "keeps_positions", "c_function", "is_container", "code_classes", "classes"]

FAMILIES = (dense, conv, normalization, group_normalization, recurrent, embedding, attention, activation, pooling,
            reshape, resizing, merge, ops, passthrough, models, quantization_aware)

# Roles of the weights int8 quantizes (kernels), in Keras's names; the report also knows torch's for them.
KERNEL_ROLES = frozenset({"kernel", "recurrent_kernel", "depthwise_kernel", "pointwise_kernel", "embeddings"})
TORCH_KERNEL_ROLES = frozenset({"weight", "weight_ih_l0", "weight_hh_l0"})

spec = find


def known(class_name: str) -> bool:
    """Whether the registry knows the class (:func:`spec` gives a blank spec for one it does not)."""
    return isinstance(class_name, str) and class_name in BY_CLASS


def classes() -> tuple[str, ...]:
    """Every class the registry knows."""
    return tuple(BY_CLASS)


def roles(class_name: str, config: Mapping[str, Any]) -> tuple[str, ...]:
    """A class's own weights' roles in creation order, as its configuration has them; () for an unknown class."""
    return find(class_name).roles_for(config)


def gates(class_name: str) -> int:
    """The gate blocks of a recurrent layer or cell class; 0 for anything else."""
    return find(class_name).gates


def identity_classes() -> tuple[str, ...]:
    """Classes whose output is their input at inference."""
    return tuple(name for name, item in BY_CLASS.items() if item.identity)


def keeps_positions(class_name: str) -> bool:
    """Whether every value of the layer's output stays where it was in its input (identity or elementwise)."""
    found = find(class_name)
    return found.identity or found.elementwise


def is_container(class_name: str) -> bool:
    """Whether the class is a model whose configuration lists layers (Sequential, Functional, Model)."""
    return find(class_name).container


def c_function(name: str) -> str | None:
    """The C text of a function a family's emitter calls and holds itself (not in converter.c_kernels), or None."""
    return next((item.c_functions[name] for item in BY_CLASS.values() if name in item.c_functions), None)


def code_classes() -> tuple[str, ...]:
    """Classes whose configuration carries Python code (Lambda)."""
    return tuple(name for name, item in BY_CLASS.items() if item.code)


for _family in FAMILIES:
    register(*_family.SPECS)
