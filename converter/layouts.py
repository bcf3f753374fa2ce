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

from . import choices, layers, torch_layout, transforms
from .errors import UsageError
from .tensors import Tensor

LAYOUTS = choices.LAYOUTS


def validate_name(layout: str) -> str:
    """Validate a layout name."""
    if layout not in LAYOUTS:
        raise UsageError(f"unknown layout {layout!r}. Received: layout={layout}", hint=f"Choose from: {', '.join(LAYOUTS)}.")
    return layout


def apply(tensors: Sequence[Tensor], layout: str, model=None) -> tuple[Tensor, ...]:
    """The records as they are stored under ``layout`` (new records; the input is not changed). ``torch``
    needs the model (its configuration), see ``torch_layout``."""
    if validate_name(layout) == "keras":
        return tuple(tensors)
    if layout == "torch":
        return torch_layout.apply(model, tensors)
    return tuple(_transposed(t) if _is_dense_kernel(t) else t for t in tensors)


def _is_dense_kernel(tensor: Tensor) -> bool:
    return layers.spec(tensor.owner_class).out_in and tensor.role == "kernel" and len(tensor.shape) == 2


def _transposed(tensor: Tensor) -> Tensor:
    return dataclasses.replace(tensor, array=tensor.array.T, transform=transforms.join([transforms.Step("transpose")]))

