"""The C generator checks every number of a (crafted) configuration before writing a line (issue 23, point 3).

Hypothesis draws configurations for every supported layer kind with values in and out of range (zero, negative,
huge, floats, strings, lists of the wrong length) and weights shaped as the configuration asks, or not. Each
is either refused (InputInvalid naming the layer and the field) or generated; everything generated is compiled
in one program with AddressSanitizer and UBSan, every buffer allocated exactly as the header says (input, output,
arena, each weight), and run: no finding.
"""
from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from hypothesis import HealthCheck, given, settings, strategies as st

from converter.errors import InputInvalid
from converter.cgen import codegen, graph as graphs
from converter.layers import emit as layers

from conftest import needs  # noqa: E402

pytestmark = needs("gcc")

HOSTILE = st.one_of(st.integers(-3, 6), st.sampled_from([0, -1, 2**31, 2**40, 1.5, "3", None, True, [1], [1, 2, 3],
                                                         [[1, 2], [3]], [-1, 2]]))
SMALL = st.integers(1, 4)


def sample(draw, key_values):
    """A configuration: each field sane most of the time, hostile otherwise."""
    return {key: draw(st.one_of(sane, HOSTILE)) for key, sane in key_values.items()}


def whole(value, default=1):
    """The number a weight's shape would follow, where the configuration holds one."""
    if isinstance(value, list):
        value = value[-1] if value else default
    return value if isinstance(value, int) and not isinstance(value, bool) and 1 <= value <= 8 else default


