"""keras-weights: every weight of a Keras model, exported exactly to npz, safetensors, Parquet and C.

>>> import converter
>>> sorted(converter.FORMATS)
['c', 'npz', 'parquet', 'safetensors']
"""
from ._version import __version__
from .api import export, extract, inspect, read
from .errors import (ConverterError, DamagedInput, InputInvalid, InputNotFound, NonFiniteValues, OutputError,
                     OverBudget, QuantizationError, SomeModelsFailed, UnsafeInput, UnsupportedDType, UsageError, VerificationFailed)
from .formats import FORMATS
from .diff import diff
from .load import load_into
from .report import report
from .tensors import Layer, ModelWeights, Quantization, Source, Tensor
from .verification import FileCheck, Report, verify

__all__ = [
    "__version__", "extract", "export", "read", "verify", "inspect", "load_into", "diff", "report", "Tensor", "Layer", "ModelWeights", "Source",
    "Report", "FileCheck", "FORMATS", "ConverterError", "UsageError", "InputNotFound", "InputInvalid",
    "UnsupportedDType", "NonFiniteValues", "DamagedInput", "UnsafeInput", "OutputError", "VerificationFailed",
    "SomeModelsFailed", "QuantizationError", "OverBudget", "Quantization",
]
