"""keras-weights: every weight of a Keras model, exported exactly to npz, safetensors, Parquet and C.

>>> import converter
>>> sorted(converter.FORMATS)
['c', 'npz', 'parquet', 'safetensors']

The public names are imported on first use (PEP 562): the command line starts the HDF5 probe's worker before
numpy, h5py and the rest are imported (see ``_launch``).
"""
from __future__ import annotations

import importlib
from typing import Any

from ._version import __version__
from .errors import (ConverterError, DamagedInput, InputInvalid, InputNotFound, NonFiniteValues, OutputError,
                     ManifestInvalid, OverBudget, QuantizationError, SomeModelsFailed, UnsafeInput, UnsupportedDType,
                     UsageError, VerificationFailed)

_LAZY = {
    "export": "api", "extract": "api", "inspect": "api", "read": "api", "FORMATS": "formats", "diff": "compare",
    "load_into": "load", "report": "html_report", "Layer": "tensors", "ModelWeights": "tensors", "Quantization": "tensors",
    "Source": "tensors", "Tensor": "tensors", "FileCheck": "verification", "Report": "verification",
    "verify": "verification",
}

__all__ = [
    "__version__", "extract", "export", "read", "verify", "inspect", "load_into", "diff", "report", "Tensor", "Layer",
    "ModelWeights", "Source", "Report", "FileCheck", "FORMATS", "ConverterError", "UsageError", "InputNotFound",
    "InputInvalid", "UnsupportedDType", "NonFiniteValues", "DamagedInput", "UnsafeInput", "OutputError",
    "VerificationFailed", "ManifestInvalid", "SomeModelsFailed", "QuantizationError", "OverBudget", "Quantization",
]


def __getattr__(name: str) -> Any:
    if name in _LAZY:
        value = getattr(importlib.import_module(f".{_LAZY[name]}", __name__), name)
        globals()[name] = value  # once
        return value
    raise AttributeError(f"module 'converter' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
