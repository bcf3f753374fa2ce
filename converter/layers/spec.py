"""The record the layer registry keeps per Keras layer class: everything any part of keras-weights knows of it."""
from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from types import MappingProxyType
from typing import Any

# What a variable is (Spec.kind): most are weights; a quantization-aware model also keeps its quantizers' ranges and
# a step counter.
WEIGHT, QUANTIZER_RANGE, TRAINING_STATE = "weight", "quantizer_range", "training_state"

# Roles a configuration flag can switch off, and the flag (a Dense with use_bias=False has no bias).
OPTIONAL = MappingProxyType({"bias": "use_bias", "gamma": "scale", "beta": "center"})


@dataclass(frozen=True)
class Spec:
    """One Keras layer class, as far as the registry knows it. Fields left at their defaults mean "nothing
    special": no weights of its own, no PyTorch counterpart (its tensors are kept as Keras holds them), no C."""

    class_name: str
    # Weights: Keras 3 files do not name variables, so the order in which the class creates them names them.
    roles: tuple[str, ...] = ()       # its own weights, in creation order (flags in OPTIONAL may drop some)
    cell: str | None = None           # a recurrent layer: the class of the cell that holds its weights
    children: tuple[str, ...] = ()    # sub-layers it creates, by attribute, in creation order
    child_class: str | None = None    # the class of every sub-layer, where the class fixes it (attention: EinsumDense)
    child_names: Mapping[str, str] = field(default_factory=dict)  # attribute -> the name Keras gives the sub-layer
    wrapper: bool = False             # it wraps one layer given in its configuration (Bidirectional, TimeDistributed)
    container: bool = False           # a model (Sequential, Functional): its layers are listed in its configuration
    code: bool = False                # it carries Python code in its configuration (Lambda): never run
    ranges: str | None = None         # a regular expression of roles that are quantizer ranges, not weights (a
                                      # quantization-aware wrapper's kernel_min), kept out of training
    state: str | None = None          # a regular expression of roles that are training state (a step counter),
                                      # kept out of training
    unwrap: Callable[[Mapping[str, Any]], dict | None] | None = None  # it computes, at inference, the layer its
                                      # configuration wraps: that layer's serialized form as the forward pass and
                                      # the torch layout see it (a quantization-aware wrapper, fake quantization aside)
    output_range: Callable[[Mapping[str, Any]], tuple[float, float] | None] | None = None  # the range it trained
                                      # for its output, from its weights by role (full-integer int8 takes it)
    # Meaning, for the transforms.
    gates: int = 0                    # recurrent: gate blocks stacked on the kernel's last axis (LSTM 4, GRU 3)
    layer: str | None = None          # a recurrent cell: the layer class it belongs to (LSTMCell -> LSTM)
    identity: bool = False            # its output is its input at inference (Dropout, noise, augmentation)
    elementwise: bool = False         # every value stays where it was (an activation): a flattened map keeps its order
    flattens: bool = False            # it flattens a channels-last map to one axis (torch flattens channels first)
    integer_input: bool = False       # it reads token ids (Embedding): sample inputs for it are whole numbers
    out_in: bool = False              # its kernel is an (in, out) matrix that --layout dense_out_in stores as [out][in]
    channels: str | None = None       # where its kernels' output channels are, for int8 scales (quantize.channel_axes):
                                      # last, depthwise (the last two), transposed (the second last), einsum (from the
                                      # equation or heads), keras1 (last, or first in Theano's dim_ordering)
    # What it becomes elsewhere.
    torch: Callable[[Any], list] | None = None  # its tensors as torch.nn holds them (to_torch.Site -> Tensors)
    c: Callable[[Any], tuple[int, ...]] | None = None  # the C forward pass: emits its calls, gives its output shape
                                                        # (emit.Call -> Shape), float32 or int8 weights
    c_int8: Callable[[Any], tuple[int, ...]] | None = None  # full-integer int8 (--calibration): emits its int8
                                                             # calls and their numpy twin (emit.Call with q8 set)
    c_padded: bool = False            # its C emitter reads a ZeroPadding's input itself, taking the padding as its
                                      # own (Call.padded): the padded copy is never made
    c_fold: Callable[[Any, Any], None] | None = None  # an element-wise layer the code generator may fold into the
                                                       # epilogue of the kernel before it (emit.Call, emit.Post):
                                                       # adds itself to the Post, or raises Unsupported
    c_functions: Mapping[str, str] = field(default_factory=dict)  # C functions its emitter calls that the shared
                                                                   # library (converter.c_kernels) does not hold

    def kind(self, role: str) -> str:
        """What a variable of this role is: ``weight`` (what the layer computes with), ``quantizer_range`` or
        ``training_state`` (both kept out of training).

        >>> q = Spec("Q", ranges=r"\\w+_(min|max)", state="optimizer_step")
        >>> q.kind("kernel_min"), q.kind("optimizer_step"), q.kind("kernel"), Spec("Dense").kind("kernel_min")
        ('quantizer_range', 'training_state', 'weight', 'weight')
        """
        if self.ranges is not None and re.fullmatch(self.ranges, role):
            return QUANTIZER_RANGE
        if self.state is not None and re.fullmatch(self.state, role):
            return TRAINING_STATE
        return WEIGHT

    def roles_for(self, config: Mapping[str, Any]) -> tuple[str, ...]:
        """Its weights' roles in creation order, without those its configuration switches off.

        >>> Spec("Dense", roles=("kernel", "bias")).roles_for({"use_bias": False})
        ('kernel',)
        """
        return tuple(role for role in self.roles if config.get(OPTIONAL.get(role, ""), True) is not False)


BY_CLASS: dict[str, Spec] = {}  # filled by the package from its family modules (converter/layers/__init__.py)


def register(*specs: Spec) -> None:
    """Add a family's specs; a class registered twice is a bug in the registry."""
    for item in specs:
        if item.class_name in BY_CLASS:
            raise ValueError(f"layer class {item.class_name} registered twice")
        BY_CLASS[item.class_name] = item


def find(class_name: str) -> Spec:
    """The spec of a Keras layer class; for a class the registry does not know (or junk in a crafted config), a
    blank one: no weights of its own, no meaning, no PyTorch mapping, no C."""
    found = BY_CLASS.get(class_name) if isinstance(class_name, str) else None
    return found or Spec(class_name if isinstance(class_name, str) else "")
