"""The generated forward pass (export -f c --c-inference), compiled with gcc and run on seeded random inputs
against Keras's model.predict: max abs difference at most 1e-4 x (1 + max |y|)."""
import json
import subprocess

import numpy as np
import pytest

import converter
from conftest import ALL_MODEL_FILES, FIXTURES, ROOT, SEED_KERAS, need

CORPUS = ROOT.parent / "shared" / "corpus"
CFLAGS = ["-std=c99", "-O2", "-Wall", "-Wextra", "-Werror", "-pedantic"]
SAMPLES = 5

MAIN = """#include <stdio.h>
#include <stdlib.h>
#include "{header}"
/* Reads samples of {prefix_upper}_INPUT_SIZE floats from stdin, writes the outputs to stdout. */
int main(void) {{
    static float input[{prefix_upper}_INPUT_SIZE], output[{prefix_upper}_OUTPUT_SIZE];
    char *raw = malloc({prefix_upper}_ARENA_BYTES + 16);
    void *arena = (void *)(((uintptr_t)raw + 15) & ~(uintptr_t)15);  /* 16-byte aligned, as required */
    while (fread(input, sizeof input, 1, stdin) == 1) {{
        if ({prefix}_predict(input, output, arena) != 0) return 1;
        fwrite(output, sizeof output, 1, stdout);
    }}
    free(raw);
    return 0;
}}
"""

# Fixture zoo models the generated code runs; the others name what it does not support yet.
RUNS = ["seed_mlp", "conv_bn", "nested", "no_bias", "preprocessing", "shared", "shared_nested", "embedding", "recurrent",
        "attention"]
REFUSED = {"half": "weights of dtype float16",
           "special_values": "weights of dtype float64"}


def model_path(name):
    return SEED_KERAS if name == "seed_mlp" else FIXTURES / "zoo" / f"{name}.keras"


def sample_inputs(model, seed=0, shapes=None) -> list[np.ndarray]:
    """Seeded inputs for each model input: token ids for integer inputs, normal floats otherwise."""
    rng = np.random.default_rng(seed)
    arrays = []
    for index, tensor in enumerate(model.inputs):
        shape = (SAMPLES, *(shapes[index] if shapes else tensor.shape[1:]))
        if "int" in str(tensor.dtype) or _feeds_embedding(model, tensor):
            arrays.append(rng.integers(0, 10, shape).astype(np.float32))
        else:
            arrays.append(rng.normal(0, 1, shape).astype(np.float32))
    return arrays


def _feeds_embedding(model, tensor) -> bool:
    return any(type(layer).__name__ == "Embedding" and layer.input is tensor for layer in model.layers)


def run_c(folder, manifest, inputs: list[np.ndarray], tmp_path, cc="gcc", flags=()) -> np.ndarray:
    prefix = manifest["options"]["c"]["prefix"]
    header = next(f["path"] for f in manifest["files"] if f["path"].endswith(".h"))
    sources = [str(folder / f["path"]) for f in manifest["files"] if f["path"].endswith(".c")]
    main_c = tmp_path / "main.c"
    main_c.write_text(MAIN.format(header=header, prefix=prefix, prefix_upper=prefix.upper()))
    binary = tmp_path / "predict"
    built = subprocess.run([cc, *CFLAGS, *flags, "-I", str(folder), str(main_c), *sources, "-o", str(binary), "-lm"],
                           capture_output=True, text=True)
    assert built.returncode == 0, built.stderr[-3000:]
    flat = np.concatenate([x.reshape(SAMPLES, -1) for x in inputs], axis=1).astype("<f4")
    result = subprocess.run([str(binary)], input=flat.tobytes(), capture_output=True, check=True)
    return np.frombuffer(result.stdout, "<f4").reshape(SAMPLES, -1)


def keras_outputs(model, inputs) -> np.ndarray:
    outputs = model.predict(inputs if len(inputs) > 1 else inputs[0], verbose=0)
    outputs = outputs if isinstance(outputs, list) else [outputs]
    return np.concatenate([np.asarray(y).reshape(SAMPLES, -1) for y in outputs], axis=1)


def assert_close(got: np.ndarray, expected: np.ndarray) -> float:
    error = float(np.max(np.abs(got.astype(np.float64) - expected)))
    assert error <= 1e-4 * (1 + float(np.max(np.abs(expected)))), f"max abs difference {error}"
    return error


@pytest.mark.parametrize("name", RUNS)
def test_the_generated_forward_pass_equals_keras(name, load_model, tmp_path):
    model = load_model(model_path(name))
    manifest = converter.export(model_path(name), tmp_path / "out", formats=["c"], options={"c": {"inference": True}})
    inputs = sample_inputs(model)
    assert_close(run_c(tmp_path / "out", manifest, inputs, tmp_path), keras_outputs(model, inputs))
    assert manifest["inference"]["input_size"] == sum(x[0].size for x in inputs)
    assert converter.verify(tmp_path / "out").ok  # verify regenerates the code from the manifest


@pytest.mark.parametrize("name", RUNS)
def test_with_int8_weights_it_equals_keras_holding_the_dequantized_weights(name, load_model, keras_module, tmp_path):
    """For int8 the reference is the same Keras model holding q * scale: the test measures the C code."""
    path = model_path(name)
    manifest = converter.export(path, tmp_path / "out", formats=["c", "npz"], quantize="int8",
                                options={"c": {"inference": True}})
    model = keras_module.saving.load_model(path, compile=False)
    dequantized = converter.read(tmp_path / "out" / f"{path.stem}.npz", dequantize=True)
    _assign_in_model_order(model, list(dequantized.values()))  # the export's names are in model order
    inputs = sample_inputs(model)
    assert_close(run_c(tmp_path / "out", manifest, inputs, tmp_path), keras_outputs(model, inputs))


def _assign_in_model_order(model, values):
    seen, position = set(), 0
    for layer in model.layers:
        for variable in layer.weights:
            if id(variable) in seen:
                continue
            seen.add(id(variable))
            variable.assign(values[position].astype(np.dtype(variable.dtype)))
            position += 1
    assert position == len(values)


@pytest.mark.parametrize("name, why", sorted(REFUSED.items()))
def test_unsupported_layers_are_named_and_nothing_is_written(name, why, tmp_path, capsys):
    from converter.cli import main

    code = main(["export", str(model_path(name)), "-o", str(tmp_path / "out"), "-f", "c", "--c-inference"])
    err = capsys.readouterr().err
    assert code == 4 and "--c-inference cannot generate code for this model" in err and why in err, err
    assert not (tmp_path / "out").exists()
    assert main(["export", str(model_path(name)), "-o", str(tmp_path / "plain"), "-f", "c"]) == 0  # arrays alone


