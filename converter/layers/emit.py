"""What every layer's C emitter (``Spec.c``) is built on: :class:`Call` (what an emitter sees of one node: its
configuration through typed, range-checked accessors, its input shapes and weights, where its C statements go) and
the helpers several families share (windows, paddings, activations). The code generator (``converter.cgen``) makes
the calls and lays out the program; the functions called are the C kernel library's (``converter.c_kernels``)."""
from __future__ import annotations

import math
from typing import Any

from .. import c_kernels as kernels

Shape = tuple[int, ...]


class Unsupported(Exception):
    """A layer, or an option of it, the generated code does not implement."""


TRACE = "@TRACE@"  # a trace inside a layer (Call.trace); the code generator names it
POST = "@POST@"  # a kernel's last argument, its epilogue: NULL, or the kw_post of the layers folded into it


class Post:
    """What a kernel does to each value it writes (its epilogue, ``kw_post`` in C), where the element-wise layers
    after it were folded into it: v * mul[c] + add[c] (a BatchNormalization's ``batch_norm``: its gamma, beta,
    mean, variance and epsilon, as C arguments), then a clamp to [lo, hi] (a ReLU, ReLU6, or the layer's own
    relu activation). The layers folded in (``folded``, by node name) take no buffer and no pass of their own."""

    def __init__(self) -> None:
        self.batch_norm: str | None = None
        self.norm: tuple | None = None  # the BatchNormalization's (gamma, beta, mean, variance, epsilon) values
        self.lo, self.hi = -math.inf, math.inf
        self.folded: list[str] = []

    def clamp(self, lo: float, hi: float) -> None:
        self.lo, self.hi = max(self.lo, lo), min(self.hi, hi)

    @property
    def empty(self) -> bool:
        return self.batch_norm is None and self.lo == -math.inf and self.hi == math.inf


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
        self.read: set[int] = set()        # the inputs the statements read (an input left unread is refused)
        self.input_dead = False            # no later layer reads input 0: an element-wise layer may overwrite it
        self.in_place = False              # the output is input 0's buffer, computed over it (see in_place)
        self.pads: tuple[int, int] | None = None  # a zero padding: (top, left) of the zeros around its input
        self.padded: tuple[int, int, int, int] | None = None  # input 0 is a padding never made: (top, left, H, W)
                                                              # of the input it pads (Spec.c_padded emitters only)
        self.post: Post | None = None      # its kernel's epilogue, once the emitter passed it (see epilogue)
        self.q8: Any = None                # full-integer int8: the call's int8 side (layers.q8.Q8), else None

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
        return whole(key, self.config.get(key, default) if default is not None else self._required(key), low)

    def integers(self, key: str, rank: int, default: Any = None, low: int = 1) -> tuple[int, ...]:
        """A field that holds one whole number per spatial axis (or one for all of them), each checked."""
        value = self.config.get(key, default) if default is not None else self._required(key)
        if isinstance(value, (list, tuple)):
            if len(value) != rank:
                raise Unsupported(f"{key}={shown(value)}: {rank} numbers needed")
            return tuple(whole(key, v, low, value) for v in value)
        return (whole(key, value, low),) * rank

    def number(self, key: str, default: float, positive: bool = False) -> float:
        """A float field: finite (and above zero when ``positive``), or Unsupported naming it."""
        value = self.config.get(key, default)
        if value is None:
            value = default
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) \
                or (positive and value <= 0) or abs(value) > 3.4e38:
            raise Unsupported(f"{key}={shown(value)}: a finite float32 number{' above 0' if positive else ''} needed")
        return float(value)

    def _required(self, key: str) -> Any:
        if key not in self.config:
            raise Unsupported(f"its configuration has no {key!r}")
        return self.config[key]

    def emit(self, text: str, *needs: str) -> None:
        self.statements.append(text)
        self.kernels.update(needs)

    def trace(self, label: str, buffer: str, count: int) -> None:
        """Hand a value computed inside the layer to the trace hook as '<layer>/<label>' (label: ASCII letters):
        calibration records its range, which full-integer int8 needs where it keeps that value in int8."""
        self.statements.append(f"{TRACE}({label}, {buffer}, {count});")

    def source(self, index: int = 0) -> str:
        self.read.add(index)
        return self.sources[index]

    def unread(self) -> list[int]:
        """Inputs the layer was called with that its code does not read (a mask, an initial state): computing
        without them would silently differ from Keras."""
        read = {0} if self.alias else self.read
        return [index for index in range(len(self.sources)) if index not in read]


