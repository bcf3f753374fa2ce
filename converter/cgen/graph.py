"""The model's computation as a graph of layer calls, from its serialized configuration (what ``.keras``
``config.json``, a legacy ``.h5``'s ``model_config`` and ``keras.saving.serialize_keras_object`` hold).

Keras 3 and Keras 2 formats, Sequential and functional models; a nested model is inlined, its layers
named ``outer/inner`` as their tensors are. The graph is plain JSON (:func:`to_json`), so the manifest
can carry it and ``verify`` can regenerate the code from it.

>>> config = {"class_name": "Sequential", "config": {"name": "m", "layers": [
...     {"class_name": "InputLayer", "config": {"batch_shape": [None, 4], "name": "x"}},
...     {"class_name": "Dense", "config": {"name": "d", "units": 2, "activation": "relu"}}]}}
>>> graph = from_config(config)
>>> [(n.name, n.class_name, n.inputs) for n in graph.nodes], graph.outputs
([('x', 'InputLayer', []), ('d', 'Dense', [('x', 0)])], [('d', 0)])
"""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .. import layers as registry
from ..errors import InputInvalid

_DROPPED_KEYS = re.compile(r".*_(initializer|regularizer|constraint)$|^(module|registered_name|shared_object_id|"
                           r"build_config|compile_config|trainable|seed)$")


@dataclass
class Node:
    """One layer call: a name unique in the graph, the layer's class, configuration and inputs, and the path of
    the layer whose weights it uses (``layer``): a shared layer's second call ``d@1`` and the calls of a nested
    model used twice (``tower@1/d``) use the weights of ``d`` and ``tower/d``; a wrapper that computes as the layer
    it wraps (``quant_d`` holding ``d``) is that layer, named as the wrapper, with the weights of ``quant_d/d``."""

    name: str
    class_name: str
    config: dict
    inputs: list[tuple[str, int]] = field(default_factory=list)  # (node, output index)
    layer: str = ""
    keywords: dict = field(default_factory=dict)  # the call's keyword arguments that are no tensors, as saved
    named: dict = field(default_factory=dict)     # keyword -> the index in inputs of the tensor it was given
    wrapper: str = ""  # the class of the wrapper the model holds the layer in, where it computes as the layer it wraps
                       # (a quantization-aware QuantizeWrapperV2); its weights are the wrapped layer's (``layer``)

    def __post_init__(self) -> None:
        self.layer = self.layer or self.name


@dataclass
class Graph:
    nodes: list[Node]                  # in an order where every input comes first
    inputs: list[str]                  # InputLayer nodes, in model.inputs order
    outputs: list[tuple[str, int]]     # in model.outputs order

    def node(self, name: str) -> Node:
        return next(n for n in self.nodes if n.name == name)


def from_config(serialized: dict) -> Graph:
    """The graph of a serialized model (``{"class_name": ..., "config": {...}}``)."""
    if not isinstance(serialized, dict) or not registry.is_container(serialized.get("class_name")):
        raise InputInvalid("the model has no Sequential or functional configuration to generate code from",
                           hint="Export a model saved with its configuration (model.save), not a weights-only file.")
    builder = _Builder()
    try:
        inputs, outputs = builder.model(serialized, _Scope("", ""), given=None)
    except (KeyError, IndexError, TypeError, ValueError, AttributeError, RecursionError) as error:  # one we cannot follow
        raise InputInvalid(f"cannot follow the model's graph in its configuration: {type(error).__name__}: "
                           f"{str(error)[:200]}",
                           hint="Export without --c-inference or --layout torch; the weights need no graph.") from None
    return Graph(builder.nodes, inputs, outputs)


@dataclass(frozen=True)
class _Scope:
    """Where a (nested) model's layers go: ``nodes`` prefixes their node names, unique per call of the model;
    ``weights`` prefixes their layers' paths, the same for every call (the weights are shared)."""

    nodes: str
    weights: str

    def inside(self, name: str, call_index: int) -> "_Scope":
        return _Scope(self.nodes + _called(name, call_index) + "/", self.weights + name + "/")


def _called(name: str, call_index: int) -> str:
    """A layer's name for its ``call_index``-th call: the first keeps the name, later ones add ``@k``."""
    return f"{name}@{call_index}" if call_index else name


