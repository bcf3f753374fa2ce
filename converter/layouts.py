"""Named layout changes applied on export, recorded per tensor in the manifest.

``keras`` keeps every array as ``get_weights()`` returned it. ``dense_out_in`` transposes the
kernels of ``Dense`` layers from Keras's (in, out) to (out, in), the layout CMSIS-NN and TFLite
fully-connected kernels expect. The manifest's shape and sha256 describe the stored array, and its
``transform`` field says what was done.

>>> import numpy as np
>>> from converter.tensors import Tensor
>>> kernel = Tensor("d/kernel", "d", "kernel", 0, True, np.arange(6, dtype=np.float32).reshape(2, 3), owner_class="Dense")
>>> [(t.shape, t.transform) for t in apply([kernel], "dense_out_in")]
[((3, 2), 'transpose')]
"""
from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import re

from .errors import UsageError
from .tensors import Tensor

LAYOUTS = {
    "keras": "every array exactly as get_weights() returned it (Dense kernels are [in][out])",
    "dense_out_in": "Dense kernels transposed to [out][in] (CMSIS-NN / TFLite fully-connected order)",
    "torch": "every tensor named and laid out as the equivalent torch.nn module's state_dict (docs/torch.md)",
}


def check(layout: str) -> str:
    """Validate a layout name."""
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}. Received: layout={layout}", hint=f"Choose from: {', '.join(LAYOUTS)}.")
    return layout


def apply(tensors: Sequence[Tensor], layout: str, model=None) -> tuple[Tensor, ...]:
    """The records as they are stored under ``layout`` (new records; the input is not changed). ``torch``
    needs the model (its configuration), see ``torch_layout``."""
    if check(layout) == "keras":
        return tuple(tensors)
    if layout == "torch":
        from . import torch_layout

        return torch_layout.apply(model, tensors)
    return tuple(_transposed(t) if _is_dense_kernel(t) else t for t in tensors)


def _is_dense_kernel(tensor: Tensor) -> bool:
    return tensor.owner_class == "Dense" and tensor.role == "kernel" and len(tensor.shape) == 2


def _transposed(tensor: Tensor) -> Tensor:
    return dataclasses.replace(tensor, array=tensor.array.T, transform="transpose")


# The steps a manifest's ``transform`` may hold (``+``-joined; torch_layout and this module write them, load and
# diff undo them): the kind, and what its numbers must be.
STEPS = {"none": None, "keras": None, "transpose": None, "depthwise": None, "ones": None, "zeros": None,
         "count": None, "permute": "order", "gates": "order", "row": r"[01]", "flatten": r"[1-9]\d{0,9},[1-9]\d{0,9}"}


def transform_problem(transform: str) -> str | None:
    """What is wrong with a recorded ``transform`` (a foreign manifest's), or None when every step is one we write.

    >>> transform_problem("flatten:9,4+permute:1,0"), transform_problem("gates:1,0,2+permute:1,0")
    (None, None)
    >>> transform_problem("permute:0,0"), transform_problem("explode:1")
    ("step 'permute:0,0': its numbers are not an order of axes", "unknown step 'explode:1'")
    """
    for step in transform.split("+"):
        kind, colon, numbers = step.partition(":")
        if kind not in STEPS or bool(colon) != (STEPS[kind] is not None):
            return f"unknown step {step!r}"
        rule = STEPS[kind]
        if rule == "order":
            order = numbers.split(",")
            if len(order) > 32 or sorted(order, key=lambda n: int(n) if n.isdigit() else -1) != \
                    [str(i) for i in range(len(order))]:
                return f"step {step!r}: its numbers are not an order of axes"
        elif rule is not None and not re.fullmatch(rule, numbers):
            return f"step {step!r}: numbers out of range"
    return None
