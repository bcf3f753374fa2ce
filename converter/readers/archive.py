"""Checks on a ``.keras`` zip archive before Keras or h5py touch it: member paths, sizes, compression.

>>> import io, zipfile
>>> buffer = io.BytesIO()
>>> with zipfile.ZipFile(buffer, "w") as z:
...     z.writestr("../evil.py", "x")
>>> _unsafe_member("../evil.py"), _unsafe_member("model.weights.h5")
(True, False)
"""
from __future__ import annotations

import zipfile
import zlib
from pathlib import Path, PurePosixPath

from ..errors import InputInvalid, UnsafeInput
from .window import StoredMember, open_member, stored  # noqa: F401 -- the readers' way to members

MAX_MEMBERS = 10_000
MAX_RATIO = 200                  # weights barely compress; text members can, but not this much
RATIO_FLOOR = 64 * 2**20         # small members may have any ratio, and the whole archive may expand by this
MAX_TOTAL_RATIO = 20             # ... plus this many times its own size (Keras stores members: ratio ~1)
WEIGHTS = "model.weights.h5"
REQUIRED = ("config.json", WEIGHTS)
KERAS_MEMBERS = ("config.json", "metadata.json", WEIGHTS, "model.weights.npz")  # and assets/..., as Keras writes


def check(path: Path) -> None:
    """Refuse archives that are broken, incomplete, or built to attack the reader."""
    try:
        with zipfile.ZipFile(path) as archive:
            members = archive.infolist()
    except (zipfile.BadZipFile, OSError, ValueError) as error:
        raise InputInvalid(f"{path.name} is not a readable zip archive: {error}",
                           hint="The .keras file is damaged or truncated; save or download it again.") from None
    if len(members) > MAX_MEMBERS:
        raise UnsafeInput(f"{path.name} has {len(members)} members; a Keras archive has a handful",
                          hint="The file is not a Keras archive, or was built to exhaust the reader.")
    for member in members:
        if _unsafe_member(member.filename):
            raise UnsafeInput(f"{path.name} has a member whose path leaves the archive: {member.filename!r}",
                              hint="The archive was built to write outside its folder; do not use it.")
        if member.filename not in KERAS_MEMBERS and not member.filename.startswith("assets/"):
            raise UnsafeInput(f"{path.name} has a member a Keras archive does not have: {member.filename!r}",
                              hint="Keras writes config.json, metadata.json, model.weights.h5 and assets/; "
                                   "the file was made or changed by something else. Do not use it.")
        ratio = member.file_size // max(member.compress_size, 1)
        if member.file_size > RATIO_FLOOR and ratio > MAX_RATIO:
            raise UnsafeInput(f"{path.name}: member {member.filename} expands {ratio}x to {member.file_size:,} bytes "
                              "(a zip bomb)", hint="Do not use this file.")
    total, limit = sum(m.file_size for m in members), RATIO_FLOOR + MAX_TOTAL_RATIO * path.stat().st_size
    if total > limit:
        raise UnsafeInput(f"{path.name} claims {total:,} bytes uncompressed, more than {limit:,} for an archive of "
                          f"{path.stat().st_size:,} bytes (a zip bomb)", hint="Do not use this file.")
    missing = [name for name in REQUIRED if name not in {m.filename for m in members}]
    if missing:
        raise InputInvalid(f"{path.name} is a zip archive without {', '.join(missing)}",
                           hint="A .keras file holds config.json, metadata.json and model.weights.h5.")


def _unsafe_member(name: str) -> bool:
    parts = PurePosixPath(name.replace("\\", "/")).parts
    return name.startswith(("/", "\\")) or ".." in parts or (len(name) > 1 and name[1] == ":")


CRC_BLOCK = 4 * 2**20


def check_crc(path: Path, name: str) -> None:
    """Refuse a stored member whose bytes do not match the CRC-32 the archive records for them.

    ``zipfile`` checks it when a member is read through it; members read in place are checked here.
    """
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
    if not stored(info):
        return  # read through zipfile, which checks it
    crc = 0
    with StoredMember(path, info.header_offset, info.file_size) as member:
        while block := member.read(CRC_BLOCK):
            crc = zlib.crc32(block, crc)
    if crc != info.CRC:
        raise InputInvalid(f"{path.name}: member {name} fails its CRC-32 check (recorded {info.CRC:08x}, read {crc:08x})",
                           hint="The .keras file is damaged; save or download it again.")
