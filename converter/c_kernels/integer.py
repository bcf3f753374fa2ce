"""The C kernels of full-integer int8 (``--quantize int8 --calibration``): int8 activations in and out, int32 sums,
fixed-point requantization; no float between the edges. Each has its numpy twin in :mod:`converter.integer`, which
the tests hold it to bit for bit. Arithmetic right shifts of negative numbers are what GCC, Clang, MSVC and every
compiler for Arm, AVR and RISC-V do (C99 leaves them implementation-defined)."""

from .plain import POOL2D

PANEL_WIDTH = 16  # outputs per int8 register block (KW_PANEL_Q8); the arena holds one panel of weights this wide
PANEL_MACRO = f"#define KW_PANEL_Q8 {PANEL_WIDTH}\n\n"

# One register block of int8 Dense: 4 rows x {width} outputs, int32 sums in fixed-length arrays; the weights of
# the panel packed as int16, [in][{width}] (kw_dense_q8).
PANEL_Q8 = """static void kw_dense_q8_{name}(const int8_t *KW_RESTRICT x, int8_t *KW_RESTRICT y, size_t rows, size_t in,
                             size_t out, const int16_t *KW_RESTRICT w, const kw_q8 *q, size_t c0) {{
    const int32_t *KW_RESTRICT mult = q->mult + c0, *KW_RESTRICT bias = q->bias + c0;
    const int32_t *KW_RESTRICT shift = q->shift + c0, zero = q->out_zero, lo = q->lo, hi = q->hi;
    for (size_t r = 0; r < rows; r += 4) {{
        const int8_t *KW_RESTRICT x0 = x + r * in, *KW_RESTRICT x1 = x0 + in, *KW_RESTRICT x2 = x1 + in,
                     *KW_RESTRICT x3 = x2 + in;
        const int16_t *KW_RESTRICT wi = w;
        int32_t a[4][{width}];
        for (int j = 0; j < {width}; ++j) a[0][j] = a[1][j] = a[2][j] = a[3][j] = bias[j];
        size_t i = 0;
        for (; i + 1 < in; i += 2, wi += 2 * ({width})) {{  /* two inputs a step: |x w + x' w'| <= 2 * 128 * 127
                                                           * fits 16 bits: the products are 16-bit multiplies */
            const int16_t v0 = x0[i], v1 = x1[i], v2 = x2[i], v3 = x3[i];
            const int16_t u0 = x0[i + 1], u1 = x1[i + 1], u2 = x2[i + 1], u3 = x3[i + 1];
            const int16_t *KW_RESTRICT wa = wi, *KW_RESTRICT wb = wi + ({width});
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) a[0][j] += (int16_t)(v0 * wa[j] + u0 * wb[j]);
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) a[1][j] += (int16_t)(v1 * wa[j] + u1 * wb[j]);
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) a[2][j] += (int16_t)(v2 * wa[j] + u2 * wb[j]);
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) a[3][j] += (int16_t)(v3 * wa[j] + u3 * wb[j]);
        }}
        if (i < in) {{  /* an odd input count's last input */
            const int16_t v0 = x0[i], v1 = x1[i], v2 = x2[i], v3 = x3[i];
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) {{
                a[0][j] += v0 * wi[j];
                a[1][j] += v1 * wi[j];
                a[2][j] += v2 * wi[j];
                a[3][j] += v3 * wi[j];
            }}
        }}
        for (int k = 0; k < 4; ++k) {{  /* the requantization, on the sums before they are stored; in int32 first
                                           (int8 in the loop would set a vector width wider than the block) */
            int8_t *KW_RESTRICT yk = y + (r + (size_t)k) * out + c0;
            int32_t t[{width}];
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) {{
                const int32_t v = zero + kw_requantize(a[k][j], mult[j], shift[j]);
                t[j] = v < lo ? lo : (v > hi ? hi : v);
            }}
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) yk[j] = (int8_t)t[j];
        }}
    }}
}}

"""

