"""The C functions the generated forward pass calls: one small function per layer kind, written once and
shared by every layer of that kind. Plain C99 (no threads, no intrinsics): loops the compiler can vectorise.

Kernels with weights come in two versions from one template: ``_f32`` reads float arrays, ``_i8`` reads
int8 arrays and multiplies each output channel's sum by its scale (``y = scale[c] * sum(x * q) + b``).
"""
from __future__ import annotations

ACTIVATIONS = {  # name -> C expression of v (and a, the layer's parameter where it has one)
    "linear": "v",
    "relu": "(v > 0.0f ? v : 0.0f)",
    "relu6": "(v < 0.0f ? 0.0f : (v > 6.0f ? 6.0f : v))",
    "leaky_relu": "(v >= 0.0f ? v : a * v)",
    "elu": "(v > 0.0f ? v : a * (expf(v) - 1.0f))",
    "selu": "(v > 0.0f ? 1.05070098735548049342f * v : 1.05070098735548049342f * 1.67326324235437728481f * (expf(v) - 1.0f))",
    "sigmoid": "(1.0f / (1.0f + expf(-v)))",
    "hard_sigmoid": "(v <= -3.0f ? 0.0f : (v >= 3.0f ? 1.0f : v / 6.0f + 0.5f))",
    "tanh": "tanhf(v)",
    "softplus": "(v > 20.0f ? v : log1pf(expf(v)))",
    "softsign": "(v / (1.0f + fabsf(v)))",
    "swish": "(v / (1.0f + expf(-v)))",
    "silu": "(v / (1.0f + expf(-v)))",
    "gelu": "(0.5f * v * (1.0f + erff(v * 0.70710678118654752440f)))",
    "gelu_tanh": "(0.5f * v * (1.0f + tanhf(0.79788456080286535588f * (v + 0.044715f * v * v * v))))",
    "exponential": "expf(v)",
    "hard_silu": "(v * (v <= -3.0f ? 0.0f : (v >= 3.0f ? 1.0f : v / 6.0f + 0.5f)))",
    "hard_swish": "(v * (v <= -3.0f ? 0.0f : (v >= 3.0f ? 1.0f : v / 6.0f + 0.5f)))",
    "mish": "(v * tanhf(v > 20.0f ? v : log1pf(expf(v))))",
}
ACTIVATION_CODES = {name: code for code, name in enumerate(ACTIVATIONS)}
SOFTMAX = "softmax"


def activation_function(names: list[str]) -> str:
    """``kw_activate``: an activation over ``n`` values in place (softmax over rows of ``last`` values)."""
    cases = "".join(f"        case {ACTIVATION_CODES[name]}: x[i] = ({_of(name)}); break;  /* {name} */\n"
                    for name in names if name != SOFTMAX)
    softmax = ("    if (kind < 0) {  /* softmax over the last axis */\n"
               "        for (size_t r = 0; r < n / last; ++r) {\n"
               "            float *row = x + r * last, top = row[0], sum = 0.0f;\n"
               "            for (size_t i = 1; i < last; ++i) top = row[i] > top ? row[i] : top;\n"
               "            for (size_t i = 0; i < last; ++i) { row[i] = expf(row[i] - top); sum += row[i]; }\n"
               "            for (size_t i = 0; i < last; ++i) row[i] /= sum;\n"
               "        }\n        return;\n    }\n") if SOFTMAX in names else "    (void)last;\n"
    return (
        "/* Activation `kind` (its code in the comments below; -1: softmax) over n values in place; a is the\n"
        " * negative slope of leaky_relu or the alpha of elu. */\n"
        "static void kw_activate(float *x, size_t n, size_t last, int kind, float a) {\n"
        f"{softmax}"
        "    for (size_t i = 0; i < n; ++i) {\n        float v = x[i];\n        (void)a;\n"
        "        switch (kind) {\n"
        + cases
        + "        default: break;\n        }\n    }\n}\n\n"
    )


def _of(name: str) -> str:
    return ACTIVATIONS[name]


def relu_function() -> str:
    return (
        "/* The ReLU layer: max_value (<0: none), negative_slope below threshold. */\n"
        "static void kw_relu(float *x, size_t n, float max_value, float slope, float threshold) {\n"
        "    for (size_t i = 0; i < n; ++i) {\n"
        "        float v = x[i] >= threshold ? x[i] : slope * (x[i] - threshold);\n"
        "        x[i] = (max_value >= 0.0f && v > max_value) ? max_value : v;\n    }\n}\n\n"
    )


