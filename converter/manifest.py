"""The manifest: one JSON document describing an export, and the checks run against it.

Deterministic by construction: model order, sorted keys, no timestamps, no absolute paths.

>>> dumps({"b": 1, "a": [1.5]})
'{\\n  "a": [\\n    1.5\\n  ],\\n  "b": 1\\n}\\n'
"""
from __future__ import annotations

import json
import os
import sys
from collections.abc import Iterable, Mapping, Sequence
from functools import cache
from pathlib import Path
from typing import Any

from . import formats, transforms
from ._version import __version__
from .errors import ConverterError, InputNotFound, ManifestInvalid
from .tensors import ExportInfo, Layer, ModelWeights, Quantization, Source, Tensor

SCHEMA_ID = "keras-weights/manifest"
SCHEMA_VERSION = "1.1"
BASE_VERSION = "1.0"  # what an export that uses no 1.1 field says, so that it stays byte-identical to before
INTEGER_VERSION = "1.2"  # what a full-integer int8 export says (the inference block's activations)
KIND_VERSION = "1.3"  # what an export of a model with quantizer ranges or training state says (a tensor's kind)
FILE_NAME = "manifest.json"
_PRODUCER_PACKAGES = ("keras", "tensorflow", "numpy", "safetensors", "pyarrow")


def build(model: ModelWeights, tensors: Sequence[Tensor] | None = None, stem: str = "",
          options: Mapping[str, Any] | None = None, inference: Mapping[str, Any] | None = None) -> dict:
    """The manifest of an export of ``model`` without its ``files`` list.

    ``tensors`` are the records as written (after any layout change; default: the model's own);
    ``options`` holds ``layout`` and each written format's options (the formats are its other keys);
    ``inference`` the generated forward pass's graph and figures (``export -f c --c-inference``).
    """
    tensors = model.tensors if tensors is None else tensors
    options = dict(options or {"layout": "keras"})
    format_names = [name for name in formats.FORMATS if name in options]
    keys = {name: formats.get(name).keys(tensors, stem, **options[name]) for name in format_names}
    return {
        "schema": SCHEMA_ID,
        "schema_version": _schema_version(tensors, inference),
        "source": {"file": model.source.file, "format": model.source.format, "sha256": model.source.sha256,
                   "reader": model.source.reader, "keras_version": model.source.keras_version,
                   "backend": model.source.backend, "note": model.source.note},
        "producer": producer(),
        "model": {
            "name": model.name, "class": model.class_name, "inputs": model.inputs, "outputs": model.outputs,
            "tensors": len(model.tensors),
            "parameters": sum(int(t.array.size) for t in model.tensors),
            "bytes": sum(t.nbytes for t in model.tensors),
        },
        "options": {key: formats.recorded(key, value) if key in formats.FORMATS else value
                    for key, value in options.items()},
        "layers": [_layer(layer) for layer in model.layers],
        "tensors": [_tensor(t, {f: keys[f][t.name] for f in format_names}) for t in tensors],
        "files": [],
        **({"inference": dict(inference)} if inference else {}),
    }


def _schema_version(tensors: Sequence[Tensor], inference: Mapping[str, Any] | None) -> str:
    """The oldest schema version that holds every field the manifest uses: an export that uses no newer field stays
    byte-identical to what earlier versions wrote."""
    if any(t.kind != "weight" for t in tensors):
        return KIND_VERSION
    if inference and "activations" in inference:
        return INTEGER_VERSION
    if inference or any(t.quantization or t.keras_name for t in tensors):
        return SCHEMA_VERSION
    return BASE_VERSION


def producer() -> dict:
    """Versions of this tool and of the libraries whose behaviour shapes the output."""
    installed = _installed_versions()
    return {"keras-weights": __version__, **{name: installed.get(name) or _version(name) for name in _PRODUCER_PACKAGES}}


@cache
def _installed_versions() -> dict[str, str]:
    """Versions from the names of installed packages' ``<name>-<version>.dist-info`` folders (the wheel
    layout), first on ``sys.path`` first: one directory listing per process, where ``importlib.metadata``
    costs ~25 ms of imports and parsing on every command that builds a manifest.

    >>> import numpy
    >>> _installed_versions()["numpy"] == numpy.__version__
    True
    """
    found: dict[str, str] = {}
    for entry in reversed([p for p in sys.path if p]):  # the first occurrence on sys.path wins, as for imports
        try:
            names = os.listdir(entry)
        except OSError:
            continue
        for name in names:
            stem = name.removesuffix(".dist-info")
            if stem != name and stem.count("-") == 1:
                package, version = stem.split("-")
                found[package.lower().replace("_", "-")] = version
    return found


def _version(package: str) -> str | None:
    """The installed version as ``importlib.metadata`` finds it (a package installed without a wheel's layout)."""
    from importlib import metadata

    try:
        return metadata.version(package)
    except metadata.PackageNotFoundError:
        return None


