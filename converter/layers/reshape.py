"""Layers that move values without weights: Flatten, Reshape, Permute, RepeatVector, padding, cropping and
upsampling."""
from __future__ import annotations

from .emit import Call, Shape, Unsupported, channels_last, shown, sides, size, whole
from .resizing import resize
from .spec import Spec


def flatten_c(call: Call) -> Shape:
    call.alias = True
    return (size(call.inputs[0]),)


def reshape_c(call: Call) -> Shape:
    value = call.config.get("target_shape")
    if not isinstance(value, (list, tuple)) or not value:
        raise Unsupported(f"target_shape={shown(value)}: a list of dimensions needed")
    target = [whole("target_shape", v, -1, value) for v in value]
    if 0 in target or target.count(-1) > 1:
        raise Unsupported(f"target_shape={shown(value)}: dimensions from 1, and -1 at most once")
    if -1 in target:
        known = size(tuple(v for v in target if v != -1))
        if size(call.inputs[0]) % known:
            raise Unsupported(f"target_shape={shown(value)} cannot hold the {size(call.inputs[0])} values of its input")
        target[target.index(-1)] = size(call.inputs[0]) // known
    if size(tuple(target)) != size(call.inputs[0]):
        raise Unsupported(f"target_shape={shown(value)} holds {size(tuple(target))} values, its input "
                          f"{size(call.inputs[0])}")
    call.alias = True
    return tuple(target)


def permute_c(call: Call) -> Shape:
    shape = call.inputs[0]
    if len(shape) not in (2, 3):
        raise Unsupported(f"rank {len(shape) + 1}")
    dims = [d - 1 for d in call.integers("dims", len(shape))]
    if sorted(dims) != list(range(len(shape))):
        raise Unsupported(f"dims={shown(call.config['dims'])}: an order of the axes 1..{len(shape)} needed")
    full = (1, *shape) if len(shape) == 2 else shape
    order = [0] + [d + 1 for d in dims] if len(shape) == 2 else dims
    call.emit(f"kw_permute3({call.source()}, {call.output}, {full[0]}, {full[1]}, {full[2]}, {order[0]}, {order[1]}, "
              f"{order[2]});", "permute")
    return tuple(shape[d] for d in dims)


def repeat_vector_c(call: Call) -> Shape:
    n = call.integer("n")
    if len(call.inputs[0]) != 1:
        raise Unsupported(f"input of rank {len(call.inputs[0]) + 1}")
    (length,) = call.inputs[0]
    call.emit(f"kw_repeat({call.source()}, {call.output}, {n}, {length});", "repeat")
    return n, length


def zero_padding_c(call: Call) -> Shape:
    channels_last(call)
    H, W, C = call.inputs[0]
    (top, bottom), (left, right) = sides(call, "padding", 2)
    OH, OW = H + top + bottom, W + left + right
    call.pads = (top, left)
    call.emit(f"kw_zero_pad2d({call.source()}, {call.output}, {H}, {W}, {C}, {OH}, {OW}, {top}, {left});", "zero_pad2d")
    return OH, OW, C


def upsampling_c(call: Call) -> Shape:
    channels_last(call)
    H, W, C = call.inputs[0]
    fh, fw = call.integers("size", 2, 2)
    if call.config.get("interpolation", "nearest") != "nearest":  # bilinear: tf.image.resize, as Resizing
        return resize(call, H * fh, W * fw, call.config["interpolation"])
    call.emit(f"kw_upsample2d({call.source()}, {call.output}, {H}, {W}, {C}, {fh}, {fw});", "upsample2d")
    return H * fh, W * fw, C


def cropping_c(call: Call) -> Shape:
    channels_last(call)
    shape = call.inputs[0]
    if call.node.class_name == "Cropping1D":
        (W, C), H = shape, 1
        ((left, right),), (top, bottom) = sides(call, "cropping", 1), (0, 0)
    else:
        H, W, C = shape
        (top, bottom), (left, right) = sides(call, "cropping", 2)
    OH, OW = H - top - bottom, W - left - right
    call.emit(f"for (size_t h = 0; h < {OH}; ++h)\n        kw_concat_part({call.source()} + ((h + {top}) * {W} + {left}) * {C}, "
              f"{call.output} + h * {OW * C}, 1, {OW * C}, {OW * C}, 0);", "concat")
    return (OW, C) if call.node.class_name == "Cropping1D" else (OH, OW, C)


# Full-integer int8: the layers that only view their input's memory take it as it is (c_int8 = c); a zero padding
# only where the convolution reading it takes it as its own (zeros are the input's zero point there).
SPECS = (Spec("Flatten", flattens=True, c=flatten_c, c_int8=flatten_c), Spec("Reshape", c=reshape_c, c_int8=reshape_c),
         Spec("Permute", c=permute_c), Spec("RepeatVector", c=repeat_vector_c),
         Spec("ZeroPadding2D", c=zero_padding_c, c_int8=zero_padding_c),
         Spec("UpSampling2D", c=upsampling_c), Spec("Cropping1D", c=cropping_c), Spec("Cropping2D", c=cropping_c))