_WEIGHTED = {
    "dense": """/* Dense on rows of `in` values: y[r][o] = b[o] + sum_i x[r][i] * w[i][o] (kernel [in][out]). Four rows at
 * a time share each weight row loaded (1x1 convolutions are Dense over pixels). */
static void kw_dense{s}(const float *restrict x, float *restrict y, size_t rows, size_t in, size_t out,
                      const {w} *restrict w,{sp} const float *restrict b) {{
    const size_t blocked = rows - rows % 4;
    for (size_t r = 0; r < blocked; r += 4) {{
        float *restrict y0 = y + r * out, *restrict y1 = y0 + out, *restrict y2 = y1 + out, *restrict y3 = y2 + out;
        for (size_t o = 0; o < out; ++o) y0[o] = y1[o] = y2[o] = y3[o] = 0.0f;
        for (size_t i = 0; i < in; ++i) {{
            const float x0 = x[r * in + i], x1 = x[(r + 1) * in + i], x2 = x[(r + 2) * in + i], x3 = x[(r + 3) * in + i];
            const {w} *restrict wi = w + i * out;
            for (size_t o = 0; o < out; ++o) {{
                const float v = (float)wi[o];
                y0[o] += x0 * v;
                y1[o] += x1 * v;
                y2[o] += x2 * v;
                y3[o] += x3 * v;
            }}
        }}
        for (size_t k = 0; k < 4; ++k) {{
            float *restrict yr = y + (r + k) * out;
            for (size_t o = 0; o < out; ++o) yr[o] = {scaled} + (b ? b[o] : 0.0f);
        }}
    }}
    for (size_t r = blocked; r < rows; ++r) {{
        float *restrict yr = y + r * out;
        for (size_t o = 0; o < out; ++o) yr[o] = 0.0f;
        for (size_t i = 0; i < in; ++i) {{
            const float xi = x[r * in + i];
            const {w} *restrict wi = w + i * out;
            for (size_t o = 0; o < out; ++o) yr[o] += xi * (float)wi[o];
        }}
        for (size_t o = 0; o < out; ++o) yr[o] = {scaled} + (b ? b[o] : 0.0f);
    }}
}}

""",
    "conv2d": """/* Conv2D, channels last: x [H][W][C] -> y [OH][OW][OC], kernel [KH][KW][C][OC] (read as [KH * KW * C][OC]);
 * strides s, dilation d, padding pt (top) and pl (left). Conv1D is the case H = KH = 1. Four output pixels at a
 * time: their input patches are copied into `patch` (4 x KH * KW * C floats, zeros where the window leaves the
 * input) and multiplied by the kernel as a Dense layer. */
static void kw_conv2d{s}(const float *restrict x, float *restrict y, int H, int W, int C, int OH, int OW, int OC,
                       int KH, int KW, int sh, int sw, int dh, int dw, int pt, int pl, const {w} *restrict w,{sp}
                       const float *restrict b, float *restrict patch) {{
    const size_t K = (size_t)KH * KW * C, pixels = (size_t)OH * OW;
    for (size_t first = 0; first < pixels; first += 4) {{
        const size_t count = pixels - first < 4 ? pixels - first : 4;
        for (size_t n = 0; n < count; ++n) {{
            const int oh = (int)((first + n) / (size_t)OW), ow = (int)((first + n) % (size_t)OW);
            float *restrict row = patch + n * K;
            for (int kh = 0; kh < KH; ++kh) {{
                const int ih = oh * sh - pt + kh * dh;
                for (int kw = 0; kw < KW; ++kw) {{
                    const int iw = ow * sw - pl + kw * dw;
                    float *restrict to = row + ((size_t)kh * KW + kw) * C;
                    if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                        for (int c = 0; c < C; ++c) to[c] = 0.0f;
                    else
                        for (int c = 0; c < C; ++c) to[c] = x[((size_t)ih * W + iw) * C + c];
                }}
            }}
        }}
        kw_dense{s}(patch, y + first * OC, count, K, (size_t)OC, w,{sa} b);
    }}
}}

""",
    "depthwise2d": """/* DepthwiseConv2D: output channel c * M + m sees input channel c only; kernel [KH][KW][C][M]. */
static void kw_depthwise2d{s}(const float *restrict x, float *restrict y, int H, int W, int C, int M, int OH, int OW,
                            int KH, int KW, int sh, int sw, int dh, int dw, int pt, int pl, const {w} *restrict w,{sp}
                            const float *restrict b) {{
    const int OC = C * M;
    for (int oh = 0; oh < OH; ++oh) {{
        for (int ow = 0; ow < OW; ++ow) {{
            float *restrict yo = y + ((size_t)oh * OW + ow) * OC;
            const int ih0 = oh * sh - pt, iw0 = ow * sw - pl;
            if (M == 1 && KH == 3 && KW == 3 && dh == 1 && dw == 1 && ih0 >= 0 && ih0 + 3 <= H && iw0 >= 0 &&
                iw0 + 3 <= W) {{  /* a 3x3 window inside the input: the nine taps summed in registers */
                const float *restrict r0 = x + ((size_t)ih0 * W + iw0) * C;
                const float *restrict r1 = r0 + (size_t)W * C, *restrict r2 = r1 + (size_t)W * C;
                for (int o = 0; o < C; ++o) {{
                    yo[o] = r0[o] * (float)w[o] + r0[C + o] * (float)w[C + o] + r0[2 * C + o] * (float)w[2 * C + o]
                          + r1[o] * (float)w[3 * C + o] + r1[C + o] * (float)w[4 * C + o]
                          + r1[2 * C + o] * (float)w[5 * C + o] + r2[o] * (float)w[6 * C + o]
                          + r2[C + o] * (float)w[7 * C + o] + r2[2 * C + o] * (float)w[8 * C + o];
                    yo[o] = {scaled_yo} + (b ? b[o] : 0.0f);
                }}
                continue;
            }}
            for (int o = 0; o < OC; ++o) yo[o] = 0.0f;
            for (int kh = 0; kh < KH; ++kh) {{
                const int ih = oh * sh - pt + kh * dh;
                if (ih < 0 || ih >= H) continue;
                for (int kw = 0; kw < KW; ++kw) {{
                    const int iw = ow * sw - pl + kw * dw;
                    if (iw < 0 || iw >= W) continue;
                    const float *restrict xi = x + ((size_t)ih * W + iw) * C;
                    const {w} *restrict wk = w + ((size_t)kh * KW + kw) * OC;
                    if (M == 1)  /* the common case: one output channel per input channel, a contiguous loop */
                        for (int c = 0; c < C; ++c) yo[c] += xi[c] * (float)wk[c];
                    else
                        for (int c = 0; c < C; ++c)
                            for (int m = 0; m < M; ++m) yo[c * M + m] += xi[c] * (float)wk[c * M + m];
                }}
            }}
            for (int o = 0; o < OC; ++o) yo[o] = {scaled_yo} + (b ? b[o] : 0.0f);
        }}
    }}
}}

""",
    "conv2d_transpose": """/* Conv2DTranspose: every input pixel adds its kernel-weighted values into the output; kernel
 * [KH][KW][OC][C]; pt/pl: the padding cut from the top/left of the full output. */
static void kw_conv2d_transpose{s}(const float *x, float *y, int H, int W, int C, int OH, int OW, int OC, int KH,
                                 int KW, int sh, int sw, int dh, int dw, int pt, int pl, const {w} *w,{sp}
                                 const float *b) {{
    for (size_t i = 0; i < (size_t)OH * OW * OC; ++i) y[i] = 0.0f;
    for (int ih = 0; ih < H; ++ih) {{
        for (int iw = 0; iw < W; ++iw) {{
            const float *xi = x + ((size_t)ih * W + iw) * C;
            for (int kh = 0; kh < KH; ++kh) {{
                const int oh = ih * sh - pt + kh * dh;
                if (oh < 0 || oh >= OH) continue;
                for (int kw = 0; kw < KW; ++kw) {{
                    const int ow = iw * sw - pl + kw * dw;
                    if (ow < 0 || ow >= OW) continue;
                    float *yo = y + ((size_t)oh * OW + ow) * OC;
                    const {w} *wk = w + ((size_t)kh * KW + kw) * OC * C;
                    for (int o = 0; o < OC; ++o) {{
                        const {w} *wo = wk + (size_t)o * C;
                        float acc = 0.0f;
                        for (int c = 0; c < C; ++c) acc += xi[c] * wo[c];
                        yo[o] += acc;
                    }}
                }}
            }}
        }}
    }}
    for (size_t p = 0; p < (size_t)OH * OW; ++p)
        for (int o = 0; o < OC; ++o) y[p * OC + o] = {scaled_y} + (b ? b[o] : 0.0f);
}}

""",
    "embedding": """/* Embedding: each input value is a token id; its row of the table is the output. */
static void kw_embedding{s}(const float *x, float *y, size_t n, size_t dim, size_t vocabulary, const {w} *w,{sp}
                          const float *unused) {{
    (void)unused;
    for (size_t i = 0; i < n; ++i) {{
        /* an id outside the table (or NaN) reads row 0, as Keras gives garbage there; compared as a float first,
         * since converting a float outside long's range is undefined */
        const size_t id = (x[i] >= 0.0f && x[i] < (float)vocabulary) ? (size_t)x[i] : 0;
        for (size_t d = 0; d < dim; ++d) y[i * dim + d] = {scaled_embedding};
    }}
}}

""",
}

