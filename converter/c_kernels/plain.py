"""The C kernels without weights (pooling, normalization, merging, moving values): one function each."""

# Windowed pooling over float or int8 values: one text for both (converter.c_kernels.integer fills in int8's).
POOL2D = """/* {what} */
static void kw_pool2d{s}(const {t} *x, {t} *y, int H, int W, int C, int OH, int OW, int KH, int KW, int sh, int sw,
                      int pt, int pl, int average) {{
    for (int oh = 0; oh < OH; ++oh) {{
        for (int ow = 0; ow < OW; ++ow) {{
            for (int c = 0; c < C; ++c) {{
                {acc} acc = average ? {zero} : {lowest};
                int count = 0;
                for (int kh = 0; kh < KH; ++kh) {{
                    const int ih = oh * sh - pt + kh;
                    if (ih < 0 || ih >= H) continue;
                    for (int kw = 0; kw < KW; ++kw) {{
                        const int iw = ow * sw - pl + kw;
                        if (iw < 0 || iw >= W) continue;
                        const {acc} v = x[((size_t)ih * W + iw) * C + c];
                        acc = average ? acc + v : (v > acc ? v : acc);
                        ++count;
                    }}
                }}
                y[((size_t)oh * OW + ow) * C + c] = {result};
            }}
        }}
    }}
}}

"""

FUNCTIONS = {
    "pool2d": POOL2D.format(s="", t="float", acc="float", zero="0.0f", lowest="-INFINITY",
                            result="average ? acc / (float)count : acc",
                            what="MaxPooling2D / AveragePooling2D (channels last); average over the window's cells inside the input."),
    "global_pool": """/* GlobalAveragePooling / GlobalMaxPooling: n positions of C channels -> C values. */
static void kw_global_pool(const float *x, float *y, size_t n, size_t C, int average) {
    for (size_t c = 0; c < C; ++c) y[c] = average ? 0.0f : x[c];
    for (size_t p = average ? 0 : 1; p < n; ++p)
        for (size_t c = 0; c < C; ++c) y[c] = average ? y[c] + x[p * C + c] : (x[p * C + c] > y[c] ? x[p * C + c] : y[c]);
    if (average)
        for (size_t c = 0; c < C; ++c) y[c] /= (float)n;
}

""",
    "post": """/* The epilogue of a kernel whose next layers were folded into it (kw_post; NULL: none): each value v it writes
 * in channel c becomes v * mul[c] + add[c] (a BatchNormalization; none where mul is NULL), then is clamped to
 * [lo, hi] (a ReLU or ReLU6), computed as the layers' own kernels compute them. c0: the first value's channel. */
typedef struct {
    const float *mul, *add;
    float lo, hi;
} kw_post;

static void kw_finish(float *y, size_t rows, size_t stride, size_t n, const kw_post *p, size_t c0) {
    const float lo = p->lo, hi = p->hi, *KW_RESTRICT mul = p->mul ? p->mul + c0 : NULL,
                *KW_RESTRICT add = p->mul ? p->add + c0 : NULL;
    const size_t blocked = KW_SMALL ? 0 : n - n % 8;
    for (size_t r = 0; r < rows; ++r) {
        float *KW_RESTRICT yr = y + r * stride;
        for (size_t c = 0; c < blocked; c += 8) {  /* fixed-length loops, which compilers vectorise */
            float v[8];
            if (mul)  /* tested outside the loops: a condition inside keeps GCC -O2 from vectorising them */
                KW_NO_UNROLL for (int j = 0; j < 8; ++j) v[j] = yr[c + j] * mul[c + j] + add[c + j];
            else
                KW_NO_UNROLL for (int j = 0; j < 8; ++j) v[j] = yr[c + j];
            KW_NO_UNROLL for (int j = 0; j < 8; ++j) v[j] = v[j] < lo ? lo : v[j];  /* a max, then a min */
            KW_NO_UNROLL for (int j = 0; j < 8; ++j) yr[c + j] = v[j] > hi ? hi : v[j];
        }
        for (size_t c = blocked; c < n; ++c) {
            const float v = mul ? yr[c] * mul[c] + add[c] : yr[c];
            const float low = v < lo ? lo : v;
            yr[c] = low > hi ? hi : low;
        }
    }
}

""",
    "bn_coefficients": """/* A BatchNormalization's per-channel scale (mul[0..C)) and shift (mul[C..2C)), as kw_batch_norm works them out. */
static void kw_bn_coefficients(const float *gamma, const float *beta, const float *mean, const float *var, float eps,
                               size_t C, float *mul) {
    /* three loops, so that only the square roots (a library call where errno is kept) stay one at a time */
    for (size_t k = 0; k < C; ++k) mul[k] = var[k] + eps;
    for (size_t k = 0; k < C; ++k) mul[k] = sqrtf(mul[k]);
    for (size_t k = 0; k < C; ++k) {
        mul[k] = (gamma ? gamma[k] : 1.0f) / mul[k];
        mul[C + k] = (beta ? beta[k] : 0.0f) - mean[k] * mul[k];
    }
}

""",
    "batch_norm": """/* BatchNormalization over the last axis (inference): (x - mean) / sqrt(var + eps) * gamma + beta, as
 * x * a + c with a and c worked out once per channel, 64 channels at a time. */
static void kw_batch_norm(const float *x, float *y, size_t n, size_t C, const float *gamma,
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
