"""GroupNormalization: the channels of the last axis in ``groups`` groups, each normalized over every position and
its channels, then scaled by gamma and shifted by beta per channel (both optional: ``scale``, ``center``).

Everything keras-weights knows of the class is here (issue 24's proof of the registry):

- weights: ``gamma``, ``beta`` in that order, each dropped by its flag;
- int8: neither is a kernel, so ``--quantize int8`` keeps both float32 (no output-channel axis);
- PyTorch: ``nn.GroupNorm(groups, channels, eps=epsilon)``: ``weight`` and ``bias`` are gamma and beta; with one of
  ``scale``/``center`` off, the other is filled with ones or zeros (steps ``load`` drops), with both off torch's
  ``affine=False`` has none; channels first, so only ``axis=-1`` maps;
- the C forward pass: ``kw_group_norm``, below, computed as Keras does (``x * inv + (beta - mean * inv)`` with
  ``inv = gamma / sqrt(var + epsilon)``).
"""
from __future__ import annotations

from .emit import Call, Shape, Unsupported, c_float, shown, size
from .normalization import layer_norm_torch
from .spec import Spec
from .to_torch import Site, Unmappable

C_FUNCTION = """/* GroupNormalization over the last axis: C channels in G groups of C / G, each normalized over every position
 * and its channels, as Keras computes it: y = x * inv + (beta - mean * inv), inv = gamma / sqrt(var + eps). */
static void kw_group_norm(const float *x, float *y, size_t positions, size_t C, size_t G, const float *gamma,
                          const float *beta, float eps) {
    const size_t width = C / G;
    const float count = (float)(positions * width);
    for (size_t g = 0; g < G; ++g) {
        const float *xg = x + g * width;
        float *yg = y + g * width, mean = 0.0f, var = 0.0f;
        for (size_t p = 0; p < positions; ++p)
            for (size_t c = 0; c < width; ++c) mean += xg[p * C + c];
        mean /= count;
        for (size_t p = 0; p < positions; ++p)
            for (size_t c = 0; c < width; ++c) var += (xg[p * C + c] - mean) * (xg[p * C + c] - mean);
        var /= count;
        const float inv = 1.0f / sqrtf(var + eps);
        for (size_t c = 0; c < width; ++c) {
            const size_t channel = g * width + c;
            const float scale = inv * (gamma ? gamma[channel] : 1.0f);
            const float shift = (beta ? beta[channel] : 0.0f) - mean * scale;
            for (size_t p = 0; p < positions; ++p) yg[p * C + c] = xg[p * C + c] * scale + shift;
        }
    }
}

"""


def _groups(call: Call, channels: int) -> int:
    """The configuration's groups (-1: one per channel), which must divide the channels."""
    groups = call.config.get("groups", 32)
    groups = channels if groups == -1 else call.integer("groups", 32)
    if channels % groups:
        raise Unsupported(f"groups={shown(call.config.get('groups'))}: a divisor of its {channels} channels needed")
    return groups


def _on_last_axis(config: dict, rank: int) -> bool:
    return config.get("axis", -1) in (-1, rank)  # Keras counts the batch axis in a positive axis


def group_norm_c(call: Call) -> Shape:
    shape = call.inputs[0]
    if not _on_last_axis(call.config, len(shape)):
        raise Unsupported(f"axis={shown(call.config.get('axis'))} (the last axis only)")
    channels = shape[-1]
    groups = _groups(call, channels)
    gamma, beta = (call.weight(role, required=False, shape=(channels,)) for role in ("gamma", "beta"))
    call.emit(f"kw_group_norm({call.source()}, {call.output}, {size(shape[:-1])}, {channels}, {groups}, "
              f"{gamma.array if gamma else 'NULL'}, {beta.array if beta else 'NULL'}, "
              f"{c_float(call.number('epsilon', 1e-3, positive=True))});", "group_norm")
    return shape


def group_norm_torch(site: Site) -> list:
    if not _on_last_axis(site.config, -1):
        raise Unmappable(f"layer '{site.path}' (GroupNormalization): axis={site.config.get('axis')} (torch's "
                         "GroupNorm normalizes channels first, which is Keras's axis=-1)")
    return layer_norm_torch(site)


SPECS = (Spec("GroupNormalization", roles=("gamma", "beta"), torch=group_norm_torch, c=group_norm_c,
              c_functions={"group_norm": C_FUNCTION}),)
