"""Layers whose output is their input at inference (the model's inputs, dropout, noise, augmentation): the C
forward pass reads their input's memory."""
from __future__ import annotations

from .emit import Call, Shape, Unsupported
from .spec import Spec

_IDENTITY = ("InputLayer", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
             "GaussianDropout", "AlphaDropout", "ActivityRegularization", "RandomFlip", "RandomRotation", "RandomZoom",
             "RandomTranslation", "RandomContrast", "RandomBrightness", "RandomHeight", "RandomWidth", "Identity")
INPUT = "InputLayer"  # where a model's inputs enter: the graph's sources


def identity_c(call: Call) -> Shape:
    call.alias = True
    return call.inputs[0]


def random_crop_c(call: Call) -> Shape:
    raise Unsupported("RandomCrop (crops at inference)")


SPECS = (*(Spec(name, identity=True, c=identity_c, c_int8=identity_c) for name in _IDENTITY),
         Spec("RandomCrop", identity=True, c=random_crop_c))
