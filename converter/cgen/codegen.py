"""The forward pass as C: shapes of every tensor, the scratch arena (buffers reused once their values are
dead), and ``<prefix>_predict`` calling one kernel per layer in graph order.

A pure function of the graph (kept in the manifest) and the stored tensors, so ``verify`` regenerates the
text and compares it byte for byte.
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from ..c_text import c_string, comment_text
from ..errors import InputInvalid, UsageError
from .. import c_kernels as kernels
from .. import layers
from .arena import Storage, place
from . import fusion, integer_program
from .program import BLOCKING, RESTRICT, Program, traced_inside
from .graph import Graph
from ..layers.emit import Call, Shape, Unsupported, size
from ..layers.q8 import Q8

# What an emitter raises on a configuration it cannot read (a crafted file's): reported, never a traceback.
UNREADABLE = (KeyError, TypeError, ValueError, IndexError, AttributeError, ZeroDivisionError, OverflowError)

@dataclass(frozen=True)
class WeightRef:
    """A weight as the generated code names it."""

    array: str             # the C identifier of its array
    scale: str | None      # int8: the identifier of its scale array
    shape: tuple[int, ...]
    transposed: bool
    dtype: str = "float32"
    values: Any = field(default=None, compare=False)        # the stored array (full-integer int8 works from it)
    scale_values: Any = field(default=None, compare=False)  # int8: the stored scales


@dataclass
class _Value:
    shape: Shape
    storage: Storage
    at: int = 0  # float offset inside an external storage (several model inputs share `input`)
    padded: tuple[int, int, int, int] | None = None  # a zero padding never made: (top, left, H, W) of its input


@dataclass
class _Step:
    node: Any
    call: Call
    output: Storage | None
    shape: Shape = ()
    sources: list = field(default_factory=list)
    temporaries: list[Storage] = field(default_factory=list)


def parse_input_shapes(text: str) -> list[Shape]:
    """``--c-input-shape``: one shape per model input, without the batch axis.

    >>> parse_input_shapes("50x1"), parse_input_shapes("28x28x1, 10"), parse_input_shapes("")
    ([(50, 1)], [(28, 28, 1), (10,)], [])
    """
    shapes = []
    for part in filter(None, (p.strip() for p in text.split(","))):
        if not re.fullmatch(r"[1-9]\d*(x[1-9]\d*)*", part):
            raise UsageError(f"input shape {part!r} is not dimensions joined by x (50x1, 28x28x1). Received: "
                             f"input_shape={text!r}")
        shape = tuple(int(d) for d in part.split("x"))
        if any(d > 2**31 - 1 for d in shape) or 4 * size(shape) > MAX_BYTES:
            raise UsageError(f"input shape {part!r} holds more than {MAX_BYTES:,} bytes of floats (a 32-bit size_t). "
                             f"Received: input_shape={text[:100]!r}")
        shapes.append(shape)
    return shapes


def generate(graph: Graph, weights: dict[str, WeightRef], prefix: str, input_shapes: list[Shape] = (),
             activations: dict[str, tuple[float, int]] | None = None) -> Program:
    """The C text of the forward pass, or :class:`InputInvalid` naming every layer it cannot run. With
    ``activations`` (the (scale, zero point) of each value the float pass traces, by name), the full-integer int8
    pass (``converter.cgen.integer_program``) and its numpy twin."""
    if input_shapes and len(input_shapes) != len(graph.inputs):
        raise UsageError(f"--c-input-shape gives {len(input_shapes)} shapes for a model of {len(graph.inputs)} inputs "
                         f"({', '.join(graph.inputs)})", hint="Give one shape per input, joined by commas.")
    given = dict(zip(graph.inputs, input_shapes))
    readers = fusion.readers(graph)
    sole = fusion.sole_readers(graph)
    padders = fusion.padding_fused(sole)
    folded: set[str] = set()  # element-wise layers folded into the kernel before them: computed there
    values: dict[tuple[str, int], _Value] = {}
    steps: list[_Step] = []
    problems: list[str] = []
    input_offset = 0
    integer = activations is not None
    params: dict[tuple[str, int], tuple[float, int]] = {}  # int8: each value's (scale, zero point)
    twins: list = []  # int8: (names, input refs, twin, its Q8) per node, in order: the numpy program
    params_of = integer_program.params_lookup(activations) if integer else None
    for node in graph.nodes:
        if node.name in folded:
            continue
        if node.class_name == layers.INPUT:
            declared = node.config.get("batch_shape") or node.config.get("batch_input_shape") or [None]
            sample = declared[1:] if isinstance(declared, (list, tuple)) else declared  # as keras.Input(shape=) says
            shape = given.get(node.name) or _input_shape(node)
            if shape is not None and not _fits(shape):
                problems.append(f"input '{node.name}' takes samples of shape {_shape_text(shape)}: each dimension "
                                f"from 1, {_bound_text()}")
                shape = (1,)
            elif shape is None:
                problems.append(f"input '{node.name}' takes samples of shape {_shape_text(sample)}, dimensions the "
                                f"model leaves unknown: give them with [[--c-input-shape {_example(sample)}|"
                                f"options={{'c': {{'input_shape': '{_example(sample)}'}}}}]]")
                shape = (1,)
            elif not isinstance(declared, (list, tuple)) or len(shape) != len(sample) or any(d is not None and d != n for d, n in zip(sample, shape)):
                problems.append(f"input '{node.name}' takes samples of shape {_shape_text(sample)}, not "
                                f"{_shape_text(shape)} as --c-input-shape says")
            values[(node.name, 0)] = _Value(shape, Storage(size(shape), -1, -1, external="input",
                                                            pending=readers.get((node.name, 0), 0)), input_offset)
            input_offset += size(shape)
            if integer:
                params[(node.name, 0)] = activations.get(node.name) or (1.0, 0)
                problems += [] if node.name in activations else [f"input {integer_program.no_range(node.name)}"]
            continue
        kind = layers.spec(node.class_name).c_int8 if integer else layers.spec(node.class_name).c
        if kind is None:
            problems.append(f"layer '{node.name}' ({node.class_name}): not supported"
                            + (" in full-integer int8" if integer and layers.spec(node.class_name).c else ""))
            continue
        try:
            sources = [values[ref] for ref in node.inputs]
        except KeyError:
            continue  # an input it needs could not be generated: reported there
        if any(ref[1] != 0 for ref in node.inputs):
            problems.append(f"layer '{node.name}' ({node.class_name}): takes a second output of a layer (return_state)")
            continue
        call = Call(node, [v.shape for v in sources], [f"@IN{i}@" for i in range(len(sources))], fusion.weights_of(node, weights))
        call.output = "@OUT@"
        call.padded = sources[0].padded if sources else None
        for value in sources:
            value.storage.pending -= 1
        call.input_dead = bool(sources) and sources[0].storage.pending == 0 and not sources[0].storage.external
        if integer:
            call.q8 = Q8([params[ref] for ref in node.inputs], params_of)
        try:
            shape = kind(call)
        except Unsupported as why:
            problems.append(f"layer '{node.name}' ({node.class_name}): {why}")
            continue
        except UNREADABLE as error:
            problems.append(f"layer '{node.name}' ({node.class_name}): its configuration cannot be read "
                            f"({type(error).__name__}: {_escaped(str(error))})")
            continue
        if call.unread():
            problems.append(f"layer '{node.name}' ({node.class_name}): called with {len(sources)} inputs, of which "
                            f"the generated code would not read input {call.unread()[0] + 1} (a mask or an initial "
                            f"state, say)")
            continue
        if not _fits(shape) or not all(0 < n and 4 * n <= MAX_BYTES for n in call.temporaries):
            problems.append(f"layer '{node.name}' ({node.class_name}): its output would be {_shape_text(shape)}: "
                            f"every dimension from 1, {_bound_text()}")
            continue
        for value in sources:
            value.storage.last = len(steps)
        after = fusion.fold(call, shape, sole, weights)
        folded.update(n.name for n in after)
        reads = readers.get(((after[-1] if after else node).name, 0), 0)
        fused = call.pads is not None and node.name in padders  # its only reader pads the input itself
        if integer:
            try:
                integer_program.finish(call, node, after, fused, params, activations, twins, shape)
            except Unsupported as why:
                problems.append(f"layer '{node.name}' ({node.class_name}): {why}")
                continue
        if call.alias or call.in_place or fused:  # the output is the input's buffer, its readers now that buffer's
            padded = (*call.pads, *sources[0].shape[:2]) if fused else None
            values[(node.name, 0)] = _Value(shape, sources[0].storage, sources[0].at, padded)
            sources[0].storage.pending += reads
            if call.in_place:
                steps.append(_Step(node, call, sources[0].storage, shape, sources,
                                   [Storage(n, len(steps), len(steps)) for n in call.temporaries]))
            continue
        output = Storage(size(shape), len(steps), len(steps), pending=reads)
        steps.append(_Step(node, call, output, shape, sources, [Storage(n, len(steps), len(steps)) for n in call.temporaries]))
        for name in [node.name] + [n.name for n in after]:
            values[(name, 0)] = _Value(shape, output)
    outputs = [values.get(ref) for ref in graph.outputs]
    if problems or any(v is None for v in outputs):
        listed = "; ".join(problems) or "an output could not be computed"
        raise InputInvalid(f"--c-inference cannot generate code for this model: {listed}",
                           hint="Export without --c-inference for the weight arrays alone (they need no support), "
                                "or replace the layers named.")
    for value in outputs:
        value.storage.last = len(steps)  # read by the final copies
    # in-place steps share their input's buffer: each buffer placed once
    arena = place(list(dict.fromkeys(s for step in steps for s in (step.output, *step.temporaries))))
    output_size = sum(size(v.shape) for v in outputs)
    for what, floats in (("the arena", arena), ("the inputs", input_offset), ("the outputs", output_size)):
        if 4 * floats > MAX_BYTES:
            raise InputInvalid(f"--c-inference cannot generate code for this model: {what} would take {4 * floats:,} "
                               f"bytes, more than {MAX_BYTES:,} (what a 32-bit size_t and C's int hold)",
                               hint="Give smaller inputs with --c-input-shape, or export the weights alone.")
    if integer:
        layout = [(name, values[(name, 0)].shape, values[(name, 0)].at) for name in graph.inputs]
        return integer_program.render(graph, steps, outputs, layout, input_offset, arena, prefix, params, twins,
                                      lambda storage, at=0: _pointer(_Value((), storage, at)), _shape_text)
    return _program(graph, steps, outputs, input_offset, arena, prefix)


MAX_BYTES = 2**31 - 1  # every buffer, the arena and every index fit a 32-bit target's size_t and C's int


def _fits(shape: Shape) -> bool:
    """Every dimension from 1, the whole within :data:`MAX_BYTES` as floats."""
    return all(isinstance(n, int) and n >= 1 for n in shape) and 4 * size(shape) <= MAX_BYTES


def _bound_text() -> str:
    return f"at most {MAX_BYTES:,} bytes of floats (a 32-bit size_t)"


def _escaped(text: str) -> str:
    text = text.encode("ascii", "backslashreplace").decode("ascii")
    return text if len(text) <= 200 else text[:197] + "..."


def shapes_of(graph: Graph, model) -> dict[str, Shape]:
    """Each node's output shape (one sample), where the layer kinds know it (for --layout torch)."""
    refs = {t.name: WeightRef(t.name, None, t.shape, False, "float32") for t in model.tensors}
    shapes: dict[str, Shape] = {}
    for node in graph.nodes:
        if node.class_name == layers.INPUT:
            shape = _input_shape(node)
        elif layers.spec(node.class_name).c and all(ref[0] in shapes and ref[1] == 0 for ref in node.inputs):
            call = Call(node, [shapes[ref[0]] for ref in node.inputs], ["@IN@"] * len(node.inputs),
                        fusion.weights_of(node, refs))
            try:
                shape = layers.spec(node.class_name).c(call)
            except (Unsupported, *UNREADABLE):  # a configuration a crafted file makes unreadable: shape unknown
                shape = None
        else:
            shape = None
        if shape is not None:
            shapes[node.name] = shape
    return shapes


