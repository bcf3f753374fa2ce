"""TensorFlow Model Optimization's quantization-aware training wrappers (``QuantizeWrapperV2`` around a layer,
``QuantizeLayer`` at the inputs), saved with tf_keras: besides the wrapped layer's weights they hold the ranges of
their fake quantizers (``kernel_min``, ``post_activation_max``, ``quantize_layer_min``...) and a step counter
(``optimizer_step``), all created untrainable."""
from __future__ import annotations

from .spec import Spec

# The roles the wrappers keep out of training: the quantizers' ranges and the step counter.
STATE = r"optimizer_step|\w+_(min|max)"

SPECS = (Spec("QuantizeWrapperV2", state=STATE), Spec("QuantizeWrapper", state=STATE),
         Spec("QuantizeLayer", state=STATE))
