"""The record the layer registry keeps per Keras layer class."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Spec:
    """One Keras layer class, as far as the registry knows it."""

    class_name: str
    gates: int = 0               # recurrent: gate blocks stacked on the kernel's last axis (LSTM 4, GRU 3)
    layer: str | None = None     # a recurrent cell: the layer class it belongs to (LSTMCell -> LSTM)
    identity: bool = False       # its output is its input at inference (Dropout, noise, augmentation)
    elementwise: bool = False    # every value stays where it was (an activation): a flattened map keeps its order
    out_in: bool = False         # its kernel is an (in, out) matrix that --layout dense_out_in stores as [out][in]
    channels: str | None = None  # where its kernels' output channels are, for int8 scales (see quantize.channel_axes):
                                 # last, depthwise (the last two), transposed (the second last), einsum (from the
                                 # equation or heads), keras1 (last, or first in Theano's dim_ordering)
