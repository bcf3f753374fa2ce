"""A seekable window onto an uncompressed zip member, so h5py reads ``model.weights.h5`` in place.

Self-contained (standard library only): the HDF5 probe's child process loads this file by path.
"""
from __future__ import annotations

import io
import os
import struct
import zipfile


def open_member(path: str | os.PathLike, name: str) -> io.RawIOBase | io.BytesIO:
    """A seekable file object for a member of a (checked) archive: read in place when stored, else in memory.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> with zipfile.ZipFile(folder / "a.zip", "w") as z:
    ...     z.writestr("x.bin", b"0123456789")
    >>> with open_member(folder / "a.zip", "x.bin") as member:
    ...     _ = member.seek(-4, io.SEEK_END)
    ...     member.read(), member.seek(2), member.read(3)
    (b'6789', 2, b'234')
    """
    with zipfile.ZipFile(path) as archive:
        info = archive.getinfo(name)
        if not stored(info):
            return io.BytesIO(archive.read(name))
    return StoredMember(path, info.header_offset, info.file_size)


def stored(info: zipfile.ZipInfo) -> bool:
    """True for a member kept as plain bytes (neither compressed nor encrypted): readable in place."""
    return info.compress_type == zipfile.ZIP_STORED and not info.flag_bits & 0x1


class StoredMember(io.RawIOBase):
    """A read-only, seekable window onto an uncompressed zip member, read in place from the archive.

    h5py seeks back and forth; ``ZipFile.open`` re-reads from the member's start on every backward
    seek, and reading the member into memory would hold a second copy of every weight.
    """

    def __init__(self, path: str | os.PathLike, header_offset: int, size: int) -> None:
        self._file = open(path, "rb")  # noqa: SIM115 -- closed by close(), as the object lives on
        self._file.seek(header_offset)
        header = self._file.read(30)  # the local header: its name and extra fields may differ from the central one
        if header[:4] != b"PK\x03\x04":
            self._file.close()
            raise ValueError(f"no zip local header at offset {header_offset}")
        name_length, extra_length = struct.unpack("<HH", header[26:30])
        self._start = header_offset + 30 + name_length + extra_length
        self._size, self._position = size, 0

    def readable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def tell(self) -> int:
        return self._position

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}[whence]
        self._position = max(0, base + offset)
        return self._position

    def readinto(self, buffer) -> int:
        wanted = max(0, min(len(buffer), self._size - self._position))
        self._file.seek(self._start + self._position)
        count = self._file.readinto(memoryview(buffer)[:wanted])
        self._position += count
        return count

    def close(self) -> None:
        self._file.close()
        super().close()
