"""What every layer's PyTorch mapping (``Spec.torch``) is built on: :class:`Site` (one Keras tensor, where it sits
in the model and its layer's configuration) and the helpers that store it under its ``torch.nn`` name with the
typed steps (``converter.transforms``) that made it from the Keras array, so ``load`` can undo them exactly.

>>> import numpy as np
>>> from converter.tensors import Tensor
>>> site = Site(Tensor("dense/kernel", "dense", "kernel", 0, True, np.zeros((4, 3), np.float32)), {})
>>> stored = site.store("weight", site.array.T, permute((1, 0)))
>>> stored.name, stored.keras_name, stored.transform, stored.shape
('dense.weight', 'dense/kernel', 'permute:1,0', (3, 4))
"""
from __future__ import annotations

import dataclasses
from collections.abc import Iterable

import numpy as np

from .. import transforms
from ..tensors import Tensor
from ..transforms import Step


class Unmappable(Exception):
    """A tensor torch modules cannot hold exactly (an option torch does not have): the message names the layer."""


@dataclasses.dataclass(frozen=True)
class Site:
    """One Keras tensor to map: its layer's path and configuration, every layer's (class, config) by path
    (``configs``), the Dense layers that read a flattened channels-last map (``flattened``: path ->
    (positions, channels)), whose input rows torch orders channels first, and the layers stored under another
    module's name (``modules``)."""

    tensor: Tensor
    configs: dict
    flattened: dict = dataclasses.field(default_factory=dict)
    modules: dict = dataclasses.field(default_factory=dict)  # layer path -> the torch module path it is stored under,
                                                              # where they differ (a wrapped layer: its wrapper's)

    @property
    def path(self) -> str:
        """The Keras layer path that owns the tensor: ``lstm/lstm_cell/kernel`` -> ``lstm/lstm_cell``."""
        return self.tensor.name.rpartition("/")[0]

    @property
    def role(self) -> str:
        return self.tensor.role

    @property
    def array(self) -> np.ndarray:
        return self.tensor.array

    @property
    def config(self) -> dict:
        return self.configs.get(self.path, ("", {}))[1]

    def class_at(self, path: str) -> str:
        return self.configs.get(path, ("",))[0]

    def store(self, parameter: str, array: np.ndarray, *steps: Step, under: str | None = None) -> Tensor:
        """The tensor as torch stores it under ``<path>.<parameter>`` (or ``under``'s path), with the steps that
        made ``array`` from the Keras array."""
        return dataclasses.replace(self.tensor, name=torch_name(self.module(self.path if under is None else under),
                                                                parameter),
                                   array=array, transform=transforms.join(list(steps)), keras_name=self.tensor.name)

    def module(self, path: str) -> str:
        """The torch module path of a Keras layer path (or one below it): a wrapped layer is its wrapper's module.

        >>> Site(None, {}, modules={"quant_d/d": "quant_d"}).module("quant_d/d"), Site(None, {}).module("d")
        ('quant_d', 'd')
        """
        for layer, module in self.modules.items():
            if path == layer or path.startswith(layer + "/"):
                return module + path[len(layer):]
        return path

    def kept(self) -> list[Tensor]:
        """A tensor with no torch counterpart, kept as Keras holds it under ``<layer>.<role>``."""
        return [self.store(self.role, self.array, Step("keras"))]


def torch_name(path: str, parameter: str) -> str:
    return ".".join([*path.split("/"), parameter])


def permute(order: Iterable[int]) -> Step:
    return Step("permute", tuple(int(axis) for axis in order))


def channels_first(ndim: int) -> tuple[int, ...]:
    """The axis order that takes a Keras kernel ``(k..., a, b)`` to torch's ``(b, a, k...)``."""
    return (ndim - 1, ndim - 2, *range(ndim - 2))