@pytest.mark.parametrize("path", ALL_MODEL_FILES, ids=lambda p: p.name)
def test_every_fixture_the_forward_pass_accepts_passes_verify_predict(path, tmp_path, capsys):
    """No accepted model may compute other numbers than Keras: every fixture is either refused naming its
    layer, or its export passes verify --predict."""
    from converter.cli import main

    code = main(["export", str(path), "-o", str(tmp_path / "out"), "-f", "c", "--c-inference"])
    err = capsys.readouterr().err
    if code == 4:
        assert path.stem in REFUSED and REFUSED[path.stem] in err, err
        return
    assert code == 0 and path.stem not in REFUSED, err
    if path.stem == "hostile":  # Keras cannot run its names as scopes: test_hostile_names_... computes its reference
        return
    assert main(["verify", str(tmp_path / "out"), "--predict", str(path)]) == 0, capsys.readouterr().out


def _graph(keras, name):
    """Graphs of nested models: called twice at any depth, nested three levels, with two outputs."""
    L = keras.layers
    if name == "deep":  # Functional > Sequential > Functional, as vendor audio models nest
        i = keras.Input((6,))
        inner = keras.Model(i, L.Dense(4, activation="tanh", name="conv")(i), name="model_2")
        middle = keras.Sequential([keras.Input((6,)), L.Dense(6, name="pre"), inner], name="sequential_2")
        x = keras.Input((6,), name="x")
        return keras.Model(x, L.Dense(2, name="head")(middle(x)), name=name)
    if name == "two_outputs":  # a nested model of two outputs, called twice, its outputs used crosswise
        i = keras.Input((4,))
        h = L.Dense(3, name="h")(i)
        inner = keras.Model(i, [L.Dense(2, name="o1")(h), L.Dense(5, name="o2")(h)], name="two")
        x = keras.Input((4,), name="x")
        p, q = inner(x)
        r, s = inner(L.Dense(4, name="pre")(x))
        return keras.Model(x, [L.Concatenate(name="cat")([q, s]), L.Add(name="add")([p, r])], name=name)
    # shared at every depth: a model calling a Sequential twice, itself called twice
    cell = keras.Sequential([keras.Input((4,)), L.Dense(4, activation="relu", name="d")], name="cell")
    i = keras.Input((4,))
    middle = keras.Model(i, cell(cell(i)), name="middle")
    x = keras.Input((4,), name="x")
    return keras.Model(x, middle(middle(x)), name=name)


@pytest.mark.parametrize("name", ["deep", "two_outputs", "shared_twice_at_every_depth"])
def test_nested_models_compute_each_call_on_its_own_activations(name, keras_module, tmp_path):
    model = _graph(keras_module, name)
    rng = np.random.default_rng(4)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    assert_runs_like_keras(model, None, tmp_path, seed=2)


def test_layers_of_a_model_in_a_model_in_a_keras_2_file_are_found_under_slashed_names(tmp_path):
    """A Functional in a Sequential in a Functional, saved by tf.keras 2 with slashes in layer names (Keras 3
    cannot load it; Keras 2 stored the inner weights as layer1/conv/kernel:0): the direct reader puts the models
    between back as for any nested layer, the forward pass finds each layer's weights and computes what tf_keras
    computed, verify regenerates the same program, and --layout torch maps the inner convolutions."""
    stored = np.load(FIXTURES / "legacy" / "legacy_nested.io.npz")  # tf_keras's outputs, made with the fixture
    manifest = converter.export(FIXTURES / "legacy" / "legacy_nested.h5", tmp_path / "out", formats=["c"],
                                options={"c": {"inference": True}})
    names = [t["name"] for t in manifest["tensors"]]
    assert names[:3] == ["sequential_2/model_2/layer1/conv/kernel", "sequential_2/model_2/layer1/conv/bias",
                         "sequential_2/model_2/layer2/depthwise_conv/depthwise_kernel"]
    assert converter.verify(tmp_path / "out").ok
    assert_close(run_c(tmp_path / "out", manifest, [stored["x"]], tmp_path), stored["y"].reshape(SAMPLES, -1))
    torch = converter.export(FIXTURES / "legacy" / "legacy_nested.h5", tmp_path / "torch", formats=["npz"],
                             layout="torch")
    assert torch["tensors"][0]["name"] == "sequential_2.model_2.layer1.conv.weight"
    assert torch["tensors"][0]["shape"] == [4, 3, 3, 3]


def _operations(keras):
    """Keras 3 operation nodes as saved graphs hold them: slices (GetItem), the reductions, ops.multiply; after an
    LSTM, as an autoencoder for an ESP32 takes its last step (x[:, -1])."""
    ops = keras.ops
    x = keras.Input((6, 4), name="x")
    sequence = keras.layers.LSTM(5, return_sequences=True, name="lstm")(x)
    last = sequence[:, -1]                                          # an integer index drops the axis
    strided = keras.layers.Flatten(name="f1")(sequence[:, 1:6:2, ::-1])  # steps, negative too
    picked = sequence[:, 2]
    peak = ops.max(sequence, axis=1)
    low = ops.min(sequence, axis=-2, keepdims=True)
    total = ops.sum(sequence, axis=[1, 2])
    average = ops.mean(sequence, axis=1)
    mixed = ops.add(ops.multiply(ops.multiply(last, peak), average), 0.25)  # a number too
    joined = keras.layers.Concatenate(name="join")([mixed, picked, strided, keras.layers.Flatten(name="f2")(low),
                                                    keras.layers.Reshape((1,), name="r")(total)])
    return keras.Model(x, keras.layers.Dense(3, name="out")(joined), name="operations")


def test_keras_3_operation_nodes_compute_as_keras(keras_module, tmp_path):
    model = _operations(keras_module)
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    assert_runs_like_keras(model, None, tmp_path, seed=3)


