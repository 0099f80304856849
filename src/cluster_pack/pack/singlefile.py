"""The single-file artifact, assembled from the packed pex directory without recompressing.

The original cluster-pack published one file at the path ``upload_env`` returns, and code
written for it ships that file itself (its own ``skein.File``, ``spark-submit --files``,
``python env.pex``). This module writes that file from the packed directory that
:mod:`cluster_pack.pack.builder` already made (the runtime and one zip per distribution), in
the layouts the original published:

- ``zipapp`` (``env.pex``): a shebang line then a zip holding ``.bootstrap/...``,
  ``.deps/<wheel>/...``, ``PEX-INFO``, ``__main__.py`` and ``__pex__/__init__.py``: the
  entries of the packed directory's zips, renamed under their folder. This is what
  ``pex --layout zipapp`` writes for the same environment, entry for entry.
- ``packed`` (``env.pex.zip``, the default large layout): a zip of the packed directory's
  files, to unpack as ``pyenv/`` and run as ``pyenv/__main__.py``.
- ``loose`` (``env.pex.zip`` with a loose :class:`~cluster_pack.settings.LayoutOptimization`):
  the zipapp's entries without the shebang, unpacked the same way.

Entries are never decompressed: each one gets a new local header (its new name, the CRC
and sizes read from the source zip's central directory) and its data bytes are copied by
the kernel (``copy_file_range``), so writing the file costs about one copy of its bytes.
The writer is a small ZIP/ZIP64 writer of its own: :mod:`zipfile` cannot copy an entry's
raw bytes into another archive. Offsets count from the start of the file (shebang
included), as ``pex`` writes them; :mod:`zipfile` and :mod:`zipimport` read both forms.

Editable projects (``include_editable=True``) are added as the pex's own sources (at the
root, like ``pex -D``); the artifact then has its own ``PEX-INFO`` (``code_hash`` and
``pex_hash``), so a node never mixes its installed venv with the parts' one.
"""

from __future__ import annotations

import hashlib
import json
import mmap
import os
import queue
import stat
import struct
import threading
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, List, Optional, Sequence, Tuple

from cluster_pack.atomic import atomic_write
from cluster_pack.errors import BuildError
from cluster_pack.pack.layout import FileKind
from cluster_pack.pack.parts import file_sha256

ZIPAPP, PACKED, LOOSE = FileKind.ZIPAPP, FileKind.PACKED, FileKind.LOOSE
LAYOUTS = tuple(kind.value for kind in FileKind)

_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_U32 = 0xFFFFFFFF
_U16 = 0xFFFF
# Entries up to this size are read and written with their header in one buffered write;
# larger ones are copied in the kernel.
_SMALL = 64 * 1024
_BUFFER = 1024 * 1024
# Source zips up to this size are mapped in memory (a few MiB for most distributions).
_MAP_LIMIT = 64 * 1024 * 1024
_RUNTIME_FILES = ("PEX-INFO", "__main__.py", "__pex__/__init__.py")


@dataclass(frozen=True)
class SingleFile:
    """A written single-file artifact."""

    path: Path
    size: int
    sha256: str


@dataclass
class _Entry:
    name: bytes
    crc: int
    compress_size: int
    file_size: int
    method: int
    external_attr: int
    dos_time: int
    dos_date: int
    offset: int = 0


