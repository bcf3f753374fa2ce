"""GroupNormalization: gamma and beta per channel, the statistics over groups of channels."""
from __future__ import annotations

from .spec import Spec

SPECS = (Spec("GroupNormalization", roles=("gamma", "beta")),)
