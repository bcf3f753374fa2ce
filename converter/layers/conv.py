"""Convolutions: plain, depthwise, separable and transposed. The C forward pass computes the 1D and 2D ones,
channels last; PyTorch holds them channels first."""
from __future__ import annotations

import numpy as np

from . import q8
from .dense import KERNEL_BIAS
from .emit import Call, Shape, Unsupported, epilogue, spatial, spatial_output, weights_arguments, widened_panel, window
from .spec import Spec
from .to_torch import Site, Unmappable, channels_first, permute
from .. import integer
from ..transforms import Step


def _conv_geometry(call: Call, rank: int):
    """Shapes, window and padding as the kernels take them. An input that is a zero padding never made
    (``call.padded``) is read unpadded, its zeros added to the convolution's own padding: the kernels read
    positions outside the input as zeros."""
    (H, W, C), (KH, KW), (SH, SW), (DH, DW), padding = spatial(call, rank)
    OH, PT = window(H, KH, SH, DH, padding) if rank == 2 else (1, 0)
    OW, PL = window(W, KW, SW, DW, padding)
    if call.padded:
        top, left, H, W = call.padded
        PT, PL = PT + top, PL + left
    return (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL)


PATCH_FLOATS = 2048  # the im2col patch a convolution may take from the arena: 8 KB


