"""Each supported layer kind: the shape it gives (one sample, channels last, no batch axis) and the C calls
that compute it. A kind is a function ``(call: Call) -> Shape`` registered in :data:`KINDS` by class name;
it reads the node's configuration and weights through ``call`` and appends C statements to it.
"""
from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from . import kernels

Shape = tuple[int, ...]


class Unsupported(Exception):
    """A layer, or an option of it, the generated code does not implement."""


class Call:
    """What a layer kind sees of one node: its configuration, input shapes and C buffers, its weights, and
    where its statements go (filled in by ``codegen``)."""

    def __init__(self, node, inputs: list[Shape], sources: list[str], weights: dict[str, Any]) -> None:
        self.node, self.config, self.inputs, self.sources, self.weights = node, node.config, inputs, sources, weights
        self.statements: list[str] = []
        self.kernels: set[str] = set()
        self.temporaries: list[int] = []   # extra arena buffers (floats) the calls need, named T0, T1...
        self.alias = False                 # the output is the input's memory (Flatten, Reshape, Dropout...)
        self.output = "Y"                  # replaced by the output buffer's expression

    def weight(self, role: str, required: bool = True, shape: tuple[int, ...] | None = None):
        """The weight ``role``; ``shape`` is what the layer's configuration makes the generated loops read, so a
        file whose weights disagree with its configuration is refused instead of read out of bounds."""
        found = self.weights.get(role)
        if found is None and required:
            raise Unsupported(f"its weight '{role}' is missing")
        if found is not None and found.dtype != "float32" and not (found.dtype == "int8" and found.scale):
            raise Unsupported(f"weights of dtype {found.dtype} (float32, or int8 from --quantize int8)")
        if found is not None and shape is not None and tuple(found.shape) != tuple(shape):
            raise Unsupported(f"its weight '{role}' has shape {list(found.shape)}, its configuration needs {list(shape)}")
        return found

    def integer(self, key: str, default: Any = None, low: int = 1) -> int:
        """A whole-number field of the configuration, from ``low`` to :data:`MAX_DIM`, or Unsupported naming it."""
        return _whole(key, self.config.get(key, default) if default is not None else self._required(key), low)

    def integers(self, key: str, rank: int, default: Any = None, low: int = 1) -> tuple[int, ...]:
        """A field that holds one whole number per spatial axis (or one for all of them), each checked."""
        value = self.config.get(key, default) if default is not None else self._required(key)
        if isinstance(value, (list, tuple)):
            if len(value) != rank:
                raise Unsupported(f"{key}={_shown(value)}: {rank} numbers needed")
            return tuple(_whole(key, v, low, value) for v in value)
        return (_whole(key, value, low),) * rank

    def number(self, key: str, default: float, positive: bool = False) -> float:
        """A float field: finite (and above zero when ``positive``), or Unsupported naming it."""
        value = self.config.get(key, default)
        if value is None:
            value = default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (positive and value <= 0) or abs(value) > 3.4e38:
            raise Unsupported(f"{key}={_shown(value)}: a finite float32 number{' above 0' if positive else ''} needed")
        return float(value)

    def _required(self, key: str) -> Any:
        if key not in self.config:
            raise Unsupported(f"its configuration has no {key!r}")
        return self.config[key]

    def emit(self, text: str, *needs: str) -> None:
        self.statements.append(text)
        self.kernels.update(needs)

    def source(self, index: int = 0) -> str:
        return self.sources[index]


KINDS: dict[str, Callable[[Call], Shape]] = {}


def kind(*class_names: str):
    def register(function: Callable[[Call], Shape]) -> Callable[[Call], Shape]:
        for name in class_names:
            KINDS[name] = function
        return function
    return register


def size(shape: Shape) -> int:
    return math.prod(shape)


MAX_DIM = 2**24  # a configuration's sizes, strides, paddings...: far beyond any real layer's, small enough for C's int


