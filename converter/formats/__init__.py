"""The format registry: every way out, written once. Nothing else branches on format names.

Each module has the same face:

- ``EXTENSIONS``: the file extensions it writes (the first names the main file);
- ``OPTIONS``: its writer options and their defaults (validated here, once; a module may add
  ``validate(options)`` for checks beyond types);
- ``files(stem, **options)``: the names of the files one export writes;
- ``keys(tensors, **options)``: the key each tensor gets in that format (recorded in the manifest);
- ``write(tensors, path, *, manifest=None, progress=None, **options)``: write ``files(...)`` beside
  ``path``, calling ``progress(tensor)`` as each tensor's data is written;
- ``read(path)``: ``{key: array}`` for every tensor held in that file.

>>> list(FORMATS)
['npz', 'safetensors', 'parquet', 'c']
>>> by_extension(".safetensors") is FORMATS["safetensors"]
True
"""
from __future__ import annotations

from collections.abc import Mapping
from types import ModuleType
from typing import Any

from ..errors import UsageError
from . import c, npz, parquet, safetensors

FORMATS: dict[str, ModuleType] = {"npz": npz, "safetensors": safetensors, "parquet": parquet, "c": c}
EXTENSIONS: dict[str, str] = {ext: name for name, module in FORMATS.items() for ext in module.EXTENSIONS}


def get(name: str) -> ModuleType:
    """The module for a format name."""
    try:
        return FORMATS[name]
    except KeyError:
        raise UsageError(f"unknown format {name!r}. Received: format={name}",
                         hint=f"Choose from: {', '.join(FORMATS)}.") from None


def parse(names: str | list[str] | tuple[str, ...] | None) -> list[str]:
    """Format names from a comma-separated string or a list, validated, in registry order.

    >>> parse("parquet,npz"), parse(None)
    (['npz', 'parquet'], ['npz', 'safetensors', 'parquet', 'c'])
    """
    if names is None:
        return list(FORMATS)
    chosen = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    if not chosen:
        raise UsageError("no output format given", hint=f"Choose from: {', '.join(FORMATS)}.")
    for name in chosen:
        get(name)
    return [name for name in FORMATS if name in chosen]


def options(name: str, given: Mapping[str, Any] | None) -> dict[str, Any]:
    """A format's writer options: defaults overlaid with ``given``, each checked against its default's type.

    >>> options("c", {"header_only": True})["header_only"], options("npz", None)
    (True, {})
    """
    defaults = get(name).OPTIONS
    given = dict(given or {})
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        raise UsageError(f"unknown {name} option(s) {', '.join(unknown)}. Received: {given}",
                         hint=f"{name} options: {', '.join(defaults) or 'none'}.")
    for key, value in given.items():
        default = defaults[key]
        if default is not None and value is not None and not isinstance(value, type(default)):
            raise UsageError(f"{name} option {key} must be {type(default).__name__}. Received: {key}={value!r}")
    chosen = {**defaults, **given}
    if hasattr(get(name), "validate"):
        get(name).validate(chosen)
    return chosen


def by_extension(suffix: str) -> ModuleType:
    """The module that writes files with this extension."""
    try:
        return FORMATS[EXTENSIONS[suffix.lower()]]
    except KeyError:
        raise UsageError(
            f"no format writes {suffix or 'extension-less'} files. Received: extension={suffix!r}",
            hint=f"Known extensions: {', '.join(EXTENSIONS)}.",
        ) from None
