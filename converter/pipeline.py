"""The export pipeline behind ``converter.export``: check the arguments and the output folder, read the model,
apply the layout and quantization, let each format prepare, write every file into a staging folder and publish
them with the manifest last (all or nothing)."""
from __future__ import annotations

import json
import logging
import os
import re
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np

from . import atomic, layouts, manifest as manifests, memory, quantize as quantization, readers
from . import formats as registry  # `formats` is export()'s argument name
from .cgen.signature import model_signature
from .errors import NonFiniteValues, OutputError, OverBudget, QuantizationError, UsageError
from .tensors import ExportInfo, Tensor, sha256_of

log = logging.getLogger("converter")


def report_non_finite(tensors: Sequence[Tensor], fail: bool = False, where: str = "the model") -> None:
    """Warn about (or, with ``fail``, refuse) tensors holding NaN or infinity; one log line per tensor."""
    found = [(t, *t.non_finite) for t in tensors if any(t.non_finite[:2])]
    for tensor, nan, inf, first in found:
        log.warning("%s: tensor %s holds %d NaN and %d infinite values (first at index %s)", where, tensor.name, nan, inf,
                    list(first))
    if found and fail:
        names = ", ".join(t.name for t, *_ in found[:5]) + (" ..." if len(found) > 5 else "")
        raise NonFiniteValues(f"{len(found)} tensors of {where} hold NaN or infinite values: {names}")


def read(source: Any, reader: str, trust_code: bool, allow_sparse: bool) -> Any:
    """The model's records (``readers.read_model``), with its input and output shapes worked out from its
    configuration where the reader leaves them unknown (the direct HDF5 reader builds no model): what the
    manifest states does not depend on the reader."""
    model = readers.read_model(source, reader, trust_code, allow_sparse)
    if model.inputs is not None and model.outputs is not None:
        return model
    inputs, outputs = model_signature(model)
    return replace(model, inputs=model.inputs if model.inputs is not None else inputs,
                   outputs=model.outputs if model.outputs is not None else outputs)


def hash_and_scan(tensors: Sequence[Tensor]) -> None:
    """Compute every tensor's sha256 and NaN/Inf counts ahead of use, on two threads: hashlib and numpy
    release the GIL, so checksumming and scanning run side by side (both are cached on the tensor)."""
    if sum(t.nbytes for t in tensors) < 2**20:
        return  # not worth the threads
    jobs = [job for t in tensors for job in (lambda t=t: t.sha256, lambda t=t: t.non_finite)]
    with ThreadPoolExecutor(2) as pool:
        for _ in pool.map(lambda job: job(), jobs):
            pass


class BackgroundDigests:
    """Every tensor's sha256 computed on worker threads (one per core but one) while the files are written
    (hashlib releases the GIL, and the files' own sha256 is computed as they are written, on another): the export
    is bound by writing, not by hashing the tensors first. :meth:`wait` before anything reads a ``sha256``."""

    def __init__(self, tensors: Sequence[Tensor]) -> None:
        pending = [t for t in tensors if "sha256" not in vars(t)]
        small = sum(t.nbytes for t in pending) < 2**20  # not worth a thread
        workers = max(1, min(8, (os.cpu_count() or 2) - 1))  # a core left for the writer (and its file's digest)
        self._pool = None if small or not pending else ThreadPoolExecutor(workers, thread_name_prefix="keras-weights-digest")
        self._jobs = [self._pool.submit(_digest, t) for t in pending] if self._pool else []

    def wait(self) -> None:
        try:
            for job in self._jobs:
                job.result()
        finally:
            self.close()

    def close(self) -> None:
        """Stop: the digests not begun are dropped (a failed export needs none)."""
        if self._pool is not None:
            self._pool.shutdown(cancel_futures=True)
            self._pool = None


def _digest(tensor: Tensor) -> None:
    vars(tensor)["sha256"] = sha256_of(tensor.array)  # what the cached property would hold


