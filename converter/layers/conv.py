"""Convolutions: plain, depthwise, separable and transposed. The C forward pass computes the 1D and 2D ones,
channels last; PyTorch holds them channels first."""
from __future__ import annotations

from .dense import KERNEL_BIAS
from .emit import Call, Shape, Unsupported, epilogue, spatial, spatial_output, weights_arguments, window
from .spec import Spec
from .to_torch import Site, Unmappable, channels_first, permute
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


def conv_c(call: Call) -> Shape:
    rank = 1 if call.node.class_name.endswith("1D") else 2
    if call.integer("groups", 1) != 1:
        raise Unsupported(f"groups={call.config['groups']}")
    (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL) = _conv_geometry(call, rank)
    filters = call.integer("filters")
    window = (KW,) if rank == 1 else (KH, KW)
    args, bias, quantized = weights_arguments(call, "kernel", "bias", (*window, C, filters), filters)
    suffix = "_i8" if quantized else "_f32"
    if (KH, KW, SH, SW, PT, PL) == (1, 1, 1, 1, 0, 0):  # a 1x1 convolution is Dense over the pixels
        call.emit(f"kw_dense{suffix}({call.source()}, {call.output}, {OH * OW}, {C}, {filters}, {args}, {bias}, "
                  f"{epilogue(call)});", "dense" + suffix)
    else:
        patch, rows = f"T{len(call.temporaries)}", _patch_rows(KH * KW * C, OH * OW)
        call.temporaries.append(rows * KH * KW * C)
        call.emit(f"kw_conv2d{suffix}({call.source()}, {call.output}, {H}, {W}, {C}, {OH}, {OW}, {filters}, {KH}, {KW}, "
                  f"{SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {args}, {bias}, {patch}, {rows}, {epilogue(call)});",
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
    call.emit(f"kw_dense{ps}({middle}, {call.output}, {OH * OW}, {C * multiplier}, {filters}, {point_args}, {bias}, "
              f"{epilogue(call)});", "dense" + ps)
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
           c_padded=name == "Conv2D") for name in ("Conv1D", "Conv2D", "Conv3D")),
    *(Spec(name, roles=("depthwise_kernel", "pointwise_kernel", "bias"), channels="last", torch=separable_torch,
           c=separable_c, c_padded=name == "SeparableConv2D") for name in ("SeparableConv1D", "SeparableConv2D")),
    *(Spec(name, channels="keras1", c=conv_c) for name in ("Convolution1D", "Convolution2D")),
    Spec("Convolution3D", channels="keras1"),
    *(Spec(name, roles=KERNEL_BIAS, channels="depthwise", torch=depthwise_torch, c=depthwise_c,
           c_padded=name == "DepthwiseConv2D") for name in ("DepthwiseConv1D", "DepthwiseConv2D")),
    *(Spec(name, roles=KERNEL_BIAS, channels="transposed", torch=conv_torch,
           c=conv_transpose_c if "3" not in name else None)
      for name in ("Conv1DTranspose", "Conv2DTranspose", "Conv3DTranspose")),
    *(Spec(name, channels="transposed") for name in ("Deconvolution2D", "Deconvolution3D")),
)
