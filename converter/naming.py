"""The one rule for making names unique: the first comer keeps the name, later ones get a numbered suffix.

>>> taken = set()
>>> [unique(n, taken) for n in ("dense/kernel", "dense/kernel", "dense/kernel")]
['dense/kernel', 'dense/kernel_1', 'dense/kernel_2']
>>> taken = {"net_a_b"}
>>> unique("net_a_b", taken, start=2), sorted(taken)
('net_a_b_2', ['net_a_b', 'net_a_b_2'])
"""
from __future__ import annotations


def unique(name: str, taken: set[str], start: int = 1) -> str:
    """``name``, or ``name_<start>``, ``name_<start + 1>``... if an earlier one took it; the result is taken."""
    candidate, counter = name, start - 1
    while candidate in taken:
        counter += 1
        candidate = f"{name}_{counter}"
    taken.add(candidate)
    return candidate