def run_export(source: Any, out_dir: Path, format_names: list[str], force: bool, stem: str | None, layout: str,
            options: Mapping[str, Mapping[str, Any]] | None, reader: str, fail_on_non_finite: bool,
            trust_code: bool, allow_sparse: bool, bounds: Bounds,
            progress: Callable[[str, int, int, int, int], None] | None) -> dict:
    chosen = _options(format_names, layout, options)
    bounds.check()
    for name in format_names:  # what a format refuses of the layout, before the model is read
        module = registry.get(name)
        if hasattr(module, "check_layout"):
            module.check_layout(chosen[name], layout)
    if bounds.quantize:
        chosen["quantize"] = bounds.quantize
    if bounds.calibration is not None and not ("c" in format_names and chosen["c"].get("inference")):
        raise UsageError("calibration is for the full-integer int8 forward pass, which the C format writes",
                         hint="Add [[-f c --c-inference|formats=['c'], options={'c': {'inference': True}}]].")
    folder = _output_folder(out_dir, stem)
    _refuse_output_inside_input(source, folder)
    stem = stem or stem_of(source)
    for name in format_names:  # options as they apply to this stem (the C prefix derived from it)
        module = registry.get(name)
        chosen[name] = module.effective(stem, chosen[name]) if hasattr(module, "effective") else chosen[name]
    names = {name: registry.get(name).files(stem, **chosen[name]) for name in format_names}
    outputs = [*(n for group in names.values() for n in group), manifests.FILE_NAME]
    _refuse_overwrite(folder, outputs, force)  # before the model is read: a refusal costs no load
    model = read(source, reader, trust_code, allow_sparse)
    report_non_finite(model.tensors, fail_on_non_finite, model.source.file or model.name)
    tensors = quantization.apply(layouts.apply(model.tensors, layout, model), bounds.quantize, model.layers)
    hashing = BackgroundDigests(tensors)
    try:
        return _checked_and_written(model, tensors, hashing, folder, outputs, names, format_names, stem, layout,
                                    chosen, force, bounds, progress)
    finally:
        hashing.close()


def _checked_and_written(model: Any, tensors: Sequence[Tensor], hashing: BackgroundDigests, folder: Path,
                         outputs: list[str], names: dict, format_names: list[str], stem: str, layout: str,
                         chosen: dict, force: bool, bounds: Bounds,
                         progress: Callable[[str, int, int, int, int], None] | None) -> dict:
    """Bounds, each format's preparation, then every file written and published with the manifest last; the
    tensors' digests are awaited only where a format embeds the manifest (Parquet) and for the manifest itself."""
    try:
        bounds.enforce(tensors, chosen)
    except QuantizationError as error:  # the CLI shows the table of what fell short
        hashing.wait()
        error.manifest = manifests.build(model, tensors, options={"layout": layout, "quantize": bounds.quantize})
        raise
    prepared = _prepare(model, tensors, stem, format_names, chosen, bounds.calibration)  # refuses what a format
    # cannot write, before any write
    _create(folder)
    for name in atomic.remove_stale(folder):
        log.warning("removed %s, left in %s by an export that was killed", name, folder)
    blocks = {key: value for block, _ in prepared.values() for key, value in block.items()}

    def description() -> dict:  # the manifest without its file list, once every tensor's digest is in
        hashing.wait()
        return manifests.build(model, tensors, stem, chosen, blocks.get("inference"))

    # a format that embeds the manifest (Parquet) needs it before writing; otherwise it is built after the writes
    embedded = description() if any(getattr(registry.get(name), "EMBEDS_MANIFEST", False) for name in format_names) \
        else None
    info = ExportInfo(model, layout, json.dumps(embedded, sort_keys=True, allow_nan=False) if embedded else "",
                      graph=(blocks.get("inference") or {}).get("graph"),
                      prepared={name: ready for name, (_, ready) in prepared.items()})  # the C program, made once
    files: list[dict] = []
    # All or nothing: every file is written into a staging folder and moved into place only when all
    # were written; the manifest comes last. A failure leaves earlier outputs untouched.
    state = f"no file in {folder} was written or changed"
    try:
        with atomic.staging_folder(folder) as staging:
            for name in format_names:
                digests = registry.get(name).write(tensors, staging / names[name][0], info=info,
                                                   progress=_tracker(name, tensors, progress), **chosen[name])
                files += [_file_entry(name, file_name, staging / file_name, digests[file_name])
                          for file_name in names[name]]
                memory.release_free_memory()  # what a writer's threads freed, before the next writer runs
            manifest = {**(embedded or description()), "files": files}
            (staging / manifests.FILE_NAME).write_text(manifests.dumps(manifest), "utf-8")
            replaced = [*outputs, *_previous_outputs(folder)] if force else []
            atomic.publish(staging, [entry["path"] for entry in files] + [manifests.FILE_NAME], folder, replaced)
    except FileExistsError as error:
        raise OutputError(f"{Path(error.filename).name} {error.strerror} in {folder}",
                          hint="Pass [[--force|force=True]] to overwrite, or export into another folder.",
                          outputs=state) from None
    except OSError as error:  # disk full, file-size limit, permissions: no partial file is left
        raise OutputError(f"cannot write the export to {folder}: {error.strerror or error}",
                          hint="Free space or choose another folder.", outputs=state) from None
    return manifest


