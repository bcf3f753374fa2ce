"""Convolutions, 1D and 2D, channels last: plain, depthwise, separable and transposed."""
from __future__ import annotations

from .base import Call, Shape, Unsupported, kind, spatial, spatial_output, weights_arguments, window


def _conv_geometry(call: Call, rank: int):
    (H, W, C), (KH, KW), (SH, SW), (DH, DW), padding = spatial(call, rank)
    OH, PT = window(H, KH, SH, DH, padding) if rank == 2 else (1, 0)
    OW, PL = window(W, KW, SW, DW, padding)
    return (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL)


@kind("Conv1D", "Conv2D", "Convolution1D", "Convolution2D")
def conv(call: Call) -> Shape:
    rank = 1 if call.node.class_name.endswith("1D") else 2
    if call.integer("groups", 1) != 1:
        raise Unsupported(f"groups={call.config['groups']}")
    (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL) = _conv_geometry(call, rank)
    filters = call.integer("filters")
    window = (KW,) if rank == 1 else (KH, KW)
    args, bias, quantized = weights_arguments(call, "kernel", "bias", (*window, C, filters), filters)
    suffix = "_i8" if quantized else "_f32"
    if (KH, KW, SH, SW, PT, PL) == (1, 1, 1, 1, 0, 0):  # a 1x1 convolution is Dense over the pixels
        call.emit(f"kw_dense{suffix}({call.source()}, {call.output}, {OH * OW}, {C}, {filters}, {args}, {bias});",
                  "dense" + suffix)
    else:
        patch = f"T{len(call.temporaries)}"
        call.temporaries.append(4 * KH * KW * C)
        call.emit(f"kw_conv2d{suffix}({call.source()}, {call.output}, {H}, {W}, {C}, {OH}, {OW}, {filters}, {KH}, {KW}, "
                  f"{SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {args}, {bias}, {patch});", "conv2d" + suffix, "dense" + suffix)
    return spatial_output(call, rank, OH, OW, filters)


@kind("DepthwiseConv1D", "DepthwiseConv2D")
def depthwise(call: Call) -> Shape:
    rank = 1 if call.node.class_name.endswith("1D") else 2
    (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL) = _conv_geometry(call, rank)
    multiplier = call.integer("depth_multiplier", 1)
    role = "kernel" if "kernel" in call.weights else "depthwise_kernel"
    window = (KW,) if rank == 1 else (KH, KW)
    args, bias, quantized = weights_arguments(call, role, "bias", (*window, C, multiplier), C * multiplier)
    suffix = "_i8" if quantized else "_f32"
    call.emit(f"kw_depthwise2d{suffix}({call.source()}, {call.output}, {H}, {W}, {C}, {multiplier}, {OH}, {OW}, {KH}, "
              f"{KW}, {SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {args}, {bias});", "depthwise2d" + suffix)
    return spatial_output(call, rank, OH, OW, C * multiplier)


@kind("SeparableConv1D", "SeparableConv2D")
def separable(call: Call) -> Shape:
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
              f"{SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {depth_args}, NULL);", "depthwise2d" + ds)
    call.emit(f"kw_dense{ps}({middle}, {call.output}, {OH * OW}, {C * multiplier}, {filters}, {point_args}, {bias});",
              "dense" + ps)
    return spatial_output(call, rank, OH, OW, filters)


@kind("Conv1DTranspose", "Conv2DTranspose")
def conv_transpose(call: Call) -> Shape:
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