def _whole(key: str, value: Any, low: int, whole_value: Any = None) -> int:
    """``value`` as a whole number from ``low`` to :data:`MAX_DIM` (bools and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_DIM:
        raise Unsupported(f"{key}={_shown(value if whole_value is None else whole_value)}: whole numbers from {low} to "
                          f"{MAX_DIM:,} needed")
    return value


def _shown(value: Any) -> str:
    """A configuration value in a message: its repr, escaped and bounded."""
    text = repr(value).encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= 60 else text[:57] + "..."


# -- helpers ------------------------------------------------------------------------------------------------
def _sides(call: Call, key: str, rank: int) -> tuple[tuple[int, int], ...]:
    """Keras's padding or cropping, ``((before, after), ...)`` per spatial axis, from any of its spellings (one
    number, one per axis, or a pair per axis), each a whole number from 0.

    >>> from converter.inference.graph import Node
    >>> side = lambda value, rank=2: _sides(Call(Node("p", "ZeroPadding2D", {"padding": value}), [], [], {}), "padding", rank)
    >>> side(1), side((1, 2)), side(((1, 2), (3, 4))), side((1, 2), 1)
    (((1, 1), (1, 1)), ((1, 1), (2, 2)), ((1, 2), (3, 4)), ((1, 2),))
    """
    value = call.config.get(key, 1)
    if rank == 1 and isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return ((_whole(key, value[0], 0, value), _whole(key, value[1], 0, value)),)  # Cropping1D: (left, right)
    if not isinstance(value, (list, tuple)):
        return ((_whole(key, value, 0),) * 2,) * rank
    if len(value) != rank:
        raise Unsupported(f"{key}={_shown(value)}: {rank} entries needed")
    sides = []
    for side in value:
        pair = side if isinstance(side, (list, tuple)) else (side, side)
        if len(pair) != 2:
            raise Unsupported(f"{key}={_shown(value)}: pairs of (before, after) needed")
        sides.append((_whole(key, pair[0], 0, value), _whole(key, pair[1], 0, value)))
    return tuple(sides)


def _channels_last(call: Call) -> None:
    if call.config.get("data_format", "channels_last") not in (None, "channels_last"):
        raise Unsupported(f"data_format={call.config['data_format']!r} (channels_last only)")


def _window(length: int, k: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
    """(output length, padding before) of a convolution or pooling window, as Keras computes them."""
    effective = (k - 1) * dilation + 1
    if padding == "valid":
        return (length - effective) // stride + 1, 0
    if padding == "same":
        out = -(-length // stride)
        return out, max((out - 1) * stride + effective - length, 0) // 2
    if padding == "causal":  # Conv1D: all the padding before
        return (length - 1) // stride + 1, effective - 1
    raise Unsupported(f"padding={padding!r}")


def activation(call: Call, name: Any, buffer: str, shape: Shape, a: float = 0.0) -> None:
    """In-place activation of a layer's output (nothing for linear)."""
    if name in (None, "linear"):
        return
    if not isinstance(name, str) or (name not in kernels.ACTIVATIONS and name != kernels.SOFTMAX):
        raise Unsupported(f"activation {name!r}")
    if name == "leaky_relu" and not a:
        a = 0.2  # keras.activations.leaky_relu's default negative slope
    if name == "elu" and not a:
        a = 1.0
    if not math.isfinite(a):
        raise Unsupported(f"activation parameter {a!r}: a finite number needed")
    code = -1 if name == kernels.SOFTMAX else kernels.ACTIVATION_CODES[name]
    call.emit(f"kw_activate({buffer}, {size(shape)}, {shape[-1] if shape else 1}, {code}, {_float(a)});  /* {name} */",
              "activate:" + name)


def _float(value: float) -> str:
    text = repr(float(value))
    return (text if ("." in text or "e" in text or "inf" in text or "nan" in text) else text + ".0") + "f"


def _weights_arguments(call: Call, kernel_role: str, bias_role: str | None, kernel_shape: tuple[int, ...],
                       outputs: int | None = None) -> tuple[str, str, bool]:
    """(kernel argument(s), bias argument, quantized) for a weighted kernel call, shapes checked."""
    kernel = call.weight(kernel_role, shape=kernel_shape)
    quantized = kernel.scale is not None
    bias = call.weight(bias_role, required=False, shape=(outputs,)) if bias_role else None
    args = f"{kernel.array}, {kernel.scale}" if quantized else kernel.array
    return args, bias.array if bias else "NULL", quantized


# -- layers with weights ------------------------------------------------------------------------------------
@kind("Dense")
def dense(call: Call) -> Shape:
    shape = call.inputs[0]
    units = call.integer("units")
    kernel = call.weight("kernel")
    if kernel.transposed:
        raise Unsupported("a transposed kernel (--layout dense_out_in); export with --layout keras")
    args, bias, quantized = _weights_arguments(call, "kernel", "bias", (shape[-1], units), units)
    suffix = "_i8" if quantized else "_f32"
    rows, width = size(shape[:-1]), shape[-1]
    call.emit(f"kw_dense{suffix}({call.source()}, {call.output}, {rows}, {width}, {units}, {args}, {bias});",
              "dense" + suffix)
    out = (*shape[:-1], units)
    activation(call, call.config.get("activation"), call.output, out)
    return out


