"""The C kernels with weights, each a template of two versions: ``{s}`` is ``_f32`` (float arrays) or ``_i8``
(int8 arrays, each output channel's sum times its scale); filled in by :func:`converter.c_kernels.weighted`."""

# One register block: 4 rows x {width} outputs, their sums in fixed-length arrays the compiler keeps in registers.
PANEL = """static void kw_dense_{name}{s}(const float *KW_RESTRICT x, float *KW_RESTRICT y, size_t rows, size_t in,
                             size_t out, const float *KW_RESTRICT w, size_t ws,{sp} const float *KW_RESTRICT b,
                             const kw_post *post, size_t c0) {{
    /* with a BatchNormalization folded in, the bias joins its shift once per panel, so each sum takes one
     * multiply-add: (sum + b) * m + s = sum * m + (b * m + s) */
    const float *KW_RESTRICT m = post && post->mul ? post->mul + c0 : NULL;
    float shift[{width}];
    if (m)
        KW_NO_UNROLL for (int j = 0; j < {width}; ++j) shift[j] = KW_MADD(b ? b[j] : 0.0f, m[j], post->add[c0 + j]);
    for (size_t r = 0; r < rows; r += 4) {{
        const float *KW_RESTRICT x0 = x + r * in, *KW_RESTRICT x1 = x0 + in, *KW_RESTRICT x2 = x1 + in,
                    *KW_RESTRICT x3 = x2 + in;
        const float *KW_RESTRICT wi = w;
        float a0[{width}], a1[{width}], a2[{width}], a3[{width}];
        for (int j = 0; j < {width}; ++j) a0[j] = a1[j] = a2[j] = a3[j] = 0.0f;
        for (size_t i = 0; i < in; ++i, wi += ws) {{
            const float v0 = x0[i], v1 = x1[i], v2 = x2[i], v3 = x3[i];
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) a0[j] = KW_MADD(v0, wi[j], a0[j]);
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) a1[j] = KW_MADD(v1, wi[j], a1[j]);
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) a2[j] = KW_MADD(v2, wi[j], a2[j]);
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) a3[j] = KW_MADD(v3, wi[j], a3[j]);
        }}
        float *KW_RESTRICT y0 = y + r * out;
{scale_sums}        if (m)
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) {{
                a0[j] = KW_MADD(a0[j], m[j], shift[j]);
                a1[j] = KW_MADD(a1[j], m[j], shift[j]);
                a2[j] = KW_MADD(a2[j], m[j], shift[j]);
                a3[j] = KW_MADD(a3[j], m[j], shift[j]);
            }}
        else if (b)
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) {{
                a0[j] += b[j];
                a1[j] += b[j];
                a2[j] += b[j];
                a3[j] += b[j];
            }}
        if (post) {{  /* the rest of the epilogue (kw_post): its bounds, each a max or min */
            const float lo = post->lo, hi = post->hi;
            KW_NO_UNROLL for (int j = 0; j < {width}; ++j) {{
                a0[j] = a0[j] < lo ? lo : a0[j];
                a0[j] = a0[j] > hi ? hi : a0[j];
                a1[j] = a1[j] < lo ? lo : a1[j];
                a1[j] = a1[j] > hi ? hi : a1[j];
                a2[j] = a2[j] < lo ? lo : a2[j];
                a2[j] = a2[j] > hi ? hi : a2[j];
                a3[j] = a3[j] < lo ? lo : a3[j];
                a3[j] = a3[j] > hi ? hi : a3[j];
            }}
        }}
        KW_NO_UNROLL for (int j = 0; j < {width}; ++j) {{
            y0[j] = a0[j];
            y0[out + j] = a1[j];
            y0[2 * out + j] = a2[j];
            y0[3 * out + j] = a3[j];
        }}
    }}
}}

"""

# int8 weights: each panel's weights widened to float once per call into the arena (`panel`, KW_PANEL x in floats),
# so the blocks run the float panel's loops. Converting inside them made GCC pick the int8 row's vector width
# (4 floats per instruction, not 16): 1.5x slower at -O3 -march=native and 1.8x at -O2 on the gesture CNN.
WIDENED_OUTPUTS = 16  # the widest KW_PANEL: the arena holds a panel of this many outputs' weights, widened
WIDEN = """#if KW_PANEL > %(widest)d
#error "KW_PANEL is at most %(widest)d: the arena holds panels of %(widest)d outputs' int8 weights widened to float"
#endif
static const float *kw_widen_full_i8(const int8_t *KW_RESTRICT w, float *KW_RESTRICT panel, size_t in, size_t out) {
    for (size_t i = 0; i < in; ++i)  /* a fixed width, as the blocks have: a loop the compiler vectorises */
        KW_NO_UNROLL for (int j = 0; j < KW_PANEL; ++j) panel[i * KW_PANEL + (size_t)j] = (float)w[i * out + (size_t)j];
    return panel;
}

static const float *kw_widen_half_i8(const int8_t *KW_RESTRICT w, float *KW_RESTRICT panel, size_t in, size_t out) {
    for (size_t i = 0; i < in; ++i)
        KW_NO_UNROLL for (int j = 0; j < KW_PANEL / 2; ++j)
            panel[i * (KW_PANEL / 2) + (size_t)j] = (float)w[i * out + (size_t)j];
    return panel;
}

""" % {"widest": WIDENED_OUTPUTS}

