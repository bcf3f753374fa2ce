"""Recurrent layers (SimpleRNN, LSTM, GRU and their cells, ConvLSTM, CuDNN's), Bidirectional and TimeDistributed:
their weights (held by the cell), the C forward pass of SimpleRNN, LSTM and GRU, and torch's nn.RNN/LSTM/GRU."""
from __future__ import annotations

from typing import Any

import numpy as np

from .. import c_kernels as kernels
from ..transforms import Step
from .emit import Call, Shape, Unsupported, finish_epilogue, size, whole, widened_panel
from .spec import Spec, find
from .to_torch import Site, Unmappable, permute


def _find(call: Call, role: str, under: str = "", required: bool = True, shape: tuple[int, ...] | None = None):
    """The weight whose path below the layer starts with ``under`` and ends with ``role``."""
    found = [path for path in call.weights if path.startswith(under) and path.rsplit("/", 1)[-1] == role]
    if len(found) > 1:
        raise Unsupported(f"several weights '{role}' under '{under}'")
    return call.weight(found[0] if found else f"{under}{role}", required, shape)


def _code(call: Call, name: Any) -> int:
    if not isinstance(name, str) or name not in kernels.ACTIVATIONS:
        raise Unsupported(f"activation {name!r}")
    call.kernels.add("activate:" + name)
    return kernels.ACTIVATION_CODES[name]


def _recurrent(call: Call, class_name: str, config: dict, under: str, source: str, target: str,
               backwards: bool, sequences: bool, restore_order: bool) -> int:
    """Emit one recurrent layer over the input sequence; returns its units."""
    for option in ("return_state", "stateful"):
        if config.get(option):
            raise Unsupported(f"{option}=True")
    spec = find(class_name)
    if not spec.gates or spec.layer:
        raise Unsupported(f"a {class_name} inside")
    T, I = call.inputs[0]
    U, gates = whole("units", config.get("units"), 1), spec.gates
    reset_after = class_name == "GRU" and config.get("reset_after", True)
    kernel = _find(call, "kernel", under, shape=(I, gates * U))
    recurrent = _find(call, "recurrent_kernel", under, shape=(U, gates * U))
    bias = _find(call, "bias", under, required=False, shape=(2, gates * U) if reset_after else (gates * U,))
    act = _code(call, config.get("activation", "tanh"))
    rec = _code(call, config.get("recurrent_activation", "sigmoid")) if class_name != "SimpleRNN" else 0
    first = len(call.temporaries)
    g, gh, state = (f"T{first}", f"T{first + 1}", f"T{first + 2}")
    call.temporaries += [gates * U, gates * U, 3 * U]  # state: h, c (LSTM) or r * h (GRU without reset_after)

    def dense(ref, x, y, width, bias_text):
        suffix = "_i8" if ref.scale else "_f32"
        scale = f", {ref.scale}{widened_panel(call, True, 1, width)}" if ref.scale else ""
        call.kernels.add("dense" + suffix)
        return f"kw_dense{suffix}({x}, {y}, 1, {width}, {gates * U}, {ref.array}{scale}, {bias_text}, NULL);"

    input_bias = bias.array if bias else "NULL"
    recurrent_bias = f"{bias.array} + {gates * U}" if reset_after and bias else "NULL"
    step = "(T - 1 - t)".replace("T", str(T)) if backwards else "t"
    position = step if restore_order else "t"
    lines = [f"for (size_t i = 0; i < {3 * U}; ++i) {state}[i] = 0.0f;",
             f"for (size_t t = 0; t < {T}; ++t) {{",
             "    " + dense(kernel, f"{source} + {step} * {I}", g, I, input_bias),
             "    " + dense(recurrent, state, gh, U, recurrent_bias)]
    if class_name == "LSTM":
        lines.append(f"    kw_lstm_step({g}, {gh}, {state}, {state} + {U}, {U}, {rec}, {act});")
        call.kernels.add("lstm_step")
    elif class_name == "SimpleRNN":
        lines.append(f"    kw_simple_rnn_step({g}, {gh}, {state}, {U}, {act});")
        call.kernels.add("simple_rnn_step")
    elif reset_after:
        lines.append(f"    kw_gru_step({g}, {gh}, {state}, {U}, {rec}, {act});")
        call.kernels.add("gru_step")
    else:
        lines += [f"    kw_gru_v1_gates({g}, {gh}, {state}, {state} + {U}, {U}, {rec});",
                  "    " + dense(recurrent, f"{state} + {U}", gh, U, "NULL"),
                  f"    kw_gru_v1_update({g}, {gh}, {state}, {U}, {act});"]
        call.kernels.add("gru_v1_gates")
    if sequences:
        lines.append(f"    kw_copy({state}, {target} + {position} * {U}, {U});")
    lines.append("}")
    if not sequences:
        lines.append(f"kw_copy({state}, {target}, {U});")
    call.kernels.add("copy")
    call.emit("\n    ".join(lines))
    return U


