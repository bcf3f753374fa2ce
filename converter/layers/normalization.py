"""Normalizations: BatchNormalization, LayerNormalization, RMSNormalization, Normalization, Rescaling."""
from __future__ import annotations

import numpy as np

from . import q8
from .emit import Call, Post, Shape, Unsupported, c_float, in_place, size
from .spec import Spec
from .. import integer
from .to_torch import Site
from ..transforms import Step


def _on_last_axis(call: Call) -> bool:
    """Whether a normalization's ``axis`` is the last one (Keras counts the batch axis in a positive axis)."""
    axis = call.config.get("axis", -1)
    axis = axis[0] if isinstance(axis, list) and len(axis) == 1 else axis
    return axis in (-1, len(call.inputs[0]))


def _batch_norm_arguments(call: Call) -> str:
    """gamma, beta, mean, variance, epsilon as the C kernels take them (NULL for a gamma or beta switched off)."""
    if not _on_last_axis(call):
        raise Unsupported(f"axis={call.config.get('axis')} (the last axis only)")
    channels = (call.inputs[0][-1],)
    arrays = [call.weight(role, required=False, shape=channels) for role in ("gamma", "beta")]
    mean, variance = call.weight("moving_mean", shape=channels), call.weight("moving_variance", shape=channels)
    gamma, beta = (a.array if a else "NULL" for a in arrays)
    return f"{gamma}, {beta}, {mean.array}, {variance.array}, {c_float(call.number('epsilon', 1e-3, positive=True))}"


def batch_norm_c(call: Call) -> Shape:
    shape = call.inputs[0]
    arguments = _batch_norm_arguments(call)
    in_place(call)
    call.emit(f"kw_batch_norm({call.source()}, {call.output}, {size(shape)}, {shape[-1]}, {arguments});", "batch_norm")
    return shape


def batch_norm_fold(call: Call, post: Post) -> None:
    """Folded into the epilogue of the convolution or Dense before it: a scale and shift per channel, which must
    come before any clamp there."""
    if not post.empty:
        raise Unsupported("after an activation")
    post.batch_norm = _batch_norm_arguments(call)
    channels = (call.inputs[0][-1],)
    values = [None if ref is None else ref.values for ref in
              (call.weight(role, required=role.startswith("moving"), shape=channels)
               for role in ("gamma", "beta", "moving_mean", "moving_variance"))]
    post.norm = (*values, call.number("epsilon", 1e-3, positive=True))


def batch_norm_q8(call: Call) -> Shape:
    """A BatchNormalization no kernel before it took in: a per-channel affine on int8 (kw_affine_q8), its scale in
    the multipliers, its shift in the int32 bias, as a convolution with a kernel of ones would have them."""
    shape = call.inputs[0]
    post = Post()
    batch_norm_fold(call, post)
    channels = shape[-1]
    call.q8.requantizers.append(lambda output, _: integer.affine_requantization(call.q8.inputs[0], *q8.affine_of(post),
                                                                                output))
    in_place(call)
    call.emit(f"kw_affine_q8({call.source()}, {call.output}, {size(shape[:-1])}, {channels}, @Q8:0@);", "affine_q8",
              "requantize")
    call.q8.reference = lambda xs, qs: integer.affine(xs[0], qs[0])
    return shape


def rescaling_q8(call: Call) -> Shape:
    """``x * scale + offset`` through a table of its 256 results (kw_lookup_q8)."""
    scale, offset = _rescaling(call)
    shape = call.inputs[0]
    in_place(call)
    twin = q8.elementwise(call, "rescaling", call.source(), call.output, shape, call.q8.inputs[0],
                          function=lambda v: v * scale + offset)
    call.q8.reference = lambda xs, qs: twin(xs[0])
    return shape


def layer_norm_c(call: Call) -> Shape:
    shape = call.inputs[0]
    if not _on_last_axis(call) or call.config.get("rms_scaling"):
        raise Unsupported(f"axis={call.config.get('axis')}" if not _on_last_axis(call) else "rms_scaling=True")
    gamma, beta = (call.weight(role, required=False, shape=(shape[-1],)) for role in ("gamma", "beta"))
    call.emit(f"kw_layer_norm({call.source()}, {call.output}, {size(shape[:-1])}, {shape[-1]}, "
              f"{gamma.array if gamma else 'NULL'}, {beta.array if beta else 'NULL'}, "
              f"{c_float(call.number('epsilon', 1e-3, positive=True))});", "layer_norm")
    return shape


def normalization_c(call: Call) -> Shape:
    shape = call.inputs[0]
    if call.config.get("invert"):
        raise Unsupported("invert=True")
    mean, variance = call.weight("mean"), call.weight("variance")
    channels = size(mean.shape)
    if channels not in (1, shape[-1]) or size(variance.shape) != channels:
        raise Unsupported(f"statistics of shape {list(mean.shape)} (one per last-axis channel only)")
    in_place(call)
    call.emit(f"kw_normalize({call.source()}, {call.output}, {size(shape)}, {channels}, {mean.array}, {variance.array});",
              "normalize")
    return shape


def _rescaling(call: Call) -> tuple[float, float]:
    if any(isinstance(call.config.get(key), (list, tuple, dict)) for key in ("scale", "offset")):
        raise Unsupported("a scale or offset per channel")
    return call.number("scale", 1.0), call.number("offset", 0.0)


def rescaling_c(call: Call) -> Shape:
    scale, offset = _rescaling(call)
    shape = call.inputs[0]
    in_place(call)
    call.emit(f"for (size_t i = 0; i < {size(shape)}; ++i) {call.output}[i] = {call.source()}[i] * {c_float(scale)} + "
              f"{c_float(offset)};")
    return shape


# -- PyTorch: nn.BatchNormNd and nn.LayerNorm ---------------------------------------------------------------
TORCH_NAMES = {"gamma": "weight", "beta": "bias", "moving_mean": "running_mean", "moving_variance": "running_var"}


def _normalization_torch(site: Site, batch: bool) -> list:
    w, config = site.array, site.config
    stored = [site.store(TORCH_NAMES.get(site.role, site.role), w)]
    # Keras keeps gamma, beta, moving_mean, moving_variance in that order; what torch has besides is added
    # after the last of them the layer holds, so that the module's state_dict is complete.
    if site.role == "moving_variance" or (not batch and site.role == ("beta" if config.get("center", True) else "gamma")):
        if not config.get("scale", True):
            stored.insert(0, site.store("weight", np.ones(w.shape, w.dtype), Step("ones")))
        if not config.get("center", True):
            stored.insert(1 if not config.get("scale", True) else 0,
                          site.store("bias", np.zeros(w.shape, w.dtype), Step("zeros")))
        if batch:
            stored.append(site.store("num_batches_tracked", np.array(0, np.int64), Step("count")))
    return stored


def batch_norm_torch(site: Site) -> list:
    return _normalization_torch(site, batch=True)


def layer_norm_torch(site: Site) -> list:
    return _normalization_torch(site, batch=False)


SPECS = (Spec("BatchNormalization", roles=("gamma", "beta", "moving_mean", "moving_variance"), torch=batch_norm_torch,
              c=batch_norm_c, c_int8=batch_norm_q8, c_fold=batch_norm_fold),
         Spec("LayerNormalization", roles=("gamma", "beta"), torch=layer_norm_torch, c=layer_norm_c),
         Spec("RMSNormalization", roles=("scale",)),
         Spec("Normalization", roles=("mean", "variance", "count"), c=normalization_c),
         Spec("Rescaling", c=rescaling_c, c_int8=rescaling_q8))
