"""An export opened for reading: one folder, or one file an export wrote, with its validated manifest. What
``read``, ``load``, ``diff`` and ``report`` all read exports through (docs/safety.md: nothing in it is trusted).

>>> export = Export.open("fixtures/golden")
>>> export.file.name, export.layout, sorted(export.arrays())[:2]
('seed_mlp.safetensors', 'keras', ['dense/bias', 'dense/kernel'])
>>> Export.open("fixtures/golden/seed_mlp.npz").arrays()["dense/kernel"].shape
(4, 20)
"""
from __future__ import annotations

import itertools
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from . import atomic, dtypes, formats as registry, manifest as manifests, quantize, transforms
from .errors import ConverterError, InputInvalid, InputNotFound, UsageError
from .tensors import Tensor



@dataclass(frozen=True)
class Export:
    """The file the weights are read from and, when a keras-weights manifest lists it, that manifest (validated)."""

    file: Path
    manifest: dict | None

    @classmethod
    def open(cls, source: str | os.PathLike) -> Export:
        """An export folder (its preferred file: safetensors, then npz, Parquet, C) or one file an export wrote."""
        path = Path(source)
        if path.is_dir():
            manifest = manifests.load(path)
            return cls(preferred_file(path, manifest), manifest)
        if not path.is_file():
            raise InputNotFound(f"no such file or folder: {path}")
        if path.suffix.lower() not in registry.EXTENSIONS:
            raise UsageError(f"{path.name} is not an export: an export folder, or a file an export wrote "
                             "(.npz, .safetensors, .parquet, .c, .h) or a PyTorch state dict (.safetensors), is needed",
                             hint=_not_an_export_hint(path))
        manifest = manifests.beside(path)
        return cls(_with_values(path, manifest), manifest)

    @property
    def folder(self) -> Path:
        return self.file.parent

    @property
    def format(self) -> str:
        return registry.EXTENSIONS[self.file.suffix.lower()]

    @property
    def layout(self) -> str | None:
        return self.manifest["options"]["layout"] if self.manifest else None

    @property
    def quantized(self) -> str | None:
        return self.manifest["options"].get("quantize") if self.manifest else None

    def arrays(self, dequantize: bool = False) -> dict[str, np.ndarray]:
        """``{name: array}`` as the file stores them: by tensor name and real dtype where the manifest lists the
        file, else by the format's own keys. With ``dequantize``, each quantized tensor as the float32 values it
        stands for (``q * scale``, or its cast), and no scale tensors."""
        recorded = self._recorded()  # a foreign manifest's declared sizes are bounded before the file is read
        if dequantize and not recorded:
            raise UsageError(f"dequantize needs the manifest.json of the export beside {self.file.name}",
                             hint="Read the file from its export folder, or without dequantize.")
        stored = self._read_file()
        if not recorded:
            return stored
        named = {t["name"]: dtypes.restore(stored[key], t["dtype"]) for key, t in recorded if key in stored}
        return dequantized(named, [t for _, t in recorded]) if dequantize else named

    def keras_arrays(self, notes: list[str] | None = None) -> dict[str, np.ndarray]:
        """Keras name -> the Keras-layout float values the export stands for: dequantized, every recorded layout step
        undone (a tensor whose step does not fit is :class:`InputInvalid`); ``notes`` says what was done."""
        notes = [] if notes is None else notes
        arrays = self.arrays(dequantize=bool(self.quantized))
        if self.quantized:
            notes.append(f"{self.folder.name}: {self.quantized} export, compared as the values it stands for "
                         "(q * scale, or the cast)")
        if self.layout in (None, "keras"):
            return arrays
        notes.append(f"{self.folder.name}: layout {self.layout}, compared in the Keras layout (every recorded step undone)")
        stored = [_record(entry, arrays) for entry in self.manifest["tensors"] if entry["name"] in arrays
                  and not entry["name"].endswith(quantize.SCALE_SUFFIX)]
        configs = {layer["name"]: layer["config"] for layer in self.manifest["layers"]}
        shapes = {t.keras_name: _depthwise_shape(t, configs) for t in stored if "depthwise" in t.transform}
        undone = transforms.undo_layout(stored, arrays, shapes)
        misfits = [value.problem for value in undone.values() if isinstance(value, transforms.Misfit)]
        if misfits:
            raise InputInvalid(f"{self.folder.name}: its arrays do not fit what its manifest records: "
                               f"{'; '.join(misfits[:3])}",
                               hint="Run `keras-weights verify` on the export; it was edited or is damaged.")
        return {name: value for name, value in undone.items() if value is not None}

    def _read_file(self) -> dict[str, np.ndarray]:
        try:
            return registry.by_extension(self.file.suffix).read(self.file)
        except ConverterError:
            raise
        except Exception as error:  # each format's library has its own errors for damaged files
            raise InputInvalid(f"cannot read {self.file.name} as {self.format}: {type(error).__name__}: "
                               f"{' '.join(str(error).split())[:300]}",
                               hint="The file is damaged or not written by keras-weights; export again.") from None

    def _recorded(self) -> list[tuple[str, dict]]:
        """(key in this file's format, manifest tensor entry) in model order; [] without a manifest. The tensors
        declared may not take more than the format's files can hold."""
        if self.manifest is None:
            return []
        name = next(f["format"] for f in self.manifest["files"] if f["path"] == self.file.name)
        overflow = declared_overflow(self.folder, self.manifest, name)
        if overflow:
            raise InputInvalid(f"{self.file.name}: {overflow}",
                               hint="The export was edited or comes from another tool; export again.")
        return [(t["keys"][name], t) for t in self.manifest["tensors"] if name in t["keys"]]


