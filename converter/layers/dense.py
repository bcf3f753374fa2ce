"""Dense layers: their kernels' output channels."""
from __future__ import annotations

from .spec import Spec

SPECS = (Spec("Dense", channels="last", out_in=True), Spec("EinsumDense", channels="einsum"),
         Spec("LocallyConnected1D", channels="last"), Spec("LocallyConnected2D", channels="last"),
         Spec("Embedding", channels="last"))