def _spatial(call: Call, rank: int) -> tuple[Shape, tuple[int, ...], tuple[int, ...], tuple[int, ...], str]:
    """(input shape as [H][W][C], kernel size, strides, dilation, padding) for 1D (H = 1) or 2D layers."""
    _channels_last(call)
    shape = call.inputs[0]
    if len(shape) != rank + 1:
        raise Unsupported(f"input of rank {len(shape) + 1} (batch included)")
    window = "kernel_size" if "kernel_size" in call.config else "pool_size"
    k = call.integers(window, rank, 1)
    strides = call.integers("strides", rank, list(k)) if call.config.get("strides") is not None else k
    dilation = call.integers("dilation_rate", rank, 1)
    if rank == 1:
        return (1, *shape), (1, *k), (1, *strides), (1, *dilation), call.config.get("padding", "valid")
    return shape, k, strides, dilation, call.config.get("padding", "valid")


def _spatial_output(call: Call, rank: int, OH: int, OW: int, channels: int) -> Shape:
    """The output shape of a 1D or 2D layer, its activation applied."""
    out = (OW, channels) if rank == 1 else (OH, OW, channels)
    activation(call, call.config.get("activation"), call.output, out)
    return out


def _conv_geometry(call: Call, rank: int):
    (H, W, C), (KH, KW), (SH, SW), (DH, DW), padding = _spatial(call, rank)
    OH, PT = _window(H, KH, SH, DH, padding) if rank == 2 else (1, 0)
    OW, PL = _window(W, KW, SW, DW, padding)
    return (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL)


@kind("Conv1D", "Conv2D", "Convolution1D", "Convolution2D")
def conv(call: Call) -> Shape:
    rank = 1 if call.node.class_name.endswith("1D") else 2
    if call.integer("groups", 1) != 1:
        raise Unsupported(f"groups={call.config['groups']}")
    (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL) = _conv_geometry(call, rank)
    filters = call.integer("filters")
    window = (KW,) if rank == 1 else (KH, KW)
    args, bias, quantized = _weights_arguments(call, "kernel", "bias", (*window, C, filters), filters)
    suffix = "_i8" if quantized else "_f32"
    if (KH, KW, SH, SW, PT, PL) == (1, 1, 1, 1, 0, 0):  # a 1x1 convolution is Dense over the pixels
        call.emit(f"kw_dense{suffix}({call.source()}, {call.output}, {OH * OW}, {C}, {filters}, {args}, {bias});",
                  "dense" + suffix)
    else:
        patch = f"T{len(call.temporaries)}"
        call.temporaries.append(4 * KH * KW * C)
        call.emit(f"kw_conv2d{suffix}({call.source()}, {call.output}, {H}, {W}, {C}, {OH}, {OW}, {filters}, {KH}, {KW}, "
                  f"{SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {args}, {bias}, {patch});", "conv2d" + suffix, "dense" + suffix)
    return _spatial_output(call, rank, OH, OW, filters)


@kind("DepthwiseConv1D", "DepthwiseConv2D")
def depthwise(call: Call) -> Shape:
    rank = 1 if call.node.class_name.endswith("1D") else 2
    (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL) = _conv_geometry(call, rank)
    multiplier = call.integer("depth_multiplier", 1)
    role = "kernel" if "kernel" in call.weights else "depthwise_kernel"
    window = (KW,) if rank == 1 else (KH, KW)
    args, bias, quantized = _weights_arguments(call, role, "bias", (*window, C, multiplier), C * multiplier)
    suffix = "_i8" if quantized else "_f32"
    call.emit(f"kw_depthwise2d{suffix}({call.source()}, {call.output}, {H}, {W}, {C}, {multiplier}, {OH}, {OW}, {KH}, "
              f"{KW}, {SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {args}, {bias});", "depthwise2d" + suffix)
    return _spatial_output(call, rank, OH, OW, C * multiplier)


