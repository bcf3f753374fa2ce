"""Each supported layer kind: the shape it gives (one sample, channels last, no batch axis) and the C calls that
compute it, one module per layer family. A kind is a function ``(call: Call) -> Shape`` registered in :data:`EMITTERS`
by class name (``@kind(...)``); importing this package registers every family.
"""
from __future__ import annotations

from . import (  # noqa: F401  (they register)
    activation,
    conv,
    dense,
    embedding,
    merge,
    normalization,
    pooling,
    recurrent,
    reshape,
)
from .base import EMITTERS, Call, Shape, Unsupported, size

__all__ = ["EMITTERS", "Call", "Shape", "Unsupported", "size"]