def test_operation_nodes_the_code_does_not_compute_are_refused_by_name(keras_module, tmp_path, capsys):
    keras = keras_module
    x = keras.Input((6, 4), name="x")
    hidden = keras.layers.Dense(4, name="d")(x)
    model = keras.Model(x, [hidden[0], keras.ops.max(hidden, axis=[1, 2])[:, None], keras.ops.argmax(hidden, axis=1),
                            keras.ops.subtract(hidden, 1.0)],
                        name="refused_operations")
    model.save(tmp_path / "refused.keras")
    from converter.cli import main

    code = main(["export", str(tmp_path / "refused.keras"), "-o", str(tmp_path / "out"), "-f", "c",
                     "--c-inference"])
    err = capsys.readouterr().err
    assert code == 4 and not (tmp_path / "out").exists()
    assert "(GetItem): index [0]: the first axis (the samples) must be taken whole" in err, err
    assert "(GetItem): index None: integers and slices only" in err, err
    assert "(Argmax): not supported" in err and "(Subtract): Subtract of one tensor and 1.0" in err, err


def test_a_crafted_reduction_axis_is_refused_by_name_for_both_readers(keras_module, tmp_path, capsys):
    """An empty axis list in a saved Max (a crafted file): refused by name by --c-inference, and the direct
    reader's export, which works the output shapes out from the configuration, still writes (output shape null)."""
    from conftest import with_edited_config
    from converter.cli import main

    keras = keras_module
    x = keras.Input((6, 4), name="x")
    keras.Model(x, keras.ops.max(keras.layers.Dense(3, name="d")(x), axis=1), name="reduce").save(tmp_path / "r.keras")

    def empty_axis(config):
        next(layer for layer in config["config"]["layers"] if layer["class_name"] == "Max")["config"]["axis"] = []

    crafted = with_edited_config(tmp_path / "r.keras", tmp_path / "crafted.keras", empty_axis)
    assert main(["export", str(crafted), "-o", str(tmp_path / "out"), "-f", "c", "--c-inference", "--reader", "h5"]) == 4
    assert "(Max): axis=[]" in capsys.readouterr().err and not (tmp_path / "out").exists()
    manifest = converter.export(crafted, tmp_path / "plain", formats=["npz"], reader="h5")
    assert manifest["model"]["inputs"] == [[None, 6, 4]] and manifest["model"]["outputs"] is None


def test_a_layer_called_with_inputs_the_code_would_not_read_is_refused(keras_module, tmp_path, capsys):
    """An LSTM given its initial state: the code computes from zeros, so it is refused, not run wrong."""
    from converter.cli import main

    L = keras_module.layers
    x, h = keras_module.Input((5, 3), name="x"), keras_module.Input((4,), name="h")
    y = L.LSTM(4, name="lstm")(x, initial_state=[h, h])
    keras_module.Model([x, h], y).save(tmp_path / "state.keras")
    assert main(["export", str(tmp_path / "state.keras"), "-o", str(tmp_path / "out"), "-f", "c", "--c-inference"]) == 4
    err = capsys.readouterr().err
    assert "layer 'lstm' (LSTM): called with 3 inputs" in err and not (tmp_path / "out").exists(), err


def _mobilenet_blocks(keras):
    """MobileNet's blocks: 1x1 expand, BatchNorm, ReLU6, an asymmetric ZeroPadding2D read by a strided 'valid'
    depthwise convolution, 1x1 project, a residual Add; a padding before a separable and a plain convolution."""
    L = keras.layers
    x = inputs = keras.Input((10, 10, 4))
    y = L.ReLU(6.0, name="expand_relu")(L.BatchNormalization(name="expand_bn")(L.Conv2D(12, 1, name="expand")(x)))
    y = L.ZeroPadding2D(((0, 1), (1, 0)), name="pad")(y)
    y = L.DepthwiseConv2D(3, strides=2, name="dw")(y)
    y = L.ReLU(6.0, name="dw_relu")(L.BatchNormalization(name="dw_bn")(y))
    y = L.Conv2D(4, 1, name="project")(y)
    z = L.Conv2D(4, 3, strides=2, padding="same", name="skip")(x)
    y = L.Add(name="add")([y, z])
    y = L.SeparableConv2D(6, 3, name="sep")(L.ZeroPadding2D(1, name="pad2")(y))
    y = L.Conv2D(3, 2, strides=2, name="conv")(L.ZeroPadding2D(((1, 2), (0, 1)), name="pad3")(y))
    return keras.Model(inputs, y, name="mobilenet_blocks")


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_paddings_read_by_convolutions_are_never_made_and_compute_as_keras(quantize, keras_module, tmp_path):
    model = _mobilenet_blocks(keras_module)
    rng = np.random.default_rng(5)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) if "variance" in v.path else
                       rng.normal(0, 0.5, w.shape).astype(w.dtype) for w, v in zip(model.get_weights(), model.weights)])
    assert_runs_like_keras(model, quantize, tmp_path, seed=3)
    source = (tmp_path / "out" / "mobilenet_blocks.c").read_text()
    assert "kw_zero_pad2d(" not in source and "kw_copy(" in source  # the final output copy only


@pytest.mark.parametrize("quantize", [None, "int8"])
@pytest.mark.parametrize("flags", [["-DKW_PANEL=4"], ["-DKW_PANEL=16"], ["-O3", "-march=native"], ["-Os"]],
                         ids=["panel4", "panel16", "O3-native", "Os-small"])
def test_every_register_block_width_computes_as_keras(flags, quantize, keras_module, tmp_path):
    """KW_PANEL is 16 with AVX (-march=native here) and 8 without: each width, and the tails of outputs and rows
    it leaves (12 and 6 outputs, 5x5 pixels), give Keras's numbers; so do -Os's plain loops (KW_SMALL). With int8
    weights each panel is first widened to float in the arena, at each width too."""
    model = _mobilenet_blocks(keras_module)
    rng = np.random.default_rng(7)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) if "variance" in v.path else
                       rng.normal(0, 0.5, w.shape).astype(w.dtype) for w, v in zip(model.get_weights(), model.weights)])
    assert_runs_like_keras(model, quantize, tmp_path, seed=8, flags=flags)


def test_a_register_block_wider_than_the_arena_plans_is_refused_by_the_compiler(tmp_path):
    """The arena holds int8 panels widened for at most 16 outputs: KW_PANEL=32 stops the build with that reason
    rather than writing past the temporary."""
    manifest = converter.export(FIXTURES / "zoo" / "conv_bn.keras", tmp_path / "out", formats=["c"], quantize="int8",
                                options={"c": {"inference": True}})
    source = tmp_path / "out" / next(f["path"] for f in manifest["files"] if f["path"].endswith(".c"))
    built = subprocess.run(["gcc", "-std=c99", "-DKW_PANEL=32", "-c", str(source), "-o", str(tmp_path / "m.o")],
                           capture_output=True, text=True)
    assert built.returncode != 0 and "KW_PANEL is at most 16" in built.stderr


