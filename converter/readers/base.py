"""The interface every reader module has, as formats have theirs (``formats.base.Format``)."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from ..tensors import ModelWeights, Source


@dataclass(frozen=True)
class ReadOptions:
    """How far a read may trust the input: ``trust_code`` runs code stored in it (Keras safe mode off);
    ``allow_sparse`` reads datasets that declare far more data than the file stores (size-bomb check off)."""

    trust_code: bool = False
    allow_sparse: bool = False


class Reader(Protocol):
    """A way in: which kinds of input it reads, and how."""

    NAME: str               # recorded in the manifest's source.reader and chosen with --reader
    KINDS: frozenset[str]   # input kinds it reads: "keras.Model", "keras", "h5", "savedmodel" (see inputs.identify)
    DESCRIPTION: str        # what it is, for messages: "Keras", "the direct HDF5 reader"

    def prepare(self) -> None:
        """Work that needs no input (importing a framework), done while the input is being checked."""

    def read(self, source: Any, kind: str, base: Source, options: ReadOptions) -> ModelWeights:
        """Every weight of ``source`` (a path, or an in-memory model), described by ``base``."""