def epilogue(call: Call) -> str:
    """The last argument of a kernel that takes an epilogue (kw_post): the layer's own relu or relu6 activation,
    and the BatchNormalization and ReLU the code generator folds in after it, are then applied as it writes."""
    call.post = call.post or Post()
    return POST


def finish_epilogue(call: Call, channels: int) -> None:
    """Once the layers folded into a call's epilogue are known: its kw_post declared first among its statements
    (which the code generator puts in a block of their own) and passed to its kernels; NULL where it does nothing."""
    post = call.post
    if post is None or post.empty:
        call.statements = [s.replace(POST, "NULL") for s in call.statements]
        return
    arrays, first = "NULL, NULL", []
    if post.batch_norm is not None:  # its coefficients, worked out per call into a temporary
        call.temporaries.append(2 * channels)
        coefficients = f"T{len(call.temporaries) - 1}"
        arrays = f"{coefficients}, {coefficients} + {channels}"
        first.append(f"kw_bn_coefficients({post.batch_norm}, {channels}, {coefficients});")
        call.kernels.add("bn_coefficients")
    bounds = ", ".join(c_float(v) if math.isfinite(v) else ("HUGE_VALF" if v > 0 else "-HUGE_VALF")
                       for v in (post.lo, post.hi))
    call.statements = [f"const kw_post post = {{{arrays}, {bounds}}};", *first,
                       *(s.replace(POST, "&post") for s in call.statements)]


def size(shape: Shape) -> int:
    return math.prod(shape)


MAX_DIM = 2**24  # a configuration's sizes, strides, paddings...: far beyond any real layer's, small enough for C's int


def whole(key: str, value: Any, low: int, whole_value: Any = None) -> int:
    """``value`` as a whole number from ``low`` to :data:`MAX_DIM` (bools and floats refused)."""
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= MAX_DIM:
        raise Unsupported(f"{key}={shown(value if whole_value is None else whole_value)}: whole numbers from {low} to "
                          f"{MAX_DIM:,} needed")
    return value


def shown(value: Any) -> str:
    """A configuration value in a message: its repr, escaped and bounded."""
    text = repr(value).encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= 60 else text[:57] + "..."


# -- helpers ------------------------------------------------------------------------------------------------
def sides(call: Call, key: str, rank: int) -> tuple[tuple[int, int], ...]:
    """Keras's padding or cropping, ``((before, after), ...)`` per spatial axis, from any of its spellings (one
    number, one per axis, or a pair per axis), each a whole number from 0.

    >>> from types import SimpleNamespace
    >>> node = lambda value: SimpleNamespace(name="p", class_name="ZeroPadding2D", config={"padding": value})
    >>> side = lambda value, rank=2: sides(Call(node(value), [], [], {}), "padding", rank)
    >>> side(1), side((1, 2)), side(((1, 2), (3, 4))), side((1, 2), 1)
    (((1, 1), (1, 1)), ((1, 1), (2, 2)), ((1, 2), (3, 4)), ((1, 2),))
    """
    value = call.config.get(key, 1)
    if rank == 1 and isinstance(value, (list, tuple)) and len(value) == 2 and all(isinstance(v, int) for v in value):
        return ((whole(key, value[0], 0, value), whole(key, value[1], 0, value)),)  # Cropping1D: (left, right)
    if not isinstance(value, (list, tuple)):
        return ((whole(key, value, 0),) * 2,) * rank
    if len(value) != rank:
        raise Unsupported(f"{key}={shown(value)}: {rank} entries needed")
    sides = []
    for side in value:
        pair = side if isinstance(side, (list, tuple)) else (side, side)
        if len(pair) != 2:
            raise Unsupported(f"{key}={shown(value)}: pairs of (before, after) needed")
        sides.append((whole(key, pair[0], 0, value), whole(key, pair[1], 0, value)))
    return tuple(sides)


def channels_last(call: Call) -> None:
    if call.config.get("data_format", "channels_last") not in (None, "channels_last"):
        raise Unsupported(f"data_format={call.config['data_format']!r} (channels_last only)")


def window(length: int, k: int, stride: int, dilation: int, padding: str) -> tuple[int, int]:
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


