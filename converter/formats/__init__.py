"""The format registry: every way out, written once. Nothing else branches on format names.

Every module in :data:`FORMATS` has the face :class:`Format` describes, and declares its writer
options once, as :class:`Option` records: the registry checks given options against them and the
CLI builds its ``--<format>-<option>`` flags from them. A module may also have ``validate(options)``
(checks beyond types), ``effective(stem, options)`` (options as they apply to one export, recorded in
the manifest), ``text_problems`` and ``compile_problems`` (what ``verify`` runs beyond reading back).

>>> list(FORMATS)
['npz', 'safetensors', 'parquet', 'c']
>>> by_extension(".safetensors") is FORMATS["safetensors"]
True
>>> [f"--c-{o.name.replace('_', '-')}" for o in FORMATS["c"].OPTIONS]
['--c-prefix', '--c-header-only', '--c-arrays', '--c-align', '--c-inference', '--c-input-shape']
"""
from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from typing import Any

from ..errors import UsageError
from . import c, npz, parquet, safetensors
from .base import Format, Option, declared_fits

__all__ = ["FORMATS", "EXTENSIONS", "Format", "Option", "get", "parse", "options", "by_extension", "declared_fits",
           "flash_alignment", "flash_by_layer", "flash_line", "flash_of_export", "summary_lines"]


FORMATS: dict[str, Format] = {"npz": npz, "safetensors": safetensors, "parquet": parquet, "c": c}
READ_ORDER = ("safetensors", "npz", "parquet", "c")  # the file an export's weights are read back from, first found
EXTENSIONS: dict[str, str] = {ext: name for name, module in FORMATS.items() for ext in module.EXTENSIONS}


def get(name: str) -> Format:
    """The module for a format name."""
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r}", hint=f"Choose from: {', '.join(FORMATS)}.") from None


def parse(names: str | Sequence[str] | None) -> list[str]:
    """Format names from a comma-separated string or a list, validated, in registry order.

    >>> parse("parquet,NPZ"), parse(None)
    (['npz', 'parquet'], ['npz', 'safetensors', 'parquet', 'c'])
    """
    if names is None:
        return list(FORMATS)
    chosen = [n.strip().lower() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    if not chosen:
        raise UsageError("no output format given", hint=f"Choose from: {', '.join(FORMATS)}.")
    for name in chosen:
        get(name)
    return [name for name in FORMATS if name in chosen]


def options(name: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """A format's writer options: defaults overlaid with ``given``, each checked against its declaration.

    >>> options("c", {"header_only": True})["header_only"], options("npz", None)
    (True, {})
    """
    declared = {option.name: option for option in get(name).OPTIONS}
    given = dict(given or {})
    unknown = sorted(set(given) - set(declared))
    if unknown:
        raise UsageError(f"unknown {name} option(s) {', '.join(unknown)}. Received: {given}",
                         hint=f"{name} options: {', '.join(declared) or 'none'}.")
    for key, value in given.items():
        _check(name, declared[key], value)
    chosen = {key: option.default for key, option in declared.items()} | given
    if hasattr(get(name), "validate"):
        get(name).validate(chosen)
    return chosen


def recorded(name: str, chosen: Mapping[str, Any]) -> dict[str, Any]:
    """The options as the manifest records them: an option added after schema 1.0 only when it differs from
    its default, so that exports which do not use it stay byte-identical to what earlier versions wrote.

    >>> sorted(recorded("c", options("c", None))), recorded("c", options("c", {"inference": True}))["inference"]
    (['align', 'arrays', 'header_only', 'prefix'], True)
    """
    declared = {option.name: option for option in get(name).OPTIONS}
    return {key: value for key, value in chosen.items()
            if key not in declared or declared[key].since == "1.0" or value != declared[key].default}


def _check(format_name: str, option: Option, value: Any) -> None:
    kind = type(option.default)
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise UsageError(f"{format_name} option {option.name} must be {kind.__name__}. Received: {option.name}={value!r}")
    if option.choices and value not in option.choices:
        raise UsageError(f"{format_name} option {option.name} must be one of {', '.join(option.choices)}. "
                         f"Received: {option.name}={value!r}")


def flash_alignment(options: Mapping[str, Any]) -> int:
    """The alignment of the C arrays under an export's options (a manifest's ``options``): C's own, or its default."""
    return int((options.get("c") or {}).get("align", c.DEFAULT_ALIGN))


def flash_by_layer(entries: Iterable[tuple[str, int]], options: Mapping[str, Any] | None = None) -> dict[str, int]:
    """The flash the C arrays of (layer, tensor bytes) pairs take per layer, alignment included, under ``options``.

    >>> flash_by_layer([("d", 20), ("d", 4)]), flash_by_layer([("d", 20), ("d", 4)], {"c": {"align": 4}})
    ({'d': 48}, {'d': 24})
    """
    return c.flash_by_layer(entries, flash_alignment(options or {}))


def flash_line(manifest: Mapping[str, Any]) -> str:
    """One line: the C arrays' flash footprint under the manifest's options, and the largest layers."""
    return c.flash_line(manifest["tensors"], flash_alignment(manifest["options"]))


def flash_of_export(manifest: Mapping[str, Any]) -> dict[str, int] | None:
    """The flash per layer of an export's C arrays, or None when it wrote none."""
    if not any(entry["format"] == "c" for entry in manifest["files"]):
        return None
    return flash_by_layer(((t["layer"], t["nbytes"]) for t in manifest["tensors"]), manifest["options"])


def summary_lines(manifest: Mapping[str, Any], folder: str) -> list[str]:
    """What each written format adds to the export's summary (C: its flash, its forward pass), from its hook."""
    written = dict.fromkeys(entry["format"] for entry in manifest["files"])
    return [line for name in written if hasattr(get(name), "summary_lines") for line in get(name).summary_lines(manifest, folder)]


def by_extension(suffix: str) -> Format:
    """The module that writes files with this extension."""
    try:
        return FORMATS[EXTENSIONS[suffix.lower()]]
    except KeyError:
        raise UsageError(f"no format writes {suffix or 'extension-less'} files",
                         hint=f"Known extensions: {', '.join(EXTENSIONS)}.") from None