def test_element_wise_layers_compute_in_place_and_paddings_take_no_buffer(keras_module, tmp_path):
    """conv with its own relu (16x16x8) -> BatchNorm -> ReLU -> ZeroPadding2D -> depthwise: two buffers of 2,048
    floats, where BatchNorm, ReLU and the padding each took one more (2,048, 2,048, 2,592). (A BatchNormalization
    after a relu cannot be folded into the convolution: it is computed in place.)"""
    L = keras_module.layers
    x = keras_module.Input((16, 16, 4))
    y = L.ReLU()(L.BatchNormalization()(L.Conv2D(8, 1, activation="relu")(x)))
    keras_module.Model(x, L.DepthwiseConv2D(3)(L.ZeroPadding2D(1)(y))).save(tmp_path / "chain.keras")
    manifest = converter.export(tmp_path / "chain.keras", tmp_path / "out", formats=["c"],
                                options={"c": {"inference": True}})
    assert manifest["inference"]["arena_bytes"] == 2 * 2048 * 4


def _folding_cases(keras):
    """Element-wise layers after a convolution or Dense, each case a branch of one model: folded into the kernel's
    epilogue where they may be, computed on their own where they may not."""
    L = keras.layers
    x = keras.Input((9, 9, 6))
    outputs = [
        L.ReLU(6.0, name="a_relu6")(L.BatchNormalization(name="a_bn")(L.Conv2D(12, 3, padding="same", use_bias=False,
                                                                              name="a_conv")(x))),
        L.Activation("relu", name="b_relu")(L.BatchNormalization(name="b_bn", center=False)(
            L.DepthwiseConv2D(3, strides=2, name="b_depthwise")(x))),
        L.BatchNormalization(name="c_bn")(L.SeparableConv2D(10, 3, activation="relu", name="c_separable")(x)),
        L.BatchNormalization(name="d_bn")(L.Conv2D(5, 1, activation="tanh", name="d_conv")(x)),
        L.ReLU(negative_slope=0.1, name="e_leaky")(L.Conv2D(7, 1, name="e_conv")(x)),
    ]
    shared = L.Conv2D(4, 1, name="f_conv")(x)
    outputs += [L.BatchNormalization(name="f_bn")(shared), L.ReLU(name="f_relu")(shared)]
    flat = L.GlobalAveragePooling2D(name="g_pool")(x)
    outputs.append(L.ReLU(name="g_relu")(L.BatchNormalization(name="g_bn")(L.Dense(9, name="g_dense")(flat))))
    return keras.Model(x, outputs, name="folding")


@pytest.mark.parametrize("flags", [(), ("-Os",)], ids=["O2", "Os-small"])
@pytest.mark.parametrize("quantize", [None, "int8"])
def test_batch_norms_and_relus_fold_into_the_kernel_before_them_where_keras_order_allows(quantize, flags,
                                                                                          keras_module, tmp_path):
    """Folded: a BatchNormalization then a ReLU/ReLU6/relu after a convolution, depthwise, separable or Dense
    (gamma or beta switched off too), and a layer's own relu. Not folded: a BatchNormalization after an
    activation (Keras applies the activation first), a leaky ReLU, and a value another layer reads too."""
    model = _folding_cases(keras_module)
    rng = np.random.default_rng(11)
    model.set_weights([rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) if "variance" in v.path else
                       rng.normal(0, 0.5, w.shape).astype(w.dtype) for w, v in zip(model.get_weights(), model.weights)])
    assert_runs_like_keras(model, quantize, tmp_path, seed=4, flags=flags)
    source = (tmp_path / "out" / "folding.c").read_text()
    for folded in ("a_conv (Conv2D), with a_bn, a_relu6 folded in", "b_depthwise (DepthwiseConv2D), with b_bn, b_relu",
                   "g_dense (Dense), with g_bn, g_relu folded in"):
        assert folded in source
    for alone in ("c_bn (BatchNormalization)", "d_bn (BatchNormalization)", "e_leaky (ReLU)", "f_bn (Batch",
                  "f_relu (ReLU)"):
        assert f"/* {alone}" in source, alone
    assert source.count(" folded in: ") == 3


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_resizing_and_bilinear_upsampling_compute_as_keras(quantize, keras_module, tmp_path):
    """Resizing up and down by factors that are not whole (bilinear and nearest, half-pixel centres clamped at the
    edges), a bilinear UpSampling2D, then a convolution reading the result."""
    L = keras_module.layers
    x = keras_module.Input((7, 9, 3))
    outputs = [L.Conv2D(4, 3, name="conv")(L.Resizing(12, 5, name="bilinear")(x)),
               L.Resizing(4, 13, interpolation="nearest", name="nearest")(x),
               L.Resizing(3, 2, name="down")(x),
               L.UpSampling2D((2, 3), interpolation="bilinear", name="upsampling")(x)]
    assert_runs_like_keras(keras_module.Model(x, outputs, name="resizing"), quantize, tmp_path, seed=6)


def test_resizing_options_the_code_does_not_compute_are_refused_by_name(keras_module, tmp_path):
    L = keras_module.layers
    x = keras_module.Input((8, 8, 1))
    outputs = [L.Resizing(4, 6, crop_to_aspect_ratio=True, name="crop")(x),
               L.Resizing(5, 5, interpolation="bicubic", name="bicubic")(x)]
    keras_module.Model(x, outputs).save(tmp_path / "resize.keras")
    with pytest.raises(converter.InputInvalid) as raised:
        converter.export(tmp_path / "resize.keras", tmp_path / "out", formats=["c"], options={"c": {"inference": True}})
    assert "layer 'bicubic' (Resizing): interpolation='bicubic' (bilinear or nearest)" in str(raised.value)
    assert "layer 'crop' (Resizing): crop_to_aspect_ratio=True" in str(raised.value)