@kind("SeparableConv1D", "SeparableConv2D")
def separable(call: Call) -> Shape:
    rank = 1 if call.node.class_name.endswith("1D") else 2
    (H, W, C), (OH, OW), (KH, KW), (SH, SW), (DH, DW), (PT, PL) = _conv_geometry(call, rank)
    multiplier, filters = call.integer("depth_multiplier", 1), call.integer("filters")
    window = (KW,) if rank == 1 else (KH, KW)
    depth_args, _, depth_quantized = _weights_arguments(call, "depthwise_kernel", None, (*window, C, multiplier))
    point_args, bias, point_quantized = _weights_arguments(call, "pointwise_kernel", "bias",
                                                           (*(1,) * rank, C * multiplier, filters), filters)
    middle = f"T{len(call.temporaries)}"
    call.temporaries.append(OH * OW * C * multiplier)
    ds, ps = ("_i8" if depth_quantized else "_f32"), ("_i8" if point_quantized else "_f32")
    call.emit(f"kw_depthwise2d{ds}({call.source()}, {middle}, {H}, {W}, {C}, {multiplier}, {OH}, {OW}, {KH}, {KW}, "
              f"{SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {depth_args}, NULL);", "depthwise2d" + ds)
    call.emit(f"kw_dense{ps}({middle}, {call.output}, {OH * OW}, {C * multiplier}, {filters}, {point_args}, {bias});",
              "dense" + ps)
    return _spatial_output(call, rank, OH, OW, filters)


@kind("Conv1DTranspose", "Conv2DTranspose")
def conv_transpose(call: Call) -> Shape:
    rank = 1 if call.node.class_name.endswith("1D") else 2
    if call.config.get("output_padding") not in (None, [None] * rank):
        raise Unsupported(f"output_padding={call.config['output_padding']}")
    (H, W, C), (KH, KW), (SH, SW), (DH, DW), padding = _spatial(call, rank)
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
    args, bias, quantized = _weights_arguments(call, "kernel", "bias", (*window, filters, C), filters)
    suffix = "_i8" if quantized else "_f32"
    call.emit(f"kw_conv2d_transpose{suffix}({call.source()}, {call.output}, {H}, {W}, {C}, {OH}, {OW}, {filters}, {KH}, "
              f"{KW}, {SH}, {SW}, {DH}, {DW}, {PT}, {PL}, {args}, {bias});", "conv2d_transpose" + suffix)
    return _spatial_output(call, rank, OH, OW, filters)


@kind("Embedding")
def embedding(call: Call) -> Shape:
    if call.config.get("mask_zero"):
        raise Unsupported("mask_zero=True (masking)")
    table = call.weight("embeddings")
    if len(table.shape) != 2:
        raise Unsupported(f"an embeddings table of shape {list(table.shape)}")
    args, _, quantized = _weights_arguments(call, "embeddings", None, tuple(table.shape))
    suffix = "_i8" if quantized else "_f32"
    vocabulary, dim = table.shape
    call.emit(f"kw_embedding{suffix}({call.source()}, {call.output}, {size(call.inputs[0])}, {dim}, {vocabulary}, "
              f"{args}, NULL);", "embedding" + suffix)
    return (*call.inputs[0], dim)


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
              f"{variance.array}, {_float(call.number('epsilon', 1e-3, positive=True))});", "batch_norm")
    return shape


@kind("LayerNormalization")
def layer_norm(call: Call) -> Shape:
    shape = call.inputs[0]
    if not _on_last_axis(call) or call.config.get("rms_scaling"):
        raise Unsupported(f"axis={call.config.get('axis')}" if not _on_last_axis(call) else "rms_scaling=True")
    gamma, beta = (call.weight(role, required=False, shape=(shape[-1],)) for role in ("gamma", "beta"))
    call.emit(f"kw_layer_norm({call.source()}, {call.output}, {size(shape[:-1])}, {shape[-1]}, "
              f"{gamma.array if gamma else 'NULL'}, {beta.array if beta else 'NULL'}, "
              f"{_float(call.number('epsilon', 1e-3, positive=True))});", "layer_norm")
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
    call.emit(f"for (size_t i = 0; i < {size(shape)}; ++i) {call.output}[i] = {call.source()}[i] * {_float(scale)} + "
              f"{_float(offset)};")
    return shape


# -- layers without weights ---------------------------------------------------------------------------------
IDENTITY = ("InputLayer", "Dropout", "SpatialDropout1D", "SpatialDropout2D", "SpatialDropout3D", "GaussianNoise",
            "GaussianDropout", "AlphaDropout", "ActivityRegularization", "RandomFlip", "RandomRotation", "RandomZoom",
            "RandomTranslation", "RandomContrast", "RandomBrightness", "RandomCrop", "RandomHeight", "RandomWidth",
            "Identity")


