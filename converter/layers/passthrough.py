"""Layers whose output is their input at inference (dropout, noise, augmentation), and activations that keep every
value where it was."""
from __future__ import annotations

from .spec import Spec

_IDENTITY = ("InputLayer", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
             "GaussianDropout", "AlphaDropout", "ActivityRegularization", "RandomFlip", "RandomRotation", "RandomZoom",
             "RandomTranslation", "RandomContrast", "RandomBrightness", "RandomCrop", "RandomHeight", "RandomWidth",
             "Identity")
_ELEMENTWISE = ("Activation", "ReLU", "LeakyReLU", "ELU")

SPECS = tuple(Spec(name, identity=True) for name in _IDENTITY) + tuple(Spec(name, elementwise=True) for name in _ELEMENTWISE)