FUNCTIONS = {
    "requantize": """/* Requantization (TFLite's MultiplyByQuantizedMultiplier): acc * mult * 2^(shift - 31), the product's high
 * half rounded (gemmlowp's saturating rounding doubling high multiply), then a rounding right shift. */
typedef struct {
    const int32_t *bias;   /* per output channel, with the input zero point's share folded in where a kernel says */
    const int32_t *mult;   /* per output channel: a Q31 fraction (negative where a folded BatchNorm flips the sign) */
    const int32_t *shift;  /* per output channel */
    int32_t in_zero, out_zero, lo, hi;  /* zero points; the clamp (int8, or a ReLU's) */
} kw_q8;

static int32_t kw_requantize(int32_t acc, int32_t mult, int32_t shift) {
    /* without branches, in int64 and int32 alone (the shift too: an int8 in the loop would set the vector width),
     * so that compilers vectorise it over the sums of a block */
    const int32_t left = shift > 0 ? shift : 0, right = left - shift;
    int64_t shifted = (int64_t)acc * ((int64_t)1 << left);
    shifted = shifted > INT32_MAX ? INT32_MAX : (shifted < INT32_MIN ? INT32_MIN : shifted);
    /* (product + nudge) / 2^31 toward zero, the nudge 2^30 or 1 - 2^30 by the product's sign, is this floor */
    int64_t high = (shifted * mult + (INT64_C(1) << 30)) >> 31;
    high = high > INT32_MAX ? INT32_MAX : high;  /* INT32_MIN times INT32_MIN, the one overflow, saturates */
    const int32_t h = (int32_t)high, mask = (int32_t)((UINT32_C(1) << right) - 1u);
    return (h >> right) + ((h & mask) > (mask >> 1) + (h < 0));
}

""",
    "q8_row": """/* The requantization of n sums in place, then narrowed into y: two loops, so that int8 does not set the vector
 * width of the first (compilers vectorise both). */
static void kw_q8_row(int32_t *KW_RESTRICT acc, int8_t *KW_RESTRICT y, size_t n, const kw_q8 *q, size_t c0) {
    const int32_t *KW_RESTRICT mult = q->mult + c0, *KW_RESTRICT shift = q->shift + c0;
    const int32_t zero = q->out_zero, lo = q->lo, hi = q->hi;
    for (size_t o = 0; o < n; ++o) {
        const int32_t v = zero + kw_requantize(acc[o], mult[o], shift[o]);
        acc[o] = v < lo ? lo : (v > hi ? hi : v);
    }
    for (size_t o = 0; o < n; ++o) y[o] = (int8_t)acc[o];
}

""",
    "dense_q8": """/* Dense on int8 rows: y[r][o] = requantize(bias[o] + sum_i x[r][i] * w[i][o]) (kernel [in][out]); the bias holds
 * -in_zero * sum_i w[i][o], so the sum runs over the stored values. 1x1 convolutions are Dense over pixels.
 * Register blocks of 4 rows x KW_PANEL_Q8 outputs (then one of KW_PANEL_Q8 / 2 for narrow layers and tails), as in
 * the float kernel: int32 sums in fixed-length arrays, the requantization on them before they are stored. Each
 * panel's weights are first packed into `scratch` as int16, [in][width]: loops over int16 alone are the ones
 * compilers vectorise well (int8 in them sets too narrow a vector width). `scratch` holds 2 * KW_PANEL_Q8 * in
 * bytes when rows >= 4, and `out` int32s for the rows and outputs the blocks leave, one row at a time. */
""" + PANEL_Q8.format(name="full", width="KW_PANEL_Q8") + PANEL_Q8.format(name="half", width="KW_PANEL_Q8 / 2") + """\
static void kw_dense_q8_pack(const int8_t *KW_RESTRICT w, int16_t *KW_RESTRICT panel, size_t in, size_t out,
                             size_t c0, size_t width) {
    for (size_t i = 0; i < in; ++i)
        for (size_t j = 0; j < width; ++j) panel[i * width + j] = w[i * out + c0 + j];
}

static void kw_dense_q8(const int8_t *KW_RESTRICT x, int8_t *KW_RESTRICT y, size_t rows, size_t in, size_t out,
                        const int8_t *KW_RESTRICT w, void *KW_RESTRICT scratch, const kw_q8 *q) {
    const size_t blocked = KW_SMALL ? 0 : rows - rows % 4, full = blocked ? out - out % KW_PANEL_Q8 : 0,
                 o0 = full + (blocked && out - full >= KW_PANEL_Q8 / 2 ? KW_PANEL_Q8 / 2 : 0);
    int16_t *KW_RESTRICT panel = (int16_t *)scratch;
    int32_t *KW_RESTRICT acc = (int32_t *)scratch;
    for (size_t o = 0; o < full; o += KW_PANEL_Q8) {
        kw_dense_q8_pack(w, panel, in, out, o, KW_PANEL_Q8);
        kw_dense_q8_full(x, y, blocked, in, out, panel, q, o);
    }
    if (o0 > full) {
        kw_dense_q8_pack(w, panel, in, out, full, KW_PANEL_Q8 / 2);
        kw_dense_q8_half(x, y, blocked, in, out, panel, q, full);
    }
    for (size_t r = 0; r < rows; ++r) {  /* what the blocks leave: the outputs past `o0`, or every output of a row
                                            past `blocked` */
        const size_t first = r < blocked ? o0 : 0;
        if (first == out) continue;
        const int8_t *KW_RESTRICT xr = x + r * in;
        for (size_t o = first; o < out; ++o) acc[o] = q->bias[o];
        const size_t chunked = KW_SMALL ? first : first + (out - first) / KW_PANEL_Q8 * KW_PANEL_Q8;
        const size_t quads = in - in % 4;
        for (size_t i = 0; i < quads; i += 4) {  /* four inputs a step, as two sums of two 16-bit products (each fits 16 bits) */
            const int16_t v0 = xr[i], v1 = xr[i + 1], v2 = xr[i + 2], v3 = xr[i + 3];
            const int8_t *KW_RESTRICT w0 = w + i * out, *KW_RESTRICT w1 = w0 + out, *KW_RESTRICT w2 = w1 + out,
                         *KW_RESTRICT w3 = w2 + out;
            for (size_t o = first; o < chunked; o += KW_PANEL_Q8)  /* fixed-length chunks: vectorised at -O2 too */
                KW_NO_UNROLL for (int j = 0; j < KW_PANEL_Q8; ++j)
                    acc[o + j] += (int16_t)(v0 * w0[o + j] + v1 * w1[o + j]) + (int16_t)(v2 * w2[o + j] + v3 * w3[o + j]);
            for (size_t o = chunked; o < out; ++o) acc[o] += v0 * w0[o] + v1 * w1[o] + v2 * w2[o] + v3 * w3[o];
        }
        for (size_t i = quads; i < in; ++i) {
            const int16_t v = xr[i];
            const int8_t *KW_RESTRICT wi = w + i * out;
            for (size_t o = first; o < chunked; o += KW_PANEL_Q8)
                KW_NO_UNROLL for (int j = 0; j < KW_PANEL_Q8; ++j) acc[o + j] += (int16_t)(v * wi[o + j]);
            for (size_t o = chunked; o < out; ++o) acc[o] += v * wi[o];
        }
        kw_q8_row(acc + first, y + r * out + first, out - first, q, first);
    }
}

""",
    "conv2d_q8": """/* Conv2D on int8 (channels last), kernel [KH][KW][C][OC]: P output pixels at a time (a multiple of 4), their
 * input patches (the input's zero point where the window leaves the input: a real 0) copied into `patch`
 * (P x KH * KW * C), then multiplied as Dense (`scratch` as kw_dense_q8's, for P rows). */
static void kw_conv2d_q8(const int8_t *KW_RESTRICT x, int8_t *KW_RESTRICT y, int H, int W, int C, int OH, int OW,
                         int OC, int KH, int KW, int sh, int sw, int dh, int dw, int pt, int pl,
                         const int8_t *KW_RESTRICT w, int8_t *KW_RESTRICT patch, size_t P, void *KW_RESTRICT scratch,
                         const kw_q8 *q) {
    const size_t K = (size_t)KH * KW * C, pixels = (size_t)OH * OW, span = (size_t)KW * C;
    for (size_t first = 0; first < pixels; first += P) {
        const size_t count = pixels - first < P ? pixels - first : P;
        for (size_t n = 0; n < count; ++n) {
            const int oh = (int)((first + n) / (size_t)OW), ow = (int)((first + n) % (size_t)OW);
            const int iw0 = ow * sw - pl;
            for (int kh = 0; kh < KH; ++kh) {
                const int ih = oh * sh - pt + kh * dh;
                int8_t *KW_RESTRICT to = patch + n * K + (size_t)kh * span;
                if (ih >= 0 && ih < H && dw == 1 && iw0 >= 0 && iw0 + KW <= W) {  /* the window's row inside: one copy */
                    const int8_t *KW_RESTRICT from = x + ((size_t)ih * W + iw0) * C;
                    for (size_t k = 0; k < span; ++k) to[k] = from[k];
                    continue;
                }
                for (int kw = 0; kw < KW; ++kw) {
                    const int iw = iw0 + kw * dw;
                    const int inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                    const int8_t *KW_RESTRICT from = x + ((size_t)(inside ? ih : 0) * W + (inside ? iw : 0)) * C;
                    for (int c = 0; c < C; ++c) to[(size_t)kw * C + c] = inside ? from[c] : (int8_t)q->in_zero;
                }
            }
        }
        kw_dense_q8(patch, y + first * OC, count, K, (size_t)OC, w, scratch, q);
    }
}

""",
    "depthwise2d_q8": """/* DepthwiseConv2D on int8: output channel c * M + m sees input channel c only, kernel [KH][KW][C][M];
 * y = requantize(bias + sum over the window's taps inside the input of (x - in_zero) * w): each product fits 16
 * bits (255 * 127), the sums are int32. A 3x3 window inside the input (M = 1) is nine taps in one loop over the
 * channels, which compilers vectorise. */
static void kw_depthwise2d_q8(const int8_t *KW_RESTRICT x, int8_t *KW_RESTRICT y, int H, int W, int C, int M, int OH,
                              int OW, int KH, int KW, int sh, int sw, int dh, int dw, int pt, int pl,
                              const int8_t *KW_RESTRICT w, int32_t *KW_RESTRICT acc, const kw_q8 *q) {
    const int OC = C * M, three = M == 1 && KH == 3 && KW == 3 && dh == 1 && dw == 1;
    const int16_t z = (int16_t)q->in_zero;
    for (int oh = 0; oh < OH; ++oh) {
        const int inside = three && oh * sh - pt >= 0 && oh * sh - pt + 3 <= H;  /* the row's 3x3 windows, vertically */
        for (int ow = 0; ow < OW; ++ow) {
            int8_t *KW_RESTRICT yo = y + ((size_t)oh * OW + ow) * OC;
            const int ih0 = oh * sh - pt, iw0 = ow * sw - pl;
            if (!KW_SMALL && inside && iw0 >= 0 && iw0 + 3 <= W) {  /* a 3x3 window inside */
                const int8_t *KW_RESTRICT r0 = x + ((size_t)ih0 * W + iw0) * C;
                const int8_t *KW_RESTRICT r1 = r0 + (size_t)W * C, *KW_RESTRICT r2 = r1 + (size_t)W * C;
                for (int c = 0; c < C; ++c)
                    acc[c] = q->bias[c] + (int16_t)((r0[c] - z) * w[c]) + (int16_t)((r0[C + c] - z) * w[C + c])
                           + (int16_t)((r0[2 * C + c] - z) * w[2 * C + c]) + (int16_t)((r1[c] - z) * w[3 * C + c])
                           + (int16_t)((r1[C + c] - z) * w[4 * C + c]) + (int16_t)((r1[2 * C + c] - z) * w[5 * C + c])
                           + (int16_t)((r2[c] - z) * w[6 * C + c]) + (int16_t)((r2[C + c] - z) * w[7 * C + c])
                           + (int16_t)((r2[2 * C + c] - z) * w[8 * C + c]);
                kw_q8_row(acc, yo, (size_t)OC, q, 0);
                continue;
            }
            for (int o = 0; o < OC; ++o) acc[o] = q->bias[o];
            for (int kh = 0; kh < KH; ++kh) {
                const int ih = ih0 + kh * dh;
                if (ih < 0 || ih >= H) continue;
                for (int kw = 0; kw < KW; ++kw) {
                    const int iw = iw0 + kw * dw;
                    if (iw < 0 || iw >= W) continue;
                    const int8_t *KW_RESTRICT xi = x + ((size_t)ih * W + iw) * C;
                    const int8_t *KW_RESTRICT wk = w + ((size_t)kh * KW + kw) * OC;
                    if (M == 1)  /* the common case: a contiguous loop of 16-bit products */
                        for (int c = 0; c < C; ++c) acc[c] += (int16_t)((xi[c] - z) * wk[c]);
                    else
                        for (int c = 0; c < C; ++c)
                            for (int m = 0; m < M; ++m) acc[c * M + m] += (xi[c] - z) * wk[c * M + m];
                }
            }
            kw_q8_row(acc, yo, (size_t)OC, q, 0);
        }
    }
}

""",
    "affine_q8": """/* A per-channel scale and shift on int8 (a BatchNormalization of its own): y = requantize(256 * (x -
 * in_zero) + bias[c]), the scale in each channel's multiplier, the shift in its bias, in 1/256 of an input step. */
static void kw_affine_q8(const int8_t *x, int8_t *y, size_t rows, size_t C, const kw_q8 *q) {
    for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < C; ++c) {
            const int32_t acc = (x[r * C + c] - q->in_zero) * 256 + q->bias[c];
            int32_t v = q->out_zero + kw_requantize(acc, q->mult[c], q->shift[c]);
            v = v < q->lo ? q->lo : v;
            y[r * C + c] = (int8_t)(v > q->hi ? q->hi : v);
        }
}

""",
    "pool2d_q8": POOL2D.format(s="_q8", t="int8_t", acc="int32_t", zero="0", lowest="-128",
                               result="(int8_t)(!average ? acc : acc >= 0 ? (acc + count / 2) / count "
                                      ": (acc - count / 2) / count)",
                               what="MaxPooling2D / AveragePooling2D on int8 (output parameters = input's): the "
                                    "maximum, or the average over\n * the window's cells inside the input, rounded "
                                    "half away from zero."),
    "global_pool_q8": """/* GlobalAveragePooling / GlobalMaxPooling on int8: n positions of C channels -> C values. The maximum keeps
 * the input's parameters (q NULL); the average is requantized to its own: requantize(bias + sum of x), the bias
 * holding -n * in_zero and the multiplier in_scale / (n * out_scale). */
static void kw_global_pool_q8(const int8_t *x, int8_t *y, size_t n, size_t C, int32_t *KW_RESTRICT acc,
                              const kw_q8 *q) {
    for (size_t c = 0; c < C; ++c) acc[c] = q ? q->bias[c] : -128;
    for (size_t p = 0; p < n; ++p)
        for (size_t c = 0; c < C; ++c) {
            const int32_t v = x[p * C + c];
            acc[c] = q ? acc[c] + v : (v > acc[c] ? v : acc[c]);
        }
    if (q) kw_q8_row(acc, y, C, q, 0);
    else for (size_t c = 0; c < C; ++c) y[c] = (int8_t)acc[c];
}

""",
    "add_q8": """/* Add on int8 as TFLite computes it: each input's offset value shifted left by 20 bits and rescaled to a
 * common scale (twice the larger input scale), summed, rescaled to the output; a[] = {mult, shift} of input 1,
 * input 2 and the output. Any buffer may be another. */
static void kw_add_q8(const int8_t *x1, const int8_t *x2, int8_t *y, size_t n, int32_t z1, int32_t z2, int32_t zo,
                      const int32_t *a) {
    for (size_t i = 0; i < n; ++i) {
        const int32_t v1 = kw_requantize((x1[i] - z1) * (1 << 20), a[0], (int)a[1]);
        const int32_t v2 = kw_requantize((x2[i] - z2) * (1 << 20), a[2], (int)a[3]);
        int32_t v = zo + kw_requantize(v1 + v2, a[4], (int)a[5]);
        v = v < -128 ? -128 : v;
        y[i] = (int8_t)(v > 127 ? 127 : v);
    }
}

""",
    "concat_q8": """/* One input of a Concatenate on int8: `outer` blocks of `inner` values land at `at` in blocks of `total`,
 * rescaled to the output's parameters; a[] = {mult, shift, in_zero, out_zero}, of in_scale / (2^20 out_scale):
 * the offset value shifted left by 20 bits first, as Add does, so that the result is rounded once. */
static void kw_concat_part_q8(const int8_t *x, int8_t *y, size_t outer, size_t inner, size_t total, size_t at,
                              const int32_t *a) {
    for (size_t o = 0; o < outer; ++o)
        for (size_t i = 0; i < inner; ++i) {
            int32_t v = a[3] + kw_requantize((x[o * inner + i] - a[2]) * (1 << 20), a[0], (int)a[1]);
            v = v < -128 ? -128 : v;
            y[o * total + at + i] = (int8_t)(v > 127 ? 127 : v);
        }
}

""",
    "lookup_q8": """/* An element-wise activation on int8 (ReLU, sigmoid, tanh...): a table of its 256 results, by input value. */
static void kw_lookup_q8(const int8_t *x, int8_t *y, size_t n, const int32_t *table) {
    for (size_t i = 0; i < n; ++i) y[i] = (int8_t)table[x[i] + 128];
}

""",
    "softmax_q8": """/* Softmax on int8 over rows of `last` values, into TFLite's fixed output (scale 1/256, zero point -128):
 * e[d] = round(65536 * exp(-d * input scale)) for d = row maximum - value (a table), then 256 * e / sum,
 * rounded half up and capped at 255. Any buffer may be the other. */
static void kw_softmax_q8(const int8_t *x, int8_t *y, size_t rows, size_t last, const int32_t *e) {
    for (size_t r = 0; r < rows; ++r) {
        const int8_t *xr = x + r * last;
        int32_t top = -128;
        uint32_t sum = 0;
        for (size_t i = 0; i < last; ++i) top = xr[i] > top ? xr[i] : top;
        for (size_t i = 0; i < last; ++i) sum += (uint32_t)e[top - xr[i]];
        for (size_t i = 0; i < last; ++i) {
            const uint64_t v = ((uint64_t)(uint32_t)e[top - xr[i]] * 256 + sum / 2) / sum;
            y[r * last + i] = (int8_t)((v > 255 ? 255 : (int32_t)v) - 128);
        }
    }
}

""",
}

# What each kernel calls besides kw_requantize (which every int8 program has): their texts come first in FUNCTIONS.
CALLS = {"dense_q8": ("q8_row",), "conv2d_q8": ("dense_q8", "q8_row"), "depthwise2d_q8": ("q8_row",),
         "global_pool_q8": ("q8_row",)}
