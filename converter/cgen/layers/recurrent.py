"""Recurrent layers (SimpleRNN, LSTM, GRU), Bidirectional and TimeDistributed."""
from __future__ import annotations

from typing import Any

from ... import layers as registry
from .. import kernels
from .base import EMITTERS, Call, Shape, Unsupported, kind, size, whole

# -- recurrent layers ---------------------------------------------------------------------------------------


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
    spec = registry.spec(class_name)
    if spec is None or not spec.gates or spec.layer:
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
        scale = f", {ref.scale}" if ref.scale else ""
        call.kernels.add("dense" + suffix)
        return f"kw_dense{suffix}({x}, {y}, 1, {width}, {gates * U}, {ref.array}{scale}, {bias_text});"

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


@kind("SimpleRNN", "LSTM", "GRU")
def recurrent(call: Call) -> Shape:
    if len(call.inputs[0]) != 2:
        raise Unsupported(f"input of rank {len(call.inputs[0]) + 1}")
    sequences = bool(call.config.get("return_sequences"))
    units = _recurrent(call, call.node.class_name, call.config, "", call.source(), call.output,
                       bool(call.config.get("go_backwards")), sequences, restore_order=False)
    return (call.inputs[0][0], units) if sequences else (units,)


@kind("Bidirectional")
def bidirectional(call: Call) -> Shape:
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


@kind("TimeDistributed")
def time_distributed(call: Call) -> Shape:
    inner = call.config["layer"]
    kind_of = EMITTERS.get(inner["class_name"])
    if kind_of is None or inner["class_name"] in ("Bidirectional", "TimeDistributed"):
        raise Unsupported(f"a {inner['class_name']} inside")
    name = inner["config"].get("name", "")
    steps, frame = call.inputs[0][0], call.inputs[0][1:]
    node = type(call.node)(f"{call.node.name}/{name}", inner["class_name"], inner["config"], [])
    weights = {path[len(name) + 1:]: ref for path, ref in call.weights.items() if path.startswith(name + "/")}
    part = Call(node, [frame], ["@IN0@"], weights)
    part.output = "@OUT@"
    shape = kind_of(part)
    if part.temporaries:
        raise Unsupported(f"a {inner['class_name']} that needs scratch memory inside")
    body = "\n        ".join(s.replace("@IN0@", f"({call.source()} + t * {size(frame)})")
                            .replace("@OUT@", f"({call.output} + t * {size(shape)})") for s in part.statements)
    call.emit(f"for (size_t t = 0; t < {steps}; ++t) {{\n        {body}\n    }}", *part.kernels)
    return (steps, *shape)