# A row without a block (the single row of a last Dense, the rows the blocks leave), float weights: four inputs a
# step, so each sum is loaded and stored once for four multiply-adds (MobileNetV2 -O3n 468 -> 443 us). Kept to one
# input a step for int8 weights, where the four-input form vectorises worse at -O2 (1,660 -> 1,783 us there).
ROW_STEPS_F32 = """        size_t i = 0;
        for (const size_t fours = in - in % 4; i < fours; i += 4) {
            const float x0 = x[r * in + i], x1 = x[r * in + i + 1], x2 = x[r * in + i + 2], x3 = x[r * in + i + 3];
            const float *KW_RESTRICT w0 = w + i * out, *KW_RESTRICT w1 = w0 + out, *KW_RESTRICT w2 = w1 + out,
                        *KW_RESTRICT w3 = w2 + out;
            for (size_t o = 0; o < full; o += KW_PANEL) {
                KW_NO_UNROLL for (int j = 0; j < KW_PANEL; ++j)
                    yr[o + j] = KW_MADD(x3, w3[o + j], KW_MADD(x2, w2[o + j], KW_MADD(x1, w1[o + j],
                                KW_MADD(x0, w0[o + j], yr[o + j]))));
            }
            for (size_t o = full; o < out; ++o)
                yr[o] = KW_MADD(x3, w3[o], KW_MADD(x2, w2[o], KW_MADD(x1, w1[o], KW_MADD(x0, w0[o], yr[o]))));
        }
"""

