"""Convolutions: where their kernels' output channels are (int8 scales one per output channel)."""
from __future__ import annotations

from .spec import Spec

SPECS = (
    *(Spec(name, channels="last") for name in ("Conv1D", "Conv2D", "Conv3D", "SeparableConv1D", "SeparableConv2D")),
    *(Spec(name, channels="keras1") for name in ("Convolution1D", "Convolution2D", "Convolution3D")),
    *(Spec(name, channels="depthwise") for name in ("DepthwiseConv1D", "DepthwiseConv2D")),
    *(Spec(name, channels="transposed") for name in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose",
                                                      "Deconvolution2D", "Deconvolution3D")),
)