_PLAIN = {
    "pool2d": """/* MaxPooling2D / AveragePooling2D (channels last); average over the window's cells inside the input. */
static void kw_pool2d(const float *x, float *y, int H, int W, int C, int OH, int OW, int KH, int KW, int sh, int sw,
                      int pt, int pl, int average) {
    for (int oh = 0; oh < OH; ++oh) {
        for (int ow = 0; ow < OW; ++ow) {
            for (int c = 0; c < C; ++c) {
                float acc = average ? 0.0f : -INFINITY;
                int count = 0;
                for (int kh = 0; kh < KH; ++kh) {
                    const int ih = oh * sh - pt + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < KW; ++kw) {
                        const int iw = ow * sw - pl + kw;
                        if (iw < 0 || iw >= W) continue;
                        const float v = x[((size_t)ih * W + iw) * C + c];
                        acc = average ? acc + v : (v > acc ? v : acc);
                        ++count;
                    }
                }
                y[((size_t)oh * OW + ow) * C + c] = average ? acc / (float)count : acc;
            }
        }
    }
}

""",
    "global_pool": """/* GlobalAveragePooling / GlobalMaxPooling: n positions of C channels -> C values. */
static void kw_global_pool(const float *x, float *y, size_t n, size_t C, int average) {
    for (size_t c = 0; c < C; ++c) y[c] = average ? 0.0f : x[c];
    for (size_t p = average ? 0 : 1; p < n; ++p)
        for (size_t c = 0; c < C; ++c) y[c] = average ? y[c] + x[p * C + c] : (x[p * C + c] > y[c] ? x[p * C + c] : y[c]);
    if (average)
        for (size_t c = 0; c < C; ++c) y[c] /= (float)n;
}

""",
    "batch_norm": """/* BatchNormalization over the last axis (inference): (x - mean) / sqrt(var + eps) * gamma + beta, as
 * x * a + c with a and c worked out once per channel, 64 channels at a time. */
static void kw_batch_norm(const float *restrict x, float *restrict y, size_t n, size_t C, const float *gamma,
                          const float *beta, const float *mean, const float *var, float eps) {
    float a[64], c[64];
    for (size_t first = 0; first < C; first += 64) {
        const size_t width = C - first < 64 ? C - first : 64;
        for (size_t k = 0; k < width; ++k) {
            a[k] = (gamma ? gamma[first + k] : 1.0f) / sqrtf(var[first + k] + eps);
            c[k] = (beta ? beta[first + k] : 0.0f) - mean[first + k] * a[k];
        }
        for (size_t p = 0; p < n / C; ++p)
            for (size_t k = 0; k < width; ++k) y[p * C + first + k] = x[p * C + first + k] * a[k] + c[k];
    }
}

""",
    "layer_norm": """/* LayerNormalization over the last axis of rows of C values. */
static void kw_layer_norm(const float *x, float *y, size_t rows, size_t C, const float *gamma, const float *beta,
                          float eps) {
    for (size_t r = 0; r < rows; ++r) {
        const float *xr = x + r * C;
        float *yr = y + r * C, mean = 0.0f, var = 0.0f;
        for (size_t c = 0; c < C; ++c) mean += xr[c];
        mean /= (float)C;
        for (size_t c = 0; c < C; ++c) var += (xr[c] - mean) * (xr[c] - mean);
        var /= (float)C;
        const float inv = 1.0f / sqrtf(var + eps);
        for (size_t c = 0; c < C; ++c) yr[c] = (xr[c] - mean) * inv * (gamma ? gamma[c] : 1.0f) + (beta ? beta[c] : 0.0f);
    }
}

""",
    "affine": """/* y = x * scale[c] + offset[c] over the last axis (Rescaling, Normalization with 1 / sqrt(var)). */
static void kw_affine(const float *x, float *y, size_t n, size_t C, const float *scale, const float *offset) {
    for (size_t i = 0; i < n; ++i) y[i] = x[i] * scale[i % C] + offset[i % C];
}

""",
    "normalize": """/* Normalization: (x - mean[c]) / max(sqrt(var[c]), 1e-7) over the last axis. */
static void kw_normalize(const float *x, float *y, size_t n, size_t C, const float *mean, const float *var) {
    for (size_t i = 0; i < n; ++i) {
        const float sd = sqrtf(var[i % C]);
        y[i] = (x[i] - mean[i % C]) / (sd > 1e-7f ? sd : 1e-7f);
    }
}

""",
    "merge": """/* Add, Subtract, Multiply, average of two inputs of n values (op 0, 1, 2, 3). */
static void kw_merge(const float *a, const float *b, float *y, size_t n, int op) {
    for (size_t i = 0; i < n; ++i)
        y[i] = op == 0 ? a[i] + b[i] : op == 1 ? a[i] - b[i] : op == 2 ? a[i] * b[i] : 0.5f * (a[i] + b[i]);
}

""",
    "concat": """/* One input of a Concatenate: `outer` blocks of `inner` values land at `at` in blocks of `total`. */
static void kw_concat_part(const float *x, float *y, size_t outer, size_t inner, size_t total, size_t at) {
    for (size_t o = 0; o < outer; ++o)
        for (size_t i = 0; i < inner; ++i) y[o * total + at + i] = x[o * inner + i];
}

""",
    "copy": """static void kw_copy(const float *x, float *y, size_t n) {
    for (size_t i = 0; i < n; ++i) y[i] = x[i];
}

""",
    "zero_pad2d": """/* ZeroPadding2D: x [H][W][C] into y [OH][OW][C] at (top, left), zeros around. */
static void kw_zero_pad2d(const float *x, float *y, int H, int W, int C, int OH, int OW, int top, int left) {
    for (size_t i = 0; i < (size_t)OH * OW * C; ++i) y[i] = 0.0f;
    for (int h = 0; h < H; ++h)
        for (int w = 0; w < W; ++w)
            for (int c = 0; c < C; ++c) y[((size_t)(h + top) * OW + w + left) * C + c] = x[((size_t)h * W + w) * C + c];
}

""",
    "upsample2d": """/* UpSampling2D, nearest: each pixel repeated fh x fw times. */
static void kw_upsample2d(const float *x, float *y, int H, int W, int C, int fh, int fw) {
    const int OW = W * fw;
    for (int oh = 0; oh < H * fh; ++oh)
        for (int ow = 0; ow < OW; ++ow)
            for (int c = 0; c < C; ++c) y[((size_t)oh * OW + ow) * C + c] = x[((size_t)(oh / fh) * W + ow / fw) * C + c];
}

""",
    "permute": """/* Permute of a rank-2 or rank-3 sample: y index (i0, i1, i2) reads x at the permuted position. */
static void kw_permute3(const float *x, float *y, int d0, int d1, int d2, int p0, int p1, int p2) {
    const int dims[3] = {d0, d1, d2};
    const int stride[3] = {d1 * d2, d2, 1};
    const int o0 = dims[p0], o1 = dims[p1], o2 = dims[p2];
    for (int a = 0; a < o0; ++a)
        for (int b = 0; b < o1; ++b)
            for (int c = 0; c < o2; ++c)
                y[((size_t)a * o1 + b) * o2 + c] = x[(size_t)a * stride[p0] + (size_t)b * stride[p1] + (size_t)c * stride[p2]];
}

""",
    "simple_rnn_step": """/* One SimpleRNN step: h = act(g + gh), g = x W + b and gh = h R computed before. */
static void kw_simple_rnn_step(float *g, const float *gh, float *h, size_t U, int act) {
    for (size_t j = 0; j < U; ++j) g[j] += gh[j];
    kw_activate(g, U, U, act, 0.0f);
    for (size_t j = 0; j < U; ++j) h[j] = g[j];
}

""",
    "lstm_step": """/* One LSTM step: g = x W + b and gh = h R hold the gates i, f, c, o side by side (U each); updates h and c. */
static void kw_lstm_step(float *g, const float *gh, float *h, float *c, size_t U, int rec, int act) {
    for (size_t j = 0; j < 4 * U; ++j) g[j] += gh[j];
    kw_activate(g, 2 * U, 2 * U, rec, 0.0f);      /* i, f */
    kw_activate(g + 2 * U, U, U, act, 0.0f);      /* candidate */
    kw_activate(g + 3 * U, U, U, rec, 0.0f);      /* o */
    for (size_t j = 0; j < U; ++j) {
        c[j] = g[U + j] * c[j] + g[j] * g[2 * U + j];
        g[2 * U + j] = c[j];
    }
    kw_activate(g + 2 * U, U, U, act, 0.0f);
    for (size_t j = 0; j < U; ++j) h[j] = g[3 * U + j] * g[2 * U + j];
}

""",
    "gru_step": """/* One GRU step with reset_after (Keras's default): g = x W + b_input and gh = h R + b_recurrent hold the
 * gates z, r, h side by side; the reset gate applies to the recurrent part after the product. */
static void kw_gru_step(float *g, const float *gh, float *h, size_t U, int rec, int act) {
    for (size_t j = 0; j < 2 * U; ++j) g[j] += gh[j];
    kw_activate(g, 2 * U, 2 * U, rec, 0.0f);
    for (size_t j = 0; j < U; ++j) g[2 * U + j] += g[U + j] * gh[2 * U + j];
    kw_activate(g + 2 * U, U, U, act, 0.0f);
    for (size_t j = 0; j < U; ++j) h[j] = g[j] * h[j] + (1.0f - g[j]) * g[2 * U + j];
}

""",
    "gru_v1_gates": """/* GRU without reset_after, first half: z and r from g = x W + b and gh = h R; rh = r * h. */
static void kw_gru_v1_gates(float *g, const float *gh, const float *h, float *rh, size_t U, int rec) {
    for (size_t j = 0; j < 2 * U; ++j) g[j] += gh[j];
    kw_activate(g, 2 * U, 2 * U, rec, 0.0f);
    for (size_t j = 0; j < U; ++j) rh[j] = g[U + j] * h[j];
}

/* Second half: the candidate from g's third part and (r * h) R, then the new h. */
static void kw_gru_v1_update(float *g, const float *grh, float *h, size_t U, int act) {
    for (size_t j = 0; j < U; ++j) g[2 * U + j] += grh[2 * U + j];
    kw_activate(g + 2 * U, U, U, act, 0.0f);
    for (size_t j = 0; j < U; ++j) h[j] = g[j] * h[j] + (1.0f - g[j]) * g[2 * U + j];
}

""",
    "repeat": """/* RepeatVector: n copies of a vector of `size` values. */
static void kw_repeat(const float *x, float *y, size_t n, size_t size) {
    for (size_t r = 0; r < n; ++r)
        for (size_t i = 0; i < size; ++i) y[r * size + i] = x[i];
}

""",
}


def weighted(kind: str, quantized: bool) -> str:
    """The C text of a kernel with weights, reading float or int8 arrays."""
    if quantized:
        return _WEIGHTED[kind].format(
            s="_i8", w="int8_t", sp=" const float *scale,", sa=" scale,", scaled="yr[o] * scale[o]", scaled_yo="yo[o] * scale[o]",
            scaled_y="y[p * OC + o] * scale[o]", scaled_embedding="(float)w[(size_t)id * dim + d] * scale[d]")
    return _WEIGHTED[kind].format(s="_f32", w="float", sp="", sa="", scaled="yr[o]", scaled_yo="yo[o]",
                                  scaled_y="y[p * OC + o]", scaled_embedding="w[(size_t)id * dim + d]")


def plain(kind: str) -> str:
    return _PLAIN[kind]