KINDS = {  # class -> (input rank, fields and their sane values, weight roles -> shape from (config, input shape))
    "Dense": (st.sampled_from([1, 2]), {"units": SMALL, "activation": st.sampled_from(["relu", "tanh", None])},
              {"kernel": lambda c, s: (s[-1], whole(c["units"])), "bias": lambda c, s: (whole(c["units"]),)}),
    "Conv2D": (st.just(3), {"filters": SMALL, "kernel_size": st.sampled_from([1, 2, 3, [2, 1]]),
                            "strides": st.sampled_from([1, 2, [1, 2]]), "dilation_rate": st.sampled_from([1, 2]),
                            "padding": st.sampled_from(["valid", "same"])},
               {"kernel": lambda c, s: (whole(c["kernel_size"]),) * 2 + (s[-1], whole(c["filters"])),
                "bias": lambda c, s: (whole(c["filters"]),)}),
    "Conv1D": (st.just(2), {"filters": SMALL, "kernel_size": st.sampled_from([1, 2, 3]), "strides": SMALL,
                            "padding": st.sampled_from(["valid", "same", "causal"])},
               {"kernel": lambda c, s: (whole(c["kernel_size"]), s[-1], whole(c["filters"])),
                "bias": lambda c, s: (whole(c["filters"]),)}),
    "DepthwiseConv2D": (st.just(3), {"kernel_size": st.sampled_from([1, 2, 3]), "depth_multiplier": SMALL,
                                     "strides": st.sampled_from([1, 2]), "padding": st.sampled_from(["valid", "same"])},
                        {"kernel": lambda c, s: (whole(c["kernel_size"]),) * 2 + (s[-1], whole(c["depth_multiplier"]))}),
    "SeparableConv2D": (st.just(3), {"filters": SMALL, "kernel_size": st.sampled_from([1, 2]), "depth_multiplier": SMALL},
                        {"depthwise_kernel": lambda c, s: (whole(c["kernel_size"]),) * 2 + (s[-1], whole(c["depth_multiplier"])),
                         "pointwise_kernel": lambda c, s: (1, 1, s[-1] * whole(c["depth_multiplier"]), whole(c["filters"]))}),
    "Conv2DTranspose": (st.just(3), {"filters": SMALL, "kernel_size": st.sampled_from([1, 2, 3]),
                                     "strides": st.sampled_from([1, 2]), "padding": st.sampled_from(["valid", "same"])},
                        {"kernel": lambda c, s: (whole(c["kernel_size"]),) * 2 + (whole(c["filters"]), s[-1])}),
    "MaxPooling2D": (st.just(3), {"pool_size": st.sampled_from([1, 2, 3, [2, 1]]), "strides": st.sampled_from([None, 1, 2]),
                                  "padding": st.sampled_from(["valid", "same"])}, {}),
    "AveragePooling1D": (st.just(2), {"pool_size": st.sampled_from([1, 2]), "strides": st.sampled_from([None, 1, 2])}, {}),
    "ZeroPadding2D": (st.just(3), {"padding": st.sampled_from([0, 1, [1, 2], [[0, 1], [2, 0]]])}, {}),
    "Cropping2D": (st.just(3), {"cropping": st.sampled_from([0, 1, [1, 0], [[0, 1], [1, 0]]])}, {}),
    "Cropping1D": (st.just(2), {"cropping": st.sampled_from([0, 1, [1, 0]])}, {}),
    "UpSampling2D": (st.just(3), {"size": st.sampled_from([1, 2, [2, 1]]),
                                  "interpolation": st.sampled_from(["nearest", "bilinear"])}, {}),
    "Resizing": (st.just(3), {"height": SMALL, "width": st.sampled_from([1, 3, 7]),
                              "interpolation": st.sampled_from(["bilinear", "nearest"])}, {}),
    "MultiHeadAttention": (st.just(2), {"num_heads": SMALL, "key_dim": SMALL, "value_dim": st.sampled_from([None, 2]),
                                        "output_shape": st.sampled_from([None, 3, [2]])},
                           {"query/kernel": lambda c, s: (s[-1], whole(c["num_heads"]), whole(c["key_dim"])),
                            "key/kernel": lambda c, s: (s[-1], whole(c["num_heads"]), whole(c["key_dim"])),
                            "value/kernel": lambda c, s: (s[-1], whole(c["num_heads"]),
                                                          whole(c["value_dim"], whole(c["key_dim"]))),
                            "attention_output/kernel": lambda c, s: (whole(c["num_heads"]),
                                                                     whole(c["value_dim"], whole(c["key_dim"])),
                                                                     whole(c["output_shape"], s[-1]))}),
    "Permute": (st.sampled_from([2, 3]), {"dims": st.sampled_from([[2, 1], [1, 2], [3, 1, 2], [2, 3, 1]])}, {}),
    "Reshape": (st.sampled_from([1, 2, 3]), {"target_shape": st.sampled_from([[-1], [2, -1], [4, 2], [-1, 1]])}, {}),
    "RepeatVector": (st.just(1), {"n": SMALL}, {}),
    "BatchNormalization": (st.sampled_from([1, 3]), {"epsilon": st.sampled_from([1e-3, 0.1])},
                           {role: (lambda c, s: (s[-1],)) for role in ("gamma", "beta", "moving_mean", "moving_variance")}),
    "LayerNormalization": (st.sampled_from([1, 2]), {"epsilon": st.sampled_from([1e-3, 1e-5])},
                           {"gamma": lambda c, s: (s[-1],), "beta": lambda c, s: (s[-1],)}),
    "GroupNormalization": (st.sampled_from([1, 3]), {"groups": st.sampled_from([-1, 1, 2, 3]),
                                                    "epsilon": st.sampled_from([1e-3, 1e-5])},
                           {"gamma": lambda c, s: (s[-1],), "beta": lambda c, s: (s[-1],)}),
    "ReLU": (st.just(1), {"max_value": st.sampled_from([None, 6.0]), "negative_slope": st.sampled_from([0.0, 0.1]),
                          "threshold": st.sampled_from([0.0, 0.5])}, {}),
    "LeakyReLU": (st.just(1), {"negative_slope": st.sampled_from([0.2, 0.01])}, {}),
    "ELU": (st.just(1), {"alpha": st.sampled_from([1.0, 0.5])}, {}),
    "Rescaling": (st.just(2), {"scale": st.sampled_from([1 / 255, 2.0]), "offset": st.sampled_from([0.0, -1.0])}, {}),
    "Concatenate": (st.sampled_from([1, 2]), {"axis": st.sampled_from([-1, 1])}, {}),
    "GlobalAveragePooling2D": (st.just(3), {"keepdims": st.booleans()}, {}),
    "Embedding": (st.just(1), {"input_dim": SMALL, "output_dim": SMALL},
                  {"embeddings": lambda c, s: (whole(c["input_dim"]), whole(c["output_dim"]))}),
    "SimpleRNN": (st.just(2), {"units": SMALL, "return_sequences": st.booleans()},
                  {"kernel": lambda c, s: (s[-1], whole(c["units"])),
                   "recurrent_kernel": lambda c, s: (whole(c["units"]), whole(c["units"]))}),
    "LSTM": (st.just(2), {"units": SMALL},
             {"kernel": lambda c, s: (s[-1], 4 * whole(c["units"])),
              "recurrent_kernel": lambda c, s: (whole(c["units"]), 4 * whole(c["units"])),
              "bias": lambda c, s: (4 * whole(c["units"]),)}),
}