def _dos(date_time: Tuple[int, ...]) -> Tuple[int, int]:
    year, month, day, hour, minute, second = date_time
    return ((hour << 11) | (minute << 5) | (second // 2),
            ((year - 1980) << 9) | (month << 5) | day)


class ZipWriter:
    """Writes a ZIP (ZIP64 where needed) to a file descriptor, entry by entry.

    >>> import io, os, tempfile, zipfile
    >>> fd, name = tempfile.mkstemp()
    >>> with ZipWriter(fd, preamble=b"#!/usr/bin/env python3\\n") as w:
    ...     w.add_bytes("a/b.txt", b"hello", 0o644)
    >>> zipfile.ZipFile(name).read("a/b.txt")
    b'hello'
    >>> os.close(fd); os.unlink(name)
    """

    def __init__(self, fd: int, preamble: bytes = b"", sha256: bool = False):
        self._fd = fd
        self._entries: List[_Entry] = []
        self._buffer = bytearray()
        self._position = 0
        self._dirs: set = set()
        self._hasher = _BackgroundSha256() if sha256 else None
        self._buffered_write(preamble)

    def __enter__(self) -> "ZipWriter":
        return self

    def __exit__(self, kind, value, traceback) -> None:
        if kind is None:
            self.close()
        elif self._hasher is not None:
            self._hasher.finish()

    @property
    def position(self) -> int:
        return self._position

    @property
    def sha256(self) -> Optional[str]:
        """The sha256 of everything written, once closed (``sha256=True`` only)."""
        return self._hasher.hexdigest if self._hasher is not None else None

    def _buffered_write(self, data) -> None:
        self._buffer += data
        self._position += len(data)
        if len(self._buffer) >= _BUFFER:
            self._flush()

    def _flush(self) -> None:
        if not self._buffer:
            return
        data = bytes(self._buffer)
        self._buffer.clear()
        with memoryview(data) as view:
            done = 0
            while done < len(view):
                done += os.write(self._fd, view[done:])
        if self._hasher is not None:
            self._hasher.update(data)

    def _local_header(self, entry: _Entry) -> bytes:
        zip64 = entry.file_size >= _U32 or entry.compress_size >= _U32
        extra = struct.pack("<HHQQ", 1, 16, entry.file_size, entry.compress_size) if zip64 \
            else b""
        flags = 0x800 if not entry.name.isascii() else 0
        return struct.pack(
            "<IHHHHHIIIHH", 0x04034B50, 45 if zip64 else 20, flags, entry.method,
            entry.dos_time, entry.dos_date, entry.crc,
            _U32 if zip64 else entry.compress_size, _U32 if zip64 else entry.file_size,
            len(entry.name), len(extra)) + entry.name + extra

    def _start(self, entry: _Entry) -> None:
        if entry.name.endswith(b"/"):
            self._dirs.add(entry.name)
        entry.offset = self._position
        self._entries.append(entry)
        self._buffered_write(self._local_header(entry))

    def add_directory(self, name: str, mode: int = 0o755) -> None:
        """A directory entry (``name`` ends with ``/``), written once."""
        raw = name.encode()
        if raw in self._dirs:
            return
        dos_time, dos_date = _dos(_ZIP_DATE)
        self._start(_Entry(raw, 0, 0, 0, zipfile.ZIP_STORED,
                           ((stat.S_IFDIR | mode) << 16) | 0x10, dos_time, dos_date))

    def add_bytes(self, name: str, data: bytes, mode: int = 0o644) -> None:
        """A stored entry holding ``data``."""
        dos_time, dos_date = _dos(_ZIP_DATE)
        self._start(_Entry(name.encode(), zlib.crc32(data), len(data), len(data),
                           zipfile.ZIP_STORED, (stat.S_IFREG | mode) << 16,
                           dos_time, dos_date))
        self._buffered_write(data)

    def add_file(self, name: str, path: Path) -> None:
        """A stored entry with a file's content (its CRC computed first)."""
        mode = stat.S_IMODE(path.stat().st_mode)
        dos_time, dos_date = _dos(_ZIP_DATE)
        with _Source(path) as source:
            crc = 0
            for offset in range(0, source.size, _BUFFER * 4):
                crc = zlib.crc32(source.read(offset, min(_BUFFER * 4, source.size - offset)),
                                 crc)
            self._start(_Entry(name.encode(), crc, source.size, source.size,
                               zipfile.ZIP_STORED, (stat.S_IFREG | mode) << 16,
                               dos_time, dos_date))
            self._copy(source, 0, source.size)

    def add_zip_entries(self, path: Path, prefix: str) -> None:
        """Every entry of the zip at ``path``, renamed ``prefix + name``, bytes as they are."""
        self.add_directory(prefix)
        with _Source(path) as source, zipfile.ZipFile(path) as zf:
            for info in zf.infolist():
                name = prefix + info.filename
                if info.is_dir():
                    self.add_directory(name, stat.S_IMODE(info.external_attr >> 16) or 0o755)
                    continue
                offset = info.header_offset
                header = source.read(offset, 30)
                if header[:4] != b"PK\x03\x04":
                    raise BuildError(f"{path}: entry {info.filename} has no local header")
                name_length, extra_length = struct.unpack_from("<HH", header, 26)
                dos_time, dos_date = _dos(info.date_time)
                self._start(_Entry(name.encode(), info.CRC, info.compress_size,
                                   info.file_size, info.compress_type, info.external_attr,
                                   dos_time, dos_date))
                self._copy(source, offset + 30 + name_length + extra_length,
                           info.compress_size)

    def _copy(self, source: "_Source", offset: int, count: int) -> None:
        if offset + count > source.size:
            raise BuildError(f"{source.path} was truncated while being copied")
        if count <= _SMALL:
            self._buffered_write(source.read(offset, count))
            return
        self._flush()
        end, at = offset + count, offset
        while at < end:
            copied = _copy_range(source.fd, self._fd, at, end - at)
            if copied <= 0:
                raise BuildError(f"{source.path} was truncated while being copied")
            at += copied
        self._position += count
        if self._hasher is not None:  # from the page cache, on the other core
            self._hasher.update_range(source, offset, count)

    def close(self) -> None:
        """Write the central directory and the end records."""
        start = self._position
        for entry in self._entries:
            self._buffered_write(self._central_header(entry))
        size = self._position - start
        count = len(self._entries)
        if count >= _U16 or start >= _U32 or size >= _U32:
            zip64_end = self._position
            self._buffered_write(struct.pack(
                "<IQHHIIQQQQ", 0x06064B50, 44, 45, 45, 0, 0, count, count, size, start))
            self._buffered_write(struct.pack("<IIQI", 0x07064B50, 0, zip64_end, 1))
        self._buffered_write(struct.pack(
            "<IHHHHIIH", 0x06054B50, 0, 0, min(count, _U16), min(count, _U16),
            min(size, _U32), min(start, _U32), 0))
        self._flush()
        if self._hasher is not None:
            self._hasher.finish()

    @staticmethod
    def _central_header(entry: _Entry) -> bytes:
        fields = []
        file_size, compress_size, offset = entry.file_size, entry.compress_size, entry.offset
        if file_size >= _U32:
            fields.append(file_size)
            file_size = _U32
        if compress_size >= _U32:
            fields.append(compress_size)
            compress_size = _U32
        if offset >= _U32:
            fields.append(offset)
            offset = _U32
        extra = struct.pack(f"<HH{len(fields)}Q", 1, 8 * len(fields), *fields) if fields \
            else b""
        version = 45 if fields else 20
        flags = 0x800 if not entry.name.isascii() else 0
        return struct.pack(
            "<IHHHHHHIIIHHHHHII", 0x02014B50, (3 << 8) | version, version, flags,
            entry.method, entry.dos_time, entry.dos_date, entry.crc, compress_size,
            file_size, len(entry.name), len(extra), 0, 0, 0, entry.external_attr,
            offset) + entry.name + extra


class _Source:
    """A source file: mapped in memory when small, so that headers and small entries are
    sliced out of it without a system call each (a distribution zip can hold thousands
    of small files); read with ``pread`` when large, so that the packing process never
    maps gigabytes."""

    def __init__(self, path: Path):
        self.path = path
        self._file = open(path, "rb")
        self.fd = self._file.fileno()
        self.size = os.fstat(self.fd).st_size
        self._map = mmap.mmap(self.fd, 0, access=mmap.ACCESS_READ) \
            if 0 < self.size <= _MAP_LIMIT else None
        self._view = memoryview(self._map) if self._map is not None else None
        self._users = 1

    def __enter__(self) -> "_Source":
        return self

    def __exit__(self, *exc) -> None:
        self.release()

    def read(self, offset: int, count: int) -> bytes:
        if self._view is not None:
            return self._view[offset:offset + count].tobytes()
        data = os.pread(self.fd, count, offset)
        if len(data) != count:
            raise BuildError(f"{self.path} was truncated while being copied")
        return data

    def acquire(self) -> None:
        with _SOURCE_LOCK:
            self._users += 1

    def release(self) -> None:
        """Closed when the writer and the hasher are both done with it."""
        with _SOURCE_LOCK:
            self._users -= 1
            if self._users:
                return
        if self._view is not None:
            self._view.release()
        if self._map is not None:
            self._map.close()
        self._file.close()


_SOURCE_LOCK = threading.Lock()


class _BackgroundSha256:
    """sha256 of what a writer writes, computed on another thread while it goes on
    (``hashlib`` and ``os.pread`` release the GIL). It gets the bytes that went through
    the write buffer, and for a range copied by the kernel it reads the source's range
    itself (from the page cache); everything is hashed in order."""

    def __init__(self) -> None:
        self._digest = hashlib.sha256()
        self._queue: "queue.Queue" = queue.Queue(maxsize=16)
        self._thread = threading.Thread(target=self._run, name="sha256", daemon=True)
        self._thread.start()
        self.hexdigest: Optional[str] = None

    def update(self, data: bytes) -> None:
        self._queue.put((data, None, 0, 0))

    def update_range(self, source: "_Source", offset: int, count: int) -> None:
        source.acquire()  # kept open until hashed
        self._queue.put((None, source, offset, count))

    def _run(self) -> None:
        while True:
            data, source, offset, count = self._queue.get()
            if data is not None:
                self._digest.update(data)
            elif source is not None:
                try:
                    end = offset + count
                    while offset < end:
                        chunk = os.pread(source.fd, min(_BUFFER * 4, end - offset), offset)
                        if not chunk:
                            break
                        self._digest.update(chunk)
                        offset += len(chunk)
                finally:
                    source.release()
            else:
                return

    def finish(self) -> None:
        self._queue.put((None, None, 0, 0))
        self._thread.join()
        self.hexdigest = self._digest.hexdigest()


def _copy_range(source_fd: int, target_fd: int, offset: int, count: int) -> int:
    """Copy up to ``count`` bytes at ``offset`` to the target's position, in the kernel
    when it can (``copy_file_range``), else through a buffer."""
    count = min(count, 1 << 30)
    if hasattr(os, "copy_file_range"):
        try:
            return os.copy_file_range(source_fd, target_fd, count, offset)
        except OSError:
            pass  # e.g. across filesystems on old kernels: copy in user space
    data = os.pread(source_fd, min(count, _BUFFER), offset)
    view = memoryview(data)
    while view:
        view = view[os.write(target_fd, view):]
    return len(data)


# -- the artifact -----------------------------------------------------------------------

def shebang(python_version: str) -> bytes:
    """The first line pex writes for an interpreter ``X.Y``."""
    return f"#!/usr/bin/env python{python_version}\n".encode()


def runtime_files(packed: Path, info_changes: Dict, sources: Sequence[Tuple[str, Path]] = ()
                  ) -> Dict[str, bytes]:
    """``PEX-INFO``, ``__main__.py`` and ``__pex__/__init__.py`` of a packed directory,
    with ``info_changes`` applied and, with ``sources``, their ``code_hash``; the
    ``pex_hash`` is recomputed (the runtime names its installed venv after it) whenever
    anything changed. Raises :class:`BuildError` for a runtime that does not name its
    pex_hash exactly once."""
    texts = {name: (packed / name).read_bytes() for name in _RUNTIME_FILES}
    info = json.loads(texts["PEX-INFO"])
    wanted = dict(info_changes)
    if sources:
        wanted["code_hash"] = code_hash(sources)
    if all(info.get(k) == v for k, v in wanted.items()):
        return texts
    old_hash = info.pop("pex_hash", None)
    info.update(wanted)
    new_hash = hashlib.sha1(_json(info).encode()).hexdigest()
    info["pex_hash"] = new_hash
    texts["PEX-INFO"] = _json(info).encode()
    for name in _RUNTIME_FILES[1:]:
        needle = f"pex_hash={old_hash!r}".encode()
        if old_hash is None or texts[name].count(needle) != 1:
            raise BuildError(f"this pex version's {name} does not name its pex_hash once")
        texts[name] = texts[name].replace(needle, f"pex_hash={new_hash!r}".encode())
    return texts


def code_hash(sources: Sequence[Tuple[str, Path]]) -> str:
    """A sha1 over the sources' names and bytes (the key pex keeps user code under)."""
    digest = hashlib.sha1()
    for arcname, path in sorted(sources):
        digest.update(arcname.encode() + b"\0")
        digest.update(hashlib.sha1(path.read_bytes()).digest())
    return digest.hexdigest()


def _json(value: Dict) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"))


def write(packed: Path, output: Path, layout: str, python_version: str,
          sources: Sequence[Tuple[str, Path]] = (), info_changes: Optional[Dict] = None
          ) -> SingleFile:
    """Write the single-file artifact of the packed pex directory ``packed``.

    :param layout: ``zipapp`` (``.pex``), ``packed`` or ``loose`` (``.pex.zip``)
    :param python_version: ``X.Y``, for the zipapp's shebang
    :param sources: ``(arcname, file)`` of the pex's own code (editable projects)
    :param info_changes: PEX-INFO keys to set in this artifact only
    """
    if layout not in LAYOUTS:
        raise ValueError(f"unknown single-file layout {layout!r}, expected one of {LAYOUTS}")
    texts = runtime_files(packed, info_changes or {}, sources)
    modes = {name: stat.S_IMODE((packed / name).stat().st_mode) for name in _RUNTIME_FILES}
    try:
        with atomic_write(output, mode=0o755) as tmp:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
            try:
                with ZipWriter(fd, shebang(python_version) if layout == ZIPAPP else b"",
                               sha256=True) as writer:
                    _write_entries(writer, packed, layout, texts, modes, sources)
            finally:
                os.close(fd)
            digest = writer.sha256 or file_sha256(tmp)
    except OSError as exc:  # e.g. a full disk: say where, not a traceback
        raise BuildError(f"cannot write the single-file artifact {output}: "
                         f"{exc.strerror or exc}") from None
    return SingleFile(output, output.stat().st_size, digest)


def _write_entries(writer: ZipWriter, packed: Path, layout: str, texts: Dict[str, bytes],
                   modes: Dict[str, int], sources: Sequence[Tuple[str, Path]]) -> None:
    """The entries in pex's order (sorted names: .bootstrap, .deps, PEX-INFO,
    __main__.py, __pex__, then the pex's own sources)."""
    deps = sorted(p.name for p in (packed / ".deps").iterdir())
    if layout == PACKED:
        writer.add_file(".bootstrap", packed / ".bootstrap")
        writer.add_directory(".deps/")
        for wheel in deps:
            writer.add_file(f".deps/{wheel}", packed / ".deps" / wheel)
    else:
        writer.add_zip_entries(packed / ".bootstrap", ".bootstrap/")
        writer.add_directory(".deps/")
        for wheel in deps:
            writer.add_zip_entries(packed / ".deps" / wheel, f".deps/{wheel}/")
    writer.add_bytes("PEX-INFO", texts["PEX-INFO"], modes["PEX-INFO"])
    writer.add_bytes("__main__.py", texts["__main__.py"], modes["__main__.py"])
    writer.add_directory("__pex__/")
    writer.add_bytes("__pex__/__init__.py", texts["__pex__/__init__.py"],
                     modes["__pex__/__init__.py"])
    for arcname, path in sorted(sources):
        for parent in _parents(arcname):
            writer.add_directory(parent)
        writer.add_file(arcname, path)


def _parents(arcname: str) -> List[str]:
    parts = arcname.split("/")[:-1]
    return ["/".join(parts[:i]) + "/" for i in range(1, len(parts) + 1)]