@kind(*IDENTITY)
def identity(call: Call) -> Shape:
    if call.node.class_name == "RandomCrop":
        raise Unsupported("RandomCrop (crops at inference)")
    call.alias = True
    return call.inputs[0]


@kind("Flatten")
def flatten(call: Call) -> Shape:
    call.alias = True
    return (size(call.inputs[0]),)


@kind("Reshape")
def reshape(call: Call) -> Shape:
    value = call.config.get("target_shape")
    if not isinstance(value, (list, tuple)) or not value:
        raise Unsupported(f"target_shape={_shown(value)}: a list of dimensions needed")
    target = [_whole("target_shape", v, -1, value) for v in value]
    if 0 in target or target.count(-1) > 1:
        raise Unsupported(f"target_shape={_shown(value)}: dimensions from 1, and -1 at most once")
    if -1 in target:
        known = size(tuple(v for v in target if v != -1))
        if size(call.inputs[0]) % known:
            raise Unsupported(f"target_shape={_shown(value)} cannot hold the {size(call.inputs[0])} values of its input")
        target[target.index(-1)] = size(call.inputs[0]) // known
    if size(tuple(target)) != size(call.inputs[0]):
        raise Unsupported(f"target_shape={_shown(value)} holds {size(tuple(target))} values, its input "
                          f"{size(call.inputs[0])}")
    call.alias = True
    return tuple(target)


def _copied(call: Call) -> Shape:
    """Copy the input to the output, for layers that then work on it in place (the activation layers)."""
    shape = call.inputs[0]
    call.emit(f"kw_copy({call.source()}, {call.output}, {size(shape)});", "copy")
    return shape


@kind("Activation")
def activation_layer(call: Call) -> Shape:
    shape = _copied(call)
    activation(call, call.config.get("activation"), call.output, shape)
    return shape


@kind("ReLU")
def relu_layer(call: Call) -> Shape:
    shape = _copied(call)
    max_value = -1.0 if call.config.get("max_value") is None else call.number("max_value", -1.0)
    if max_value < 0 and call.config.get("max_value") is not None:
        raise Unsupported(f"max_value={call.config['max_value']!r}: not below 0")
    call.emit(f"kw_relu({call.output}, {size(shape)}, {_float(max_value)}, "
              f"{_float(call.number('negative_slope', 0.0))}, {_float(call.number('threshold', 0.0))});", "relu")
    return shape


@kind("LeakyReLU")
def leaky_relu_layer(call: Call) -> Shape:
    shape = _copied(call)
    slope = call.number("negative_slope" if "negative_slope" in call.config else "alpha", 0.3)
    call.emit(f"kw_relu({call.output}, {size(shape)}, -1.0f, {_float(slope)}, 0.0f);", "relu")
    return shape


@kind("ELU")
def elu_layer(call: Call) -> Shape:
    shape = _copied(call)
    activation(call, "elu", call.output, shape, call.number("alpha", 1.0))
    return shape


@kind("Softmax")
def softmax_layer(call: Call) -> Shape:
    shape = call.inputs[0]
    axis = call.config.get("axis", -1)
    if axis not in (-1, len(shape), [-1]):
        raise Unsupported(f"axis={axis}")
    _copied(call)
    activation(call, "softmax", call.output, shape)
    return shape


@kind("MaxPooling1D", "MaxPooling2D", "AveragePooling1D", "AveragePooling2D", "MaxPool1D", "MaxPool2D",
      "AvgPool1D", "AvgPool2D")
def pooling(call: Call) -> Shape:
    rank = 1 if call.node.class_name.endswith("1D") else 2
    (H, W, C), (KH, KW), (SH, SW), _, padding = _spatial(call, rank)
    OH, PT = _window(H, KH, SH, 1, padding) if rank == 2 else (1, 0)
    OW, PL = _window(W, KW, SW, 1, padding)
    average = int("Average" in call.node.class_name or "Avg" in call.node.class_name)
    call.emit(f"kw_pool2d({call.source()}, {call.output}, {H}, {W}, {C}, {OH}, {OW}, {KH}, {KW}, {SH}, {SW}, {PT}, {PL}, "
              f"{average});", "pool2d")
    return (OW, C) if rank == 1 else (OH, OW, C)