def integer_inference(model: Any, tensors: Sequence[Tensor], stem: str, calibration: Any) -> dict:
    """The C format's ``inference`` block of a full-integer int8 forward pass calibrated on ``calibration``, without
    writing anything (``inspect --calibration``)."""
    module = registry.get("c")
    chosen = module.effective(stem, registry.options("c", {"inference": True}))
    blocks, _ = module.prepare(model, tensors, stem, chosen, calibration)
    return blocks["inference"]


def _prepare(model: Any, tensors: Sequence[Tensor], stem: str, format_names: list[str], chosen: dict,
             calibration: Any) -> dict:
    """Each format's ``prepare`` hook, where it has one: ``{format: (manifest blocks, what its writer takes)}``."""
    prepared = {}
    for name in format_names:
        module = registry.get(name)
        result = module.prepare(model, tensors, stem, chosen[name], calibration) if hasattr(module, "prepare") else None
        if result is not None:
            prepared[name] = result
    return prepared


class Bounds:
    """What a quantized or size-bounded export must hold before anything is written."""

    def __init__(self, quantize: str | None, min_snr: float | None, max_bytes: int | None,
                 calibration: Any = None) -> None:
        self.quantize, self.min_snr, self.max_bytes = quantize, min_snr, max_bytes
        self.calibration = calibration  # full-integer int8: the samples (or their file) activations are ranged on

    def check(self) -> None:
        """The arguments themselves, before the model is read."""
        quantization.validate_scheme(self.quantize)
        if self.min_snr is not None:
            if not isinstance(self.min_snr, (int, float)) or isinstance(self.min_snr, bool) or not np.isfinite(self.min_snr):
                raise UsageError(f"min_snr must be a number of dB. Received: min_snr={self.min_snr!r}")
            if not self.quantize:
                raise UsageError("min_snr bounds the error of quantization, and no quantization was asked for",
                                 hint="Add [[--quantize int8|quantize='int8']] (or float16, bfloat16), or drop [[--min-snr|min_snr]].")
        if self.calibration is not None and self.quantize != "int8":
            raise UsageError("calibration sets the ranges of full-integer int8, and int8 was not asked for",
                             hint="Add [[--quantize int8|quantize='int8']], or drop [[--calibration|calibration]].")
        if self.max_bytes is not None and (not isinstance(self.max_bytes, int) or isinstance(self.max_bytes, bool)
                                           or self.max_bytes < 1):
            raise UsageError(f"max_bytes must be a positive number of bytes. Received: max_bytes={self.max_bytes!r}")

    def enforce(self, tensors: Sequence[Tensor], options: Mapping[str, Any]) -> None:
        """Refuse tensors below ``min_snr`` and C arrays above ``max_bytes``, naming what is over."""
        if self.min_snr is not None:
            low = [t for t in tensors if t.quantization and t.quantization.snr_db is not None
                   and t.quantization.snr_db < self.min_snr]
            if low:
                listed = ", ".join(f"{t.name} ({t.quantization.snr_db:.1f} dB)" for t in low[:5]) + (" ..." if len(low) > 5 else "")
                raise QuantizationError(f"{len(low)} tensors fall below --min-snr {self.min_snr:g} dB with "
                                        f"{self.quantize}: {listed}",
                                        hint=_wider_hint(self.quantize))
        if self.max_bytes is not None:
            per_layer = registry.flash_by_layer(((t.layer, t.nbytes) for t in tensors), options)
            align = registry.flash_alignment(options)
            total = sum(per_layer.values())
            if total > self.max_bytes:
                largest = sorted(per_layer.items(), key=lambda item: -item[1])[:3]
                raise OverBudget(
                    f"the weights need {total:,} bytes as C arrays ({align}-byte alignment included), "
                    f"{total - self.max_bytes:,} more than --max-bytes {self.max_bytes:,}; largest layers: "
                    + ", ".join(f"{name} {size:,}" for name, size in largest),
                    hint=_smaller_hint(self.quantize))


def _wider_hint(quantize: str) -> str:
    """Under --min-snr: the types that keep more of the values than ``quantize`` (float16 has 11 significant bits,
    bfloat16 8, int8 at most 8 per channel).

    >>> _wider_hint("float16"), _wider_hint("int8")
    ('Lower --min-snr, or export without --quantize (exact).', 'Lower --min-snr, or use a wider type (--quantize float16, or no --quantize).')
    """
    wider = {"int8": ["float16"], "bfloat16": ["float16"]}.get(quantize, [])
    if not wider:
        return "Lower --min-snr, or export without --quantize (exact)."
    return f"Lower --min-snr, or use a wider type (--quantize {', '.join(wider)}, or no --quantize)."


