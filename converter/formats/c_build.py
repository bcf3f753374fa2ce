"""Building the C output with a real compiler, for ``verify --compile``.

With the host's compiler, a small program that includes the header dumps every array through the tensor
table and the bytes it prints are compared. A cross compiler (``arm-none-eabi-gcc``, ``avr-gcc``) builds
objects the host cannot run: each file is compiled with ``-c`` and ``-fdata-sections`` (every array in a
section of its own), and each array's bytes are taken out of the object with the toolchain's ``objcopy``.
A compiler that is missing or cannot compile a trivial file is :class:`CompilerUnusable` (exit 2), with
its whole message; only our files failing to compile is a verification finding.
"""
from __future__ import annotations

import hashlib
import platform
import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping, Sequence
from pathlib import Path

from ..errors import UsageError

HARNESS = """#include <stdio.h>
#include {header}
int main(void) {{
    size_t i;
    for (i = 0; i < {macro}_TENSOR_COUNT; ++i) {{
        const {prefix}_tensor_t *t = &{prefix}_tensors[i];
        if (t->nbytes && fwrite(t->data, 1, t->nbytes, stdout) != t->nbytes) return 1;
    }}
    return 0;
}}
"""
TIMEOUT = 600


class CompilerUnusable(UsageError):
    """The compiler asked for is missing or cannot compile a trivial file: not a finding about the export."""

    code = "compiler_unusable"
    default_hint = "Install the compiler, put it on PATH, or pass another with --cc (and its flags with --cflags)."


def problems(paths: Sequence[Path], manifest: Mapping, prefix: str, cc: str, cflags: Sequence[str] = ()) -> list[str]:
    """What building the files with ``cc`` finds wrong; [] when every array holds the manifest's bytes."""
    header = next(p for p in paths if p.suffix == ".h")
    sources = [p for p in paths if p.suffix == ".c"]
    with tempfile.TemporaryDirectory(prefix="keras-weights-cc-") as work:
        _check_usable(cc, list(cflags), Path(work))
        try:
            if targets_host(cc):
                return _compare_dump(_run_harness(header, sources, prefix, cc, list(cflags), Path(work)), manifest)
            objects = _object_sections(header, sources, prefix, cc, list(cflags), Path(work))
            return _compare_sections(objects, manifest, cc, Path(work))
        except subprocess.CalledProcessError as error:
            return [f"{cc} failed on the exported files: {_message(error)}"]


def targets_host(cc: str) -> bool:
    """Whether ``cc`` builds programs this machine runs (from its ``-dumpmachine`` target triple)."""
    try:
        triple = subprocess.run([cc, "-dumpmachine"], capture_output=True, text=True, timeout=60).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return False
    return triple.split("-")[0] == platform.machine() and sys.platform.rstrip("0123456789") in triple


def _check_usable(cc: str, cflags: list[str], work: Path) -> None:
    probe = work / "probe.c"
    probe.write_text("int keras_weights_probe(void) { return 0; }\n")
    try:
        subprocess.run([cc, *cflags, "-c", str(probe), "-o", str(work / "probe.o")], check=True, capture_output=True,
                       text=True, timeout=TIMEOUT)
    except FileNotFoundError:
        raise CompilerUnusable(f"compiler {cc!r} not found", hint=f"Install it or put it on PATH; received --cc {cc}.") \
            from None
    except subprocess.CalledProcessError as error:
        raise CompilerUnusable(f"{cc} cannot compile a trivial C file: {_message(error)}") from None


def _message(error: subprocess.CalledProcessError) -> str:
    return (error.stderr or error.stdout or str(error)).strip()


def _run_harness(header: Path, sources: list[Path], prefix: str, cc: str, cflags: list[str], work: Path) -> bytes:
    harness, program = work / "harness.c", work / "harness"
    harness.write_text(HARNESS.format(header=include_line(header), macro=prefix.upper(), prefix=prefix))
    command = [cc, "-std=c99", "-O1", *cflags, str(harness), *map(_argument, sources), "-o", str(program),
               "-lm"]  # a --c-inference export's forward pass uses expf, tanhf...
    subprocess.run(command, check=True, capture_output=True, text=True, timeout=TIMEOUT)
    return subprocess.run([str(program)], check=True, capture_output=True, timeout=TIMEOUT).stdout


def _compare_dump(dump: bytes, manifest: Mapping) -> list[str]:
    found, offset = [], 0
    for tensor in manifest["tensors"]:
        data = dump[offset:offset + tensor["nbytes"]]
        offset += tensor["nbytes"]
        if hashlib.sha256(data).hexdigest() != tensor["sha256"]:
            found.append(f"{tensor['keys'].get('c', tensor['name'])}: compiled bytes differ from the manifest's sha256")
    if offset != len(dump):
        found.append(f"the compiled program holds {len(dump)} bytes, the manifest {offset}")
    return found


