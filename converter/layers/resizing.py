"""Resizing: an image to a fixed height and width, as ``tf.image.resize`` computes it (what Keras's Resizing and a
bilinear UpSampling2D call on TensorFlow): bilinear or nearest, half-pixel centres, no antialiasing.

Everything keras-weights knows of the class is here: it holds no weights; the C forward pass computes it with
``kw_resize`` below (seen in keyword-spotting models, which resize a spectrogram before their convolutions);
cropping or padding to the aspect ratio, antialiasing and the other interpolations are refused by name.
"""
from __future__ import annotations

from .emit import Call, Shape, Unsupported, channels_last, shown
from .spec import Spec

C_FUNCTION = """/* Resizing, as tf.image.resize computes it (half-pixel centres, no antialiasing): x [H][W][C] -> y [OH][OW][C].
 * Bilinear: the source position (o + 0.5) * in / out - 0.5, its neighbours clamped to the image, blended along the
 * width and then the height; nearest (bilinear = 0): the pixel at floor((o + 0.5) * in / out). */
static void kw_resize(const float *x, float *y, int H, int W, int C, int OH, int OW, int bilinear) {
    const float sh = (float)H / (float)OH, sw = (float)W / (float)OW;
    for (int oh = 0; oh < OH; ++oh) {
        const float fy = ((float)oh + 0.5f) * sh - (bilinear ? 0.5f : 0.0f), ry = floorf(fy);
        const int top = ry < 0.0f ? 0 : ((int)ry > H - 1 ? H - 1 : (int)ry);
        const int bottom = (int)ceilf(fy) > H - 1 ? H - 1 : (int)ceilf(fy);
        const float dy = fy - ry;
        for (int ow = 0; ow < OW; ++ow) {
            const float fx = ((float)ow + 0.5f) * sw - (bilinear ? 0.5f : 0.0f), rx = floorf(fx);
            const int left = rx < 0.0f ? 0 : ((int)rx > W - 1 ? W - 1 : (int)rx);
            const int right = (int)ceilf(fx) > W - 1 ? W - 1 : (int)ceilf(fx);
            const float dx = fx - rx;
            const float *tl = x + ((size_t)top * W + left) * C;
            float *yo = y + ((size_t)oh * OW + ow) * C;
            if (!bilinear) {
                for (int c = 0; c < C; ++c) yo[c] = tl[c];
                continue;
            }
            const float *tr = x + ((size_t)top * W + right) * C, *bl = x + ((size_t)bottom * W + left) * C,
                        *br = x + ((size_t)bottom * W + right) * C;
            for (int c = 0; c < C; ++c) {
                const float upper = tl[c] + (tr[c] - tl[c]) * dx, lower = bl[c] + (br[c] - bl[c]) * dx;
                yo[c] = upper + (lower - upper) * dy;
            }
        }
    }
}

"""
METHODS = {"bilinear": 1, "nearest": 0}


def resize(call: Call, height: int, width: int, method: object) -> Shape:
    """Emit a resize of input 0 (an [H][W][C] image) to height x width; its output shape."""
    channels_last(call)
    if len(call.inputs[0]) != 3:
        raise Unsupported(f"input of rank {len(call.inputs[0]) + 1} (images of rank 4, batch included)")
    if method not in METHODS:
        raise Unsupported(f"interpolation={shown(method)} (bilinear or nearest)")
    H, W, C = call.inputs[0]
    call.emit(f"kw_resize({call.source()}, {call.output}, {H}, {W}, {C}, {height}, {width}, {METHODS[method]});",
              "resize")
    return height, width, C


def resizing_c(call: Call) -> Shape:
    for option in ("crop_to_aspect_ratio", "pad_to_aspect_ratio", "antialias"):
        if call.config.get(option):
            raise Unsupported(f"{option}=True")
    return resize(call, call.integer("height"), call.integer("width"), call.config.get("interpolation", "bilinear"))


SPECS = (Spec("Resizing", c=resizing_c, c_functions={"resize": C_FUNCTION}),)
