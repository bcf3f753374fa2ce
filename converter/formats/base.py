"""The interface every format module has (:class:`Format`) and the declaration of a writer option."""
from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from ..choices import Option  # noqa: F401  (the face formats declare options with)
from ..tensors import ExportInfo, Tensor


class Format(Protocol):
    """What every format module provides."""

    EXTENSIONS: tuple[str, ...]      # the file extensions it writes (the first names the main file)
    OPTIONS: tuple[Option, ...]      # its writer options

    def files(self, stem: str, **options: Any) -> list[str]:
        """The names of the files one export writes."""

    def keys(self, tensors: Sequence[Tensor], stem: str, **options: Any) -> dict[str, str]:
        """The key each tensor gets in that format (recorded in the manifest)."""

    def write(self, tensors: Sequence[Tensor], path: Path, *, info: ExportInfo | None = None,
              progress: Callable[[Tensor], None] | None = None, **options: Any) -> dict[str, str]:
        """Write ``files(...)`` beside ``path``, calling ``progress(tensor)`` as each tensor is written;
        return ``{file name: sha256}`` of what was written."""

    def read(self, path: Path) -> dict[str, np.ndarray]:
        """``{key: array}`` for every tensor held in that file."""


DECLARED_PER_FILE_BYTE = 8  # tensor bytes a file byte can hold at most (Parquet packs 8 booleans in a byte)


def declared_fits(declared: int, held: int) -> bool:
    """Whether files holding ``held`` bytes can hold ``declared`` bytes of tensors: a foreign manifest or header must
    not make a reader allocate far beyond what the files hold.

    >>> declared_fits(1000, 200), declared_fits(2**40, 14_000)
    (True, False)
    """
    return declared <= DECLARED_PER_FILE_BYTE * held + 2**20