@st.composite
def cases(draw):
    """(class name, configuration, one sample's input shape, {role: weight shape}, lead) for one layer; ``lead``
    puts a layer before it (a ZeroPadding2D for a map, else a Rescaling), so that paddings read by convolutions
    (never made) and element-wise layers computing over their input's buffer run too."""
    class_name = draw(st.sampled_from(sorted(KINDS)))
    rank_strategy, fields, roles = KINDS[class_name]
    rank = draw(rank_strategy)
    shape = tuple(draw(st.integers(1, 5)) for _ in range(rank))
    if draw(st.integers(0, 9)) == 0:  # now and then a hostile input shape too
        shape = (*shape[:-1], draw(st.sampled_from([0, -2, 2**31, 3.5])))
    config = {"name": "layer", **sample(draw, fields)}
    weights = {}
    for role, shape_of in roles.items():
        try:
            weights[role] = tuple(shape_of(config, shape))
        except TypeError:
            weights[role] = (1,)
        if draw(st.integers(0, 7)) == 0:
            weights[role] = (*weights[role][:-1], weights[role][-1] + 1)  # a weight that disagrees with its config
    lead = None
    if draw(st.booleans()):
        lead = ({"class": "ZeroPadding2D", "config": {"padding": draw(KINDS["ZeroPadding2D"][1]["padding"])}}
                if rank == 3 else {"class": "Rescaling", "config": {"scale": 1.0, "offset": 0.0}})
    return class_name, config, shape, weights, lead


def program(index: int, case) -> tuple[str, str, dict] | None:
    """(declarations, C text, weight sizes) of one case's forward pass with prefix p<index>, or None if refused."""
    class_name, config, shape, weights, lead = case
    prefix = f"p{index}"
    source = "lead" if lead else "x"
    nodes = [{"name": "x", "class": "InputLayer", "config": {"batch_shape": [None, *shape]}, "inputs": []},
             *([{"name": "lead", **lead, "inputs": [["x", 0]]}] if lead else []),
             {"name": "layer", "class": class_name, "config": config,
              "inputs": [[source, 0]] + ([[source, 0]] if class_name in ("Concatenate", "MultiHeadAttention") else []),
              **({"keywords": {"use_causal_mask": True}} if class_name == "MultiHeadAttention" and index % 2 else {})}]
    graph = graphs.from_json({"inputs": ["x"], "outputs": [["layer", 0]], "nodes": nodes})
    refs = {f"layer/{role}": codegen.WeightRef(f"{prefix}_{role.replace('/', '_')}", None, w, False) for role, w in weights.items()}
    try:
        generated = codegen.generate(graph, refs, prefix)
    except InputInvalid as error:
        assert any(said in str(error) for said in ("layer 'layer'", "layer 'lead'", "input 'x'", "arena")), error
        assert "internal" not in str(error)
        return None
    sizes = {ref.array: layers.size(ref.shape) for ref in refs.values()}
    declarations = "".join(f"static float *{name};\n" for name in sizes)
    return declarations, generated.header + generated.source, sizes


