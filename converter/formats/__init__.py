"""The format registry: every way out, written once. Nothing else branches on format names.

Each module has the same face: ``EXTENSION``, ``keys(tensors)`` (the key each tensor gets in that
format, recorded in the manifest), ``write(tensors, path, *, manifest)`` and ``read(path)``.

>>> list(FORMATS)
['npz', 'safetensors', 'parquet']
>>> by_extension(".safetensors") is FORMATS["safetensors"]
True
"""
from __future__ import annotations

from types import ModuleType

from ..errors import UsageError
from . import npz, parquet, safetensors

FORMATS: dict[str, ModuleType] = {"npz": npz, "safetensors": safetensors, "parquet": parquet}
EXTENSIONS: dict[str, str] = {module.EXTENSION: name for name, module in FORMATS.items()}


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
    (['npz', 'parquet'], ['npz', 'safetensors', 'parquet'])
    """
    if names is None:
        return list(FORMATS)
    chosen = [n.strip() for n in (names.split(",") if isinstance(names, str) else names) if n.strip()]
    if not chosen:
        raise UsageError("no output format given", hint=f"Choose from: {', '.join(FORMATS)}.")
    for name in chosen:
        get(name)
    return [name for name in FORMATS if name in chosen]


def by_extension(suffix: str) -> ModuleType:
    """The module that writes files with this extension."""
    try:
        return FORMATS[EXTENSIONS[suffix.lower()]]
    except KeyError:
        raise UsageError(
            f"no format writes {suffix or 'extension-less'} files. Received: extension={suffix!r}",
            hint=f"Known extensions: {', '.join(EXTENSIONS)}.",
        ) from None
