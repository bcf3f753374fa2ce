"""The records that flow from readers to writers.

A reader returns a :class:`ModelWeights`; every writer takes its ``tensors``, a sequence of
:class:`Tensor` in model order. A ``Tensor`` always holds a read-only, C-contiguous,
little-endian array, so writers can hand its memory to any library as-is.

>>> import numpy as np
>>> t = Tensor("dense/kernel", "dense", "kernel", 0, True, np.ones((2, 3), dtype=">f4").T)
>>> t.array.flags.c_contiguous, t.array.dtype.str, t.shape, t.dtype
(True, '<f4', (3, 2), 'float32')
>>> import hashlib
>>> t.sha256 == hashlib.sha256(np.ones(6, "<f4").tobytes()).hexdigest()
True
"""
from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import numpy as np

from . import dtypes
from ._version import __version__


SCAN_BLOCK = 1 << 20  # values per block when scanning a tensor for NaN and infinity


def canonical(array: Any) -> np.ndarray:
    """A read-only, C-ordered, little-endian view or copy of ``array``; never touches the caller's."""
    array = np.asarray(array)
    dtypes.lookup(array.dtype)  # refuse unsupported dtypes here, at the boundary
    result = np.asarray(array, dtype=dtypes.little_endian(array.dtype), order="C")  # keeps 0-d arrays 0-d
    result = result.view() if result is array else result
    result.flags.writeable = False
    return result


def raw_bytes(array: np.ndarray) -> memoryview:
    """The memory of a canonical array as bytes, without copying (works for ml_dtypes too)."""
    return memoryview(array.reshape(-1).view(np.uint8))


def sha256_of(array: np.ndarray) -> str:
    """sha256 of the raw C-order little-endian bytes of a canonical array."""
    return hashlib.sha256(raw_bytes(array)).hexdigest()


@dataclass(frozen=True)
class Quantization:
    """How a stored tensor was made from the model's by ``export --quantize`` (see ``quantize.py``)."""

    scheme: str                     # "int8_symmetric", "float16" or "bfloat16"
    source_dtype: str               # the model's dtype
    axis: tuple[int, ...] | None    # int8: the stored array's channel axes (None: one scale for the tensor)
    scale: str | None               # int8: the name of the float32 scale tensor
    max_abs: float                  # the error of the values read back (q * scale, or the cast), measured
    rmse: float
    snr_db: float | None            # None where undefined: no error, or an all-zero tensor


@dataclass(frozen=True, eq=False)
class Tensor:
    """One weight: its stable name, the top-level layer it belongs to, its role, and its values."""

    name: str           # "dense/kernel", "inner/d/kernel", "lstm/lstm_cell/recurrent_kernel"
    layer: str          # the top-level layer whose get_weights() returned it
    role: str           # the variable's own name: kernel, bias, gamma, moving_mean, ...
    layer_index: int    # index of that layer in model.layers
    trainable: bool
    array: np.ndarray = field(repr=False)
    owner_class: str = ""      # class of the (sub-)layer that owns the variable: "Dense", "LSTMCell", ...
    transform: str = "none"    # a named layout change applied on export ("transpose"); see layouts.py
    quantization: Quantization | None = None  # set on the quantized tensors of a quantized export
    keras_name: str | None = None  # the Keras name, where a layout renamed the tensor (--layout torch)
    kind: str = "weight"       # "weight", or what the layer keeps beside its weights: "quantizer_range" (a
                               # quantization-aware model's kernel_min...) or "training_state" (its optimizer_step)

    def __post_init__(self) -> None:
        object.__setattr__(self, "array", canonical(self.array))

    @property
    def dtype(self) -> str:
        return self.array.dtype.name

    @property
    def shape(self) -> tuple[int, ...]:
        return tuple(int(n) for n in self.array.shape)

    @property
    def nbytes(self) -> int:
        return int(self.array.nbytes)

    @cached_property
    def sha256(self) -> str:
        return sha256_of(self.array)

    @cached_property
    def non_finite(self) -> tuple[int, int, tuple[int, ...] | None]:
        """(NaN count, infinity count, index of the first such value) -- zeros and None for integers."""
        if "float" not in self.dtype:
            return 0, 0, None
        if self.array.size and self.array.dtype.kind == "f" and np.isfinite(self.array.min()) \
                and np.isfinite(self.array.max()):  # NaN and infinity reach the min or max: one fast pass each
            return 0, 0, None
        nan = inf = 0
        first = None
        flat = self.array.reshape(-1)
        for start in range(0, flat.size, SCAN_BLOCK):  # in blocks: the masks of a whole tensor would cost 3 bytes a value
            block = flat[start:start + SCAN_BLOCK]
            nan_mask, inf_mask = np.isnan(block), np.isinf(block)
            nan, inf = nan + int(nan_mask.sum()), inf + int(inf_mask.sum())
            if first is None and (nan_mask.any() or inf_mask.any()):
                first = start + int(np.flatnonzero(nan_mask | inf_mask)[0])
        return nan, inf, None if first is None else tuple(int(i) for i in np.unravel_index(first, self.array.shape))


@dataclass(frozen=True)
class Layer:
    """A top-level layer as the manifest describes it, with or without weights."""

    index: int
    name: str
    class_name: str
    config: dict
    input_shape: Any
    output_shape: Any
    tensors: tuple[str, ...]


@dataclass(frozen=True)
class Source:
    """Where the weights came from."""

    file: str | None      # file or folder name, never an absolute path
    format: str           # "keras", "h5", "keras.Model" (in memory)
    sha256: str | None
    reader: str           # which reader produced the records: "keras" or "h5"
    keras_version: str | None = None  # what the file says about itself
    backend: str | None = None
    note: str | None = None  # why this reader was used, or what it had to infer


@dataclass(frozen=True)
class ModelWeights:
    """Everything a reader extracts: the model's description and its tensors in model order."""

    name: str
    class_name: str
    inputs: Any
    outputs: Any
    layers: tuple[Layer, ...]
    tensors: tuple[Tensor, ...]
    source: Source
    config: dict | None = field(default=None, repr=False)  # the serialized model ({"class_name", "config"}), if known


@dataclass(frozen=True)
class ExportInfo:
    """What writers are told about an export besides its tensors: the model and the layout, as records,
    and the manifest (without its file list) as canonical JSON text for formats that embed it."""

    model: ModelWeights
    layout: str = "keras"
    manifest_json: str = ""
    producer_version: str = __version__
    graph: dict | None = None  # the model's graph as JSON (cgen.graph), for C code that runs the weights
    prepared: dict = field(default_factory=dict)  # per format, what its prepare hook computed (C: the forward pass)
    activations: dict | None = None  # full-integer int8: (scale, zero point) by traced value name (C: its forward pass)


