"""The layer registry: what keras-weights knows of each Keras layer class, in one spec per class, registered by
class name from one module per layer family (``recurrent``, ``passthrough``...). Every other module asks here
instead of keeping its own table of class names.

This is the registry's first part (issue 24): where kernels' output channels are (int8), recurrent gate counts and
cells, and which layers pass their values through. Weight roles, the PyTorch mapping and the C emitters move in
next, family by family.

>>> spec("LSTM").gates, spec("GRUCell").gates, spec("Dropout").identity, spec("ReLU").identity
(4, 3, True, False)
>>> spec("Dense").channels, spec("MyLayer") is None, keeps_positions("ReLU"), keeps_positions("Flatten")
('last', True, True, False)
"""
from __future__ import annotations

from . import conv, dense, passthrough, recurrent
from .spec import Spec

# Roles of the weights int8 quantizes (kernels), in Keras's names; the report also knows torch's for them.
KERNEL_ROLES = frozenset({"kernel", "recurrent_kernel", "depthwise_kernel", "pointwise_kernel", "embeddings"})
TORCH_KERNEL_ROLES = frozenset({"weight", "weight_ih_l0", "weight_hh_l0"})
FAMILIES = (dense, conv, recurrent, passthrough)


SPECS: dict[str, Spec] = {}


def register(*specs: Spec) -> None:
    """Add a family's specs; a class registered twice is a bug in the registry."""
    for item in specs:
        if item.class_name in SPECS:
            raise ValueError(f"layer class {item.class_name} registered twice")
        SPECS[item.class_name] = item


def spec(class_name: str) -> Spec | None:
    """The spec of a Keras layer class, or None for a class the registry does not know."""
    return SPECS.get(class_name)


def gates(class_name: str) -> int:
    """The gate blocks of a recurrent layer or cell class; 0 for anything else."""
    found = SPECS.get(class_name)
    return found.gates if found else 0


def identity_classes() -> tuple[str, ...]:
    """Classes whose output is their input at inference."""
    return tuple(name for name, item in SPECS.items() if item.identity)


def keeps_positions(class_name: str) -> bool:
    """Whether every value of the layer's output stays where it was in its input (identity or elementwise)."""
    found = SPECS.get(class_name)
    return bool(found and (found.identity or found.elementwise))


for _family in FAMILIES:
    register(*_family.SPECS)