def spatial(call: Call, rank: int) -> tuple[Shape, tuple[int, ...], tuple[int, ...], tuple[int, ...], str]:
    """(input shape as [H][W][C], kernel size, strides, dilation, padding) for 1D (H = 1) or 2D layers."""
    channels_last(call)
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


def spatial_output(call: Call, rank: int, OH: int, OW: int, channels: int) -> Shape:
    """The output shape of a 1D or 2D layer, its activation applied."""
    out = (OW, channels) if rank == 1 else (OH, OW, channels)
    activation(call, call.config.get("activation"), call.output, out)
    return out


def activation(call: Call, name: Any, buffer: str, shape: Shape, a: float = 0.0) -> None:
    """In-place activation of a layer's output (nothing for linear)."""
    if name in (None, "linear"):
        return
    if name in CLAMPS and call.post is not None and buffer == call.output:  # folded into the kernel's epilogue
        call.post.clamp(*CLAMPS[name])
        return
    if not isinstance(name, str) or (name not in kernels.ACTIVATIONS and name != kernels.SOFTMAX):
        raise Unsupported(f"activation {name!r}")
    if buffer == call.output and call.post is not None:  # a weighted layer's own: its values before are calibrated
        call.trace("before_activation", buffer, size(shape))
    if name == "leaky_relu" and not a:
        a = 0.2  # keras.activations.leaky_relu's default negative slope
    if name == "elu" and not a:
        a = 1.0
    if not math.isfinite(a):
        raise Unsupported(f"activation parameter {a!r}: a finite number needed")
    code = -1 if name == kernels.SOFTMAX else kernels.ACTIVATION_CODES[name]
    call.emit(f"kw_activate({buffer}, {size(shape)}, {shape[-1] if shape else 1}, {code}, {c_float(a)});  /* {name} */",
              "activate:" + name)


CLAMPS = {"relu": (0.0, math.inf), "relu6": (0.0, 6.0)}  # activations a kernel's epilogue applies as a clamp


def c_float(value: float) -> str:
    text = repr(float(value))
    return (text if ("." in text or "e" in text or "inf" in text or "nan" in text) else text + ".0") + "f"


def weights_arguments(call: Call, kernel_role: str, bias_role: str | None, kernel_shape: tuple[int, ...],
                       outputs: int | None = None) -> tuple[str, str, bool]:
    """(kernel argument(s), bias argument, quantized) for a weighted kernel call, shapes checked."""
    kernel = call.weight(kernel_role, shape=kernel_shape)
    quantized = kernel.scale is not None
    bias = call.weight(bias_role, required=False, shape=(outputs,)) if bias_role else None
    args = f"{kernel.array}, {kernel.scale}" if quantized else kernel.array
    return args, bias.array if bias else "NULL", quantized


def widened_panel(call: Call, quantized: bool, rows: int, inputs: int) -> str:
    """The argument kw_dense_i8 and kw_conv2d_i8 take after the scales: an arena temporary for a panel of the
    widest KW_PANEL's outputs (16) of int8 weights widened to float (``16 * inputs`` floats) where there are register
    blocks (rows >= 4), else NULL; nothing for float weights.

    >>> call = Call.__new__(Call); call.temporaries = []
    >>> widened_panel(call, True, 2304, 27), widened_panel(call, True, 1, 1280), widened_panel(call, False, 9, 9)
    (', T0', ', NULL', '')
    >>> call.temporaries
    [432]
    """
    if not quantized:
        return ""
    if rows < 4:
        return ", NULL"
    call.temporaries.append(kernels.WIDENED_OUTPUTS * inputs)
    return f", T{len(call.temporaries) - 1}"


def in_place(call: Call) -> bool:
    """For a layer whose kernel computes each value from the values at the same place (BatchNormalization, the
    activations, Add...): compute into input 0's buffer when no later layer reads it, so the arena holds one buffer
    where it held two. Its kernels take no ``restrict`` pointers."""
    call.in_place = call.input_dead
    return call.in_place


def copied(call: Call) -> Shape:
    """The output holds the input's values, for layers that then work on it in place (the activation layers): the
    input's own buffer where no later layer reads it, else a copy."""
    shape = call.inputs[0]
    if not in_place(call):
        call.emit(f"kw_copy({call.source()}, {call.output}, {size(shape)});", "copy")
    else:
        call.read.add(0)
    return shape
