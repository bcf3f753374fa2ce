"""Pooling, windowed and global."""
from __future__ import annotations

from . import q8
from .emit import Call, Shape, channels_last, size, spatial, window
from .spec import Spec
from .. import integer


def pooling_c(call: Call) -> Shape:
    rank = 1 if call.node.class_name.endswith("1D") else 2
    (H, W, C), (KH, KW), (SH, SW), _, padding = spatial(call, rank)
    OH, PT = window(H, KH, SH, 1, padding) if rank == 2 else (1, 0)
    OW, PL = window(W, KW, SW, 1, padding)
    average = int("Average" in call.node.class_name or "Avg" in call.node.class_name)
    call.emit(f"kw_pool2d({call.source()}, {call.output}, {H}, {W}, {C}, {OH}, {OW}, {KH}, {KW}, {SH}, {SW}, {PT}, {PL}, "
              f"{average});", "pool2d")
    return (OW, C) if rank == 1 else (OH, OW, C)


def global_pooling_c(call: Call) -> Shape:
    channels_last(call)
    shape = call.inputs[0]
    average = int("Av" in call.node.class_name)
    call.emit(f"kw_global_pool({call.source()}, {call.output}, {size(shape[:-1])}, {shape[-1]}, {average});", "global_pool")
    return (*(1,) * (len(shape) - 1), shape[-1]) if call.config.get("keepdims") else (shape[-1],)


def pooling_q8(call: Call) -> Shape:
    """int8 pooling keeps its input's parameters (TFLite's rule), so the maximum or average needs no rescaling."""
    rank = 1 if call.node.class_name.endswith("1D") else 2
    (H, W, C), (KH, KW), (SH, SW), _, padding = spatial(call, rank)
    OH, PT = window(H, KH, SH, 1, padding) if rank == 2 else (1, 0)
    OW, PL = window(W, KW, SW, 1, padding)
    average = "Average" in call.node.class_name or "Avg" in call.node.class_name
    call.emit(f"kw_pool2d_q8({call.source()}, {call.output}, {H}, {W}, {C}, {OH}, {OW}, {KH}, {KW}, {SH}, {SW}, {PT}, "
              f"{PL}, {int(average)});", "pool2d_q8")
    call.q8.output = call.q8.inputs[0]
    out = (OW, C) if rank == 1 else (OH, OW, C)
    call.q8.reference = lambda xs, qs: integer.pool2d(xs[0].reshape(H, W, C), (OH, OW), (KH, KW), (SH, SW), (PT, PL),
                                                      average).reshape(out)
    return out


def global_pooling_q8(call: Call) -> Shape:
    """The maximum keeps its input's parameters; the average is requantized to its own calibrated ones (TFLite's
    Mean: the mean of a wide map spans far less than the map, so its own scale is finer)."""
    channels_last(call)
    shape = call.inputs[0]
    count, channels = size(shape[:-1]), shape[-1]
    average = "Av" in call.node.class_name
    call.temporaries.append(4 * channels)
    requantization = "NULL"
    if average:
        requantization = call.q8.argument(lambda output, _: integer.average_requantization(
            call.q8.inputs[0], count, channels, output))
    else:
        call.q8.output = call.q8.inputs[0]
    call.emit(f"kw_global_pool_q8({call.source()}, {call.output}, {count}, {channels}, "
              f"(int32_t *)T{len(call.temporaries) - 1}, {requantization});", "global_pool_q8", "requantize")
    out = (*(1,) * (len(shape) - 1), channels) if call.config.get("keepdims") else (channels,)
    call.q8.reference = lambda xs, qs: integer.global_pool(xs[0], qs[0] if average else None).reshape(out)
    return out


WINDOWED = ('MaxPooling1D', 'MaxPooling2D', 'AveragePooling1D', 'AveragePooling2D', 'MaxPool1D', 'MaxPool2D', 'AvgPool1D', 'AvgPool2D')
GLOBAL = ('GlobalAveragePooling1D', 'GlobalAveragePooling2D', 'GlobalAveragePooling3D', 'GlobalMaxPooling1D', 'GlobalMaxPooling2D', 'GlobalMaxPooling3D', 'GlobalAvgPool1D', 'GlobalAvgPool2D', 'GlobalMaxPool1D', 'GlobalMaxPool2D')
SPECS = (*(Spec(name, c=pooling_c, c_int8=pooling_q8) for name in WINDOWED),
         *(Spec(name, c=global_pooling_c, c_int8=global_pooling_q8 if "3D" not in name else None) for name in GLOBAL))