def run_under_sanitizers(programs: list[tuple[int, tuple[str, str, dict]]], tmp_path) -> None:
    text = ["#include <math.h>\n#include <stddef.h>\n#include <stdint.h>\n#include <stdlib.h>\n#include <string.h>\n"]
    calls = []
    for index, (declarations, code, sizes) in programs:
        m, p = f"P{index}", f"p{index}"
        text.append(declarations + code)
        allocations = "".join(f"    {name} = calloc({max(n, 1)}, sizeof(float));\n" for name, n in sizes.items())
        frees = "".join(f"    free({name});\n" for name in sizes)
        calls.append(f"{{\n{allocations}    float *in = calloc({m}_INPUT_SIZE, sizeof(float));\n"
                     f"    float *out = calloc({m}_OUTPUT_SIZE, sizeof(float));\n"
                     f"    void *arena = aligned_alloc(16, ({m}_ARENA_BYTES + 15) / 16 * 16 + 16);\n"
                     f"    for (size_t i = 0; i < {m}_INPUT_SIZE; ++i) in[i] = (float)(i % 3);\n"
                     f"    if ({p}_predict(in, out, arena) != 0) return 1;\n"
                     f"    free(in); free(out); free(arena);\n{frees}}}\n")
    text.append("int main(void) {\n" + "".join(calls) + "    return 0;\n}\n")
    source = tmp_path / "programs.c"
    source.write_text("".join(text))
    binary = tmp_path / "programs"
    subprocess.run(["gcc", "-std=c11", "-O1", "-g", "-fsanitize=address,undefined", "-fno-sanitize-recover=all",
                    str(source), "-o", str(binary), "-lm"], check=True, capture_output=True, timeout=600)
    ran = subprocess.run([str(binary)], capture_output=True, timeout=600,
                         env={"ASAN_OPTIONS": "detect_leaks=0", "UBSAN_OPTIONS": "print_stacktrace=1"})
    assert ran.returncode == 0 and not re.search(rb"runtime error|AddressSanitizer", ran.stderr), \
        ran.stderr.decode(errors="replace")[-3000:]


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture,
                                                                 HealthCheck.too_slow])
@given(st.lists(cases(), min_size=40, max_size=40))
def test_crafted_configurations_are_refused_or_run_in_bounds(tmp_path, drawn):
    generated = [(i, made) for i, case in enumerate(drawn) if (made := program(i, case)) is not None]
    if generated:
        run_under_sanitizers(generated, tmp_path)


@pytest.mark.parametrize("class_name, config, shape, said", [
    ("ZeroPadding2D", {"padding": [[-1, 1], [0, 0]]}, (3, 3, 1), "padding=[[-1, 1], [0, 0]]: whole numbers from 0"),
    ("Cropping2D", {"cropping": [[2, 2], [0, 0]]}, (3, 3, 1), "its output would be (-1, 3, 1)"),
    ("UpSampling2D", {"size": 0}, (3, 3, 1), "size=0: whole numbers from 1"),
    ("MaxPooling2D", {"pool_size": 2, "strides": [0, 1]}, (4, 4, 1), "strides=[0, 1]: whole numbers from 1"),
    ("Permute", {"dims": [1, 1]}, (2, 3), "dims=[1, 1]: an order of the axes 1..2"),
    ("Reshape", {"target_shape": [5, 5]}, (2, 3), "target_shape=[5, 5] holds 25 values, its input 6"),
    ("BatchNormalization", {"epsilon": float("nan")}, (4,), "epsilon=nan: a finite float32 number above 0"),
    ("RepeatVector", {"n": "3"}, (4,), "n='3': whole numbers from 1"),
    ("Dense", {"units": 2**40}, (4,), "units=1099511627776: whole numbers from 1 to 16,777,216"),
    ("UpSampling2D", {"size": [2**12, 2**12]}, (64, 64, 8), "at most 2,147,483,647 bytes"),
])
def test_each_out_of_range_field_is_named_with_its_value(class_name, config, shape, said):
    refs = {"layer/kernel": codegen.WeightRef("k", None, (4, 2), False), "layer/bias": codegen.WeightRef("b", None, (2,), False)}
    for role in ("moving_mean", "moving_variance"):
        refs[f"layer/{role}"] = codegen.WeightRef(role, None, shape[-1:], False)
    nodes = [{"name": "x", "class": "InputLayer", "config": {"batch_shape": [None, *shape]}, "inputs": []},
             {"name": "layer", "class": class_name, "config": config, "inputs": [["x", 0]]}]
    with pytest.raises(InputInvalid) as caught:
        codegen.generate(graphs.from_json({"inputs": ["x"], "outputs": [["layer", 0]], "nodes": nodes}), refs, "p")
    assert f"layer 'layer' ({class_name})" in str(caught.value) and said in str(caught.value), str(caught.value)