@kind("GlobalAveragePooling1D", "GlobalAveragePooling2D", "GlobalAveragePooling3D", "GlobalMaxPooling1D",
      "GlobalMaxPooling2D", "GlobalMaxPooling3D", "GlobalAvgPool1D", "GlobalAvgPool2D", "GlobalMaxPool1D",
      "GlobalMaxPool2D")
def global_pooling(call: Call) -> Shape:
    _channels_last(call)
    shape = call.inputs[0]
    average = int("Av" in call.node.class_name)
    call.emit(f"kw_global_pool({call.source()}, {call.output}, {size(shape[:-1])}, {shape[-1]}, {average});", "global_pool")
    return (*(1,) * (len(shape) - 1), shape[-1]) if call.config.get("keepdims") else (shape[-1],)


@kind("Add", "Subtract", "Multiply")
def merge(call: Call) -> Shape:
    shapes = call.inputs
    if any(s != shapes[0] for s in shapes):
        raise Unsupported(f"inputs of different shapes {[list(s) for s in shapes]} (broadcasting)")
    op = {"Add": 0, "Subtract": 1, "Multiply": 2}[call.node.class_name]
    n = size(shapes[0])
    call.emit(f"kw_merge({call.source(0)}, {call.source(1)}, {call.output}, {n}, {op});", "merge")
    for index in range(2, len(shapes)):
        call.emit(f"kw_merge({call.output}, {call.source(index)}, {call.output}, {n}, {op});", "merge")
    return shapes[0]


@kind("Concatenate")
def concatenate(call: Call) -> Shape:
    shapes = call.inputs
    rank = len(shapes[0])
    axis = call.integer("axis", -1, low=-rank)
    axis = axis + rank if axis < 0 else axis - 1  # Keras counts the batch axis in a positive axis
    if not 0 <= axis < rank or any(len(s) != rank or s[:axis] != shapes[0][:axis] or s[axis + 1:] != shapes[0][axis + 1:]
                                   for s in shapes):
        raise Unsupported(f"axis={call.config.get('axis')} with inputs {[list(s) for s in shapes]}")
    outer = size(shapes[0][:axis])
    total = sum(size(s[axis:]) for s in shapes)
    at = 0
    for index, s in enumerate(shapes):
        call.emit(f"kw_concat_part({call.source(index)}, {call.output}, {outer}, {size(s[axis:])}, {total}, {at});",
                  "concat")
        at += size(s[axis:])
    return (*shapes[0][:axis], sum(s[axis] for s in shapes), *shapes[0][axis + 1:])


@kind("ZeroPadding2D")
def zero_padding(call: Call) -> Shape:
    _channels_last(call)
    H, W, C = call.inputs[0]
    (top, bottom), (left, right) = _sides(call, "padding", 2)
    OH, OW = H + top + bottom, W + left + right
    call.emit(f"kw_zero_pad2d({call.source()}, {call.output}, {H}, {W}, {C}, {OH}, {OW}, {top}, {left});", "zero_pad2d")
    return OH, OW, C


@kind("UpSampling2D")
def upsampling(call: Call) -> Shape:
    _channels_last(call)
    if call.config.get("interpolation", "nearest") != "nearest":
        raise Unsupported(f"interpolation={call.config['interpolation']!r}")
    H, W, C = call.inputs[0]
    fh, fw = call.integers("size", 2, 2)
    call.emit(f"kw_upsample2d({call.source()}, {call.output}, {H}, {W}, {C}, {fh}, {fw});", "upsample2d")
    return H * fh, W * fw, C


@kind("Permute")
def permute(call: Call) -> Shape:
    shape = call.inputs[0]
    if len(shape) not in (2, 3):
        raise Unsupported(f"rank {len(shape) + 1}")
    dims = [d - 1 for d in call.integers("dims", len(shape))]
    if sorted(dims) != list(range(len(shape))):
        raise Unsupported(f"dims={_shown(call.config['dims'])}: an order of the axes 1..{len(shape)} needed")
    full = (1, *shape) if len(shape) == 2 else shape
    order = [0] + [d + 1 for d in dims] if len(shape) == 2 else dims
    call.emit(f"kw_permute3({call.source()}, {call.output}, {full[0]}, {full[1]}, {full[2]}, {order[0]}, {order[1]}, "
              f"{order[2]});", "permute")
    return tuple(shape[d] for d in dims)