def _transformer(keras):
    """Self-attention with a residual Add and LayerNormalization, causal self-attention without biases,
    cross-attention on another input with a key of its own width, value_dim and output_shape, a feed-forward head
    and a softmax: the blocks of the small transformers run on microcontrollers."""
    L = keras.layers
    x, context, key = keras.Input((6, 8)), keras.Input((5, 8)), keras.Input((5, 3))
    h = L.LayerNormalization(name="norm")(L.Add(name="residual")([x, L.MultiHeadAttention(2, 4, name="self")(x, x)]))
    causal = L.MultiHeadAttention(3, 2, use_bias=False, name="causal")(h, h, use_causal_mask=True)
    cross = L.MultiHeadAttention(2, 3, value_dim=5, output_shape=7, name="cross")(h, context, key=key)
    head = L.Dense(4, activation="softmax", name="head")(L.Dense(16, activation="relu", name="ff")(causal))
    return keras.Model([x, context, key], [head, cross], name="transformer")


@pytest.mark.parametrize("quantize", [None, "int8"])
def test_multi_head_attention_computes_as_keras(quantize, keras_module, tmp_path):
    model = _transformer(keras_module)
    rng = np.random.default_rng(12)
    model.set_weights([rng.normal(0, 0.5, w.shape).astype(w.dtype) for w in model.get_weights()])
    assert_runs_like_keras(model, quantize, tmp_path, seed=9)
    source = (tmp_path / "out" / "transformer.c").read_text()
    assert source.count("_kw_attention((") == 3 and ", 1, (A" in source  # the causal one says so


def test_attention_called_with_a_mask_or_returning_its_scores_is_refused_by_name(keras_module, tmp_path):
    L = keras_module.layers
    x, mask = keras_module.Input((4, 6)), keras_module.Input((4, 4))
    masked = L.MultiHeadAttention(2, 3, name="masked")(x, x, attention_mask=mask)
    scored, _ = L.MultiHeadAttention(2, 3, name="scored")(x, x, return_attention_scores=True)
    keras_module.Model([x, mask], [masked, scored]).save(tmp_path / "att.keras")
    with pytest.raises(converter.InputInvalid) as raised:
        converter.export(tmp_path / "att.keras", tmp_path / "out", formats=["c"], options={"c": {"inference": True}})
    assert "layer 'masked' (MultiHeadAttention): called with 3 inputs, of which the generated code would not read " \
           "input 3" in str(raised.value)
    assert "layer 'scored' (MultiHeadAttention): called with return_attention_scores=True" in str(raised.value)


def test_a_value_read_later_is_not_overwritten_in_place(keras_module, tmp_path):
    """A ReLU whose input another layer reads afterwards must leave it intact (and a model output too)."""
    L = keras_module.layers
    x = keras_module.Input((6,), name="x")
    h = L.Dense(6, name="h")(x)
    model = keras_module.Model(x, [L.Add(name="add")([L.ReLU(name="relu")(h), h]), L.ReLU(name="relu2")(x), h])
    rng = np.random.default_rng(6)
    model.set_weights([rng.normal(0, 1, w.shape).astype(w.dtype) for w in model.get_weights()])
    assert_runs_like_keras(model, None, tmp_path, seed=4)


def test_the_code_compiles_as_strict_c_and_the_header_as_cpp(tmp_path):
    converter.export(FIXTURES / "zoo" / "conv_bn.keras", tmp_path, formats=["c"], options={"c": {"inference": True}})
    subprocess.run(["gcc", *CFLAGS, "-c", str(tmp_path / "conv_bn.c"), "-o", str(tmp_path / "x.o")], check=True)
    (tmp_path / "use.cpp").write_text('#include "conv_bn.h"\nint main() { return CONV_BN_INPUT_SIZE > 0 ? 0 : 1; }\n')
    subprocess.run(["g++", "-std=c++11", "-Wall", "-Wextra", "-Werror", "-pedantic", "-I", str(tmp_path),
                    str(tmp_path / "use.cpp"), "-c", "-o", str(tmp_path / "use.o")], check=True)


def test_header_only_inference_runs_too(load_model, tmp_path):
    model = load_model(FIXTURES / "zoo" / "conv_bn.keras")
    manifest = converter.export(FIXTURES / "zoo" / "conv_bn.keras", tmp_path / "out", formats=["c"],
                                options={"c": {"inference": True, "header_only": True}})
    inputs = sample_inputs(model)
    assert_close(run_c(tmp_path / "out", manifest, inputs, tmp_path), keras_outputs(model, inputs))


def test_the_arena_reuses_dead_buffers(tmp_path):
    manifest = converter.export(SEED_KERAS, tmp_path, formats=["c"], options={"c": {"inference": True}})
    # dense 20 floats, dense_1 10 floats (20 still read), dense_2 1 float where dense's 20 were: 20 + 10 -> 32 floats
    assert manifest["inference"]["arena_bytes"] == 4 * 32
    header = (tmp_path / "seed_mlp.h").read_text()
    assert "#define SEED_MLP_ARENA_BYTES 128" in header and "#define SEED_MLP_INPUT_SIZE 4" in header


def test_hostile_names_stay_in_comments_and_the_code_runs(load_model, keras_module, tmp_path):
    """Layer names with spaces, quotes, newlines and */ (Keras itself cannot call this model: its names are no
    TensorFlow scope names), so the reference is each Dense layer applied by Keras's own ops in turn."""
    path = FIXTURES / "zoo" / "hostile.keras"
    model = load_model(path)
    manifest = converter.export(path, tmp_path / "out", formats=["c"], options={"c": {"inference": True}})
    inputs = sample_inputs(model)
    x = inputs[0].astype(np.float64)
    for layer in model.layers:
        kernel, bias = layer.get_weights()
        x = np.asarray(keras_module.activations.get(layer.get_config()["activation"])(x @ kernel + bias))
    assert_close(run_c(tmp_path / "out", manifest, inputs, tmp_path), x)


