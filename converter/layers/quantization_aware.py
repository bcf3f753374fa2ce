"""TensorFlow Model Optimization's quantization-aware training wrappers (``QuantizeWrapperV2`` around a layer,
``QuantizeLayer`` at the inputs), saved with tf_keras. Besides the wrapped layer's weights they hold the ranges of
their fake quantizers (``kernel_min``, ``post_activation_max``, ``quantize_layer_min``...) and a step counter
(``optimizer_step``), all created untrainable.

At inference a wrapper computes the layer it wraps, its fake quantizers aside: the forward pass and the torch layout
see that layer (:func:`unwrapped`), and full-integer int8 takes the output ranges trained (:func:`wrapper_range`,
:func:`input_range`) instead of calibrating them.

>>> wrapped = {"layer": {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": {
...     "class_name": "QuantizeAwareActivation", "config": {"activation": "relu"}}}}}
>>> unwrapped(wrapped)["config"]["activation"], unwrapped({"layer": "junk"})
('relu', None)
>>> wrapper_range({"post_activation_min": -1.0, "post_activation_max": 2.0, "kernel_min": -3.0})
(-1.0, 2.0)
>>> input_range({"quantize_layer_1_min": -4.0, "quantize_layer_1_max": 4.0, "optimizer_step": -1})
(-4.0, 4.0)
"""
from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import numpy as np

from .passthrough import identity_c
from .spec import Spec

RANGES = r"\w+_(min|max)"  # the quantizers' ranges: kernel_min, post_activation_max, output_min, <layer name>_max
STATE = "optimizer_step"   # the step counter the quantizers' schedules read

# A wrapper's ranges of what it outputs, the one applied last first: its output quantizer, else its activation's.
_OUTPUT_PAIRS = (("output_min", "output_max"), ("post_activation_min", "post_activation_max"))
_AWARE_ACTIVATION = "QuantizeAwareActivation"  # how a wrapper's configuration holds the wrapped layer's activation
_NO_OP_ACTIVATION = "NoOpActivation"


def unwrapped(config: Mapping[str, Any]) -> dict | None:
    """The wrapped layer's serialized form as it computes at inference (its activation without the fake quantizer
    around it), or None where the configuration holds none."""
    inner = config.get("layer")
    if not isinstance(inner, dict) or not isinstance(inner.get("class_name"), str) \
            or not isinstance(inner.get("config"), dict):
        return None
    inner_config = dict(inner["config"])
    activation = inner_config.get("activation")
    if isinstance(activation, dict) and activation.get("class_name") == _AWARE_ACTIVATION:
        activation = (activation.get("config") or {}).get("activation", "linear")
        # tfmot's marker for "the activation comes later" (a convolution before its BatchNormalization): none here
        no_op = isinstance(activation, dict) and activation.get("class_name") == _NO_OP_ACTIVATION
        inner_config["activation"] = "linear" if no_op else activation
    return {**inner, "config": inner_config}


def wrapper_range(weights: Mapping[str, Any]) -> tuple[float, float] | None:
    """The (min, max) a wrapper trained for its output, from its variables by role; None where it quantizes no
    output (a convolution whose output a BatchNormalization takes)."""
    for low, high in _OUTPUT_PAIRS:
        if low in weights and high in weights:
            return _finite(weights[low], weights[high])
    return None


def input_range(weights: Mapping[str, Any]) -> tuple[float, float] | None:
    """The (min, max) a ``QuantizeLayer`` trained for the values it passes on: its one ``<name>_min``/``_max`` pair."""
    lows = [role for role in weights if role.endswith("_min") and role[:-4] + "_max" in weights]
    return _finite(weights[lows[0]], weights[lows[0][:-4] + "_max"]) if len(lows) == 1 else None


def _finite(low: Any, high: Any) -> tuple[float, float] | None:
    """A range of two scalars, or None where a crafted file gives arrays, NaN or a minimum above the maximum."""
    try:
        low, high = np.asarray(low, np.float64), np.asarray(high, np.float64)
    except (TypeError, ValueError):
        return None
    if low.shape or high.shape:
        return None
    low, high = float(low), float(high)
    return (low, high) if math.isfinite(low) and math.isfinite(high) and low <= high else None


SPECS = (*(Spec(name, ranges=RANGES, state=STATE, unwrap=unwrapped, output_range=wrapper_range)
           for name in ("QuantizeWrapperV2", "QuantizeWrapper")),
         Spec("QuantizeLayer", ranges=RANGES, state=STATE, identity=True, c=identity_c, c_int8=identity_c,
              output_range=input_range))
