"""Exporting many models at once: one subfolder each, on every core, carrying on past failures.

>>> [p.name for p in expand(["fixtures/zoo"])][:3]
['attention.h5', 'attention.keras', 'conv_bn.h5']
"""
from __future__ import annotations

import logging
import os
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from .api import export
from .atomic import safe_file_name
from .errors import ConverterError, InputNotFound
from .naming import unique
from .readers.inputs import MODEL_SUFFIXES, is_savedmodel



@dataclass
class Outcome:
    """What happened to one model of a batch."""

    source: str
    folder: str
    ok: bool
    tensors: int = 0
    parameters: int = 0
    reader: str = ""
    code: str = ""
    message: str = ""
    cli_message: str = ""  # the message as the command line spells options (``--force``, not ``force=True``)


def expand(sources: Sequence[str | os.PathLike]) -> list[Path]:
    """Model paths from files and folders (a folder gives its model files and SavedModel folders, sorted)."""
    paths = []
    for source in sources:
        path = Path(source)
        if is_folder_of_models(path):
            found = sorted(p for p in path.iterdir() if p.suffix.lower() in MODEL_SUFFIXES and p.is_file()
                           or is_savedmodel(p))
            if not found:
                raise InputNotFound(f"no model files (.keras, .h5, SavedModel folders) in {path}")
            paths += found
        else:
            paths.append(path)
    return paths


def is_folder_of_models(source: str | os.PathLike) -> bool:
    """A folder that is not itself a SavedModel: its models make a batch."""
    path = Path(source)
    return path.is_dir() and not is_savedmodel(path)


def export_folders(folder: str | os.PathLike) -> list[Path]:
    """The export folders in ``folder``: itself when it holds a manifest, else its subfolders that do (what
    :func:`export_many` writes), else itself (so that the error names it)."""
    folder = Path(folder)
    if (folder / "manifest.json").is_file() or not folder.is_dir():
        return [folder]
    found = sorted(d for d in folder.iterdir() if d.is_dir() and (d / "manifest.json").is_file())
    return found or [folder]


def subfolders(paths: Sequence[Path]) -> list[str]:
    """One output subfolder name per model: its file name made safe, unique in the batch.

    >>> subfolders([Path("a/model.h5"), Path("b/model.h5"), Path("model.keras")])
    ['model.h5', 'model.h5_2', 'model.keras']
    """
    taken: set[str] = set()
    return [unique(safe_file_name(path.name, "model"), taken, start=2) for path in paths]


def export_many(sources: Sequence[str | os.PathLike], out_dir: str | os.PathLike, *, jobs: int | None = None,
                **options: Any) -> list[Outcome]:
    """Export each model into ``out_dir/<its file name>/`` with :func:`converter.export`'s ``options``.

    Models run in parallel worker processes (``jobs``, default: the number of cores); a model that fails
    is reported in its :class:`Outcome` and the others carry on.
    """
    paths = expand(sources)
    targets = [Path(out_dir) / name for name in subfolders(paths)]
    workers = max(1, min(jobs or os.cpu_count() or 1, len(paths)))
    import multiprocessing  # here: ~4 ms of imports that every other command would pay at start-up
    from concurrent.futures import ProcessPoolExecutor

    context = multiprocessing.get_context("spawn")  # TensorFlow does not survive fork
    with ProcessPoolExecutor(workers, mp_context=context, initializer=_quiet_worker) as pool:
        return list(pool.map(_export_one, [str(p) for p in paths], [str(t) for t in targets], [options] * len(paths)))


def _quiet_worker() -> None:
    logging.basicConfig(format="keras-weights: %(message)s")


def _export_one(source: str, folder: str, options: dict) -> Outcome:
    try:
        manifest = export(source, folder, **options)
    except ConverterError as error:
        return Outcome(source, folder, False, code=error.code, message=str(error),
                       cli_message=error.cli_message)
    except Exception as error:  # a bug in one model's export must not stop the batch
        return Outcome(source, folder, False, code="internal_error", message=f"{type(error).__name__}: {error}")
    model = manifest["model"]
    return Outcome(source, folder, True, model["tensors"], model["parameters"], manifest["source"]["reader"])