def _build(keras, name):
    """Small models that together use every supported layer and option the fixture zoo does not."""
    L = keras.layers
    if name == "conv2d_options":
        x = inputs = keras.Input((9, 10, 3))
        x = L.Conv2D(4, 3, strides=2, padding="same", activation="relu6", name="same_s2")(x)
        x = L.ZeroPadding2D(((1, 0), (2, 1)), name="pad")(x)
        x = L.Conv2D(5, (2, 3), dilation_rate=(1, 2), padding="same", activation="elu", name="dilated")(x)
        x = L.DepthwiseConv2D(3, depth_multiplier=2, padding="same", activation="swish", name="dw")(x)
        x = L.SeparableConv2D(4, 3, strides=2, padding="same", activation="gelu", name="sep")(x)
        x = L.Conv2DTranspose(3, 3, strides=2, padding="same", activation="tanh", name="up_same")(x)
        x = L.Conv2DTranspose(2, 2, strides=2, padding="valid", activation="sigmoid", name="up_valid")(x)
        x = L.UpSampling2D((2, 1), name="ups")(x)
        x = L.AveragePooling2D(3, strides=2, padding="same", name="avg_same")(x)
        x = L.MaxPooling2D(2, padding="valid", name="max_valid")(x)
        x = L.BatchNormalization(name="bn")(x)
        outputs = L.GlobalMaxPooling2D(name="gmax")(x)
    elif name == "conv1d_options":
        x = inputs = keras.Input((17, 3))
        x = L.Conv1D(4, 3, padding="causal", dilation_rate=2, activation="softplus", name="causal")(x)
        x = L.Conv1D(4, 4, strides=3, padding="same", activation="softsign", name="same_s3")(x)
        x = L.MaxPooling1D(2, strides=1, padding="same", name="max1")(x)
        x = L.AveragePooling1D(2, name="avg1")(x)
        x = L.LayerNormalization(name="ln")(x)
        x = L.Permute((2, 1), name="perm")(x)
        x = L.Flatten(name="flat")(x)
        x = L.RepeatVector(2, name="rep")(x)
        x = L.Reshape((-1, 4), name="resh")(x)
        x = L.GlobalAveragePooling1D(name="gavg")(x)
        outputs = L.Dense(3, activation="softmax", name="probs")(x)
    else:  # branches, merges and activation layers, two inputs and two outputs
        a, b = keras.Input((6,), name="a"), keras.Input((6,), name="b")
        left = L.Dense(6, activation="selu", name="left")(a)
        right = L.Dense(6, activation="hard_sigmoid", name="right")(b)
        added = L.Add(name="add")([left, right, a])
        subtracted = L.Subtract(name="sub")([left, right])
        multiplied = L.Multiply(name="mul")([added, subtracted])
        x = L.Concatenate(name="cat")([multiplied, L.LeakyReLU(0.1, name="leaky")(a), L.ELU(0.5, name="elu")(b)])
        x = L.ReLU(max_value=2.0, negative_slope=0.05, threshold=0.1, name="relu")(x)
        x = L.Activation("exponential", name="exp")(L.Dense(4, name="small")(x))
        time_series = L.Reshape((3, 6), name="as_sequence")(L.Concatenate(name="cat2")([a, b, left]))
        dense_3d = L.Dense(2, activation="leaky_relu", name="dense_3d")(time_series)
        outputs = [L.Softmax(name="soft")(x), L.Flatten(name="flat3")(dense_3d)]
        inputs = [a, b]
    model = keras.Model(inputs, outputs, name=name)
    rng = np.random.default_rng(3)
    model.set_weights([rng.normal(0, 0.3, w.shape).astype(w.dtype) if "variance" not in v.path else
                       rng.uniform(0.5, 1.5, w.shape).astype(w.dtype) for w, v in zip(model.get_weights(), model.weights)])
    return model


@pytest.mark.parametrize("name", ["conv2d_options", "conv1d_options", "graph_options"])
@pytest.mark.parametrize("quantize", [None, "int8"])
def test_every_supported_layer_option_equals_keras(name, quantize, keras_module, tmp_path):
    assert_runs_like_keras(_build(keras_module, name), quantize, tmp_path, seed=1)


def assert_runs_like_keras(model, quantize, tmp_path, seed, flags=()) -> None:
    """Save, export with --c-inference (and --quantize), run the C code and compare with model.predict; for int8
    the model first holds the export's dequantized weights."""
    model.save(tmp_path / f"{model.name}.keras")
    manifest = converter.export(tmp_path / f"{model.name}.keras", tmp_path / "out", formats=["c", "npz"],
                                quantize=quantize, options={"c": {"inference": True}})
    if quantize:
        dequantized = converter.read(tmp_path / "out" / f"{model.name}.npz", dequantize=True)
        _assign_in_model_order(model, list(dequantized.values()))
    inputs = sample_inputs(model, seed=seed)
    assert_close(run_c(tmp_path / "out", manifest, inputs, tmp_path, flags=flags), keras_outputs(model, inputs))


def _build_recurrent(keras, name):
    L = keras.layers
    x = inputs = keras.Input((7, 3))
    if name == "lstm_gru":
        x = L.LSTM(5, return_sequences=True, name="lstm")(x)
        x = L.GRU(4, return_sequences=True, go_backwards=True, name="gru_back")(x)
        x = L.GRU(3, return_sequences=True, reset_after=False, recurrent_activation="hard_sigmoid", name="gru_v1")(x)
        x = L.SimpleRNN(4, return_sequences=True, activation="relu", name="srnn")(x)
        x = L.LSTM(3, go_backwards=True, name="lstm_last")(x)
    else:
        x = L.TimeDistributed(L.Dense(4, activation="relu"), name="td")(x)
        x = L.Bidirectional(L.LSTM(3, return_sequences=True), name="bi_seq")(x)
        x = L.Bidirectional(L.GRU(2, return_sequences=True), merge_mode="ave", name="bi_ave")(x)
        x = L.Cropping1D((1, 2), name="crop")(x)
        x = L.Bidirectional(L.SimpleRNN(3), merge_mode="sum", name="bi_last")(x)
    model = keras.Model(inputs, x, name=name)
    rng = np.random.default_rng(5)
    model.set_weights([rng.normal(0, 0.4, w.shape).astype(w.dtype) for w in model.get_weights()])
    return model


@pytest.mark.parametrize("name", ["lstm_gru", "bidirectional"])
@pytest.mark.parametrize("quantize", [None, "int8"])
def test_recurrent_layers_equal_keras(name, quantize, keras_module, tmp_path):
    assert_runs_like_keras(_build_recurrent(keras_module, name), quantize, tmp_path, seed=2)


CORPUS_FILES = sorted(p for p in CORPUS.glob("*/*") if p.suffix in (".h5", ".keras"))


