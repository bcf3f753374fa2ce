"""Embedding: a table looked up by token id."""
from __future__ import annotations

from .emit import Call, Shape, Unsupported, size, weights_arguments
from .spec import Spec
from .to_torch import Site


def embedding_c(call: Call) -> Shape:
    if call.config.get("mask_zero"):
        raise Unsupported("mask_zero=True (masking)")
    table = call.weight("embeddings")
    if len(table.shape) != 2:
        raise Unsupported(f"an embeddings table of shape {list(table.shape)}")
    args, _, quantized = weights_arguments(call, "embeddings", None, tuple(table.shape))
    suffix = "_i8" if quantized else "_f32"
    vocabulary, dim = table.shape
    call.emit(f"kw_embedding{suffix}({call.source()}, {call.output}, {size(call.inputs[0])}, {dim}, {vocabulary}, "
              f"{args}, NULL);", "embedding" + suffix)
    return (*call.inputs[0], dim)


def embedding_torch(site: Site) -> list:
    """nn.Embedding: the same (vocabulary, dim) table."""
    return [site.store("weight", site.array)] if site.role == "embeddings" else site.kept()


SPECS = (Spec("Embedding", roles=("embeddings",), channels="last", integer_input=True, torch=embedding_torch,
              c=embedding_c),)
