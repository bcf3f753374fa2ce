"""Where each buffer of the forward pass lives in its arena: offsets over the buffers' lifetimes, so that buffers
never alive at the same time share memory."""
from __future__ import annotations

from dataclasses import dataclass

ALIGN_FLOATS = 4  # 16 bytes: every arena buffer starts aligned for vector loads


@dataclass(eq=False)
class Storage:
    """One buffer: its size in floats, the steps it is alive from and to, its offset once placed."""

    size: int
    first: int
    last: int
    offset: int = -1
    external: str | None = None  # "input + 4": a model input, read in place
    pending: int = 0             # reads by layers not generated yet (a model output's never ends)


def place(storages: list[Storage]) -> int:
    """Offsets (in floats) for the buffers, each at the lowest offset free of the buffers alive at the same time;
    the arena's size. Two orders are tried and the smaller arena kept: by first use, and largest first (the
    greedy-by-size order of TFLite Micro's planner)."""
    orders = (sorted(storages, key=lambda s: (s.first, -s.size)), sorted(storages, key=lambda s: (-s.size, s.first)))
    best = min(orders, key=_first_fit)
    return _first_fit(best)


def _first_fit(order: list[Storage]) -> int:
    """Place the buffers in this order (setting their offsets); the arena's size."""
    placed: list[Storage] = []
    end = 0
    for storage in order:
        alive = sorted((s for s in placed if s.last >= storage.first and s.first <= storage.last), key=lambda s: s.offset)
        offset = 0
        for other in alive:
            if offset + storage.size <= other.offset:
                break
            offset = max(offset, _aligned(other.offset + other.size))
        storage.offset = offset
        placed.append(storage)
        end = max(end, offset + storage.size)
    return _aligned(end)


def _aligned(floats: int) -> int:
    return -(-floats // ALIGN_FLOATS) * ALIGN_FLOATS