def _object_sections(header: Path, sources: list[Path], prefix: str, cc: str, cflags: list[str],
                     work: Path) -> list[Path]:
    """Objects of the exported files (a header alone is compiled through a file that includes it and uses its
    tensor table, so that an optimizing compiler keeps the static arrays)."""
    units = sources or [work / "header_only.c"]
    if not sources:
        units[0].write_text(f'#include {include_line(header)}\nconst void *keras_weights_table(void);\n'
                            f'const void *keras_weights_table(void) {{ return {prefix}_tensors; }}\n')
    objects = []
    for unit in units:
        target = work / f"{unit.stem}.o"
        subprocess.run([cc, "-std=c99", *cflags, "-fdata-sections", "-c", _argument(unit), "-o", str(target)],
                       check=True, capture_output=True, text=True, timeout=TIMEOUT)
        objects.append(target)
    return objects


def include_line(header: Path) -> str:
    """``"/abs/path/x.h"``: the header included by its absolute path, so that no folder goes on the include path
    (``-I``) and a file beside the program cannot stand in for a system header.

    >>> include_line(Path("/tmp/work/seed_mlp.h"))
    '"/tmp/work/seed_mlp.h"'
    """
    text = str(Path(header).resolve())
    if any(char in text for char in '"\\\n') or not text.isprintable():
        raise UsageError(f"cannot build in {text!r}: its path holds a quote, backslash or control character",
                         hint="Set TMPDIR to a plain folder.")
    return f'"{text}"'


def _argument(path: Path) -> str:
    """A file as a compiler argument that cannot read as an option (an absolute path starts with /)."""
    return str(Path(path).resolve())


def binutil_for(cc: str, tool: str) -> str:
    """The toolchain's binutil beside ``cc``: ``arm-none-eabi-gcc`` -> ``arm-none-eabi-objcopy``.

    >>> binutil_for("arm-none-eabi-gcc", "objcopy"), binutil_for("/usr/bin/avr-gcc", "objdump"), binutil_for("cc", "objcopy")
    ('arm-none-eabi-objcopy', '/usr/bin/avr-objdump', 'objcopy')
    """
    return re.sub(r"(gcc|cc|clang)(-[0-9.]+)?$", tool, cc)


ARRAY_SECTIONS = (".rodata.", ".progmem.data.", ".data.")  # where -fdata-sections puts a const array: ARM, AVR


def _compare_sections(objects: list[Path], manifest: Mapping, cc: str, work: Path) -> list[str]:
    """Each array's own section (``.rodata.<name>``, ``.progmem.data.<name>`` on AVR) against the manifest."""
    arrays = _dump_sections(objects, cc, work)
    align = int(manifest["options"]["c"].get("align", 16))
    found = []
    for tensor in manifest["tensors"]:
        key, size = tensor["keys"].get("c", tensor["name"]), tensor["nbytes"]
        data = arrays.get(key)
        if not size:
            continue
        if data is None:
            found.append(f"{key}: no section of its own in the objects {cc} made (built with -fdata-sections)")
        elif not size <= len(data) < size + align:  # some targets (AVR) pad the section to its alignment
            found.append(f"{key}: {cc} placed {len(data)} bytes in the object, the manifest says {size}")
        elif hashlib.sha256(data[:size]).hexdigest() != tensor["sha256"]:
            found.append(f"{key}: the bytes {cc} placed in the object differ from the manifest's sha256")
    return found


def _dump_sections(objects: list[Path], cc: str, work: Path) -> dict[str, bytes]:
    """``{array name: bytes}`` of every array section in the objects, read with the toolchain's objcopy."""
    arrays = {}
    for number, obj in enumerate(objects):
        listing = subprocess.run([binutil_for(cc, "objdump"), "-h", str(obj)], check=True, capture_output=True,
                                 text=True, timeout=TIMEOUT).stdout
        names = [m for m in re.findall(r"^\s*\d+\s+(\S+)\s", listing, re.M) if m.startswith(ARRAY_SECTIONS)]
        for start in range(0, len(names), 200):  # bounded command lines
            part = names[start:start + 200]
            dumps = [work / f"s{number}_{start + i}.bin" for i in range(len(part))]
            flags = [arg for name, dump in zip(part, dumps, strict=True) for arg in ("--dump-section", f"{name}={dump}")]
            subprocess.run([binutil_for(cc, "objcopy"), *flags, str(obj), str(work / "scratch.o")], check=True,
                           capture_output=True, text=True, timeout=TIMEOUT)
            for name, dump in zip(part, dumps, strict=True):
                arrays[next(name[len(p):] for p in ARRAY_SECTIONS if name.startswith(p))] = dump.read_bytes()
    return arrays
