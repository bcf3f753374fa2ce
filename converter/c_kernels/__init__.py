"""The C functions the generated forward pass calls: one small function per layer kind, written once and
shared by every layer of that kind. Plain C99 (no threads, no intrinsics): loops the compiler can vectorise.

Kernels with weights come in two versions from one template: ``_f32`` reads float arrays, ``_i8`` reads
int8 arrays and multiplies each output channel's sum by its scale (``y = scale[c] * sum(x * q) + b``).
"""
from __future__ import annotations

from .integer import CALLS as INTEGER_CALLS
from .integer import FUNCTIONS as INTEGER_FUNCTIONS
from .integer import PANEL_MACRO as PANEL_Q8_MACRO
from .integer import PANEL_WIDTH as PANEL_Q8_WIDTH
from .plain import FUNCTIONS
from .weighted import PANEL, ROW_STEPS_F32, TEMPLATES, WIDEN, WIDENED_OUTPUTS

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
    """``kw_activate``: an activation over ``n`` values in place (softmax over rows of ``last`` values). One loop
    per activation, the choice made once outside it: a loop of one expression the compiler can vectorise."""
    cases = "".join(f"    case {ACTIVATION_CODES[name]}:  /* {name} */\n"
                    f"        for (size_t i = 0; i < n; ++i) {{ const float v = x[i]; x[i] = ({_of(name)}); }}\n"
                    f"        break;\n" for name in names if name != SOFTMAX)
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
        "    (void)a;\n"
        "    switch (kind) {\n"
        + cases
        + "    default: break;\n    }\n}\n\n"
    )


def _of(name: str) -> str:
    return ACTIVATIONS[name]


def relu_function() -> str:
    return (
        "/* The ReLU layer: max_value (<0: none), negative_slope below threshold. */\n"
        "static void kw_relu(float *x, size_t n, float max_value, float slope, float threshold) {\n"
        "    if (slope == 0.0f && threshold == 0.0f) {  /* relu and relu6: one clamp the compiler vectorises */\n"
        "        const float top = max_value >= 0.0f ? max_value : HUGE_VALF;\n"
        "        for (size_t i = 0; i < n; ++i) {\n"
        "            const float low = x[i] < 0.0f ? 0.0f : x[i];  /* a max, then a min */\n"
        "            x[i] = low > top ? top : low;\n"
        "        }\n"
        "        return;\n    }\n"
        "    for (size_t i = 0; i < n; ++i) {\n"
        "        float v = x[i] >= threshold ? x[i] : slope * (x[i] - threshold);\n"
        "        x[i] = (max_value >= 0.0f && v > max_value) ? max_value : v;\n    }\n}\n\n"
    )


def weighted(kind: str, quantized: bool) -> str:
    """The C text of a kernel with weights, reading float or int8 arrays."""
    if quantized:
        fields = dict(s="_i8", w="int8_t", sp=" const float *scale,", sa=" scale,", sa_o=" scale + o,",
                      sp_panel=" float *KW_RESTRICT panel,", sa_panel=" panel,", widen=WIDEN,
                      row_steps="        size_t i = 0;\n",
                      panel_o="kw_widen_full_i8(w + o, panel, in, out), KW_PANEL",
                      panel_full_half="kw_widen_half_i8(w + full, panel, in, out), KW_PANEL / 2",
                      sa_full=" scale + full,", scaled="yr[o] * scale[o]", scaled_yo="yo[o] * scale[o]",
                      scale_sums="        KW_NO_UNROLL for (int j = 0; j < {width}; ++j) {{\n"
                                 + "".join(f"            a{k}[j] *= scale[j];\n" for k in range(4)) + "        }}\n",
                      scaled_y="y[p * OC + o] * scale[o]", scaled_embedding="(float)w[(size_t)id * dim + d] * scale[d]")
    else:
        fields = dict(s="_f32", w="float", sp="", sa="", sa_o="", sa_full="", scaled="yr[o]", scaled_yo="yo[o]",
                      sp_panel="", sa_panel="", widen="", panel_o="w + o, out", panel_full_half="w + full, out",
                      row_steps=ROW_STEPS_F32,
                      scale_sums="",
                      scaled_y="y[p * OC + o]", scaled_embedding="w[(size_t)id * dim + d]")
    panels = {f"panel_{name}": PANEL.format(name=name, width=width, **{**fields, "scale_sums":
                                                                      fields["scale_sums"].format(width=width)})
              for name, width in (("full", "KW_PANEL"), ("half", "KW_PANEL / 2"))} if kind == "dense" else {}
    return TEMPLATES[kind].format(**fields, **panels)


def plain(kind: str) -> str:
    return FUNCTIONS[kind]


def integer(needed: set[str]) -> str:
    """The full-integer int8 kernels needed, in the order they call one another (requantization first)."""
    needed = set(needed) | {called for name in needed for called in INTEGER_CALLS.get(name, ())}
    return "".join(text for name, text in INTEGER_FUNCTIONS.items() if name in needed)