@kind("RepeatVector")
def repeat_vector(call: Call) -> Shape:
    n = call.integer("n")
    if len(call.inputs[0]) != 1:
        raise Unsupported(f"input of rank {len(call.inputs[0]) + 1}")
    (length,) = call.inputs[0]
    call.emit(f"kw_repeat({call.source()}, {call.output}, {n}, {length});", "repeat")
    return n, length


# -- recurrent layers ---------------------------------------------------------------------------------------
_RNN_CELLS = {"SimpleRNN": 1, "LSTM": 4, "GRU": 3}


def _find(call: Call, role: str, under: str = "", required: bool = True, shape: tuple[int, ...] | None = None):
    """The weight whose path below the layer starts with ``under`` and ends with ``role``."""
    found = [path for path in call.weights if path.startswith(under) and path.rsplit("/", 1)[-1] == role]
    if len(found) > 1:
        raise Unsupported(f"several weights '{role}' under '{under}'")
    return call.weight(found[0] if found else f"{under}{role}", required, shape)


def _code(call: Call, name: Any) -> int:
    if not isinstance(name, str) or name not in kernels.ACTIVATIONS:
        raise Unsupported(f"activation {name!r}")
    call.kernels.add("activate:" + name)
    return kernels.ACTIVATION_CODES[name]


def _recurrent(call: Call, class_name: str, config: dict, under: str, source: str, target: str,
               backwards: bool, sequences: bool, restore_order: bool) -> int:
    """Emit one recurrent layer over the input sequence; returns its units."""
    for option in ("return_state", "stateful"):
        if config.get(option):
            raise Unsupported(f"{option}=True")
    if class_name not in _RNN_CELLS:
        raise Unsupported(f"a {class_name} inside")
    T, I = call.inputs[0]
    U, gates = _whole("units", config.get("units"), 1), _RNN_CELLS[class_name]
    reset_after = class_name == "GRU" and config.get("reset_after", True)
    kernel = _find(call, "kernel", under, shape=(I, gates * U))
    recurrent = _find(call, "recurrent_kernel", under, shape=(U, gates * U))
    bias = _find(call, "bias", under, required=False, shape=(2, gates * U) if reset_after else (gates * U,))
    act = _code(call, config.get("activation", "tanh"))
    rec = _code(call, config.get("recurrent_activation", "sigmoid")) if class_name != "SimpleRNN" else 0
    first = len(call.temporaries)
    g, gh, state = (f"T{first}", f"T{first + 1}", f"T{first + 2}")
    call.temporaries += [gates * U, gates * U, 3 * U]  # state: h, c (LSTM) or r * h (GRU without reset_after)

    def dense(ref, x, y, width, bias_text):
        suffix = "_i8" if ref.scale else "_f32"
        scale = f", {ref.scale}" if ref.scale else ""
        call.kernels.add("dense" + suffix)
        return f"kw_dense{suffix}({x}, {y}, 1, {width}, {gates * U}, {ref.array}{scale}, {bias_text});"

    input_bias = bias.array if bias else "NULL"
    recurrent_bias = f"{bias.array} + {gates * U}" if reset_after and bias else "NULL"
    step = "(T - 1 - t)".replace("T", str(T)) if backwards else "t"
    position = step if restore_order else "t"
    lines = [f"for (size_t i = 0; i < {3 * U}; ++i) {state}[i] = 0.0f;",
             f"for (size_t t = 0; t < {T}; ++t) {{",
             "    " + dense(kernel, f"{source} + {step} * {I}", g, I, input_bias),
             "    " + dense(recurrent, state, gh, U, recurrent_bias)]
    if class_name == "LSTM":
        lines.append(f"    kw_lstm_step({g}, {gh}, {state}, {state} + {U}, {U}, {rec}, {act});")
        call.kernels.add("lstm_step")
    elif class_name == "SimpleRNN":
        lines.append(f"    kw_simple_rnn_step({g}, {gh}, {state}, {U}, {act});")
        call.kernels.add("simple_rnn_step")
    elif reset_after:
        lines.append(f"    kw_gru_step({g}, {gh}, {state}, {U}, {rec}, {act});")
        call.kernels.add("gru_step")
    else:
        lines += [f"    kw_gru_v1_gates({g}, {gh}, {state}, {state} + {U}, {U}, {rec});",
                  "    " + dense(recurrent, f"{state} + {U}", gh, U, "NULL"),
                  f"    kw_gru_v1_update({g}, {gh}, {state}, {U}, {act});"]
        call.kernels.add("gru_v1_gates")
    if sequences:
        lines.append(f"    kw_copy({state}, {target} + {position} * {U}, {U});")
    lines.append("}")
    if not sequences:
        lines.append(f"kw_copy({state}, {target}, {U});")
    call.kernels.add("copy")
    call.emit("\n    ".join(lines))
    return U