class _Calls:
    """What one call of a layer produced: a plain layer's node (its output k is ``(node, k)``), or a nested
    model's outputs (its output k is the k-th)."""

    def __init__(self, node: str | None = None, outputs: list[tuple[str, int]] | None = None) -> None:
        self._node, self._outputs = node, outputs

    def output(self, index: int) -> tuple[str, int]:
        return (self._node, index) if self._node is not None else self._outputs[index]

    def all(self) -> list[tuple[str, int]]:
        return [(self._node, 0)] if self._node is not None else list(self._outputs)


class _Builder:
    def __init__(self) -> None:
        self.nodes: list[Node] = []

    def model(self, serialized: dict, scope: _Scope, given: list[tuple[str, int]] | None
              ) -> tuple[list[str], list[tuple[str, int]]]:
        """Add a (possibly nested) model's nodes; ``given`` feeds a nested model's inputs."""
        config = serialized.get("config") or {}
        if isinstance(config, list):  # Keras 2.0-2.2 Sequential: the config is the list of layers
            config = {"layers": config}
        layers = list(config.get("layers") or [])
        if serialized["class_name"] == registry.SEQUENTIAL:
            return self._sequential(layers, config, scope, given)
        return self._functional(layers, config, scope, given)

    def _input(self, config: dict, scope: _Scope, name: str) -> tuple[str, int]:
        self.nodes.append(Node(scope.nodes + name, registry.INPUT, config, layer=scope.weights + name))
        return scope.nodes + name, 0

    def _sequential(self, layers: list, config: dict, scope: _Scope, given):
        current: list[tuple[str, int]] | None = given
        inputs: list[str] = []
        starts_with_input = bool(layers) and layers[0].get("class_name") == registry.INPUT
        if current is None:
            shape = None if starts_with_input or not layers else _input_shape(layers[0].get("config", {}))
            if starts_with_input:
                name = layers[0]["config"].get("name", "input")
                current, layers = [self._input(_clean(layers[0]["config"]), scope, name)], layers[1:]
            elif shape is not None:
                name = (config.get("name") or "model") + "_input"
                current = [self._input({"batch_shape": shape, "name": scope.nodes + name}, scope, name)]
            else:
                raise InputInvalid("the Sequential model does not say its input shape",
                                   hint="Save the model after building it (with an Input or a first call).")
            inputs = [current[0][0]]
        elif starts_with_input:
            layers = layers[1:]
        for layer in layers:
            current = self._layer(layer, scope, current).all()
        return inputs, current

    def _functional(self, layers: list, config: dict, scope: _Scope, given):
        produced: dict[str, list[_Calls]] = {}  # layer name -> what each of its calls produced (node index)
        input_refs = _refs(config.get("input_layers"))
        for layer in layers:
            name = layer.get("name") or layer.get("config", {}).get("name")
            if layer.get("class_name") == registry.INPUT:
                if given is not None:
                    position = [r[0] for r in input_refs].index(name)
                    produced[name] = [_Calls(outputs=[given[position]])]
                else:
                    produced[name] = [_Calls(outputs=[self._input(_clean(layer["config"]), scope, name)])]
                continue
            for call in _inbound_calls(layer.get("inbound_nodes") or []):
                feeds = [_output(produced, source, node_index, tensor_index)
                         for source, node_index, tensor_index in call.refs]
                produced.setdefault(name, []).append(self._layer(layer, scope, feeds, len(produced.get(name, [])), call))
        inputs = [scope.nodes + r[0] for r in input_refs] if given is None else []
        outputs = [_output(produced, *ref) for ref in _refs(config.get("output_layers"))]
        return inputs, outputs

    def _layer(self, layer: dict, scope: _Scope, feeds: list[tuple[str, int]], call_index: int = 0,
               call: _Inbound | None = None) -> _Calls:
        class_name = layer.get("class_name", "")
        config = layer.get("config") or {}
        name = config.get("name") or layer.get("name") or class_name.lower()
        if registry.is_container(class_name):
            _, outputs = self.model(layer, scope.inside(name, call_index), feeds)
            return _Calls(outputs=outputs)
        node_name = scope.nodes + _called(name, call_index)
        keywords, named = (_clean(call.keywords), dict(call.named)) if call else ({}, {})
        node = Node(node_name, class_name, _clean(config), list(feeds), scope.weights + name, keywords, named)
        self.nodes.append(_unwrapped(node, config))
        return _Calls(node=node_name)


