"""Recurrent layers and their cells: the gate blocks stacked on their kernels' last axis."""
from __future__ import annotations

from .spec import Spec

SPECS = (
    Spec("SimpleRNN", gates=1), Spec("LSTM", gates=4), Spec("GRU", gates=3),
    Spec("SimpleRNNCell", gates=1, layer="SimpleRNN"), Spec("LSTMCell", gates=4, layer="LSTM"),
    Spec("GRUCell", gates=3, layer="GRU"),
)