def declared_overflow(folder: Path, manifest: dict, format_name: str) -> str | None:
    """Why the tensors a (foreign) manifest declares for one format cannot be in its files, or None when they can:
    checked before any of them is read, so that no reader allocates far beyond what the files hold."""
    declared = sum(t["nbytes"] for t in manifest["tensors"] if format_name in t["keys"])
    paths = [Path(folder) / f["path"] for f in manifest["files"] if f["format"] == format_name]
    held = sum(atomic.stored_size(p) for p in paths if p.is_file())
    if registry.declared_fits(declared, held):
        return None
    return (f"the manifest declares {declared:,} bytes of tensors, more than {format_name} files of {held:,} bytes can "
            "hold; not read")


def _with_values(path: Path, manifest: dict | None) -> Path:
    """The file that holds the values of the file given: the header of a two-file C export only declares its
    arrays, so its ``.c`` beside (listed in the same manifest) is read."""
    source = path.with_suffix(".c")
    if path.suffix.lower() == ".h" and manifest and any(entry["path"] == source.name and entry["format"] == "c"
                                                       for entry in manifest["files"]):
        return source
    return path


def preferred_file(folder: Path, manifest: dict) -> Path:
    """The file of an export the weights are read from: safetensors first, then npz, Parquet, C (the ``.c``, or
    the header of a header-only export)."""
    listed = {}
    for entry in manifest["files"]:  # for C, the .c is listed after the .h and wins
        listed[entry["format"]] = Path(folder) / entry["path"]
    for name in registry.READ_ORDER:
        if name in listed:
            return listed[name]
    raise InputInvalid(f"{folder}: the export lists no file to read weights from")


def dequantized(arrays: dict[str, np.ndarray], entries: list[dict]) -> dict[str, np.ndarray]:
    """The model's tensors as a quantized export holds them: float32 ``q * scale`` by the recorded axes."""
    scales = manifests.scale_names(entries)
    result = {}
    for entry in entries:
        name, q = entry["name"], manifests.quantization_of(entry)
        if name in scales or name not in arrays:
            continue
        if q is None:
            result[name] = arrays[name]
        elif q.scale is not None:
            result[name] = quantize.dequantize(arrays[name], _scale_of(name, arrays, q), q.axis)
        else:
            result[name] = arrays[name].astype(np.float32)
    return result


