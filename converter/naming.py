"""The one rule for making names unique: the first comer keeps the name, later ones get a numbered suffix.

>>> taken = set()
>>> [unique(n, taken) for n in ("dense/kernel", "dense/kernel", "dense/kernel")]
['dense/kernel', 'dense/kernel_1', 'dense/kernel_2']
>>> taken = {"net_a_b"}
>>> unique("net_a_b", taken, start=2), sorted(taken)
('net_a_b_2', ['net_a_b', 'net_a_b_2'])
"""
from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence


def unique(name: str, taken: set[str], start: int = 1) -> str:
    """``name``, or ``name_<start>``, ``name_<start + 1>``... if an earlier one took it; the result is taken."""
    candidate, counter = name, start - 1
    while candidate in taken:
        counter += 1
        candidate = f"{name}_{counter}"
    taken.add(candidate)
    return candidate


MAX_KEY_BYTES = 256  # longer names are shortened, with a hash of the whole name to keep them apart
_UNSAFE = re.compile(r"[\x00-\x1f\x7f\\]")  # control characters (NUL included) and backslashes


def file_safe_keys(names: Sequence[str], suffix: str = "") -> dict[str, str]:
    r"""A key for each name that is safe as a member name of an archive (npz is a zip file that users unzip):
    the name itself when it is, otherwise a mapped one, unique among them all.

    Mapped: control characters and backslashes become ``_``; leading ``/`` and ``..`` components go; a name
    ending in ``suffix`` (``.npy``, which numpy strips from member names) gets ``_``; a name longer than
    ``MAX_KEY_BYTES`` is shortened and ends with a hash of the whole name.

    >>> file_safe_keys(["dense/kernel", "../../etc/x", "a\x00b", "w.npy", "a_b"], suffix=".npy")
    {'dense/kernel': 'dense/kernel', '../../etc/x': 'etc/x', 'a\x00b': 'a_b_2', 'w.npy': 'w.npy_', 'a_b': 'a_b'}
    """
    mapped = {name: _safe(name, suffix) for name in names}
    taken = {key for name, key in mapped.items() if key == name}  # names that are safe as they are keep them
    return {name: key if key == name else unique(key, taken, start=2) for name, key in mapped.items()}


def _safe(name: str, suffix: str) -> str:
    parts = [part for part in _UNSAFE.sub("_", name).split("/") if part not in ("", ".", "..")]
    key = "/".join(parts) or "tensor"
    if suffix and key.endswith(suffix):
        key += "_"
    if len(key.encode()) > MAX_KEY_BYTES:
        digest = hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest()[:12]
        key = key.encode()[:MAX_KEY_BYTES - 13].decode("utf-8", "ignore") + "_" + digest
    return key


def encodable(value):
    r"""``value`` (a string, or lists and dicts of them) with every character UTF-8 cannot encode (a lone surrogate: a
    crafted name, an undecodable byte of a file name) written as its escape, so that every output can hold it.

    >>> encodable("ok"), encodable({"name": "a\udcff", "n": [1, "\ud800"]})
    ('ok', {'name': 'a\\udcff', 'n': [1, '\\ud800']})
    """
    if isinstance(value, str):
        try:
            value.encode("utf-8")
            return value
        except UnicodeEncodeError:
            return value.encode("utf-8", "backslashreplace").decode("utf-8")
    if isinstance(value, list):
        return [encodable(v) for v in value]
    if isinstance(value, tuple):
        return tuple(encodable(v) for v in value)
    if isinstance(value, dict):
        return {encodable(k): encodable(v) for k, v in value.items()}
    return value