def _unwrapped(node: Node, config: dict) -> Node:
    """The node as the layer its wrapper computes (the registry's ``Spec.unwrap``), or as it is."""
    unwrap = registry.spec(node.class_name).unwrap
    inner = unwrap(config) if unwrap is not None else None
    if inner is None:
        return node
    inner_name = inner["config"].get("name") or inner["class_name"].lower()
    return Node(node.name, inner["class_name"], _clean(inner["config"]), node.inputs, f"{node.layer}/{inner_name}",
                node.keywords, node.named, wrapper=node.class_name)


def _output(produced: dict[str, list[_Calls]], source: str, node_index: int, tensor_index: int) -> tuple[str, int]:
    """Output ``tensor_index`` of call ``node_index`` of layer ``source`` (the last call where a file counts
    calls Keras dropped from its configuration)."""
    calls = produced[source]
    return calls[min(node_index, len(calls) - 1)].output(tensor_index)


@dataclass
class _Inbound:
    """One call of a layer: its input tensors (source layer, node index, tensor index), positional ones first,
    then those given by keyword (``named``: keyword -> index), and its other keyword arguments."""

    refs: list[tuple[str, int, int]] = field(default_factory=list)
    keywords: dict = field(default_factory=dict)
    named: dict = field(default_factory=dict)

    def keyword(self, key: str, value: Any, tensors: list[tuple[str, int, int]]) -> None:
        if tensors:
            self.named[key] = len(self.refs)
            self.refs += tensors
        elif value is not None and value is not False:  # None and False: what every call argument defaults to
            self.keywords[key] = value


def _inbound_calls(inbound: list) -> list[_Inbound]:
    """Each call of a layer, Keras 3 or 2 format."""
    calls = []
    for node in inbound:
        call = _Inbound()
        if isinstance(node, dict):  # Keras 3: {"args": [...], "kwargs": {...}} with __keras_tensor__ leaves
            call.refs = _keras_tensors(node.get("args", []))
            constants = [a for a in (node.get("args") or []) if not _keras_tensors(a)]
            if constants:  # the arguments that are no tensors: a slice's index (GetItem)
                call.keywords["positional"] = constants
            for key, value in (node.get("kwargs") or {}).items():
                call.keyword(str(key), value, _keras_tensors(value))
        elif isinstance(node, list):  # Keras 2: [[name, node_index, tensor_index, kwargs], ...]
            call.refs = [(entry[0], int(entry[1]), int(entry[2])) for entry in node]
            for entry in node:
                for key, value in (entry[3] if len(entry) > 3 and isinstance(entry[3], dict) else {}).items():
                    call.keyword(str(key), value, [_keras2_ref(value)] if _is_keras2_ref(value) else [])
        calls.append(call)
    return calls


def _is_keras2_ref(value: Any) -> bool:
    """A tensor in a Keras 2 call's keyword arguments: [layer name, node index, tensor index]."""
    return isinstance(value, list) and len(value) in (3, 4) and isinstance(value[0], str) \
        and all(isinstance(v, int) and not isinstance(v, bool) for v in value[1:3])


def _keras2_ref(value: list) -> tuple[str, int, int]:
    return value[0], int(value[1]), int(value[2])


def _keras_tensors(value: Any) -> list[tuple[str, int, int]]:
    found = []
    if isinstance(value, dict):
        if value.get("class_name") == "__keras_tensor__":
            history = value["config"]["keras_history"]
            return [(history[0], int(history[1]), int(history[2]))]
        for item in value.values():
            found += _keras_tensors(item)
    elif isinstance(value, list):
        for item in value:
            found += _keras_tensors(item)
    return found


def _refs(value: Any) -> list[tuple[str, int, int]]:
    """``input_layers``/``output_layers``: one [name, node, tensor] or a list of them."""
    if not value:
        return []
    if isinstance(value[0], str):
        return [(value[0], int(value[1]), int(value[2]))]
    return [(v[0], int(v[1]), int(v[2])) for v in value]


def _input_shape(config: dict) -> list | None:
    return config.get("batch_shape") or config.get("batch_input_shape")


