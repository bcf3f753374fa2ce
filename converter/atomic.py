"""All-or-nothing output: writers write into a hidden staging folder inside the output folder
(:func:`staging_folder`), hashing as they write (:class:`HashedOutput`); :func:`publish` then moves every
file into place as one transaction, never over a file that exists unless told to.

>>> import tempfile, pathlib
>>> folder = pathlib.Path(tempfile.mkdtemp())
>>> with staging_folder(folder) as staging:
...     _ = (staging / "a.txt").write_text("hello")
...     publish(staging, ["a.txt"], folder)
>>> sorted(p.name for p in folder.iterdir())
['a.txt']
"""
from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import os
import re
import shutil
import tempfile
from collections.abc import Callable, Iterator
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path
from typing import IO

from .errors import OutputError

TEMP_PREFIX = ".keras-weights-tmp-"


def _prefix() -> str:
    """Temporary names carry the writing process's id, so a later run can tell a dead run's leftovers."""
    return f"{TEMP_PREFIX}{os.getpid()}-"


def remove_stale(folder: Path) -> list[str]:
    """Delete temporary files and folders left in ``folder`` by runs that were killed; return their names."""
    removed = []
    for entry in Path(folder).glob(f"{TEMP_PREFIX}*"):
        pid = entry.name[len(TEMP_PREFIX):].split("-", 1)[0]
        if pid.isdigit() and not _alive(int(pid)):
            with contextlib.suppress(OSError):  # a link is removed itself, never followed into what it names
                shutil.rmtree(entry) if entry.is_dir() and not entry.is_symlink() else entry.unlink()
            if not os.path.lexists(entry):  # said only of what is really gone
                removed.append(entry.name)
    return removed


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


@contextlib.contextmanager
def staging_folder(folder: Path) -> Iterator[Path]:
    """A hidden temporary folder inside ``folder`` for outputs that are published together; always removed."""
    staging = Path(tempfile.mkdtemp(prefix=_prefix(), dir=folder))
    try:
        yield staging
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def publish(staging: Path, names: list[str], folder: Path, replace: list[str] | None = None) -> None:
    """Move finished files from ``staging`` into ``folder`` as one transaction: all of them, or none.

    A name that exists in ``folder`` is never overwritten, even if it appeared after the caller checked
    (another export into the same folder): each file is placed with a hard link, which fails when the
    name exists. Names in ``replace`` (what ``--force`` allows to go) are first moved aside into
    ``staging``; if anything fails, what was placed is removed and what was moved aside comes back.
    The last name is placed last (the manifest, which marks a complete export).
    """
    for name in names:
        _fsync(staging / name)
        os.chmod(staging / name, 0o666 & ~_umask())
    aside, moved, placed = staging / ".previous", [], []
    aside.mkdir()
    try:
        for name in replace or []:
            if os.path.lexists(folder / name):
                os.rename(folder / name, aside / name)
                moved.append(name)
        for name in names:
            _place(staging / name, folder / name)
            placed.append(name)
    except BaseException:
        for name in placed:
            (folder / name).unlink(missing_ok=True)
        for name in moved:
            os.rename(aside / name, folder / name)
        raise


def write_file(target: Path, write: Callable[[Path], object], force: bool = False) -> Path:
    """Write one output file as an export writes its files: ``write(path)`` fills a file in a private staging
    folder beside ``target`` (a fresh name no planted link can redirect), which is then published without
    replacing an existing file or link unless ``force``. The folder must exist; nothing is left on failure.

    >>> import tempfile, pathlib
    >>> folder = pathlib.Path(tempfile.mkdtemp())
    >>> write_file(folder / "a.txt", lambda path: path.write_text("hello")).read_text()
    'hello'
    >>> write_file(folder / "a.txt", lambda path: path.write_text("again"))
    Traceback (most recent call last):
    ...
    converter.errors.OutputError: a.txt already exists in ...
    """
    target = check_new_file(target, force)
    try:
        with staging_folder(target.parent) as staging:
            write(staging / target.name)
            publish(staging, [target.name], target.parent, [target.name] if force else None)
    except FileExistsError as error:
        raise OutputError(f"{target.name} {error.strerror} in {target.parent}",
                          hint="Pass --force to overwrite it.") from None
    except OSError as error:
        raise OutputError(f"cannot write {target}: {error.strerror or error}", hint="Choose a writable folder.") from None
    return target


def check_new_file(target: Path, force: bool = False) -> Path:
    """Refuse (``OutputError``, exit 6) an output file whose folder is missing, that is a folder, or that exists
    (a dangling link included) without ``force``: checked before any work, and again when publishing."""
    target = Path(target)
    if not target.parent.is_dir():
        raise OutputError(f"the output folder {target.parent} does not exist or is not a folder",
                          hint="Create it first, or write elsewhere.")
    if target.is_dir() and not target.is_symlink():
        raise OutputError(f"{target} is a folder, not a file", hint="Choose a file name.")
    if os.path.lexists(target) and not force:
        raise OutputError(f"{target.name} already exists in {target.parent}", hint="Pass --force to overwrite it.")
    return target


