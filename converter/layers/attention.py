"""Attention: MultiHeadAttention holds no weights of its own, only four EinsumDense sub-layers (query, key, value,
attention_output).

The C forward pass computes it over sequences (inputs [T][features], batch excluded) as Keras does: the three
projections (Dense over positions, their kernels (features, heads, size) read as (features, heads * size)), per head
softmax(q k^T / sqrt(key_dim)) over the key positions (only those up to the query's with use_causal_mask), those
weights times v, and the output projection. Self- and cross-attention, a separate key, output_shape, use_bias=False;
an attention_mask, returned scores, a gate or a sliding window are refused by name.
"""
from __future__ import annotations

import math

from .emit import Call, Shape, Unsupported, c_float, epilogue, shown, whole, widened_panel
from .spec import Spec

C_FUNCTION = """/* MultiHeadAttention's core: for each head h and query position t, the softmax over key positions s (with
 * causal, s <= t only) of (q[t][h] * scale) . k[s][h], then those weights times v[s][h]. q [T][heads][kd],
 * k [S][heads][kd], v [S][heads][vd] -> o [T][heads][vd]; `row` holds S floats. */
static void kw_attention(const float *q, const float *k, const float *v, float *o, size_t T, size_t S, size_t heads,
                         size_t kd, size_t vd, float scale, int causal, float *row) {
    for (size_t t = 0; t < T; ++t) {
        const size_t n = causal && t + 1 < S ? t + 1 : S;
        for (size_t h = 0; h < heads; ++h) {
            const float *qt = q + (t * heads + h) * kd;
            float *ot = o + (t * heads + h) * vd, top = -HUGE_VALF, sum = 0.0f;
            for (size_t s = 0; s < n; ++s) {
                const float *ks = k + (s * heads + h) * kd;
                float dot = 0.0f;
                for (size_t d = 0; d < kd; ++d) dot += (qt[d] * scale) * ks[d];
                row[s] = dot;
                top = dot > top ? dot : top;
            }
            for (size_t s = 0; s < n; ++s) {
                row[s] = expf(row[s] - top);
                sum += row[s];
            }
            for (size_t e = 0; e < vd; ++e) ot[e] = 0.0f;
            for (size_t s = 0; s < n; ++s) {
                const float weight = row[s] / sum, *vs = v + (s * heads + h) * vd;
                for (size_t e = 0; e < vd; ++e) ot[e] += weight * vs[e];
            }
        }
    }
}

"""


def _projection(call: Call, part: str, source: str, target: str, rows: int, width: int, heads: int, per_head: int,
                output: bool = False) -> str:
    """A kw_dense call for one of the four EinsumDense sub-layers, its kernel's shape checked: query/key/value
    kernels are (width, heads, per_head), read as (width, heads * per_head); attention_output's (heads, per_head,
    width), read as (heads * per_head, width), the only one that takes the layer's epilogue."""
    kernel = call.weight(f"{part}/kernel", shape=(heads, per_head, width) if output else (width, heads, per_head))
    inputs, columns = (heads * per_head, width) if output else (width, heads * per_head)
    bias = call.weight(f"{part}/bias", required=False, shape=(columns,) if output else (heads, per_head))
    suffix = "_i8" if kernel.scale else "_f32"
    scale = f", {kernel.scale}{widened_panel(call, True, rows, inputs)}" if kernel.scale else ""
    call.kernels.add("dense" + suffix)
    return (f"kw_dense{suffix}({source}, {target}, {rows}, {inputs}, {columns}, {kernel.array}{scale}, "
            f"{bias.array if bias else 'NULL'}, {epilogue(call) if output else 'NULL'});")


def _refuse_options(call: Call) -> None:
    config, keywords = call.config, call.node.keywords
    if config.get("use_gate"):
        raise Unsupported("use_gate=True")
    if config.get("sliding_window") is not None:
        raise Unsupported(f"sliding_window={shown(config['sliding_window'])}")
    if keywords.get("return_attention_scores"):
        raise Unsupported("called with return_attention_scores=True")
    axes = config.get("attention_axes")
    if axes not in (None, 1, [1], (1,)):
        raise Unsupported(f"attention_axes={shown(axes)} (attention over the sequence axis only)")


def _output_width(call: Call, query_width: int) -> int:
    """output_shape: None (the query's features), one number, or a list of one."""
    shape = call.config.get("output_shape")
    if shape is None:
        return query_width
    if isinstance(shape, (list, tuple)) and len(shape) != 1:
        raise Unsupported(f"output_shape={shown(shape)} (one axis)")
    return whole("output_shape", shape[0] if isinstance(shape, (list, tuple)) else shape, 1)


def attention_c(call: Call) -> Shape:
    _refuse_options(call)
    named = call.node.named
    value_at = named.get("value", 1)  # Keras 3 passes it second; Keras 2 by keyword
    key_at = named.get("key", value_at)
    if len(call.inputs) <= max(value_at, key_at) or any(len(call.inputs[i]) != 2 for i in (0, value_at, key_at)):
        raise Unsupported("inputs other than a query and a value (and key) of shape (positions, features)")
    (T, query_width), (S, value_width), (key_length, key_width) = (call.inputs[i] for i in (0, value_at, key_at))
    if key_length != S:
        raise Unsupported(f"a key of {key_length} positions for a value of {S}")
    heads, key_dim = call.integer("num_heads"), call.integer("key_dim")
    value_dim = call.integer("value_dim") if call.config.get("value_dim") is not None else key_dim
    out = _output_width(call, query_width)
    first = len(call.temporaries)
    call.temporaries += [T * heads * key_dim, S * heads * key_dim, S * heads * value_dim, T * heads * value_dim, S]
    q, k, v, o, row = (f"T{first + i}" for i in range(5))
    call.emit(_projection(call, "query", call.source(0), q, T, query_width, heads, key_dim))
    call.emit(_projection(call, "key", call.source(key_at), k, S, key_width, heads, key_dim))
    call.emit(_projection(call, "value", call.source(value_at), v, S, value_width, heads, value_dim))
    causal = 1 if call.node.keywords.get("use_causal_mask") else 0
    call.emit(f"kw_attention({q}, {k}, {v}, {o}, {T}, {S}, {heads}, {key_dim}, {value_dim}, "
              f"{c_float(1.0 / math.sqrt(float(key_dim)))}, {causal}, {row});", "attention")
    call.emit(_projection(call, "attention_output", o, call.output, T, out, heads, value_dim, output=True))
    return T, out


SPECS = (Spec("MultiHeadAttention", children=("query_dense", "key_dense", "value_dense", "output_dense"),
              child_class="EinsumDense",
              child_names={"query_dense": "query", "key_dense": "key", "value_dense": "value",
                           "output_dense": "attention_output"},
              c=attention_c, c_functions={"attention": C_FUNCTION}),)