def _clean(config: dict) -> dict:
    """The configuration without what inference never needs and what differs between runs (object ids)."""
    def clean(value: Any) -> Any:
        if isinstance(value, dict):
            if value.get("class_name") == "DTypePolicy" or value.get("class_name") == "DTypePolicyV2":
                return (value.get("config") or {}).get("name")
            return {k: clean(v) for k, v in sorted(value.items()) if not _DROPPED_KEYS.fullmatch(k)}
        if isinstance(value, (list, tuple)):
            return [clean(v) for v in value]
        return value
    return clean(config)


def to_json(graph: Graph) -> dict:
    return {"inputs": graph.inputs, "outputs": [list(o) for o in graph.outputs],
            "nodes": [_node_json(n) for n in graph.nodes]}


def _node_json(node: Node) -> dict:
    data = {"name": node.name, "class": node.class_name, "config": node.config, "inputs": [list(i) for i in node.inputs]}
    if node.layer != _layer_of(node.name):  # whose weights it uses, where its name does not say
        data["layer"] = node.layer
    for key in ("keywords", "named", "wrapper"):  # only where the call has them: older manifests stay as they were
        if getattr(node, key):
            data[key] = getattr(node, key)
    return data


def from_json(data: dict) -> Graph:
    """The graph :func:`to_json` wrote (a manifest's, so foreign: every part's type is checked).

    >>> from_json({"inputs": ["x"], "outputs": [["x", 0]], "nodes": [{"name": "x", "class": "InputLayer", "config": {},
    ...            "inputs": []}]}).outputs
    [('x', 0)]
    >>> from_json({"inputs": ["x"], "outputs": [["x", "0"]], "nodes": []})
    Traceback (most recent call last):
    ...
    converter.errors.InputInvalid: the recorded graph of the forward pass is not one keras-weights writes: ...
    """
    try:
        nodes = [Node(_text(n["name"]), _text(n["class"]), _mapping(n["config"]), [_ref(i) for i in n["inputs"]],
                      _text(n["layer"]) if "layer" in n else _layer_of(_text(n["name"])),
                      _mapping(n.get("keywords", {})), _named(n.get("named", {}), len(n["inputs"])),
                      _text(n.get("wrapper", "")))
                 for n in data["nodes"]]
        graph = Graph(nodes, [_text(name) for name in data["inputs"]], [_ref(o) for o in data["outputs"]])
    except (KeyError, TypeError, ValueError, AttributeError) as error:
        raise InputInvalid(f"the recorded graph of the forward pass is not one keras-weights writes: "
                           f"{type(error).__name__}: {str(error)[:200]}",
                           hint="Export again; the manifest was edited.") from None
    names = [n.name for n in graph.nodes]
    known = set(names)
    if len(known) != len(names) or any(ref[0] not in known for n in graph.nodes for ref in n.inputs) \
            or any(name not in known for name in graph.inputs) or any(ref[0] not in known for ref in graph.outputs):
        raise InputInvalid("the recorded graph of the forward pass is not one keras-weights writes: a node named twice, "
                           "or an input or output that names no node", hint="Export again; the manifest was edited.")
    return graph


def _layer_of(name: str) -> str:
    """The layer whose weights node ``name`` uses, as its name says: each later call's ``@k`` dropped.

    >>> _layer_of("tower@1/d@2"), _layer_of("d")
    ('tower/d', 'd')
    """
    return re.sub(r"@\d+(?=/|$)", "", name)


def _text(value: Any) -> str:
    if not isinstance(value, str):
        raise TypeError(f"{value!r} is not a string")
    return value


def _mapping(value: Any) -> dict:
    if not isinstance(value, dict):
        raise TypeError("a configuration that is not an object")
    return value


def _named(value: Any, inputs: int) -> dict:
    """A node's keyword -> input index map, each index one of its inputs."""
    named = _mapping(value)
    if any(not isinstance(v, int) or isinstance(v, bool) or not 0 <= v < inputs for v in named.values()):
        raise ValueError("a keyword input that names none of the node's inputs")
    return named


def _ref(value: Any) -> tuple[str, int]:
    if not isinstance(value, list) or len(value) != 2 or isinstance(value[1], bool) or not isinstance(value[1], int) \
            or not 0 <= value[1] < 1024:
        raise ValueError(f"{str(value)[:60]} is not a [node, output index] pair")
    return _text(value[0]), value[1]
