"""Models used as layers (a Sequential or Functional inside another model), and Lambda, whose configuration
carries Python code: never run, so its layers are refused wherever code would have to run."""
from __future__ import annotations

from .spec import Spec

SEQUENTIAL = "Sequential"  # its configuration lists its layers without their inputs: each reads the one before
# tf.keras before 2.4 saved a functional model's class as "Model"; Keras 3 loads it as Functional.
KERAS3_CLASS = {"Model": "Functional"}

SPECS = (Spec(SEQUENTIAL, container=True), Spec("Functional", container=True), Spec("Model", container=True),
         Spec("Lambda", code=True))