@kind("SimpleRNN", "LSTM", "GRU")
def recurrent(call: Call) -> Shape:
    if len(call.inputs[0]) != 2:
        raise Unsupported(f"input of rank {len(call.inputs[0]) + 1}")
    sequences = bool(call.config.get("return_sequences"))
    units = _recurrent(call, call.node.class_name, call.config, "", call.source(), call.output,
                       bool(call.config.get("go_backwards")), sequences, restore_order=False)
    return (call.inputs[0][0], units) if sequences else (units,)


@kind("Bidirectional")
def bidirectional(call: Call) -> Shape:
    if len(call.inputs[0]) != 2:
        raise Unsupported(f"input of rank {len(call.inputs[0]) + 1}")
    forward = call.config["layer"]
    backward = call.config.get("backward_layer") or forward
    mode = call.config.get("merge_mode", "concat")
    if mode not in ("concat", "sum", "mul", "ave"):
        raise Unsupported(f"merge_mode={mode!r}")
    T = call.inputs[0][0]
    sequences = bool(forward["config"].get("return_sequences"))
    steps = T if sequences else 1
    units = _whole("units", forward["config"].get("units"), 1)
    parts = []
    for direction, layer in (("forward_", forward), ("backward_", backward)):
        index = len(call.temporaries)
        call.temporaries.append(steps * units)
        parts.append(f"T{index}")
        _recurrent(call, layer["class_name"], layer["config"], direction, call.source(), f"T{index}",
                   direction == "backward_", sequences, restore_order=True)
    if mode == "concat":
        for at, part in enumerate(parts):
            call.emit(f"kw_concat_part({part}, {call.output}, {steps}, {units}, {2 * units}, {at * units});", "concat")
        width = 2 * units
    else:
        op = {"sum": 0, "mul": 2, "ave": 3}[mode]
        call.emit(f"kw_merge({parts[0]}, {parts[1]}, {call.output}, {steps * units}, {op});", "merge")
        width = units
    return (T, width) if sequences else (width,)


@kind("TimeDistributed")
def time_distributed(call: Call) -> Shape:
    inner = call.config["layer"]
    kind_of = KINDS.get(inner["class_name"])
    if kind_of is None or inner["class_name"] in ("Bidirectional", "TimeDistributed"):
        raise Unsupported(f"a {inner['class_name']} inside")
    name = inner["config"].get("name", "")
    steps, frame = call.inputs[0][0], call.inputs[0][1:]
    node = type(call.node)(f"{call.node.name}/{name}", inner["class_name"], inner["config"], [])
    weights = {path[len(name) + 1:]: ref for path, ref in call.weights.items() if path.startswith(name + "/")}
    part = Call(node, [frame], ["@IN0@"], weights)
    part.output = "@OUT@"
    shape = kind_of(part)
    if part.temporaries:
        raise Unsupported(f"a {inner['class_name']} that needs scratch memory inside")
    body = "\n        ".join(s.replace("@IN0@", f"({call.source()} + t * {size(frame)})")
                            .replace("@OUT@", f"({call.output} + t * {size(shape)})") for s in part.statements)
    call.emit(f"for (size_t t = 0; t < {steps}; ++t) {{\n        {body}\n    }}", *part.kernels)
    return (steps, *shape)


@kind("Cropping1D", "Cropping2D")
def cropping(call: Call) -> Shape:
    _channels_last(call)
    shape = call.inputs[0]
    if call.node.class_name == "Cropping1D":
        (W, C), H = shape, 1
        ((left, right),), (top, bottom) = _sides(call, "cropping", 1), (0, 0)
    else:
        H, W, C = shape
        (top, bottom), (left, right) = _sides(call, "cropping", 2)
    OH, OW = H - top - bottom, W - left - right
    call.emit(f"for (size_t h = 0; h < {OH}; ++h)\n        kw_concat_part({call.source()} + ((h + {top}) * {W} + {left}) * {C}, "
              f"{call.output} + h * {OW * C}, 1, {OW * C}, {OW * C}, 0);", "concat")
    return (OW, C) if call.node.class_name == "Cropping1D" else (OH, OW, C)