def input_shapes(graph: Graph, given: str = "") -> list[Shape]:
    """The shape of one sample of each model input, as the generated code takes it."""
    fixed = dict(zip(graph.inputs, parse_input_shapes(given)))
    return [fixed.get(name) or _input_shape(graph.node(name)) for name in graph.inputs]


def _input_shape(node) -> Shape | None:
    """One sample's shape as the InputLayer declares it; None where a dimension is unknown. A dimension that is
    not a whole number (a crafted configuration) is kept as 0, which :func:`_fits` refuses."""
    batch = node.config.get("batch_shape") or node.config.get("batch_input_shape")
    if not isinstance(batch, (list, tuple)) or not batch or any(d is None for d in batch[1:]):
        return None
    return tuple(d if isinstance(d, int) and not isinstance(d, bool) else 0 for d in batch[1:])


def _example(sample: Any) -> str:
    """A --c-input-shape value for a sample shape, 50 where the model leaves a dimension unknown.

    >>> _example([None, 3]), _example("x")
    ('50x3', 'SHAPE')
    """
    if not isinstance(sample, (list, tuple)) or not sample:
        return "SHAPE"
    return "x".join("50" if d is None else str(d) for d in sample)


def _shape_text(shape: Any) -> str:
    if not isinstance(shape, (list, tuple)):
        return _escaped(repr(shape))
    dims = ["None" if d is None else _escaped(str(d))[:20] for d in shape]
    return "(" + ", ".join(dims) + ("," if len(dims) == 1 else "") + ")"


