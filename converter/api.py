"""The public functions extract, inspect, export and read (verify is in ``verification``); the export itself runs in
``pipeline``. Arguments are validated here and there, once."""
from __future__ import annotations

import logging
import os
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from . import exports, manifest as manifests, pipeline, quantize as quantization, readers
from . import formats as registry  # `formats` is export()'s argument name
from .errors import ConverterError, InputNotFound
from .layers import QUANTIZER_RANGE
from .pipeline import hash_and_scan, report_non_finite  # noqa: F401  (part of the library's face)
from .tensors import Tensor

log = logging.getLogger("converter")


def extract(source: Any, *, reader: str = "auto", trust_code: bool = False, allow_sparse: bool = False) -> list[Tensor]:
    """Every weight of a ``keras.Model`` or model file, as records in model order.

    >>> tensors = extract("fixtures/seed_mlp.keras")
    >>> [(t.name, t.shape) for t in tensors][:2]
    [('dense/kernel', (4, 20)), ('dense/bias', (20,))]
    """
    return list(readers.read_model(source, reader, trust_code, allow_sparse).tensors)


def inspect(source: Any, *, reader: str = "auto", trust_code: bool = False, allow_sparse: bool = False,
            quantize: str | None = None, calibration: Any = None) -> dict:
    """The manifest of a model without exporting anything: layers, tensors, shapes, dtypes, checksums; with
    ``quantize``, of the tensors as a quantized export would store them (with their error figures); with
    ``calibration`` too (``quantize="int8"``, see :func:`export`), the full-integer int8 forward pass's block:
    each traced value's calibrated range, scale and zero point (``inference.activations``).

    >>> info = inspect("fixtures/seed_mlp.keras")
    >>> info["model"]["parameters"], [layer["class"] for layer in info["layers"]]
    (321, ['Dense', 'Dense', 'Dense'])
    >>> [t["dtype"] for t in inspect("fixtures/seed_mlp.keras", quantize="int8")["tensors"]][:3]
    ['int8', 'float32', 'float32']
    """
    quantization.validate_scheme(quantize)
    pipeline.Bounds(quantize, None, None, calibration).check()
    model = pipeline.read(source, reader, trust_code, allow_sparse)
    pipeline.hash_and_scan(model.tensors)
    tensors = quantization.apply(model.tensors, quantize, model.layers)
    inference = _integer_preview(model, tensors, pipeline.stem_of(source), quantize, calibration)
    return manifests.build(model, tensors, options={"layout": "keras", **({"quantize": quantize} if quantize else {})},
                           inference=inference)


def _integer_preview(model: Any, tensors: Sequence[Tensor], stem: str, quantize: str | None, calibration: Any
                     ) -> dict | None:
    """The full-integer int8 block ``inspect`` shows: with calibration samples, or for int8 of a model that trained
    its own ranges (quantization-aware), where its forward pass can be generated (else only said, on the log)."""
    if calibration is not None:
        return pipeline.integer_inference(model, tensors, stem, calibration)
    if quantize != "int8" or not any(t.kind == QUANTIZER_RANGE for t in tensors):
        return None
    try:
        return pipeline.integer_inference(model, tensors, stem, None)
    except ConverterError as error:
        log.warning("no full-integer int8 preview from the trained ranges: %s", error)
        return None


def export(source: Any, out_dir: str | os.PathLike, formats: str | Sequence[str] | None = None, *,
           force: bool = False, stem: str | None = None, layout: str = "keras",
           options: Mapping[str, Mapping[str, Any]] | None = None, reader: str = "auto",
           fail_on_non_finite: bool = False, trust_code: bool = False, allow_sparse: bool = False,
           quantize: str | None = None, min_snr: float | None = None, max_bytes: int | None = None,
           progress: Callable[[str, int, int, int, int], None] | None = None, calibration: Any = None) -> dict:
    """Write the weights to ``out_dir`` in each format plus ``manifest.json``; return the manifest.

    ``quantize`` is ``int8``, ``float16`` or ``bfloat16`` (see ``converter.quantize``): every format then
    stores the quantized tensors, and the manifest records how and at what error. With ``quantize="int8"`` and the C
    forward pass, ``calibration`` (samples: an array ``(N, *input shape)``, a dict of them by input name, or a
    ``.npy``/``.npz`` path) makes it full-integer int8 (docs/inference.md). ``min_snr`` (dB) refuses
    an export whose quantized tensors fall below it; ``max_bytes`` one whose C arrays would take more flash
    (alignment padding included). Both refuse before anything is written.

    ``layout`` names a layout change (see ``converter.layouts``); ``options`` maps a format name to
    its writer options, e.g. ``{"c": {"prefix": "net", "header_only": True}}``; ``reader`` is
    ``auto``, ``keras`` or ``h5`` (see ``converter.readers.read_model``). ``progress(format, tensors_done,
    tensors_total, bytes_done, bytes_total)`` is called as each format's tensors are written (the library
    itself prints nothing).

    >>> import tempfile
    >>> out = tempfile.mkdtemp()
    >>> result = export("fixtures/seed_mlp.keras", out, formats=["npz", "c"])
    >>> [f["path"] for f in result["files"]]
    ['seed_mlp.npz', 'seed_mlp.h', 'seed_mlp.c']
    >>> from converter import verify
    >>> verify(out).ok
    True
    """
    try:
        return pipeline.run_export(source, Path(out_dir), registry.parse(formats), force, stem, layout, options, reader,
                       fail_on_non_finite, trust_code, allow_sparse, pipeline.Bounds(quantize, min_snr, max_bytes, calibration), progress)
    except ConverterError as error:
        error.outputs = error.outputs or f"nothing in {out_dir} was written or changed"
        raise


def read(path: str | os.PathLike, *, dequantize: bool = False) -> dict[str, np.ndarray]:
    """Read an exported file back as ``{name: array}``, whatever its format.

    When a ``manifest.json`` beside the file lists it, the keys are the tensor names (not the format's keys,
    such as C identifiers), in model order, and dtypes a format stores as bit patterns (bfloat16 and float8
    in npz) come back as their real dtype. Without one, the format's own keys and stored arrays. A quantized
    export gives the stored arrays (int8 and their ``:scale`` tensors); with ``dequantize``, each quantized
    tensor as float32 ``q * scale`` (or its cast back to float32) and no scale tensors: the model's tensors
    as the export holds them.

    >>> arrays = read("fixtures/golden/seed_mlp.safetensors")
    >>> arrays["dense/kernel"].shape, arrays["dense/kernel"].dtype
    ((4, 20), dtype('float32'))
    """
    path = Path(path)
    if not path.is_file():
        raise InputNotFound(f"no such file: {path}")
    return exports.Export.open(path).arrays(dequantize)