def _layer(layer: Layer) -> dict:
    return {"index": layer.index, "name": layer.name, "class": layer.class_name, "config": layer.config,
            "input_shape": layer.input_shape, "output_shape": layer.output_shape, "tensors": list(layer.tensors)}


def _tensor(tensor: Tensor, keys: dict[str, str]) -> dict:
    entry = {"name": tensor.name, "layer": tensor.layer, "layer_index": tensor.layer_index, "role": tensor.role,
             "shape": list(tensor.shape), "dtype": tensor.dtype, "byte_order": "little", "nbytes": tensor.nbytes,
             "sha256": tensor.sha256, "trainable": tensor.trainable, "transform": tensor.transform, "keys": keys,
             "nan": tensor.non_finite[0], "inf": tensor.non_finite[1]}
    if tensor.keras_name is not None:
        entry["keras_name"] = tensor.keras_name
    if tensor.kind != "weight":
        entry["kind"] = tensor.kind
    q = tensor.quantization
    if q is not None:
        axis = None if q.axis is None else q.axis[0] if len(q.axis) == 1 else list(q.axis)
        entry["source_dtype"] = q.source_dtype
        entry["quantization"] = {"scheme": q.scheme, "axis": axis, **({"scale": q.scale} if q.scale else {}),
                                 "error": {"max_abs": q.max_abs, "rmse": q.rmse, "snr_db": q.snr_db}}
    return entry


def quantization_of(entry: Mapping) -> Quantization | None:
    """The :class:`Quantization` record of a manifest tensor entry (None for a tensor stored as the model has it)."""
    q = entry.get("quantization")
    if q is None:
        return None
    axis = q["axis"]
    axes = None if axis is None else (axis,) if isinstance(axis, int) else tuple(axis)
    error = q["error"]
    return Quantization(q["scheme"], entry["source_dtype"], axes, q.get("scale"), error["max_abs"], error["rmse"],
                        error["snr_db"])


def scale_names(entries: Iterable[Mapping]) -> set[str]:
    """The int8 scale tensors among manifest tensor entries: stored beside the tensors they scale, not parameters.

    >>> sorted(scale_names([{"name": "d/kernel", "quantization": {"scale": "d/kernel:scale"}}, {"name": "d/bias"}]))
    ['d/kernel:scale']
    """
    return {(entry.get("quantization") or {}).get("scale") for entry in entries} - {None}


def dumps(manifest: dict) -> str:
    """The manifest as canonical JSON text (sorted keys, 2-space indent, trailing newline)."""
    return json.dumps(manifest, sort_keys=True, indent=2, allow_nan=False, ensure_ascii=False) + "\n"


@cache
def schema() -> dict:
    """The JSON Schema every manifest validates against (shipped in the package)."""
    from importlib import resources

    return json.loads(resources.files(__package__).joinpath("manifest.schema.json").read_text("utf-8"))


def validate(manifest: dict, where: str = "manifest") -> None:
    """Raise :class:`ManifestInvalid` unless ``manifest`` matches the schema and holds only values an export can
    have (:func:`consistency_problems`): a foreign manifest's values reach generated C text and file reads."""
    import jsonschema

    error = jsonschema.exceptions.best_match(jsonschema.Draft202012Validator(schema()).iter_errors(manifest))
    if error is not None:
        location = "/".join(str(p) for p in error.absolute_path) or "(top level)"
        raise ManifestInvalid(f"{where} does not match the keras-weights manifest schema at {location}: "
                              f"{_shown(error.message)}")
    problems = consistency_problems(manifest)
    if problems:
        raise ManifestInvalid(f"{where} holds values no keras-weights export has: " + "; ".join(problems[:5])
                              + (f"; and {len(problems) - 5} more" if len(problems) > 5 else ""))


def _shown(text: str, limit: int = 300) -> str:
    """A message about a foreign value, on one line, escaped and bounded."""
    text = text.encode("unicode_escape", "backslashreplace").decode("ascii")
    return text if len(text) <= limit else text[:limit] + "..."


def consistency_problems(manifest: Mapping) -> list[str]:
    """What a schema-valid manifest holds that no export writes: every recorded format's options are known and of
    their type and range, its files are the ones that format writes for one stem, every tensor has a key in it,
    and every transform is made of steps that can be undone.

    >>> consistency_problems(json.loads(open("fixtures/golden/manifest.json").read()))
    []
    """
    problems = []
    options = manifest["options"]
    for name in (key for key in options if key not in ("layout", "quantize")):
        if name not in formats.FORMATS:
            problems.append(f"options for an unknown format {_shown(name, 40)!r}")
    written = list(dict.fromkeys(entry["format"] for entry in manifest["files"]))
    for name in written:
        problems += _format_problems(manifest, name)
    claimed = {block for name in written for block in getattr(formats.get(name), "MANIFEST_BLOCKS", ())}
    problems += [f"a {block!r} block that no written format records" for block in manifest
                 if block not in _CORE_BLOCKS and block not in claimed]
    for entry in manifest["tensors"]:
        missing = [name for name in written if not isinstance(entry["keys"].get(name), str)]
        if missing:
            problems.append(f"tensor {_shown(entry['name'], 80)!r} has no key in {', '.join(missing)}")
        problem = transforms.problem(entry["transform"])
        if problem:
            problems.append(f"tensor {_shown(entry['name'], 80)!r}: transform {problem}")
    return problems


_CORE_BLOCKS = frozenset({"schema", "schema_version", "source", "producer", "model", "options", "layers", "tensors",
                          "files"})


def _format_problems(manifest: Mapping, name: str) -> list[str]:
    """One written format's recorded options and file names against what its writer accepts and writes."""
    recorded = manifest["options"].get(name)
    if not isinstance(recorded, dict):
        return [f"{name} files listed without the {name} options that wrote them"]
    try:
        chosen = formats.options(name, recorded)
    except ConverterError as error:
        return [f"{name} options: {_shown(str(error))}"]
    listed = [entry["path"] for entry in manifest["files"] if entry["format"] == name]
    module = formats.get(name)
    stem = listed[0][:-len(module.EXTENSIONS[0])] if listed[0].endswith(module.EXTENSIONS[0]) else None
    expected = module.files(stem, **chosen) if stem else None
    if listed != expected:
        return [f"{name} files {listed} are not the files {name} writes" + (f" ({expected})" if expected else "")]
    return module.manifest_problems(manifest, chosen) if hasattr(module, "manifest_problems") else []


def load(folder: Path) -> dict:
    """Read and validate ``folder/manifest.json`` (:func:`validate`)."""
    path = Path(folder) / FILE_NAME
    if not path.is_file():
        raise InputNotFound(f"no {FILE_NAME} in {folder}", hint="Pass the folder that `keras-weights export` wrote.")
    if path.stat().st_size > MAX_BYTES:
        raise ManifestInvalid(f"{path} holds {path.stat().st_size:,} bytes, more than a manifest of {MAX_BYTES:,}")
    try:
        manifest = json.loads(path.read_text("utf-8"))
    except (ValueError, UnicodeDecodeError, RecursionError) as error:
        raise ManifestInvalid(f"{path} is not valid JSON: {type(error).__name__}: {_shown(str(error), 200)}",
                              hint="Export again; the manifest is damaged.") from None
    validate(manifest, str(path))
    return manifest


def beside(path: Path) -> dict | None:
    """The validated manifest of the export that lists the file ``path``, from ``manifest.json`` beside it; None when
    there is none, it is not a keras-weights manifest, or it does not list the file. A keras-weights manifest that is
    invalid is :class:`ManifestInvalid`: a reader must not take names or dtypes from it.

    >>> beside(Path("fixtures/golden/seed_mlp.npz"))["model"]["name"], beside(Path("fixtures/seed_mlp.keras"))
    ('seed_mlp', None)
    """
    path = Path(path)
    candidate = path.parent / FILE_NAME
    if not candidate.is_file():
        return None
    with open(candidate, "rb") as handle:
        if b'"keras-weights/manifest"' not in handle.read(MAX_BYTES):  # another tool's manifest.json: not ours to judge
            return None
    manifest = load(path.parent)
    return manifest if any(entry["path"] == path.name for entry in manifest["files"]) else None


MAX_BYTES = 2**30  # a manifest of a million tensors takes ~600 MB; beyond, it is not one of ours


def export_info(manifest: Mapping) -> ExportInfo:
    """The records a writer was given, rebuilt from a (validated) manifest: what ``verify`` regenerates from."""
    source, model = manifest["source"], manifest["model"]
    layers = tuple(Layer(entry["index"], entry["name"], entry["class"], entry["config"], entry["input_shape"],
                         entry["output_shape"], tuple(entry["tensors"])) for entry in manifest["layers"])
    record = ModelWeights(model["name"], model["class"], model["inputs"], model["outputs"], layers, (),
                          Source(source["file"], source["format"], source["sha256"], source["reader"]))
    producer = manifest["producer"]
    version = producer.get("keras-weights") or producer.get("converter")  # the key before 0.2: "converter"
    inference = manifest.get("inference") or {}
    activations = {entry["name"]: (entry["scale"], entry["zero_point"]) for entry in inference["activations"]} \
        if "activations" in inference else None
    return ExportInfo(record, manifest["options"]["layout"], producer_version=version, graph=inference.get("graph"),
                      activations=activations)


def tensor_records(manifest: Mapping, format_name: str, arrays: Mapping[str, Any]) -> list[Tensor]:
    """The manifest's tensors, in its order, holding the arrays read back from a format (by that format's key)."""
    return [Tensor(t["name"], t["layer"], t["role"], t["layer_index"], t["trainable"], arrays[t["keys"][format_name]],
                   transform=t["transform"], quantization=quantization_of(t), keras_name=t.get("keras_name"),
                   kind=t.get("kind", "weight"))
            for t in manifest["tensors"]]
