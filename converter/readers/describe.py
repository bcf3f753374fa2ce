"""What both readers say about a layer: the config entries a user needs to run it with its weights."""
from __future__ import annotations

import json
import math
from typing import Any

from .. import layers as registry

CONFIG_KEYS = (
    "activation", "recurrent_activation", "units", "filters", "kernel_size", "strides", "padding",
    "dilation_rate", "groups", "depth_multiplier", "data_format", "use_bias", "axis", "epsilon",
    "momentum", "center", "scale", "return_sequences", "return_state", "go_backwards", "stateful",
    "unroll", "reset_after", "unit_forget_bias", "input_dim", "output_dim", "mask_zero", "num_heads",
    "key_dim", "value_dim", "output_shape", "equation", "bias_axes", "pool_size", "rate",
    "target_shape", "dims", "merge_mode", "size", "interpolation", "cropping", "max_value",
    "negative_slope", "threshold", "alpha", "theta",
)


# Roles Keras keeps out of training (BatchNorm statistics in every era's names, Normalization state):
# the direct readers cannot ask a variable, so they ask its role and its layer's config.
NON_TRAINABLE_ROLES = frozenset({"moving_mean", "moving_variance", "running_mean", "running_std", "mean", "variance",
                                 "count"})


def trainable(role: str, layer_config: dict, class_name: str = "") -> bool:
    """Whether Keras would mark a variable trainable, from its role, its layer's config and class (what the
    registry says is no weight, :func:`kind`: a quantization-aware wrapper's ranges and step counter).

    >>> trainable("kernel", {}), trainable("moving_mean", {}), trainable("kernel", {"trainable": False})
    (True, False, False)
    >>> trainable("kernel_min", {}, "QuantizeWrapperV2"), trainable("kernel", {}, "QuantizeWrapperV2")
    (False, True)
    """
    return bool(layer_config.get("trainable", True)) and role not in NON_TRAINABLE_ROLES \
        and kind(role, class_name) == registry.WEIGHT


def kind(role: str, class_name: str) -> str:
    """What a variable of a layer class is, by its role: ``weight``, ``quantizer_range`` or ``training_state``.

    >>> kind("kernel", "QuantizeWrapperV2"), kind("post_activation_max", "QuantizeWrapperV2"), kind("kernel_min", "Dense")
    ('weight', 'quantizer_range', 'weight')
    """
    return registry.spec(class_name).kind(role)


def summary(config: dict) -> dict:
    """The entries of a layer config that matter for using its weights, as plain JSON.

    >>> summary({"units": 4, "activation": "relu", "kernel_initializer": {"class_name": "GlorotUniform"}})
    {'activation': 'relu', 'units': 4}
    """
    return {key: jsonable(config[key]) for key in CONFIG_KEYS if key in config}


def layers_of_class(config: Any, class_name: str) -> list[str]:
    """Names of the layers anywhere in a model config whose class is ``class_name``.

    >>> layers_of_class({"layers": [{"class_name": "Mine", "config": {"name": "m"}}]}, "Mine")
    ['m']
    """
    return [name for found, name in _layer_configs(config) if found == class_name]


def code_layers(config: Any) -> list[str]:
    """Names of the layers anywhere in a model config that carry Python code (Lambda layers).

    >>> code_layers({"config": {"layers": [{"class_name": "Lambda", "config": {"name": "double"}}]}})
    ['double']
    """
    return [name for found, name in _layer_configs(config) if found in registry.code_classes()]


def _layer_configs(config: Any, depth: int = 0) -> list[tuple[str, str]]:
    """(class name, layer name) of every object anywhere in a config that has a class name, whatever junk
    surrounds it; nesting deeper than any real model is not followed."""
    found: list[tuple[str, str]] = []
    if depth > 200:
        return found
    if isinstance(config, dict):
        inner = config.get("config")
        if isinstance(config.get("class_name"), str):
            name = inner.get("name", "?") if isinstance(inner, dict) else "?"
            found.append((config["class_name"], str(name)))
        for value in config.values():
            found += _layer_configs(value, depth + 1)
    elif isinstance(config, list):
        for value in config:
            found += _layer_configs(value, depth + 1)
    return found


def jsonable(value: Any) -> Any:
    """Config values as plain JSON (tuples to lists, non-finite floats and objects to strings)."""
    if isinstance(value, (list, tuple)):
        return [jsonable(v) for v in value]
    if isinstance(value, float) and not math.isfinite(value):
        return repr(value)
    if isinstance(value, (str, int, float, bool)) or value is None:
        return value
    try:
        return json.loads(json.dumps(value, sort_keys=True, allow_nan=False, default=str))
    except ValueError:
        return str(value)