def recurrent_c(call: Call) -> Shape:
    if len(call.inputs[0]) != 2:
        raise Unsupported(f"input of rank {len(call.inputs[0]) + 1}")
    sequences = bool(call.config.get("return_sequences"))
    units = _recurrent(call, call.node.class_name, call.config, "", call.source(), call.output,
                       bool(call.config.get("go_backwards")), sequences, restore_order=False)
    return (call.inputs[0][0], units) if sequences else (units,)


def bidirectional_c(call: Call) -> Shape:
    if len(call.inputs[0]) != 2:
        raise Unsupported(f"input of rank {len(call.inputs[0]) + 1}")
    forward = call.config["layer"]
    backward = call.config.get("backward_layer") or forward
    mode = call.config.get("merge_mode", "concat")
    if mode not in ("concat", "sum", "mul", "ave"):
        raise Unsupported(f"merge_mode={mode!r}")
    T = call.inputs[0][0]
    sequences = bool(forward["config"].get("return_sequences"))
    steps = T if sequences else 1
    units = whole("units", forward["config"].get("units"), 1)
    parts = []
    for direction, layer in (("forward_", forward), ("backward_", backward)):
        index = len(call.temporaries)
        call.temporaries.append(steps * units)
        parts.append(f"T{index}")
        _recurrent(call, layer["class_name"], layer["config"], direction, call.source(), f"T{index}",
                   direction == "backward_", sequences, restore_order=True)
    if mode == "concat":
        for at, part in enumerate(parts):
            call.emit(f"kw_concat_part({part}, {call.output}, {steps}, {units}, {2 * units}, {at * units});", "concat")
        width = 2 * units
    else:
        op = {"sum": 0, "mul": 2, "ave": 3}[mode]
        call.emit(f"kw_merge({parts[0]}, {parts[1]}, {call.output}, {steps * units}, {op});", "merge")
        width = units
    return (T, width) if sequences else (width,)


def time_distributed_c(call: Call) -> Shape:
    inner = call.config["layer"]
    inner_spec = find(inner["class_name"])
    kind_of = inner_spec.c
    if kind_of is None or inner_spec.wrapper:
        raise Unsupported(f"a {inner['class_name']} inside")
    name = inner["config"].get("name", "")
    steps, frame = call.inputs[0][0], call.inputs[0][1:]
    node = type(call.node)(f"{call.node.name}/{name}", inner["class_name"], inner["config"], [])
    weights = {path[len(name) + 1:]: ref for path, ref in call.weights.items() if path.startswith(name + "/")}
    part = Call(node, [frame], ["@IN0@"], weights)
    part.output = "@OUT@"
    shape = kind_of(part)
    finish_epilogue(part, shape[-1])  # its own relu, in the loop's block
    if part.temporaries:
        raise Unsupported(f"a {inner['class_name']} that needs scratch memory inside")
    body = "\n        ".join(s.replace("@IN0@", f"({call.source()} + t * {size(frame)})")
                            .replace("@OUT@", f"({call.output} + t * {size(shape)})") for s in part.statements)
    call.emit(f"for (size_t t = 0; t < {steps}; ++t) {{\n        {body}\n    }}", *part.kernels)
    return (steps, *shape)