def _place(source: Path, destination: Path) -> None:
    """Put ``source`` at ``destination`` unless a file (or link) of that name exists there."""
    try:
        os.link(source, destination)
    except FileExistsError:
        raise FileExistsError(errno.EEXIST, "appeared while this export was written (another export?)",
                              str(destination)) from None
    except OSError as error:  # a file system without hard links: rename, after a (racy) check
        if error.errno not in (errno.EPERM, errno.ENOTSUP, errno.EOPNOTSUPP, errno.EMLINK):
            raise
        if os.path.lexists(destination):
            raise FileExistsError(errno.EEXIST, "appeared while this export was written", str(destination)) from None
        os.rename(source, destination)


def safe_file_name(text: str, fallback: str) -> str:
    """``text`` as a plain file name: letters, digits, ``_``, ``.`` and ``-`` only, never hidden or empty.

    >>> safe_file_name("../my model", "x"), safe_file_name("...", "x")
    ('my_model', 'x')
    """
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", text).strip("._") or fallback


HASH_BLOCK = 2**20  # bytes: writes this large are hashed on a second thread while written


class _HashingFile(io.FileIO):
    """A file opened for writing that hashes its bytes as they are written, while written front to back.

    A large write is hashed on a second thread block by block while the kernel copies it into the
    page cache (both release the GIL), so hashing adds little to writing (measured on 400 MB of
    safetensors: a 100 MB ``write`` took ~0.5 s of kernel time in one call, ~0.2 s in 1 MiB blocks).
    """

    def __init__(self, path: Path) -> None:
        super().__init__(path, "wb")
        self._hash: hashlib._Hash | None = hashlib.sha256()
        self._size = 0
        self._hasher: ThreadPoolExecutor | None = None

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        if self._hash is None:
            return super().write(view)
        if len(view) < HASH_BLOCK:
            count = super().write(view)
            self._hash.update(view[:count])
            self._size += count
            return count
        self._hasher = self._hasher or ThreadPoolExecutor(1, thread_name_prefix="keras-weights-hash")
        hashed: list[Future] = []
        try:
            for start in range(0, len(view), HASH_BLOCK):
                block = view[start:start + HASH_BLOCK]
                hashed.append(self._hasher.submit(self._hash.update, block))  # one worker: blocks hashed in order
                self._write_all(block)
                self._size += len(block)
        except BaseException:
            self._hash = None  # the file is incomplete; nothing may trust a digest of it
            raise
        finally:
            for future in hashed:  # the caller may reuse its buffer once write() returns
                future.result()
        return len(view)

    def _write_all(self, block: memoryview) -> None:
        while block:
            block = block[super().write(block):]

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        position = super().seek(offset, whence)
        if position != self._size:
            self._hash = None  # written out of order: the digest is read from the file instead
        return position

    def hexdigest(self) -> str | None:
        """The sha256 of what was written, or None when it was not written front to back."""
        return None if self._hash is None else self._hash.hexdigest()

    def close(self) -> None:
        if self._hasher is not None:
            self._hasher.shutdown()
            self._hasher = None
        super().close()


class HashedOutput:
    r"""Write a new file (binary, or ASCII text with ``\n`` lines) and learn its sha256 without reading it again.

    >>> import tempfile, pathlib
    >>> output = HashedOutput(pathlib.Path(tempfile.mkdtemp()) / "a.txt", text=True)
    >>> with output as out:
    ...     _ = out.write("hello\n")
    >>> output.sha256 == hashlib.sha256(b"hello\n").hexdigest()
    True
    """

    def __init__(self, path: Path, text: bool = False) -> None:
        self.path, self.text, self.sha256 = Path(path), text, None

    def __enter__(self) -> IO:
        self._raw = _HashingFile(self.path)
        buffered = io.BufferedWriter(self._raw, buffer_size=1 << 20)
        self._stream = io.TextIOWrapper(buffered, encoding="ascii", newline="\n") if self.text else buffered
        return self._stream

    def __exit__(self, *failure: object) -> None:
        self._stream.close()
        if failure[0] is None:
            self.sha256 = self._raw.hexdigest() or read_sha256(self.path)


def read_sha256(path: Path) -> str:
    """sha256 of a file's bytes as they are on disk now, read in chunks (what inputs and ``verify`` use)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def stored_size(path: Path) -> int:
    """Bytes a file really holds: its size, or the disk blocks it has if fewer (a sparse file's holes are not data,
    and reading them would still cost memory)."""
    status = Path(path).stat()
    return min(status.st_size, max(status.st_blocks * 512, 4096))


def _fsync(path: Path) -> None:
    with open(path, "rb+") as handle:
        os.fsync(handle.fileno())


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask
