"""C arrays for firmware: ``<stem>.h`` (declarations, macros, tables) and ``<stem>.c`` (definitions).

Every tensor is one ``const`` array whose memory bytes equal the tensor's C-order little-endian bytes:
float32 as ``float``, float64 as ``double``, float16/bfloat16/float8 and bool as unsigned bit
patterns, integers as ``<stdint.h>`` types. Zero-size tensors get macros and a table entry (data
``NULL``) but no array, since ISO C has no zero-length arrays. With ``header_only`` everything goes
into one header as ``static const`` definitions. The text is streamed tensor by tensor.
"""
from __future__ import annotations

import contextlib
import dataclasses
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from pathlib import Path
from typing import Any


from .. import atomic, choices, integer
from ..errors import InputInvalid, UsageError
from ..cgen import codegen, graph
from .._version import __version__
from ..messages import printable
from ..tensors import ExportInfo, Tensor
from . import c_build, c_calibration
from .c_parse import read  # noqa: F401  (the registry face: c.read)
from .c_names import (DEFAULT_ALIGN, SYSTEM_HEADERS, files, flash_by_layer, keys, prefix_for,  # noqa: F401  (the face)
                      scale_indexing)
from .c_writer import emit, Unit, inference_program, weight_refs  # noqa: F401


EXTENSIONS = (".h", ".c")


ARRAY_STYLES = choices.C_ARRAY_STYLES


MAX_ALIGN = choices.C_MAX_ALIGN


OPTIONS = choices.FORMAT_OPTIONS["c"]


def flash_line(entries: Iterable[Mapping], align: int = DEFAULT_ALIGN) -> str:
    """The C arrays' flash footprint of manifest tensor entries, alignment included, and the largest layers.

    >>> flash_line([{"layer": "d", "nbytes": 20}, {"layer": "e", "nbytes": 4}])
    'C arrays: 48 bytes of flash (16-byte alignment); largest layers: d 32, e 16'
    """
    per_layer = flash_by_layer(((t["layer"], t["nbytes"]) for t in entries), align)
    largest = sorted(per_layer.items(), key=lambda item: -item[1])[:3]
    return (f"C arrays: {sum(per_layer.values()):,} bytes of flash ({align}-byte alignment); largest layers: "
            + ", ".join(f"{name} {size:,}" for name, size in largest))


def summary_lines(manifest: Mapping, folder: str) -> list[str]:
    """What the export's summary says of its C output: the flash the arrays take and, with ``--c-inference``, the
    forward pass."""
    options = manifest["options"]["c"]
    lines = [flash_line(manifest["tensors"], int(options.get("align", DEFAULT_ALIGN)))]
    if "inference" in manifest:
        figures = manifest["inference"]
        if "activations" in figures:
            lines.append(f"full-integer int8: {options['prefix']}_predict_int8, activation ranges "
                         + ranges_origin(figures))
        lines.append(f"forward pass: {options['prefix']}_predict, {figures['input_size']:,} floats in, "
                     f"{figures['output_size']:,} out, arena {figures['arena_bytes']:,} bytes; "
                     f"`keras-weights verify {folder} --predict MODEL` runs it against Keras")
    return lines


def ranges_origin(inference: Mapping) -> str:
    """Where a full-integer int8 export's activation ranges came from, in words.

    >>> ranges_origin({"calibration_samples": 16, "activations": [{"name": "d"}]})
    'calibrated on 16 samples'
    >>> ranges_origin({"calibration_samples": 0, "activations": [{"name": "d", "source": "training"}]})
    'from quantization-aware training'
    """
    trained = sum(1 for a in inference["activations"] if a.get("source") == "training")
    calibrated = f"calibrated on {inference.get('calibration_samples', 0)} samples"
    if not trained:
        return calibrated
    if trained == len(inference["activations"]):
        return "from quantization-aware training"
    return f"from quantization-aware training ({trained} values), the others {calibrated}"


def effective(stem: str, options: Mapping[str, object]) -> dict:
    """The options as used for ``stem``: the prefix derived from it when none was given (the manifest records
    the prefix the identifiers really have)."""
    return {**options, "prefix": prefix_for(stem, str(options.get("prefix", "")))}


def validate(options: Mapping[str, object]) -> None:
    """Check option values (their types are checked by the registry)."""
    if options.get("arrays", "flat") not in ARRAY_STYLES:
        raise UsageError(f"C arrays must be one of {', '.join(ARRAY_STYLES)}. Received: arrays={options['arrays']!r}")
    align = options.get("align", DEFAULT_ALIGN)
    if align < 1 or align & (align - 1) or align > MAX_ALIGN:
        raise UsageError(f"C alignment must be a power of two from 1 to {MAX_ALIGN}. Received: align={align}",
                         hint="Give [[--c-align|options={'c': {'align': ...}}]] 1, 2, 4, 8, 16 (the default), 32, ... bytes.")
    if options.get("prefix"):
        prefix_for("", options["prefix"])
    if options.get("input_shape"):
        codegen.parse_input_shapes(options["input_shape"])
        if not options.get("inference"):
            raise UsageError("--c-input-shape is for --c-inference", hint="Add --c-inference, or drop --c-input-shape.")


def write(tensors: Sequence[Tensor], path: Path, *, info: ExportInfo | None = None, prefix: str = "",
          header_only: bool = False, arrays: str = "flat", align: int = 16, inference: bool = False,
          input_shape: str = "", progress: Callable[[Tensor], None] | None = None) -> dict[str, str]:
    """Write the header at ``path`` (``<stem>.h``) and, unless ``header_only``, the source beside it;
    return each file's sha256."""
    validate({"prefix": prefix, "arrays": arrays, "align": align})
    unit = Unit(tensors, prefix_for(Path(path).stem, prefix), Path(path).stem, info, arrays, align, header_only,
                 inference, input_shape)
    unit.progress = progress
    return emit(unit, Path(path), lambda target: atomic.HashedOutput(target, text=True))


def rendered_sha256(tensors: Sequence[Tensor], path: Path, *, info: ExportInfo | None = None, prefix: str = "",
                    header_only: bool = False, arrays: str = "flat", align: int = 16,
                    inference: bool = False, input_shape: str = "") -> dict[str, str]:
    """The sha256 of each file :func:`write` would write for these tensors, without writing anything."""
    unit = Unit(tensors, prefix_for(Path(path).stem, prefix), Path(path).stem, info, arrays, align, header_only,
                 inference, input_shape)
    return emit(unit, Path(path), lambda _: atomic.HashedOutput(Path(os.devnull), text=True))


MANIFEST_BLOCKS = ("inference",)  # what prepare() adds to the manifest


def manifest_problems(manifest: Mapping, options: Mapping[str, object]) -> list[str]:
    """What a (foreign) manifest says of the C output that an export of it cannot hold: the forward pass's block
    exactly when the inference option is on."""
    if bool(options.get("inference")) != ("inference" in manifest):
        return ["the inference block and the C option that writes it disagree"]
    activations = (manifest.get("inference") or {}).get("activations")
    if activations is None:
        return []
    problems = [f"the int8 parameters of '{a['name'][:100]}' are not what its range [{a['min']}, {a['max']}] gives"
                for a in activations if _parameters_of(a) != (a["scale"], a["zero_point"])]
    if len({a["name"] for a in activations}) != len(activations):
        problems.append("the inference block names a traced value twice")
    if manifest.get("options", {}).get("quantize") != "int8":
        problems.append("the inference block holds int8 activations, and the export is not --quantize int8")
    return problems[:5]


def _parameters_of(activation: Mapping) -> tuple[float, int] | None:
    try:
        return integer.activation_parameters(activation["min"], activation["max"])
    except (ValueError, OverflowError, ZeroDivisionError):
        return None


def check_layout(options: Mapping[str, object], layout: str) -> None:
    """Before the model is read: the forward pass runs the arrays in Keras's layout only."""
    if options.get("inference") and layout != "keras":
        raise UsageError(f"--c-inference runs the arrays in Keras's layout, not --layout {layout}",
                         hint="Drop --layout (or export the C forward pass and the other layout separately).")


def prepare(model, tensors: Sequence[Tensor], stem: str, options: Mapping[str, object], calibration: Any = None
            ) -> tuple[dict, object] | None:
    """What the C output computes before anything is written: with ``inference``, the forward pass (an unsupported
    model is refused now, with nothing written), as (the manifest's ``inference`` block, the program for
    :func:`write`); None without it. With ``calibration`` (samples, see ``c_calibration.samples_for``), the
    full-integer int8 pass, its activations' ranges and parameters in the block."""
    if not options.get("inference"):
        return None
    if model.config is None:
        raise InputInvalid(f"{model.source.file or model.name}: --c-inference needs the model's configuration "
                           "(its layers and how they connect), which this input does not hold",
                           hint="Export a model saved whole (model.save), or leave out --c-inference.")
    graph_json = graph.to_json(graph.from_config(model.config))
    names = keys(tensors, stem, prefix=str(options["prefix"]))
    info, shape, activations = ExportInfo(model, graph=graph_json), str(options.get("input_shape", "")), None
    found = graph.from_json(graph_json)
    trained = c_calibration.trained_ranges(found, tensors) if _int8_weights(tensors) else {}
    samples: list = []
    if calibration is not None or trained:  # full-integer int8: the ranges trained, else calibrated
        if calibration is not None:
            samples = c_calibration.samples_for(calibration, list(found.inputs), codegen.input_shapes(found, shape))
        ranges = c_calibration.ranges(model.tensors, str(options["prefix"]), info, shape, list(found.inputs), samples,
                                      c_calibration.default_compiler()) if samples else {}  # on the float weights
        activations = [_activation(name, low, high, name in trained)
                       for name, (low, high) in {**ranges, **trained}.items()]
        info = dataclasses.replace(info, activations={a["name"]: (a["scale"], a["zero_point"]) for a in activations})
    program = inference_program(tensors, names, str(options["prefix"]), info, shape,
                                nested=options.get("arrays") == "nested")
    block = {"graph": graph_json, "arena_bytes": program.arena_bytes, "input_size": program.input_size,
             "output_size": program.output_size}
    if activations is not None:
        block["calibration_samples"] = len(samples[0]) if samples else 0
        block["activations"] = activations
    return {"inference": block}, program


def _int8_weights(tensors: Sequence[Tensor]) -> bool:
    """Whether the export stores int8 weights (``--quantize int8``), so its forward pass may run in int8."""
    return any(t.quantization is not None and t.quantization.scheme == "int8_symmetric" for t in tensors)


def _activation(name: str, low: float, high: float, trained: bool) -> dict:
    """A value's entry in the manifest's ``activations``: its range, the int8 parameters that range gives, and
    where the range came from where it was not calibrated (``"source": "training"``)."""
    scale, zero_point = integer.activation_parameters(low, high)
    return {"name": name, "min": low, "max": high, "scale": scale, "zero_point": zero_point,
            **({"source": "training"} if trained else {})}


def text_problems(paths: Sequence[Path], manifest: Mapping, tensors: Sequence[Tensor], info: ExportInfo) -> list[str]:
    """Whether the files are exactly the text :func:`write` writes for the values they hold (``tensors``, rebuilt
    from the manifest with the arrays read back) and the options the manifest records: anything else (code added,
    lines changed) is not ours."""
    header = next(p for p in paths if p.suffix == ".h")
    expected = rendered_sha256(tensors, header, info=info, **manifest["options"].get("c", {}))
    return [f"{p.name}: not the text keras-weights {__version__} writes for these values and options "
            f"({_why_other_text(info.producer_version)}); it will not be compiled"
            for p in paths if atomic.read_sha256(p) != expected.get(p.name)]


def _why_other_text(producer: str | None) -> str:
    """Why a C file may differ from the text this version writes: another version wrote it (the forward pass's
    kernels change between versions), else it was edited or is foreign.

    >>> _why_other_text(__version__)
    'edited or foreign C'
    >>> _why_other_text("0.0.9").split(":")[0]
    'the manifest says keras-weights 0.0.9 wrote it, whose C may differ'
    """
    if not producer or producer == __version__:
        return "edited or foreign C"
    return (f"the manifest says keras-weights {printable(str(producer)[:40])} wrote it, whose C may differ: export "
            "again with this version, or verify with that one; else edited or foreign C")


@contextlib.contextmanager
def regenerated(manifest: Mapping, tensors: Sequence[Tensor], info: ExportInfo) -> Iterator[list[Path]]:
    """The export's C files written again by :func:`write`, from the values read back (``tensors``) and the
    manifest's validated options, into a fresh private folder (mode 0700, removed afterwards): what ``verify
    --compile`` and ``--predict`` build. The export folder itself never reaches a compiler, so nothing in it (a
    header named like a system header, a file changed after it was checked) can take part in a build.

    >>> import json
    >>> from converter import manifest as manifests
    >>> from converter.formats import c_parse
    >>> manifest = json.loads(open("fixtures/golden/manifest.json").read())
    >>> tensors = manifests.tensor_records(manifest, "c", c_parse.read("fixtures/golden/seed_mlp.c"))
    >>> with regenerated(manifest, tensors, manifests.export_info(manifest)) as paths:
    ...     [p.name for p in paths], paths[0].read_bytes() == open("fixtures/golden/seed_mlp.h", "rb").read()
    (['seed_mlp.h', 'seed_mlp.c'], True)
    """
    names = [entry["path"] for entry in manifest["files"] if entry["format"] == "c"]
    header = next(name for name in names if name.endswith(".h"))
    with tempfile.TemporaryDirectory(prefix="keras-weights-c-") as work:
        write(tensors, Path(work) / header, info=info, **manifest["options"]["c"])
        yield [Path(work) / name for name in names]


def compile_problems(manifest: Mapping, tensors: Sequence[Tensor], info: ExportInfo, cc: str = "cc",
                     cflags: Sequence[str] = ()) -> list[str]:
    """Build the export's C text, regenerated from the values read back (:func:`regenerated`), with ``cc`` (run on
    the host, or compile-only with a cross compiler) and compare every array's bytes with the manifest
    (see ``c_build``)."""
    with regenerated(manifest, tensors, info) as paths:
        prefix = manifest["options"]["c"].get("prefix") or prefix_for(paths[0].stem)  # manifests before 0.3: ""
        return c_build.problems(paths, manifest, prefix, cc, cflags)