def _smaller_hint(quantize: str | None) -> str:
    """Over --max-bytes: a smaller type where there is one; int8 is the smallest keras-weights writes."""
    if quantize == "int8":
        return "int8 is the smallest type keras-weights writes: make the model smaller, or raise --max-bytes."
    if quantize in ("float16", "bfloat16"):
        return "Use --quantize int8 (half of 16-bit floats), or make the model smaller."
    return "Quantize (--quantize int8 stores a quarter of float32), or make the model smaller."


def _previous_outputs(folder: Path) -> list[str]:
    """The files the export already in ``folder`` lists (plain names only): ``--force`` replaces that export
    whole, so a file it wrote that this one does not (a format left out now) goes too."""
    try:
        previous = json.loads((folder / manifests.FILE_NAME).read_text("utf-8"))
        listed = [entry["path"] for entry in previous["files"]]
    except (OSError, ValueError, KeyError, TypeError, RecursionError):
        return []
    return [name for name in listed if isinstance(name, str) and name == Path(name).name and not name.startswith(".")]


def _tracker(format_name: str, tensors: Sequence[Tensor], progress: Callable[[str, int, int, int, int], None] | None):
    """A per-tensor callback for a writer that reports running tensor and byte totals to ``progress``."""
    if progress is None:
        return None
    total, done = sum(t.nbytes for t in tensors), [0, 0]

    def written(tensor: Tensor) -> None:
        done[0], done[1] = done[0] + 1, done[1] + tensor.nbytes
        progress(format_name, done[0], len(tensors), done[1], total)

    progress(format_name, 0, len(tensors), 0, total)
    return written


def _options(format_names: list[str], layout: str, given: Mapping[str, Mapping[str, Any]] | None) -> dict:
    """``{"layout": ..., format: {option: value}}`` for the chosen formats, every value checked."""
    given = dict(given or {})
    stray = sorted(set(given) - set(format_names))
    if stray:
        raise UsageError(f"options given for formats that are not written: {', '.join(stray)}",
                         hint=f"Add them to the formats, or drop their options. Formats: {', '.join(format_names)}.")
    return {"layout": layouts.validate_name(layout), **{name: registry.options(name, given.get(name)) for name in format_names}}


def _output_folder(out_dir: str | os.PathLike, stem: str | None) -> Path:
    """Check the output arguments before any work; the folder itself is made only once there is output."""
    folder = Path(out_dir)
    if folder.exists() and not folder.is_dir():
        raise OutputError(f"output path {folder} exists and is not a folder", hint="Pass a folder with -o.")
    if stem is not None and not re.fullmatch(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", stem):
        raise UsageError(f"stem must be a plain file name of letters, digits, '_', '.' and '-'. Received: stem={stem!r}")
    return folder


def _refuse_output_inside_input(source: Any, folder: Path) -> None:
    """An export must never write into the model it reads (a SavedModel folder, or the file itself)."""
    if readers.is_model(source) or not isinstance(source, (str, os.PathLike)) or "://" in os.fspath(source):
        return
    source_path, target = Path(source).resolve(), folder.resolve()
    if target == source_path or source_path in target.parents:
        raise OutputError(f"the output folder {folder} is the input or inside it. Received: model={source}",
                          hint="Choose an output folder outside the model.")


def _create(folder: Path) -> None:
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as error:
        raise OutputError(f"cannot create output folder {folder}: {error.strerror}", hint="Choose a writable folder.") from None


def _refuse_overwrite(folder: Path, names: Sequence[str], force: bool) -> None:
    existing = [name for name in names if os.path.lexists(folder / name)]  # a dangling link counts too
    if existing and not force:
        verb = "already exists" if len(existing) == 1 else "already exist"
        raise OutputError(f"{', '.join(existing)} {verb} in {folder}",
                          hint="Pass [[--force|force=True]] to overwrite, or choose another output folder.")


def stem_of(source: Any) -> str:
    """Output file stem: the input's file name without its model suffix (``m.weights.h5`` gives ``m``), or an
    in-memory model's name, made a plain file name (letters, digits, ``_``, ``.``, ``-``; never starting
    with ``-`` or ``.``).

    >>> stem_of("models/tiny_cnn.weights.h5"), stem_of("-rf.keras"), stem_of("saved/")
    ('tiny_cnn', 'rf', 'saved')
    """
    if readers.is_model(source):
        base = str(source.name)
    else:
        base = Path(os.fspath(source)).name
        suffixes = readers.inputs.MODEL_SUFFIXES
        base = next((base[:-len(s)] for s in suffixes if base.lower().endswith(s) and len(base) > len(s)), base)
    return atomic.safe_file_name(base, "weights").lstrip("-") or "weights"


def _file_entry(format_name: str, name: str, written: Path, sha256: str) -> dict:
    return {"format": format_name, "path": name, "bytes": written.stat().st_size, "sha256": sha256}