def _pointer(value: _Value) -> str:
    storage = value.storage
    if storage.external:
        return f"{storage.external} + {value.at}" if value.at else storage.external
    return f"A + {storage.offset}" if storage.offset else "A"


def _program(graph: Graph, steps: list[_Step], outputs: list[_Value], input_size: int, arena: int,
             prefix: str) -> Program:
    m = prefix.upper()
    body, needed = [], set()
    for step in steps:
        call = step.call
        replacements = {f"@IN{i}@": _pointer(v) for i, v in enumerate(step.sources)}
        replacements["@OUT@"] = _pointer(_Value((), step.output))
        for index, temporary in enumerate(step.temporaries):
            replacements[f"T{index}"] = f"A + {temporary.offset}" if temporary.offset else "A"
        post = call.post if call.post is not None and not call.post.empty else None
        folded = f", with {', '.join(comment_text(n) for n in post.folded)} folded in" if post and post.folded else ""
        body.append(f"    /* {comment_text(step.node.name)} ({comment_text(step.node.class_name)}){folded}: output "
                    f"{_shape_text(step.shape)} */")
        indent = "        " if post else "    "
        body += ["    {"] if post else []  # the block holding its kw_post
        for statement in call.statements:
            text = re.sub(r"@IN\d+@|@OUT@|\bT\d+\b", lambda found: f"({replacements[found.group(0)]})", statement)
            body.append(indent + traced_inside(re.sub(r"\bkw_", f"{prefix}_kw_", text), step.node.name, f"{m}_TRACE"))
        body += ["    }"] if post else []
        traced = post.folded[-1] if post and post.folded else step.node.name  # the values the buffer now holds
        body.append(f"    {m}_TRACE({c_string(traced)}, {replacements['@OUT@']}, {size(step.shape)});")
        needed |= call.kernels
    at = 0
    for value in outputs:
        body.append(f"    {prefix}_kw_copy({_pointer(value)}, output + {at}, {size(value.shape)});")
        needed.add("copy")
        at += size(value.shape)
    functions = re.sub(r"\bkw_", f"{prefix}_kw_", _kernel_text(needed))
    shapes = ", ".join(_shape_text(v.shape) for v in outputs)
    header = (
        f"/* Forward pass of the model (--c-inference): one sample of floats in, one out. The inputs are the model's\n"
        f" * inputs ({', '.join(comment_text(n) for n in graph.inputs)}), each flattened in C order of its shape without\n"
        f" * the batch axis (channels last), one after the other; token ids for an Embedding as floats holding\n"
        f" * the integer. The outputs likewise: {comment_text(shapes)}. `arena` is {m}_ARENA_BYTES of\n"
        f" * scratch memory, 16-byte aligned; nothing else is allocated and no state is kept between calls. */\n"
        f"#define {m}_INPUT_SIZE {input_size}\n#define {m}_OUTPUT_SIZE {at}\n#define {m}_ARENA_BYTES {4 * arena}\n"
        f"/* Compile the code with -D{m}_TRACE_PRINT to print each layer's output on stderr as it is computed (the\n"
        f" * first layer that differs from Keras is where to look), or define {m}_TRACE(name, values, count). */\n"
        f"int {prefix}_predict(const float *input, float *output, void *arena);\n\n"
    )
    trace = (f"#ifdef {m}_TRACE_PRINT\n#include <stdio.h>\n"
             f"static void {prefix}_trace_print(const char *name, const float *values, size_t count) {{\n"
             f"    fprintf(stderr, \"%s\", name);\n"
             f"    for (size_t i = 0; i < count; ++i) fprintf(stderr, \" %.9g\", (double)values[i]);\n"
             f"    fputc('\\n', stderr);\n}}\n#define {m}_TRACE(name, values, count) {prefix}_trace_print(name, values, count)\n"
             f"#endif\n#ifndef {m}_TRACE\n#define {m}_TRACE(name, values, count) ((void)0)\n#endif\n\n")
    source = (f"{trace}{RESTRICT}{BLOCKING}{functions}int {prefix}_predict(const float *input, float *output, void *arena) {{\n"
              f"    float *A = (float *)arena;\n    (void)A;\n" + "\n".join(body) + "\n    return 0;\n}\n")
    return Program(header, source, 4 * arena, input_size, at)


def _kernel_text(needed: set[str]) -> str:
    parts = []
    activations = sorted(n.split(":", 1)[1] for n in needed if n.startswith("activate:"))
    if activations:
        parts.append(kernels.activation_function(activations))
    if any(n.startswith(("dense_", "conv2d_", "depthwise2d_")) for n in needed):
        needed = needed | {"post"}  # their epilogue (kw_post) comes first
    for name in sorted((n for n in needed if not n.startswith("activate:")),
                       key=lambda n: (n != "post", not n.startswith("dense"), n)):
        if name.endswith(("_f32", "_i8")):
            base, _, suffix = name.rpartition("_")
            parts.append(kernels.weighted(base, suffix == "i8"))
        elif name == "relu":
            parts.append(kernels.relu_function())
        else:
            parts.append(layers.c_function(name) or kernels.plain(name))
    return "".join(parts)
