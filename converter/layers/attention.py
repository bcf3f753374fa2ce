"""Attention: MultiHeadAttention holds no weights of its own, only four EinsumDense sub-layers."""
from __future__ import annotations

from .spec import Spec

SPECS = (Spec("MultiHeadAttention", children=("query_dense", "key_dense", "value_dense", "output_dense"),
              child_class="EinsumDense",
              child_names={"query_dense": "query", "key_dense": "key", "value_dense": "value",
                           "output_dense": "attention_output"}),)