@pytest.mark.skipif(not CORPUS_FILES, reason="../shared/corpus is not present")
@pytest.mark.parametrize("path", CORPUS_FILES, ids=lambda p: f"{p.parent.name}/{p.name}")
def test_corpus_models_run_equal_to_keras_or_name_what_is_unsupported(path, keras_module, tmp_path):
    """Every real model Keras loads either runs in C equal to model.predict, float32 and int8, or the export
    names each layer or option it does not support (and writes nothing)."""
    try:
        model = keras_module.saving.load_model(path, compile=False, safe_mode=True)
    except Exception as error:
        pytest.skip(f"Keras cannot load it: {type(error).__name__}")
    unknown = [list(t.shape[1:]) for t in model.inputs]
    shapes = ",".join("x".join(str(d or 8) for d in shape) for shape in unknown) if any(
        None in s for s in unknown) else ""
    options = {"c": {"inference": True, **({"input_shape": shapes} if shapes else {})}}
    try:
        manifest = converter.export(path, tmp_path / "out", formats=["c", "npz"], options=options)
    except converter.InputInvalid as error:
        assert "--c-inference cannot generate code for this model: layer '" in str(error), error
        assert not (tmp_path / "out").exists()
        return
    fixed = [tuple(int(d) for d in s.split("x")) for s in shapes.split(",")] if shapes else None
    inputs = sample_inputs(model, shapes=fixed)
    assert_close(run_c(tmp_path / "out", manifest, inputs, tmp_path), keras_outputs(model, inputs))
    quantized = converter.export(path, tmp_path / "int8", formats=["c", "npz"], quantize="int8", options=options)
    _assign_in_model_order(model, list(converter.read(tmp_path / "int8" / f"{path.stem}.npz", dequantize=True).values()))
    assert_close(run_c(tmp_path / "int8", quantized, inputs, tmp_path), keras_outputs(model, inputs))


def test_trace_print_shows_each_layers_output_as_keras_computes_it(load_model, keras_module, tmp_path):
    """-D<PREFIX>_TRACE_PRINT prints every layer's output: each line equals that layer's output in Keras."""
    path = FIXTURES / "zoo" / "conv_bn.keras"
    model = load_model(path)
    manifest = converter.export(path, tmp_path / "out", formats=["c"], options={"c": {"inference": True}})
    sample = sample_inputs(model)[0][:1]
    main_c = tmp_path / "main.c"
    main_c.write_text('#include <stdio.h>\n#include "conv_bn.h"\nint main(void) {\n'
                      '    static float input[CONV_BN_INPUT_SIZE], output[CONV_BN_OUTPUT_SIZE], arena[4096];\n'
                      '    if (fread(input, sizeof input, 1, stdin) != 1) return 2;\n'
                      '    return conv_bn_predict(input, output, arena);\n}\n')
    subprocess.run(["gcc", *CFLAGS, "-DCONV_BN_TRACE_PRINT", "-I", str(tmp_path / "out"), str(main_c),
                    str(tmp_path / "out" / "conv_bn.c"), "-o", str(tmp_path / "trace"), "-lm"], check=True)
    lines = subprocess.run([str(tmp_path / "trace")], input=sample.astype("<f4").tobytes(), capture_output=True,
                           check=True).stderr.decode().splitlines()
    traced = {line.split()[0]: np.array(line.split()[1:], np.float64) for line in lines}
    computed = [layer for layer in model.layers if layer.name in traced]
    assert [line.split()[0] for line in lines] == [layer.name for layer in computed] and len(computed) >= 3
    # the BatchNormalization and ReLU are folded into the convolution: one line, named for the ReLU it ends with
    assert "with bn, relu folded in" in (tmp_path / "out" / "conv_bn.c").read_text() and "conv" not in traced
    for layer in computed:
        expected = np.asarray(keras_module.Model(model.inputs, layer.output)(sample)).reshape(-1)
        assert_close(traced[layer.name][None, :], expected[None, :])
    assert manifest["inference"]["output_size"] == 2


def test_verify_predict_reruns_the_comparison_and_finds_another_models_weights(keras_module, tmp_path, capsys):
    from converter.cli import main

    path = FIXTURES / "zoo" / "conv_bn.keras"
    converter.export(path, tmp_path / "out", formats=["c"], quantize="int8", options={"c": {"inference": True}})
    assert main(["verify", str(tmp_path / "out"), "--predict", str(path)]) == 0
    assert "predict      8 samples, max abs difference" in capsys.readouterr().out
    other = keras_module.saving.load_model(path, compile=False)
    other.get_layer("head").bias.assign(other.get_layer("head").bias + 0.5)  # same layers, another weight
    other.save(tmp_path / "other.keras")
    assert main(["verify", str(tmp_path / "out"), "--predict", str(tmp_path / "other.keras")]) == 7
    out = capsys.readouterr().out
    assert "the C forward pass differs from model.predict by" in out and "CONV_BN_TRACE_PRINT" in out, out


@pytest.mark.parametrize("cc, cflags, has_predict", [("arm-none-eabi-gcc", ["-mcpu=cortex-m4", "-mthumb", "-Os"], True),
                                                     ("avr-gcc", ["-mmcu=atmega328p", "-Os"], False)], ids=["arm", "avr"])
def test_cross_compilers_build_the_forward_pass_except_on_avr(cc, cflags, has_predict, tmp_path):
    """Cortex-M reads const arrays in flash as memory: the forward pass is there. AVR's PROGMEM needs pgm_read_*:
    the arrays compile and verify, the forward pass is left out."""
    need(cc, cc.replace("gcc", "objcopy"))
    converter.export(SEED_KERAS, tmp_path, formats=["c"], options={"c": {"inference": True}})
    assert converter.verify(tmp_path, compile=True, cc=cc, cflags=cflags).ok
    subprocess.run([cc, "-std=c99", *cflags, "-Wall", "-Wextra", "-Werror", "-c", str(tmp_path / "seed_mlp.c"), "-o",
                    str(tmp_path / "m.o")], check=True)
    nm = cc.replace("gcc", "nm")
    symbols = subprocess.run([nm, str(tmp_path / "m.o")], capture_output=True, text=True, check=True).stdout
    assert ("seed_mlp_predict" in symbols) is has_predict and "seed_mlp_dense_kernel" in symbols


def test_the_export_summary_gives_the_forward_pass_and_its_arena(tmp_path, capsys):
    from converter.cli import main

    assert main(["export", str(SEED_KERAS), "-o", str(tmp_path), "-f", "c", "--c-inference"]) == 0
    line = capsys.readouterr().out.splitlines()[-1]
    assert line.startswith("forward pass: seed_mlp_predict, 4 floats in, 1 out, arena 128 bytes"), line


def test_verify_predict_without_a_keras_reference_is_a_clear_error(tmp_path, capsys):
    """Keras cannot call the hostile model (its layer names are no TensorFlow scope names): exit 4, said plainly."""
    from converter.cli import main

    path = FIXTURES / "zoo" / "hostile.keras"
    converter.export(path, tmp_path, formats=["c"], options={"c": {"inference": True}})
    assert main(["verify", str(tmp_path), "--predict", str(path)]) == 4
    err = capsys.readouterr().err
    assert "Keras cannot run hostile.keras, so --predict has no reference" in err and "\x1b[" not in err, err


