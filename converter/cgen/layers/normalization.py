"""Normalizations: BatchNormalization, LayerNormalization, Normalization, Rescaling."""
from __future__ import annotations

from .base import Call, Shape, Unsupported, c_float, kind, size


def _on_last_axis(call: Call) -> bool:
    """Whether a normalization's ``axis`` is the last one (Keras counts the batch axis in a positive axis)."""
    axis = call.config.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    return axis in (-1, len(call.inputs[0]))


@kind("BatchNormalization")
def batch_norm(call: Call) -> Shape:
    shape = call.inputs[0]
    if not _on_last_axis(call):
        raise Unsupported(f"axis={call.config.get('axis')} (the last axis only)")
    channels = (shape[-1],)
    arrays = [call.weight(role, required=False, shape=channels) for role in ("gamma", "beta")]
    mean, variance = call.weight("moving_mean", shape=channels), call.weight("moving_variance", shape=channels)
    gamma, beta = (a.array if a else "NULL" for a in arrays)
    call.emit(f"kw_batch_norm({call.source()}, {call.output}, {size(shape)}, {shape[-1]}, {gamma}, {beta}, {mean.array}, "
              f"{variance.array}, {c_float(call.number('epsilon', 1e-3, positive=True))});", "batch_norm")
    return shape


@kind("LayerNormalization")
def layer_norm(call: Call) -> Shape:
    shape = call.inputs[0]
    if not _on_last_axis(call) or call.config.get("rms_scaling"):
        raise Unsupported(f"axis={call.config.get('axis')}" if not _on_last_axis(call) else "rms_scaling=True")
    gamma, beta = (call.weight(role, required=False, shape=(shape[-1],)) for role in ("gamma", "beta"))
    call.emit(f"kw_layer_norm({call.source()}, {call.output}, {size(shape[:-1])}, {shape[-1]}, "
              f"{gamma.array if gamma else 'NULL'}, {beta.array if beta else 'NULL'}, "
              f"{c_float(call.number('epsilon', 1e-3, positive=True))});", "layer_norm")
    return shape


@kind("Normalization")
def normalization(call: Call) -> Shape:
    shape = call.inputs[0]
    if call.config.get("invert"):
        raise Unsupported("invert=True")
    mean, variance = call.weight("mean"), call.weight("variance")
    channels = size(mean.shape)
    if channels not in (1, shape[-1]) or size(variance.shape) != channels:
        raise Unsupported(f"statistics of shape {list(mean.shape)} (one per last-axis channel only)")
    call.emit(f"kw_normalize({call.source()}, {call.output}, {size(shape)}, {channels}, {mean.array}, {variance.array});",
              "normalize")
    return shape


@kind("Rescaling")
def rescaling(call: Call) -> Shape:
    if any(isinstance(call.config.get(key), (list, tuple, dict)) for key in ("scale", "offset")):
        raise Unsupported("a scale or offset per channel")
    scale, offset = call.number("scale", 1.0), call.number("offset", 0.0)
    shape = call.inputs[0]
    call.emit(f"for (size_t i = 0; i < {size(shape)}; ++i) {call.output}[i] = {call.source()}[i] * {c_float(scale)} + "
              f"{c_float(offset)};")
    return shape