# -- PyTorch: a cell's tensors as the RNN parameters of its layer (or of the Bidirectional around it) ---------
def cell_torch(site: Site) -> list:
    kind = find(site.tensor.owner_class).layer
    layer_path, _, _ = site.path.rpartition("/")  # lstm/lstm_cell -> lstm
    suffix, owner = "_l0", layer_path
    parent, _, last = layer_path.rpartition("/")
    if parent and site.class_at(parent) == "Bidirectional":
        owner = parent
        suffix = "_l0_reverse" if last.startswith("backward_") else "_l0"
        wrapper = site.configs[parent][1]
        config = (wrapper.get("backward_layer") if last.startswith("backward_") else None) or wrapper["layer"]
        config = config.get("config", {})
    else:
        config = site.configs.get(layer_path, ("", {}))[1]
    _check_activations(kind, config, owner, inside_bidirectional=owner != layer_path)
    gates = find(kind).gates
    order = (1, 0, 2) if kind == "GRU" else tuple(range(gates))  # Keras's GRU gates z, r, h; torch's r, z, n
    reorder = [] if order == tuple(range(gates)) else [Step("gates", order)]  # steps in the order done

    def blocks(array: np.ndarray, axis: int) -> np.ndarray:
        if array.shape[axis] % gates:
            raise Unmappable(f"layer '{owner}' ({kind}): a weight of shape {list(array.shape)}, not {gates} gates")
        parts = np.split(array, gates, axis=axis)
        return np.concatenate([parts[i] for i in order], axis=axis)

    w, role = site.array, site.role
    store = lambda parameter, array, *steps: site.store(parameter + suffix, array, *steps, under=owner)  # noqa: E731
    if role in ("kernel", "recurrent_kernel"):
        parameter = "weight_ih" if role == "kernel" else "weight_hh"
        return [store(parameter, blocks(w, 1).T, *reorder, permute((1, 0)))]
    if role != "bias":
        raise Unmappable(f"layer '{owner}' ({kind}): a weight '{role}' torch does not have")
    if kind == "GRU":
        if w.ndim != 2:
            raise Unmappable(f"layer '{owner}' (GRU): reset_after=False (torch's GRU resets after the product)")
        return [store("bias_ih", blocks(w[0], 0), Step("row", (0,)), *reorder),
                store("bias_hh", blocks(w[1], 0), Step("row", (1,)), *reorder)]
    return [store("bias_ih", w), store("bias_hh", np.zeros_like(w), Step("zeros"))]


def _check_activations(kind: str, config: dict, owner: str, inside_bidirectional: bool) -> None:
    activation = config.get("activation", "tanh")
    allowed = ("tanh", "relu") if kind == "SimpleRNN" else ("tanh",)
    if activation not in allowed:
        raise Unmappable(f"layer '{owner}' ({kind}): activation {activation!r} (torch's is {' or '.join(allowed)})")
    if kind != "SimpleRNN" and config.get("recurrent_activation", "sigmoid") != "sigmoid":
        raise Unmappable(f"layer '{owner}' ({kind}): recurrent_activation {config['recurrent_activation']!r} "
                         "(torch's is sigmoid)")
    if kind == "GRU" and not config.get("reset_after", True):
        raise Unmappable(f"layer '{owner}' (GRU): reset_after=False (torch's GRU resets after the product)")
    for option in ("stateful", "return_state") if inside_bidirectional else ("go_backwards", "stateful", "return_state"):
        if config.get(option):
            raise Unmappable(f"layer '{owner}' ({kind}): {option}=True")


CELL_ROLES = ("kernel", "recurrent_kernel", "bias")
DEFAULT_CELL = "LSTMCell"  # a ``cell`` group under a class the registry does not know is read as an LSTM's
SPECS = (
    Spec("SimpleRNN", gates=1, cell="SimpleRNNCell", channels="last", c=recurrent_c),
    Spec("LSTM", gates=4, cell="LSTMCell", channels="last", c=recurrent_c),
    Spec("GRU", gates=3, cell="GRUCell", channels="last", c=recurrent_c),
    *(Spec(cell, roles=CELL_ROLES, gates=gates, layer=layer, channels="last", torch=cell_torch)
      for cell, layer, gates in (("SimpleRNNCell", "SimpleRNN", 1), ("LSTMCell", "LSTM", 4), ("GRUCell", "GRU", 3))),
    Spec("CuDNNLSTM", cell="LSTMCell", channels="last"), Spec("CuDNNGRU", cell="GRUCell", channels="last"),
    *(Spec(name, cell="ConvLSTMCell", channels="last") for name in ("ConvLSTM1D", "ConvLSTM2D", "ConvLSTM3D")),
    Spec("ConvLSTMCell", roles=CELL_ROLES, channels="last"),
    Spec("Bidirectional", children=("forward_layer", "backward_layer"), wrapper=True, c=bidirectional_c),
    Spec("TimeDistributed", wrapper=True, c=time_distributed_c),
)