def test_an_unknown_sequence_length_is_given_with_c_input_shape_once_per_input(keras_module, tmp_path, capsys):
    from converter.cli import main

    keras = keras_module
    a, b = keras.Input((None, 2), name="a"), keras.Input((None, 3), name="b")
    joined = keras.layers.Concatenate(name="cat")([keras.layers.GRU(2, name="ga")(a), keras.layers.LSTM(2, name="lb")(b)])
    model = keras.Model([a, b], keras.layers.Dense(1, name="out")(joined))
    model.save(tmp_path / "seq.keras")
    assert main(["export", str(tmp_path / "seq.keras"), "-o", str(tmp_path / "x"), "-f", "c", "--c-inference"]) == 4
    assert ("input 'a' takes samples of shape (None, 2), dimensions the model leaves unknown: give them with "
            "--c-input-shape 50x2") in capsys.readouterr().err
    assert main(["export", str(tmp_path / "seq.keras"), "-o", str(tmp_path / "x"), "-f", "c", "--c-inference",
                 "--c-input-shape", "50x4", "--c-input-shape", "4x3"]) == 4
    assert "input 'a' takes samples of shape (None, 2), not (50, 4) as --c-input-shape says" in capsys.readouterr().err
    assert main(["export", str(tmp_path / "seq.keras"), "-o", str(tmp_path / "out"), "-f", "c", "--c-inference",
                 "--c-input-shape", "6x2", "--c-input-shape", "4x3"]) == 0
    manifest = json.loads((tmp_path / "out" / "manifest.json").read_text())
    assert manifest["options"]["c"]["input_shape"] == "6x2,4x3" and manifest["inference"]["input_size"] == 12 + 12
    assert main(["verify", str(tmp_path / "out"), "--predict", str(tmp_path / "seq.keras")]) == 0
    capsys.readouterr()


def test_verify_compile_links_the_forward_pass_with_the_math_library(tmp_path):
    """expf and tanhf live in libm: the host build of verify --compile links it."""
    converter.export(FIXTURES / "zoo" / "recurrent.keras", tmp_path, formats=["c"], options={"c": {"inference": True}})
    report = converter.verify(tmp_path, compile=True)
    assert report.ok and {f.compiled_with for f in report.files} == {"cc"}, report


def test_a_configuration_that_cannot_be_followed_is_a_clear_error():
    from converter.cgen import graph

    broken = {"class_name": "Functional", "config": {"layers": [{"class_name": "Dense", "config": {"name": "d"},
                                                                 "inbound_nodes": [[["nowhere", 0, 0, {}]]]}],
                                                     "input_layers": [], "output_layers": ["d", 0, 0]}}
    with pytest.raises(converter.InputInvalid, match="cannot follow the model's graph in its configuration"):
        graph.from_config(broken)


def test_inference_with_another_layout_is_a_usage_error_before_any_work(tmp_path):
    with pytest.raises(converter.UsageError, match="--c-inference runs the arrays in Keras's layout, not --layout torch"):
        converter.export(SEED_KERAS, tmp_path / "out", formats=["c"], layout="torch", options={"c": {"inference": True}})
    assert not (tmp_path / "out").exists()


def test_weights_that_disagree_with_the_configuration_are_refused_not_read_out_of_bounds(tmp_path):
    """A crafted file: its config says Dense(units=50), its kernel holds (10, 1). The generated loops would read
    beyond the array; the export refuses, naming the layer and both shapes."""
    from conftest import with_edited_config

    crafted = with_edited_config(SEED_KERAS, tmp_path / "crafted.keras",
                                 lambda config: config["config"]["layers"][-1]["config"].update(units=50))
    with pytest.raises(converter.InputInvalid, match=r"layer 'dense_2' \(Dense\): its weight 'kernel' has shape "
                                                     r"\[10, 1\], its configuration needs \[10, 50\]"):
        converter.export(crafted, tmp_path / "out", formats=["c"], reader="h5", options={"c": {"inference": True}})
    assert not (tmp_path / "out").exists()


def test_a_configuration_nested_deeper_than_any_model_is_a_clear_error():
    from converter.cgen import graph

    layer = {"class_name": "Dense", "config": {"name": "d", "units": 1}}
    for depth in range(5000):  # Sequential inside Sequential, far beyond Python's recursion limit
        layer = {"class_name": "Sequential", "config": {"name": f"s{depth}", "layers": [layer]}}
    top = {"class_name": "Sequential", "config": {"name": "top", "layers": [
        {"class_name": "InputLayer", "config": {"batch_shape": [None, 1], "name": "x"}}, layer]}}
    with pytest.raises(converter.InputInvalid, match="cannot follow the model's graph"):
        graph.from_config(top)


def test_verify_predict_says_when_the_outputs_do_not_depend_on_the_inputs(keras_module, tmp_path, capsys):
    """A difference of 0 on outputs that are one constant proves little: said plainly, and the spread is in --json;
    inputs are drawn wider until the outputs vary where they can (a ReLU that is dead for unit-scale inputs)."""
    from converter.cli import main

    keras = keras_module
    x = keras.Input((3,), name="x")
    constant = keras.Model(x, keras.layers.Dense(2, kernel_initializer="zeros", bias_initializer="ones", name="d")(x))
    constant.save(tmp_path / "constant.keras")
    y = keras.layers.Dense(2, kernel_initializer="ones", bias_initializer=keras.initializers.Constant(-20.0),
                           activation="relu", name="late")(x)  # zero unless the inputs sum above 20
    keras.Model(x, y).save(tmp_path / "late.keras")
    for name in ("constant", "late"):
        converter.export(tmp_path / f"{name}.keras", tmp_path / name, formats=["c"], options={"c": {"inference": True}})
        assert main(["verify", str(tmp_path / name), "--predict", str(tmp_path / f"{name}.keras"), "--json"]) == 0
        report = json.loads(capsys.readouterr().out)
        check = next(f for f in report["files"] if f["format"] == "predict")
        if name == "constant":
            assert check["output_spread"] == 0 and "do not depend on the inputs" in check["detail"]
        else:
            assert check["output_spread"] > 0 and "outputs spread" in check["detail"]
