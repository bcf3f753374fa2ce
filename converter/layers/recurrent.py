"""Recurrent layers and their cells: the gate blocks stacked on their kernels' last axis, where their output
channels are too."""
from __future__ import annotations

from .spec import Spec

SPECS = (
    Spec("SimpleRNN", gates=1, channels="last"), Spec("LSTM", gates=4, channels="last"),
    Spec("GRU", gates=3, channels="last"),
    Spec("SimpleRNNCell", gates=1, layer="SimpleRNN", channels="last"),
    Spec("LSTMCell", gates=4, layer="LSTM", channels="last"), Spec("GRUCell", gates=3, layer="GRU", channels="last"),
    *(Spec(name, channels="last") for name in ("CuDNNGRU", "CuDNNLSTM", "ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D",
                                               "ConvLSTMCell")),
)
