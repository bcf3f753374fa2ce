"""The C kernels of full-integer int8 (``--quantize int8 --calibration``): int8 activations in and out, int32 sums,
fixed-point requantization; no float between the edges. Each has its numpy twin in :mod:`converter.integer`, which
the tests hold it to bit for bit. Arithmetic right shifts of negative numbers are what GCC, Clang, MSVC and every
compiler for Arm, AVR and RISC-V do (C99 leaves them implementation-defined)."""

from .plain import POOL2D

FUNCTIONS = {
    "requantize": """/* Requantization (TFLite's MultiplyByQuantizedMultiplier): acc * mult * 2^(shift - 31), the product's high
 * half rounded (gemmlowp's saturating rounding doubling high multiply), then a rounding right shift. */
typedef struct {
    const int32_t *bias;   /* per output channel, with the input zero point's share folded in where a kernel says */
    const int32_t *mult;   /* per output channel: a Q31 fraction (negative where a folded BatchNorm flips the sign) */
    const int8_t *shift;   /* per output channel */
    int32_t in_zero, out_zero, lo, hi;  /* zero points; the clamp (int8, or a ReLU's) */
} kw_q8;

static int32_t kw_requantize(int32_t acc, int32_t mult, int shift) {
    /* in int64, without branches, so that compilers vectorise it over a block of sums (kw_requantize_block) */
    const int left = shift > 0 ? shift : 0, right = shift > 0 ? 0 : -shift;
    int64_t shifted = (int64_t)acc * ((int64_t)1 << left);
    shifted = shifted > INT32_MAX ? INT32_MAX : (shifted < INT32_MIN ? INT32_MIN : shifted);
    const int64_t product = shifted * mult, sum = product + (product >= 0 ? (1 << 30) : 1 - (1 << 30));
    int64_t high = (sum >= 0 ? sum : sum + INT32_MAX) >> 31;  /* the division by 2^31, toward zero */
    high = high > INT32_MAX ? INT32_MAX : high;  /* INT32_MIN times INT32_MIN, the one overflow, saturates */
    const int32_t h = (int32_t)high, mask = (int32_t)((UINT32_C(1) << right) - 1u);
    return (h >> right) + ((h & mask) > (mask >> 1) + (h < 0));
}

static int8_t kw_q8_out(int32_t acc, const kw_q8 *q, size_t c) {
    int32_t v = q->out_zero + kw_requantize(acc, q->mult[c], q->shift[c]);
    v = v < q->lo ? q->lo : v;
    return (int8_t)(v > q->hi ? q->hi : v);
}

""",
    "dense_q8": """/* Dense on int8 rows: y[r][o] = requantize(bias[o] + sum_i x[r][i] * w[i][o]) (kernel [in][out]); the bias holds
 * -in_zero * sum_i w[i][o], so the sum runs over the stored values. 1x1 convolutions are Dense over pixels.
 * Register blocks of 4 rows x KW_PANEL_Q8 outputs as in the float kernel: int32 sums in fixed-length arrays, each
 * weight row widened once for 4 rows; the requantization on the block's sums before they are stored. `acc`
 * (out int32s) serves the rows and outputs the blocks leave, one row at a time. */
static void kw_requantize_block(const int32_t *KW_RESTRICT a, int8_t *KW_RESTRICT y, const kw_q8 *q, size_t c0) {
    const int32_t *KW_RESTRICT mult = q->mult + c0, zero = q->out_zero, lo = q->lo, hi = q->hi;
    const int8_t *KW_RESTRICT shift = q->shift + c0;
    KW_NO_UNROLL for (int j = 0; j < KW_PANEL_Q8; ++j) {
        int32_t v = zero + kw_requantize(a[j], mult[j], shift[j]);
        v = v < lo ? lo : v;
        y[j] = (int8_t)(v > hi ? hi : v);
    }
}

static void kw_dense_q8(const int8_t *KW_RESTRICT x, int8_t *KW_RESTRICT y, size_t rows, size_t in, size_t out,
                        const int8_t *KW_RESTRICT w, int32_t *KW_RESTRICT acc, const kw_q8 *q) {
    const size_t blocked = KW_SMALL ? 0 : rows - rows % 4, full = KW_SMALL ? 0 : out - out % KW_PANEL_Q8;
    for (size_t o = 0; o < full; o += KW_PANEL_Q8)
        for (size_t r = 0; r < blocked; r += 4) {
            const int8_t *KW_RESTRICT x0 = x + r * in, *KW_RESTRICT x1 = x0 + in, *KW_RESTRICT x2 = x1 + in,
                         *KW_RESTRICT x3 = x2 + in, *KW_RESTRICT wi = w + o;
            int32_t a0[KW_PANEL_Q8], a1[KW_PANEL_Q8], a2[KW_PANEL_Q8], a3[KW_PANEL_Q8];
            for (int j = 0; j < KW_PANEL_Q8; ++j) a0[j] = a1[j] = a2[j] = a3[j] = q->bias[o + j];
            size_t i = 0;
            for (; i + 1 < in; i += 2, wi += 2 * out) {  /* two inputs a step: |x w + x' w'| <= 2 * 128 * 127 fits
                                                          * 16 bits, so the products are 16-bit multiplies */
                const int16_t v0 = x0[i], v1 = x1[i], v2 = x2[i], v3 = x3[i];
                const int16_t u0 = x0[i + 1], u1 = x1[i + 1], u2 = x2[i + 1], u3 = x3[i + 1];
                int16_t wa[KW_PANEL_Q8], wb[KW_PANEL_Q8];
                KW_NO_UNROLL for (int j = 0; j < KW_PANEL_Q8; ++j) wa[j] = wi[j];
                KW_NO_UNROLL for (int j = 0; j < KW_PANEL_Q8; ++j) wb[j] = wi[out + j];
                KW_NO_UNROLL for (int j = 0; j < KW_PANEL_Q8; ++j) a0[j] += (int16_t)(v0 * wa[j] + u0 * wb[j]);
                KW_NO_UNROLL for (int j = 0; j < KW_PANEL_Q8; ++j) a1[j] += (int16_t)(v1 * wa[j] + u1 * wb[j]);
                KW_NO_UNROLL for (int j = 0; j < KW_PANEL_Q8; ++j) a2[j] += (int16_t)(v2 * wa[j] + u2 * wb[j]);
                KW_NO_UNROLL for (int j = 0; j < KW_PANEL_Q8; ++j) a3[j] += (int16_t)(v3 * wa[j] + u3 * wb[j]);
            }
            if (i < in) {  /* an odd input count's last input */
                const int16_t v0 = x0[i], v1 = x1[i], v2 = x2[i], v3 = x3[i];
                KW_NO_UNROLL for (int j = 0; j < KW_PANEL_Q8; ++j) {
                    a0[j] += v0 * wi[j];
                    a1[j] += v1 * wi[j];
                    a2[j] += v2 * wi[j];
                    a3[j] += v3 * wi[j];
                }
            }
            int8_t *KW_RESTRICT y0 = y + r * out + o;
            kw_requantize_block(a0, y0, q, o);
            kw_requantize_block(a1, y0 + out, q, o);
            kw_requantize_block(a2, y0 + 2 * out, q, o);
            kw_requantize_block(a3, y0 + 3 * out, q, o);
        }
    for (size_t r = 0; r < rows; ++r) {  /* what the blocks leave: the outputs past `full`, or every output of a row
                                            past `blocked` */
        const size_t o0 = r < blocked ? full : 0;
        if (o0 == out) continue;
        const int8_t *KW_RESTRICT xr = x + r * in;
        for (size_t o = o0; o < out; ++o) acc[o] = q->bias[o];
        const size_t chunked = KW_SMALL ? o0 : o0 + (out - o0) / KW_PANEL_Q8 * KW_PANEL_Q8;
        for (size_t i = 0; i < in; ++i) {
            const int16_t v = xr[i];
            const int8_t *KW_RESTRICT wi = w + i * out;
            for (size_t o = o0; o < chunked; o += KW_PANEL_Q8)  /* fixed-length chunks: vectorised at -O2 too */
                KW_NO_UNROLL for (int j = 0; j < KW_PANEL_Q8; ++j) acc[o + j] += (int32_t)v * (int16_t)wi[o + j];
            for (size_t o = chunked; o < out; ++o) acc[o] += v * wi[o];
        }
        for (size_t o = o0; o < out; ++o) y[r * out + o] = kw_q8_out(acc[o], q, o);
    }
}

""",
    "conv2d_q8": """/* Conv2D on int8 (channels last), kernel [KH][KW][C][OC]: P output pixels at a time (a multiple of 4), their
 * input patches (the input's zero point where the window leaves the input: a real 0) copied into `patch`
 * (P x KH * KW * C), then multiplied as Dense. */
static void kw_conv2d_q8(const int8_t *KW_RESTRICT x, int8_t *KW_RESTRICT y, int H, int W, int C, int OH, int OW,
                         int OC, int KH, int KW, int sh, int sw, int dh, int dw, int pt, int pl,
                         const int8_t *KW_RESTRICT w, int8_t *KW_RESTRICT patch, size_t P, int32_t *KW_RESTRICT acc,
                         const kw_q8 *q) {
    const size_t K = (size_t)KH * KW * C, pixels = (size_t)OH * OW;
    for (size_t first = 0; first < pixels; first += P) {
        const size_t count = pixels - first < P ? pixels - first : P;
        for (size_t n = 0; n < count; ++n) {
            const int oh = (int)((first + n) / (size_t)OW), ow = (int)((first + n) % (size_t)OW);
            for (int kh = 0; kh < KH; ++kh) {
                const int ih = oh * sh - pt + kh * dh;
                for (int kw = 0; kw < KW; ++kw) {
                    const int iw = ow * sw - pl + kw * dw;
                    int8_t *KW_RESTRICT to = patch + n * K + ((size_t)kh * KW + kw) * C;
                    const int inside = ih >= 0 && ih < H && iw >= 0 && iw < W;
                    const int8_t *KW_RESTRICT from = x + ((size_t)(inside ? ih : 0) * W + (inside ? iw : 0)) * C;
                    for (int c = 0; c < C; ++c) to[c] = inside ? from[c] : (int8_t)q->in_zero;
                }
            }
        }
        kw_dense_q8(patch, y + first * OC, count, K, (size_t)OC, w, acc, q);
    }
}

""",
    "depthwise2d_q8": """/* DepthwiseConv2D on int8: output channel c * M + m sees input channel c only, kernel [KH][KW][C][M];
 * y = requantize(bias + sum over the window's taps inside the input of (x - in_zero) * w). */
static void kw_depthwise2d_q8(const int8_t *KW_RESTRICT x, int8_t *KW_RESTRICT y, int H, int W, int C, int M, int OH,
                              int OW, int KH, int KW, int sh, int sw, int dh, int dw, int pt, int pl,
                              const int8_t *KW_RESTRICT w, int32_t *KW_RESTRICT acc, const kw_q8 *q) {
    const int OC = C * M;
    for (int oh = 0; oh < OH; ++oh) {
        for (int ow = 0; ow < OW; ++ow) {
            for (int o = 0; o < OC; ++o) acc[o] = q->bias[o];
            for (int kh = 0; kh < KH; ++kh) {
                const int ih = oh * sh - pt + kh * dh;
                if (ih < 0 || ih >= H) continue;
                for (int kw = 0; kw < KW; ++kw) {
                    const int iw = ow * sw - pl + kw * dw;
                    if (iw < 0 || iw >= W) continue;
                    const int8_t *KW_RESTRICT xi = x + ((size_t)ih * W + iw) * C;
                    const int8_t *KW_RESTRICT wk = w + ((size_t)kh * KW + kw) * OC;
                    if (M == 1)  /* the common case: a contiguous loop of 16-bit products, which compilers vectorise */
                        for (int c = 0; c < C; ++c) acc[c] += (int32_t)(int16_t)(xi[c] - q->in_zero) * wk[c];
                    else
                        for (int c = 0; c < C; ++c)
                            for (int m = 0; m < M; ++m) acc[c * M + m] += (xi[c] - q->in_zero) * wk[c * M + m];
                }
            }
            int8_t *KW_RESTRICT yo = y + ((size_t)oh * OW + ow) * OC;
            for (int o = 0; o < OC; ++o) yo[o] = kw_q8_out(acc[o], q, (size_t)o);
        }
    }
}

""",
    "affine_q8": """/* A per-channel scale and shift on int8 (a BatchNormalization of its own): y = requantize(256 * (x -
 * in_zero) + bias[c]), the scale in each channel's multiplier, the shift in its bias, in 1/256 of an input step. */
static void kw_affine_q8(const int8_t *x, int8_t *y, size_t rows, size_t C, const kw_q8 *q) {
    for (size_t r = 0; r < rows; ++r)
        for (size_t c = 0; c < C; ++c) y[r * C + c] = kw_q8_out((x[r * C + c] - q->in_zero) * 256 + q->bias[c], q, c);
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
static void kw_global_pool_q8(const int8_t *x, int8_t *y, size_t n, size_t C, int32_t *acc, const kw_q8 *q) {
    for (size_t c = 0; c < C; ++c) acc[c] = q ? q->bias[c] : -128;
    for (size_t p = 0; p < n; ++p)
        for (size_t c = 0; c < C; ++c) {
            const int32_t v = x[p * C + c];
            acc[c] = q ? acc[c] + v : (v > acc[c] ? v : acc[c]);
        }
    for (size_t c = 0; c < C; ++c) y[c] = q ? kw_q8_out(acc[c], q, c) : (int8_t)acc[c];
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