def _scale_of(name: str, arrays: dict[str, np.ndarray], q) -> np.ndarray:
    """The scale tensor of an int8 tensor, checked against what its manifest entry says (a foreign manifest's)."""
    stored, scale = arrays[name], arrays.get(q.scale)
    if scale is None or (q.axis is not None and any(a >= stored.ndim for a in q.axis)) \
            or scale.size != int(np.prod(quantize.scale_shape(stored.shape, q.axis))):
        raise InputInvalid(f"tensor {name}: its quantization entry (scale {q.scale}, axes {q.axis}) does not fit the "
                           f"stored array {list(stored.shape)}",
                           hint="The manifest was edited or is damaged; run `keras-weights verify` on the export.")
    return scale


def _record(entry: dict, arrays: dict[str, np.ndarray]) -> Tensor:
    return Tensor(entry["name"], entry["layer"], entry["role"], entry["layer_index"], entry["trainable"],
                  arrays[entry["name"]], transform=entry["transform"], keras_name=entry.get("keras_name"),
                  kind=entry.get("kind", "weight"))


def _depthwise_shape(record: Tensor, configs: dict) -> tuple[int, ...]:
    """The Keras shape of a depthwise kernel stored for torch: (k..., in, multiplier), the multiplier from the
    layer's recorded configuration."""
    stored = record.shape
    multiplier = configs.get(record.layer, {}).get("depth_multiplier", 1)
    if isinstance(multiplier, bool) or not isinstance(multiplier, int) or multiplier < 1 or stored[0] % multiplier:
        raise InputInvalid(f"{record.name}: the recorded depth_multiplier {multiplier!r} does not divide its "
                           f"{stored[0]} channels", hint="Run `keras-weights verify` on the export.")
    return (*stored[2:], stored[0] // multiplier, multiplier)


PICKLED_TORCH_SUFFIXES = (".pt", ".pth", ".bin", ".ckpt", ".pkl")
KERAS_WEIGHT_SUFFIXES = (".h5", ".hdf5", ".keras")


def _not_an_export_hint(path: Path) -> str:
    """What to do with a file that is not an export, by what its name says it is.

    >>> _not_an_export_hint(Path("model.pt")).split(":")[0]
    'A PyTorch .pt file is a pickle, which runs code when it is loaded'
    """
    suffix = path.suffix.lower()
    if suffix in PICKLED_TORCH_SUFFIXES:
        return (f"A PyTorch {suffix} file is a pickle, which runs code when it is loaded: save the state dict as "
                "safetensors instead (safetensors.torch.save_file(module.state_dict(), 'state.safetensors')) and load "
                "that file.")
    if suffix in KERAS_WEIGHT_SUFFIXES:
        return "For a Keras model or weights file, use the model's own load_weights."
    return "Export the model with `keras-weights export`, then load the folder it wrote."


def export_folder(source: object) -> Path | None:
    """The export folder ``source`` names (it holds a manifest), or None when it names a model. A folder that holds
    exports instead (what a batch export writes: one subfolder per model) is refused, naming them, rather than read
    as a model ("a folder, not a model file").
    """
    if not isinstance(source, (str, os.PathLike)) or not Path(source).is_dir():
        return None
    path = Path(source)
    if (path / manifests.FILE_NAME).is_file():
        return path
    if not (path / "saved_model.pb").is_file():
        inner = sorted(entry.name for entry in itertools.islice(path.iterdir(), MAX_LISTED_ENTRIES)
                       if (entry / manifests.FILE_NAME).is_file())
        if inner:
            shown = ", ".join(inner[:3]) + (", ..." if len(inner) > 3 else "")
            raise InputInvalid(f"{path} holds {len(inner)} exports ({shown}), one per model of a batch, not one model "
                               "or export", hint=f"Name one of them, such as {path / inner[0]}.")
    return None


MAX_LISTED_ENTRIES = 10_000  # a folder is foreign input: entries looked at for exports, at most