def _patch_rows(K: int, pixels: int) -> int:
    """Output pixels per im2col patch: a multiple of 4 (the kernels' register block), up to 32 while the patch stays
    within PATCH_FLOATS (more rows per call amortise each weight panel), never more than the output has.

    >>> _patch_rows(27, 2304), _patch_rows(4608, 2304), _patch_rows(9, 6)
    (32, 4, 8)
    """
    rows = max(4, min(32, PATCH_FLOATS // K // 4 * 4))
    return min(rows, -(-pixels // 4) * 4)


def _conv_setup(call: Call) -> tuple:
    """(rank, geometry as _conv_geometry gives it, filters, kernel window) of a Conv1D/2D."""
    rank = 1 if call.node.class_name.endswith("1D") else 2
    if call.integer("groups", 1) != 1:
        raise Unsupported(f"groups={call.config['groups']}")
    geometry = _conv_geometry(call, rank)
    KH, KW = geometry[2]
    return rank, geometry, call.integer("filters"), (KW,) if rank == 1 else (KH, KW)


def conv_c(call: Call) -> Shape:
    rank, geometry, filters, window = _conv_setup(call)
    (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL) = geometry
    args, bias, quantized = weights_arguments(call, "kernel", "bias", (*window, C, filters), filters)
    suffix = "_i8" if quantized else "_f32"
    if (KH, KW, SH, SW, PT, PL) == (1, 1, 1, 1, 0, 0):  # a 1x1 convolution is Dense over the pixels
        panel = widened_panel(call, quantized, OH * OW, C)
        call.emit(f"kw_dense{suffix}({call.source()}, {call.output}, {OH * OW}, {C}, {filters}, {args}{panel}, "
                  f"{bias}, {epilogue(call)});", "dense" + suffix)
    else:
        patch, rows = f"T{len(call.temporaries)}", _patch_rows(KH * KW * C, OH * OW)
        call.temporaries.append(rows * KH * KW * C)
        panel = widened_panel(call, quantized, rows, KH * KW * C)
        call.emit(f"kw_conv2d{suffix}({call.source()}, {call.output}, {H}, {W}, {C}, {OH}, {OW}, {filters}, {KH}, {KW}, "
                  f"{SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {args}{panel}, {bias}, {patch}, {rows}, {epilogue(call)});",
                  "conv2d" + suffix, "dense" + suffix)
    return spatial_output(call, rank, OH, OW, filters)


def depthwise_c(call: Call) -> Shape:
    rank = 1 if call.node.class_name.endswith("1D") else 2
    (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL) = _conv_geometry(call, rank)
    multiplier = call.integer("depth_multiplier", 1)
    role = "kernel" if "kernel" in call.weights else "depthwise_kernel"
    window = (KW,) if rank == 1 else (KH, KW)
    args, bias, quantized = weights_arguments(call, role, "bias", (*window, C, multiplier), C * multiplier)
    suffix = "_i8" if quantized else "_f32"
    call.emit(f"kw_depthwise2d{suffix}({call.source()}, {call.output}, {H}, {W}, {C}, {multiplier}, {OH}, {OW}, {KH}, "
              f"{KW}, {SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {args}, {bias}, {epilogue(call)});", "depthwise2d" + suffix)
    return spatial_output(call, rank, OH, OW, C * multiplier)


def separable_c(call: Call) -> Shape:
    rank = 1 if call.node.class_name.endswith("1D") else 2
    (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL) = _conv_geometry(call, rank)
    multiplier, filters = call.integer("depth_multiplier", 1), call.integer("filters")
    window = (KW,) if rank == 1 else (KH, KW)
    depth_args, _, depth_quantized = weights_arguments(call, "depthwise_kernel", None, (*window, C, multiplier))
    point_args, bias, point_quantized = weights_arguments(call, "pointwise_kernel", "bias",
                                                           (*(1,) * rank, C * multiplier, filters), filters)
    middle = f"T{len(call.temporaries)}"
    call.temporaries.append(OH * OW * C * multiplier)
    ds, ps = ("_i8" if depth_quantized else "_f32"), ("_i8" if point_quantized else "_f32")
    call.emit(f"kw_depthwise2d{ds}({call.source()}, {middle}, {H}, {W}, {C}, {multiplier}, {OH}, {OW}, {KH}, {KW}, "
              f"{SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {depth_args}, NULL, NULL);", "depthwise2d" + ds)
    call.trace("depthwise", middle, OH * OW * C * multiplier)  # calibrated: full-integer int8 holds it in int8
    panel = widened_panel(call, point_quantized, OH * OW, C * multiplier)
    call.emit(f"kw_dense{ps}({middle}, {call.output}, {OH * OW}, {C * multiplier}, {filters}, {point_args}{panel}, "
              f"{bias}, {epilogue(call)});", "dense" + ps)
    return spatial_output(call, rank, OH, OW, filters)


def conv_transpose_c(call: Call) -> Shape:
    rank = 1 if call.node.class_name.endswith("1D") else 2
    if call.config.get("output_padding") not in (None, [None] * rank):
        raise Unsupported(f"output_padding={call.config['output_padding']}")
    (H, W, C), (KH, KW), (SH, SW), (DH, DW), padding = spatial(call, rank)
    sizes = []
    for length, k, s, d in ((H, KH, SH, DH), (W, KW, SW, DW)):
        effective = (k - 1) * d + 1
        if padding == "same":
            sizes.append((length * s, max(effective - s, 0) // 2))
        elif padding == "valid":
            sizes.append((length * s + max(effective - s, 0), 0))
        else:
            raise Unsupported(f"padding={padding!r}")
    (OH, PT), (OW, PL) = sizes
    if rank == 1:
        OH, PT = 1, 0
    filters = call.integer("filters")
    window = (KW,) if rank == 1 else (KH, KW)
    args, bias, quantized = weights_arguments(call, "kernel", "bias", (*window, filters, C), filters)
    suffix = "_i8" if quantized else "_f32"
    call.emit(f"kw_conv2d_transpose{suffix}({call.source()}, {call.output}, {H}, {W}, {C}, {OH}, {OW}, {filters}, {KH}, "
              f"{KW}, {SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {args}, {bias});", "conv2d_transpose" + suffix)
    return spatial_output(call, rank, OH, OW, filters)


# -- full-integer int8 (layers.q8): the same geometry, int8 kernels ---------------------------------------------
def _accumulators(call: Call, count: int) -> str:
    """An arena temporary of ``count`` int32 sums (temporaries are in bytes in the int8 program, 4-aligned)."""
    call.temporaries.append(4 * count)
    return f"(int32_t *)T{len(call.temporaries) - 1}"


def conv_q8(call: Call) -> Shape:
    rank, geometry, filters, window = _conv_setup(call)
    (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL) = geometry
    kernel = q8.int8_kernel(call, "kernel", (*window, C, filters))
    name = call.config.get("activation")
    before = q8.before_activation(call, name)
    requantization = q8.weighted(call, kernel, q8.float_values(call, "bias", filters), True, inside=before)
    if (KH, KW, SH, SW, PT, PL) == (1, 1, 1, 1, 0, 0):
        scratch = q8.dense_scratch(call, OH * OW, C, filters)
        call.emit(f"kw_dense_q8({call.source()}, {call.output}, {OH * OW}, {C}, {filters}, {kernel.array}, "
                  f"{scratch}, {requantization});", "dense_q8", "requantize")
    else:
        rows = _patch_rows(KH * KW * C, OH * OW)
        scratch = q8.dense_scratch(call, rows, KH * KW * C, filters)
        call.temporaries.append(rows * KH * KW * C)
        call.emit(f"kw_conv2d_q8({call.source()}, {call.output}, {H}, {W}, {C}, {OH}, {OW}, {filters}, {KH}, {KW}, "
                  f"{SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {kernel.array}, T{len(call.temporaries) - 1}, {rows}, "
                  f"{scratch}, {requantization});", "conv2d_q8", "dense_q8", "requantize")
    out = (OW, filters) if rank == 1 else (OH, OW, filters)
    after = q8.activation(call, name, call.output, out, before)
    w = np.asarray(kernel.values).reshape(KH, KW, C, filters)
    call.q8.reference = lambda xs, qs: q8.then(after, integer.conv2d(
        xs[0].reshape(H, W, C), w, qs[0], (OH, OW), (SH, SW), (DH, DW), (PT, PL)).reshape(out))
    return out


def _depthwise_q8(call: Call, role: str, geometry, multiplier: int, inside=None, middle: bool = False) -> tuple:
    """The int8 depthwise kernel's call on input 0, into ``call.output`` or (``middle``: a separable convolution's
    half, without bias) a temporary; ``inside``: the parameters of the value it writes where that is not the
    step's output. (Its output buffer, its twin on input 0.)"""
    (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL) = geometry
    rank_window = (KH, KW) if "1D" not in call.node.class_name else (KW,)
    kernel = q8.int8_kernel(call, role, (*rank_window, C, multiplier), C * multiplier)
    values = None if middle else q8.float_values(call, "bias", C * multiplier)
    requantization = q8.weighted(call, kernel, values, fold_zero_point=False, inside=inside)
    acc = _accumulators(call, C * multiplier)
    target = call.output
    if middle:
        call.temporaries.append(OH * OW * C * multiplier)
        target = f"T{len(call.temporaries) - 1}"
    call.emit(f"kw_depthwise2d_q8({call.source()}, {target}, {H}, {W}, {C}, {multiplier}, {OH}, {OW}, {KH}, {KW}, "
              f"{SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {kernel.array}, {acc}, {requantization});", "depthwise2d_q8",
              "requantize")
    w = np.asarray(kernel.values).reshape(KH, KW, C, multiplier)
    index = len(call.q8.requantizers) - 1
    return target, lambda x, qs: integer.depthwise2d(x.reshape(H, W, C), w, qs[index], (OH, OW), (SH, SW), (DH, DW),
                                                     (PT, PL))


def depthwise_q8(call: Call) -> Shape:
    rank = 1 if call.node.class_name.endswith("1D") else 2
    geometry = _conv_geometry(call, rank)
    (OH, OW), C = geometry[1], geometry[0][2]
    multiplier = call.integer("depth_multiplier", 1)
    name = call.config.get("activation")
    before = q8.before_activation(call, name)
    _, reference = _depthwise_q8(call, "kernel" if "kernel" in call.weights else "depthwise_kernel", geometry,
                                 multiplier, before)
    out = (OW, C * multiplier) if rank == 1 else (OH, OW, C * multiplier)
    after = q8.activation(call, name, call.output, out, before)
    call.q8.reference = lambda xs, qs: q8.then(after, reference(xs[0], qs).reshape(out))
    return out


def separable_q8(call: Call) -> Shape:
    """The depthwise half into a temporary, at the parameters calibrated for it (the float pass traces it as
    '<layer>/depthwise'), then the pointwise half as Dense over the pixels."""
    rank = 1 if call.node.class_name.endswith("1D") else 2
    geometry = _conv_geometry(call, rank)
    (OH, OW), C = geometry[1], geometry[0][2]
    multiplier, filters = call.integer("depth_multiplier", 1), call.integer("filters")
    middle = call.q8.params_of(f"{call.node.name}/depthwise")
    target, depthwise = _depthwise_q8(call, "depthwise_kernel", geometry, multiplier, middle, middle=True)
    kernel = q8.int8_kernel(call, "pointwise_kernel", (*(1,) * rank, C * multiplier, filters))
    name = call.config.get("activation")
    before = q8.before_activation(call, name)
    requantization = q8.weighted(call, kernel, q8.float_values(call, "bias", filters), True, source=middle,
                                 inside=before)
    call.emit(f"kw_dense_q8({target}, {call.output}, {OH * OW}, {C * multiplier}, {filters}, {kernel.array}, "
              f"{q8.dense_scratch(call, OH * OW, C * multiplier, filters)}, {requantization});", "dense_q8")
    out = (OW, filters) if rank == 1 else (OH, OW, filters)
    after = q8.activation(call, name, call.output, out, before)
    w = np.asarray(kernel.values).reshape(C * multiplier, filters)
    call.q8.reference = lambda xs, qs: q8.then(after, integer.dense(depthwise(xs[0], qs).reshape(OH * OW, -1), w,
                                                                    qs[1]).reshape(out))
    return out


# -- PyTorch: nn.ConvNd, nn.ConvTransposeNd, depthwise as a grouped nn.ConvNd, separable as depthwise + pointwise ----
def conv_torch(site: Site) -> list:
    """nn.ConvNd and nn.ConvTransposeNd: the kernel's last two axes first, (k..., in, out) -> (out, in, k...) and
    the transposed (k..., out, in) -> (in, out, k...): each torch's own order."""
    w = site.array
    if site.role == "bias":
        return [site.store("bias", w)]
    if site.role != "kernel":
        return site.kept()
    if int(site.config.get("groups", 1)) != 1:
        raise Unmappable(f"layer '{site.path}' ({site.tensor.owner_class}): groups={site.config['groups']}")
    order = channels_first(w.ndim)
    return [site.store("weight", w.transpose(order), permute(order))]


def _depthwise(site: Site, parameter: str) -> list:
    """A depthwise kernel (k..., in, m) as torch's grouped weight [in * m, 1, k...]: output channel c * m + mm."""
    w = site.array
    rank = w.ndim - 2
    channels = w.reshape(*w.shape[:rank], -1)
    return [site.store(parameter, channels.transpose(rank, *range(rank))[:, None], Step("depthwise"))]


def depthwise_torch(site: Site) -> list:
    if site.role == "bias":
        return [site.store("bias", site.array)]
    if site.role == "depthwise_kernel":  # Keras 2's name for it
        return _depthwise(site, "depthwise.weight")
    return _depthwise(site, "weight") if site.role == "kernel" else site.kept()


def separable_torch(site: Site) -> list:
    w = site.array
    if site.role == "depthwise_kernel":
        return _depthwise(site, "depthwise.weight")
    if site.role == "pointwise_kernel":
        order = channels_first(w.ndim)
        return [site.store("pointwise.weight", w.transpose(order), permute(order))]
    return [site.store("pointwise.bias", w)] if site.role == "bias" else site.kept()


SPECS = (
    *(Spec(name, roles=KERNEL_BIAS, channels="last", torch=conv_torch, c=conv_c if "3" not in name else None,
           c_int8=conv_q8 if "3" not in name else None, c_padded=name == "Conv2D")
      for name in ("Conv1D", "Conv2D", "Conv3D")),
    *(Spec(name, roles=("depthwise_kernel", "pointwise_kernel", "bias"), channels="last", torch=separable_torch,
           c=separable_c, c_int8=separable_q8, c_padded=name == "SeparableConv2D")
      for name in ("SeparableConv1D", "SeparableConv2D")),
    *(Spec(name, channels="keras1", c=conv_c) for name in ("Convolution1D", "Convolution2D")),
    Spec("Convolution3D", channels="keras1"),
    *(Spec(name, roles=KERNEL_BIAS, channels="depthwise", torch=depthwise_torch, c=depthwise_c, c_int8=depthwise_q8,
           c_padded=name == "DepthwiseConv2D") for name in ("DepthwiseConv1D", "DepthwiseConv2D")),
    *(Spec(name, roles=KERNEL_BIAS, channels="transposed", torch=conv_torch,
           c=conv_transpose_c if "3" not in name else None)
      for name in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")),
    *(Spec(name, channels="transposed") for name in ("Deconvolution2D", "Deconvolution3D")),
)