def test_a_model_whose_arena_exceeds_a_32_bit_size_t_is_refused_with_the_numbers():
    """Each buffer fits (1 GiB), but two live at once beside the output (a model output too, so Add cannot
    overwrite it): the arena would not."""
    nodes = [{"name": "x", "class": "InputLayer", "config": {"batch_shape": [None, 2**14, 2**14, 1]}, "inputs": []},
             {"name": "a", "class": "ZeroPadding2D", "config": {"padding": 0}, "inputs": [["x", 0]]},
             {"name": "b", "class": "ZeroPadding2D", "config": {"padding": 0}, "inputs": [["a", 0]]},
             {"name": "sum", "class": "Add", "config": {}, "inputs": [["a", 0], ["b", 0]]}]
    with pytest.raises(InputInvalid, match=r"the arena would take 3,221,225,472 bytes, more than 2,147,483,647"):
        codegen.generate(graphs.from_json({"inputs": ["x"], "outputs": [["sum", 0], ["a", 0]], "nodes": nodes}), {}, "p")


def test_the_property_test_compiles_programs_not_only_refusals():
    """The drawn cases are not all refused: the sanitized run above has code to run."""
    from hypothesis import Phase, find

    found = find(st.lists(cases(), min_size=40, max_size=40),
                 lambda drawn: sum(program(i, case) is not None for i, case in enumerate(drawn)) >= 10,
                 settings=settings(max_examples=20, deadline=None, phases=[Phase.generate], database=None))
    assert len(found) == 40


def test_keyword_arguments_of_a_call_reach_the_graph_in_keras_3_and_keras_2_configurations():
    """A call's tensors given by keyword become inputs after the positional ones, named (Keras 2 writes
    MultiHeadAttention's value as one); its other keywords are kept (None and False, the defaults, are not); both
    round-trip through the manifest's JSON, and a crafted one that names no input is refused."""
    tensor = lambda name: {"class_name": "__keras_tensor__", "config": {"keras_history": [name, 0, 0]}}
    keras3 = {"class_name": "Functional", "config": {"name": "m", "input_layers": [["q", 0, 0], ["v", 0, 0]],
              "output_layers": [["att", 0, 0]], "layers": [
                  {"class_name": "InputLayer", "name": "q", "config": {"name": "q", "batch_shape": [None, 4, 6]}},
                  {"class_name": "InputLayer", "name": "v", "config": {"name": "v", "batch_shape": [None, 3, 6]}},
                  {"class_name": "MultiHeadAttention", "name": "att", "config": {"name": "att"}, "inbound_nodes": [
                      {"args": [tensor("q"), tensor("v")],
                       "kwargs": {"key": tensor("v"), "use_causal_mask": True, "training": False, "mask": None}}]}]}}
    keras2 = {"class_name": "Functional", "config": {"name": "m", "input_layers": [["q", 0, 0], ["v", 0, 0]],
              "output_layers": [["att", 0, 0]], "layers": [
                  {"class_name": "InputLayer", "name": "q", "config": {"name": "q", "batch_input_shape": [None, 4, 6]},
                   "inbound_nodes": []},
                  {"class_name": "InputLayer", "name": "v", "config": {"name": "v", "batch_input_shape": [None, 3, 6]},
                   "inbound_nodes": []},
                  {"class_name": "MultiHeadAttention", "name": "att", "config": {"name": "att"},
                   "inbound_nodes": [[["q", 0, 0, {"value": ["v", 0, 0], "use_causal_mask": True}]]]}]}}
    for config, named in ((keras3, {"key": 2}), (keras2, {"value": 1})):
        graph = graphs.from_config(config)
        node = graph.node("att")
        assert node.inputs[:2] == [("q", 0), ("v", 0)] and node.named == named
        assert node.keywords == {"use_causal_mask": True}
        again = graphs.from_json(graphs.to_json(graph)).node("att")
        assert (again.inputs, again.named, again.keywords) == (node.inputs, node.named, node.keywords)
    crafted = graphs.to_json(graphs.from_config(keras2))
    crafted["nodes"][-1]["named"] = {"value": 5}
    with pytest.raises(InputInvalid, match="not one keras-weights writes"):
        graphs.from_json(crafted)