TEMPLATES = {
    "dense": """/* Dense on rows of `in` values: y[r][o] = b[o] + sum_i x[r][i] * w[i][o] (kernel [in][out]); 1x1 convolutions
 * are Dense over pixels. Register blocks of 4 rows x KW_PANEL outputs (then one of KW_PANEL / 2 for narrow layers
 * and tails): each weight row is loaded once for 4 rows, and the loops over outputs have a fixed length over
 * contiguous memory, which compilers vectorise (GCC at -O2 too); KW_NO_UNROLL keeps GCC -O3 from unrolling them
 * into code it would vectorise across rows instead. */
{panel_full}{panel_half}{widen}static void kw_dense{s}(const float *KW_RESTRICT x, float *KW_RESTRICT y, size_t rows, size_t in, size_t out,
                      const {w} *KW_RESTRICT w,{sp}{sp_panel} const float *KW_RESTRICT b, const kw_post *post) {{
    /* KW_SMALL (-Os): no register blocks, one row at a time, each weight row streamed once: the least code */
    const size_t blocked = KW_SMALL ? 0 : rows - rows % 4, full = KW_SMALL ? 0 : out - out % KW_PANEL,
                 o0 = full + (out - full >= KW_PANEL / 2 ? KW_PANEL / 2 : 0), tail = out - o0;
    for (size_t o = 0; o < (blocked ? full : 0); o += KW_PANEL)  /* (no blocks: the panels have nothing to do) */
        kw_dense_full{s}(x, y + o, blocked, in, out, {panel_o},{sa_o} b ? b + o : NULL, post, o);
    if (blocked && o0 > full)
        kw_dense_half{s}(x, y + full, blocked, in, out, {panel_full_half},{sa_full} b ? b + full : NULL, post, full);
    for (size_t r = blocked; r < rows; ++r) {{  /* the last rows % 4 rows: each weight row streamed once */
        float *KW_RESTRICT yr = y + r * out;
        for (size_t o = 0; o < out; ++o) yr[o] = 0.0f;
{row_steps}        for (; i < in; ++i) {{
            const float xi = x[r * in + i];
            const {w} *KW_RESTRICT wi = w + i * out;
            for (size_t o = 0; o < full; o += KW_PANEL) {{
                KW_NO_UNROLL for (int j = 0; j < KW_PANEL; ++j) yr[o + j] += xi * (float)wi[o + j];
            }}
            for (size_t o = full; o < out; ++o) yr[o] += xi * (float)wi[o];
        }}
        for (size_t o = 0; o < out; ++o) yr[o] = {scaled} + (b ? b[o] : 0.0f);
        if (post) kw_finish(yr, 1, out, out, post, 0);
    }}
    for (size_t r = 0; r < (tail ? blocked : 0); ++r) {{  /* the last outputs the blocks leave, of the other rows */
        float *KW_RESTRICT yr = y + r * out;
        for (size_t o = o0; o < out; ++o) yr[o] = 0.0f;
        for (size_t i = 0; i < in; ++i) {{
            const float xi = x[r * in + i];
            const {w} *KW_RESTRICT wi = w + i * out;
            for (size_t o = o0; o < out; ++o) yr[o] += xi * (float)wi[o];
        }}
        for (size_t o = o0; o < out; ++o) yr[o] = {scaled} + (b ? b[o] : 0.0f);
        if (post) kw_finish(yr + o0, 1, out, out - o0, post, o0);
    }}
}}

""",
    "conv2d": """/* Conv2D, channels last: x [H][W][C] -> y [OH][OW][OC], kernel [KH][KW][C][OC] (read as [KH * KW * C][OC]);
 * strides s, dilation d, padding pt (top) and pl (left). Conv1D is the case H = KH = 1. P output pixels at a
 * time (a multiple of 4): their input patches are copied into `patch` (P x KH * KW * C floats, zeros where the
 * window leaves the input) and multiplied by the kernel as a Dense layer. */
static void kw_conv2d{s}(const float *KW_RESTRICT x, float *KW_RESTRICT y, int H, int W, int C, int OH, int OW, int OC,
                       int KH, int KW, int sh, int sw, int dh, int dw, int pt, int pl, const {w} *KW_RESTRICT w,{sp}{sp_panel}
                       const float *KW_RESTRICT b, float *KW_RESTRICT patch, size_t P, const kw_post *post) {{
    const size_t K = (size_t)KH * KW * C, pixels = (size_t)OH * OW, span = (size_t)KW * C;
    for (size_t first = 0; first < pixels; first += P) {{
        const size_t count = pixels - first < P ? pixels - first : P;
        for (size_t n = 0; n < count; ++n) {{
            const int oh = (int)((first + n) / (size_t)OW), ow = (int)((first + n) % (size_t)OW);
            const int iw0 = ow * sw - pl;
            float *KW_RESTRICT row = patch + n * K;
            for (int kh = 0; kh < KH; ++kh) {{
                const int ih = oh * sh - pt + kh * dh;
                float *KW_RESTRICT to = row + (size_t)kh * span;
                if (ih >= 0 && ih < H && dw == 1 && iw0 >= 0 && iw0 + KW <= W) {{  /* the window's row inside: one copy */
                    const float *KW_RESTRICT from = x + ((size_t)ih * W + iw0) * C;
                    for (size_t k = 0; k < span; ++k) to[k] = from[k];
                    continue;
                }}
                for (int kw = 0; kw < KW; ++kw) {{
                    const int iw = iw0 + kw * dw;
                    if (ih < 0 || ih >= H || iw < 0 || iw >= W)
                        for (int c = 0; c < C; ++c) to[(size_t)kw * C + c] = 0.0f;
                    else
                        for (int c = 0; c < C; ++c) to[(size_t)kw * C + c] = x[((size_t)ih * W + iw) * C + c];
                }}
            }}
        }}
        kw_dense{s}(patch, y + first * OC, count, K, (size_t)OC, w,{sa}{sa_panel} b, post);
    }}
}}

""",
    "depthwise2d": """/* DepthwiseConv2D: output channel c * M + m sees input channel c only; kernel [KH][KW][C][M]. */
static void kw_depthwise2d{s}(const float *KW_RESTRICT x, float *KW_RESTRICT y, int H, int W, int C, int M, int OH, int OW,
                            int KH, int KW, int sh, int sw, int dh, int dw, int pt, int pl, const {w} *KW_RESTRICT w,{sp}
                            const float *KW_RESTRICT b, const kw_post *post) {{
    const int OC = C * M, three = M == 1 && KH == 3 && KW == 3 && dh == 1 && dw == 1;
    for (int oh = 0; oh < OH; ++oh) {{
        const int inside = three && oh * sh - pt >= 0 && oh * sh - pt + 3 <= H;  /* the row's 3x3 windows, vertically */
        for (int ow = 0; ow < OW; ++ow) {{
            float *KW_RESTRICT yo = y + ((size_t)oh * OW + ow) * OC;
            const int ih0 = oh * sh - pt, iw0 = ow * sw - pl;
            if (!KW_SMALL && inside && iw0 >= 0 && iw0 + 3 <= W) {{  /* a 3x3 window inside: nine taps in registers */
                const float *KW_RESTRICT r0 = x + ((size_t)ih0 * W + iw0) * C;
                const float *KW_RESTRICT r1 = r0 + (size_t)W * C, *KW_RESTRICT r2 = r1 + (size_t)W * C;
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
                    const float *KW_RESTRICT xi = x + ((size_t)ih * W + iw) * C;
                    const {w} *KW_RESTRICT wk = w + ((size_t)kh * KW + kw) * OC;
                    if (M == 1)  /* the common case: one output channel per input channel, a contiguous loop */
                        for (int c = 0; c < C; ++c) yo[c] += xi[c] * (float)wk[c];
                    else
                        for (int c = 0; c < C; ++c)
                            for (int m = 0; m < M; ++m) yo[c * M + m] += xi[c] * (float)wk[c * M + m];
                }}
            }}
            for (int o = 0; o < OC; ++o) yo[o] = {scaled_yo} + (b ? b[o] : 0.0f);
        }}
        if (post) kw_finish(y + (size_t)oh * OW * OC, (size_t)OW, (size_t)OC, (size_t)OC, post, 0);  /* the row done */
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
