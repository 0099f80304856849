"""Installed distributions zipped the way pex's ``packed`` layout stores them.

A packed pex keeps each distribution as ``.deps/<wheel file name>``: a zip of the
distribution installed into a chroot. The files of site-packages are at the root, data
files under ``.prefix/data``, and the zip carries a RECORD rewritten to those paths plus a
``.layout.json`` describing the chroot. On a node the pex runtime unzips it once into
``PEX_ROOT`` and re-installs it into the venv it runs from, regenerating the entry-point
scripts from ``entry_points.txt``.

pex makes these zips in a subprocess that takes half a second to start. For each
distribution it re-installs the files into a chroot, hashes the chroot, then zips it.
This module writes the same zip in one pass, straight from the files the venv already
lists in its RECORDs, and hashes the output while writing it. It keeps the result per
distribution (:class:`DistZipCache`), so after a change only the changed distribution is
zipped again.

Scripts follow pex's rules: entry-point scripts are left out (the node generates them),
Python scripts get the ``#!python`` placeholder shebang the node rewrites, and other
scripts are kept as they are. Distributions it does not handle raise :class:`Unsupported`,
and the caller falls back to pex for the whole build. They are the ones without a
RECORD, with absolute paths in it, or with C headers.
"""

from __future__ import annotations

import base64
import configparser
import csv
import hashlib
import io
import json
import logging
import os
import re
import shutil
import stat
import time
import zipfile
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Dict, List, Optional, Sequence, Set, Tuple, Union

from cluster_pack import settings
from cluster_pack.atomic import atomic_write
from cluster_pack.cache import CacheDir, JsonIndex
from cluster_pack.errors import BuildError
from cluster_pack.pack.environment import Distribution
from cluster_pack.pack.record import read_record

# Part of every cache key: bump it whenever the bytes written for a distribution change.
FORMAT = 1
STASH_DIR = ".prefix"
LAYOUT_FILE = ".layout.json"
_ZIP_DATE = (1980, 1, 1, 0, 0, 0)
_CHUNK = 1024 * 1024
# Metadata private to the installer that pex drops (it writes its own on the node).
_INSTALLER_FILES = frozenset({"INSTALLER", "REQUESTED", "uv_build.json", "uv_cache.json"})
_CACHE_MAX_AGE_S = 30 * 24 * 3600
_logger = logging.getLogger(__name__)
# A Python shebang: "python", "/usr/bin/env python3.11 -I", "/abs/path/pypy3" (the forms
# pex recognises as Python, with an optional interpreter argument).
_PYTHON_SHEBANG = re.compile(rb"(?:^|.*\W)(?:python|pypy)(?:\d+(?:\.\d+)*)?(?:\.exe)?(?:\s\S|$)",
                             re.IGNORECASE)
_ENCODING_LINE = re.compile(rb"^[ \t\f]*#.*?coding[:=][ \t]*([-_.a-zA-Z0-9]+)")
_TRIPLE = b"'" * 3
_SHA256 = re.compile(r"[0-9a-f]{64}")
_WHEEL_NAME = re.compile(r"[A-Za-z0-9_.+=~-]+\.whl")  # also a valid part path component


class Unsupported(Exception):
    """This distribution needs pex itself to be packed (the message says why)."""


@dataclass(frozen=True)
class DistZip:
    """One written distribution zip."""

    wheel_name: str  # its name under .deps/
    fingerprint: str  # what PEX-INFO and .layout.json name it by (pex caches it under it)
    sha256: str  # of the zip file
    size: int


@dataclass(frozen=True)
class _Plan:
    dist: Distribution
    wheel_name: str
    # (arcname, source path or the bytes to write), sorted by arcname
    files: Tuple[Tuple[str, Union[str, bytes]], ...]
    record: bytes
    record_arcname: str
    root_is_purelib: bool
    size: int


# -- reading what the venv has installed ---------------------------------------------

def _wheel_metadata(metadata_dir: Path) -> Tuple[List[str], bool]:
    """(tags, root_is_purelib) from a dist-info's WHEEL file."""
    try:
        text = (metadata_dir / "WHEEL").read_text(encoding="utf-8")
    except OSError as exc:
        raise Unsupported(f"{metadata_dir.name} has no readable WHEEL file ({exc})") from None
    tags, purelib = [], False
    for line in text.splitlines():
        key, _, value = line.partition(":")
        key, value = key.strip().lower(), value.strip()
        if key == "tag" and value:
            tags.append(value)
        elif key == "root-is-purelib":
            purelib = value.lower() == "true"
    if not tags:
        raise Unsupported(f"{metadata_dir.name}/WHEEL names no tag")
    return tags, purelib


def wheel_file_name(dist: Distribution, tags: Sequence[str]) -> str:
    """The wheel file name pex gives a distribution: ``name-version-pys-abis-platforms.whl``.

    >>> from pathlib import Path
    >>> d = Distribution("zope.interface", "6.0", Path("x.dist-info"))
    >>> wheel_file_name(d, ["cp311-cp311-linux_x86_64"])
    'zope_interface-6.0-cp311-cp311-linux_x86_64.whl'
    """
    columns: List[Dict[str, None]] = [{}, {}, {}]  # insertion-ordered sets
    for tag in tags:
        for column, value in zip(columns, tag.split("-", 2)):
            column[value] = None
    name = re.sub(r"[-_.]+", "_", dist.name)
    version = dist.version.replace("-", "_")
    return f"{name}-{version}-" + "-".join(".".join(c) for c in columns) + ".whl"


def _entry_point_scripts(metadata_dir: Path) -> frozenset:
    path = metadata_dir / "entry_points.txt"
    if not path.is_file():
        return frozenset()
    parser = configparser.ConfigParser(delimiters=("=",), interpolation=None, strict=False)
    # ignore: the documented way to keep keys' case (typeshed types it as a method)
    parser.optionxform = str  # type: ignore[assignment,method-assign]
    try:
        parser.read(path, encoding="utf-8")
    except configparser.Error as exc:
        raise Unsupported(f"{path} cannot be parsed: {exc}") from None
    return frozenset(name.strip() for section in ("console_scripts", "gui_scripts")
                     if parser.has_section(section) for name in parser[section])


def _python_script(path: str) -> Optional[bytes]:
    """The script at ``path`` with pex's ``#!python`` placeholder shebang, or None when it
    is not a Python script (a binary, a shell script: shipped as it is)."""
    with open(path, "rb") as f:
        if f.read(2) != b"#!":
            return None
        first = f.readline().rstrip()
        lines = io.BytesIO(f.read())
    encoding = b""
    if first == b"/bin/sh":
        # A too-long-shebang re-director: sh exec's Python on the file. Its sh lines sit in
        # a triple-quoted string, skipped with them; an encoding line is kept.
        second = lines.readline()
        if _ENCODING_LINE.match(second):
            encoding, second = second, lines.readline()
        if not (second.startswith(_TRIPLE) and (b"exec" in second or b"pshprs" in second)):
            return None
        while True:
            line = lines.readline()
            if not line or line.endswith(_TRIPLE + b"\n"):
                break
    elif not _PYTHON_SHEBANG.match(first):
        return None
    return b"#!python\n" + encoding + lines.read()


def _record_hash(data: bytes) -> str:
    digest = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=")
    return "sha256=" + digest.decode("ascii")


class _RealPaths:
    """``os.path.realpath`` of installed files, resolving each directory once (thousands
    of files share a few hundred directories)."""

    def __init__(self) -> None:
        self._dirs: Dict[str, str] = {}

    def regular_file(self, path: str) -> Optional[str]:
        """The real path of ``path`` if it is (a link to) a regular file, else None."""
        head, tail = os.path.split(path)
        real_head = self._dirs.get(head)
        if real_head is None:
            real_head = self._dirs[head] = os.path.realpath(head)
        real = os.path.join(real_head, tail)
        try:
            mode = os.lstat(real).st_mode
            if stat.S_ISLNK(mode):
                real = os.path.realpath(real)
                mode = os.stat(real).st_mode
        except OSError:
            return None
        return real if stat.S_ISREG(mode) else None


def _within(path: str, root: str) -> bool:
    return path == root or path.startswith(root.rstrip(os.sep) + os.sep)


def plan(dist: Distribution, prefix: Path) -> _Plan:
    """What goes into the zip of ``dist``, read from its RECORD (of the files themselves,
    only scripts are read: their shebang may need rewriting)."""
    meta = dist.metadata_dir
    if not meta.name.endswith(".dist-info"):
        raise Unsupported(f"{meta.name} is not a .dist-info directory")
    tags, root_is_purelib = _wheel_metadata(meta)
    record = read_record(meta)
    if record is None:
        raise Unsupported(f"{meta.name} has no RECORD")
    site = meta.parent
    site_real = os.path.realpath(site)
    prefix_real = os.path.realpath(prefix)
    scripts_real = os.path.join(prefix_real, "bin")
    headers_real = os.path.join(prefix_real, "include", "site")
    entry_points = _entry_point_scripts(meta)
    record_arcname = f"{meta.name}/RECORD"
    real_paths = _RealPaths()

    rows: List[List[str]] = []
    files: Dict[str, Union[str, bytes]] = {}
    total = 0
    for row in record.rows:
        row = (row + ["", ""])[:3]
        path = row[0]
        if os.path.isabs(path):
            raise Unsupported(f"{record.path} lists an absolute path ({path})")
        if path.endswith("/"):
            rows.append(row)  # a directory entry: kept as pex keeps it
            continue
        if path == record_arcname:
            rows.append([path, "", ""])
            continue
        if path.startswith(meta.name + "/") and path[len(meta.name) + 1:] in _INSTALLER_FILES:
            continue
        if path.endswith(".pyc"):
            continue
        source = os.path.normpath(os.path.join(site, path))
        real = real_paths.regular_file(source)
        if real is None:
            continue  # a RECORD naming a file that is not there: pex skips it too
        if _within(real, site_real) or _within(source, str(site)):
            base = site_real if _within(real, site_real) else str(site)
            arcname = os.path.relpath(real if base == site_real else source, base)
        elif _within(real, headers_real):
            raise Unsupported(f"{meta.name} installs C headers ({path})")
        elif _within(real, scripts_real):
            if os.path.basename(real) in entry_points:
                continue  # regenerated from entry_points.txt on the node
            arcname = f"{STASH_DIR}/bin/" + os.path.relpath(real, scripts_real)
            script = _python_script(real)
            if script is not None:
                arcname = arcname.replace(os.sep, "/")
                if arcname not in files:
                    files[arcname] = script
                    rows.append([arcname, _record_hash(script), str(len(script))])
                    total += len(script)
                continue
        elif _within(real, prefix_real):
            arcname = f"{STASH_DIR}/data/" + os.path.relpath(real, prefix_real)
        else:
            raise Unsupported(f"{meta.name} installs {path} outside of the environment")
        arcname = arcname.replace(os.sep, "/")
        if arcname in files or arcname == LAYOUT_FILE:
            continue
        files[arcname] = real
        rows.append([arcname, row[1], row[2]])
        total += int(row[2]) if row[2].isdigit() else 0
    if not any(r[0] == record_arcname for r in rows):
        rows.append([record_arcname, "", ""])
    out = io.StringIO()
    csv.writer(out, lineterminator=record.line_ending).writerows(rows)
    return _Plan(dist, wheel_file_name(dist, tags), tuple(sorted(files.items())),
                 out.getvalue().encode("utf-8"), record_arcname, root_is_purelib, total)


# -- writing ---------------------------------------------------------------------------

class _HashingWriter:
    """A write-only, unseekable file: zipfile then streams (data descriptors, never
    seeking back), so the sha256 of the zip is known when the last byte is written."""

    def __init__(self, raw):
        self._raw = raw
        self.digest = hashlib.sha256()
        self._pos = 0

    def write(self, data) -> int:
        self._raw.write(data)
        self.digest.update(data)
        self._pos += len(data)
        return len(data)

    def tell(self) -> int:
        return self._pos

    def seekable(self) -> bool:
        return False

    def flush(self) -> None:
        self._raw.flush()

    def close(self) -> None:  # the file protocol zipfile takes (it never closes a passed file)
        self._raw.close()


def _info(arcname: str, mode: int, size: int, method: int) -> zipfile.ZipInfo:
    info = zipfile.ZipInfo(arcname, _ZIP_DATE)
    info.external_attr = (mode & 0xFFFF) << 16
    if arcname.endswith("/"):
        info.external_attr |= 0x10  # MS-DOS directory flag
    info.compress_type = method
    info.file_size = size
    return info


def write(planned: _Plan, dest: Path, compress: bool) -> DistZip:
    """Write the zip of a planned distribution to ``dest`` (atomically), read-only."""
    method = zipfile.ZIP_DEFLATED if compress else zipfile.ZIP_STORED
    dest.parent.mkdir(parents=True, exist_ok=True)
    with atomic_write(dest, mode=0o444) as tmp, open(tmp, "wb") as raw:
        out = _HashingWriter(raw)
        with zipfile.ZipFile(out, "w", method, allowZip64=True) as zf:
            written_dirs: Set[str] = set()
            entries: List[Tuple[str, Union[str, bytes, None]]] = list(planned.files)
            entries.append((planned.record_arcname, None))
            entries.sort()
            for arcname, source in entries:
                _write_parents(zf, arcname, written_dirs)
                if source is None:
                    zf.writestr(_info(arcname, 0o100644, len(planned.record), method),
                                planned.record)
                elif isinstance(source, bytes):  # a script with its shebang rewritten
                    zf.writestr(_info(arcname, 0o100755, len(source), method), source)
                else:
                    _write_file(zf, arcname, source, method)
            # the fingerprint: a digest of every byte written so far (all but the layout)
            fingerprint = out.digest.copy().hexdigest()
            layout = {"fingerprint": fingerprint, "record_relpath": planned.record_arcname,
                      "root_is_purelib": planned.root_is_purelib, "stash_dir": STASH_DIR,
                      "sys_path_entries": ["."]}
            data = json.dumps(layout, sort_keys=True, separators=(",", ":")).encode()
            zf.writestr(_info(LAYOUT_FILE, 0o100644, len(data), method), data)
        raw.flush()
        size = out.tell()
        sha256 = out.digest.hexdigest()
    return DistZip(planned.wheel_name, fingerprint, sha256, size)


def _write_parents(zf: zipfile.ZipFile, arcname: str, written: set) -> None:
    parts = arcname.split("/")[:-1]
    for depth in range(1, len(parts) + 1):
        directory = "/".join(parts[:depth]) + "/"
        if directory not in written:
            written.add(directory)
            zf.writestr(_info(directory, 0o40755, 0, zipfile.ZIP_STORED), b"")


def _write_file(zf: zipfile.ZipFile, arcname: str, source: str, method: int) -> None:
    with open(source, "rb") as src:
        st = os.fstat(src.fileno())
        info = _info(arcname, stat.S_IFREG | stat.S_IMODE(st.st_mode), st.st_size, method)
        with zf.open(info, "w") as dst:
            shutil.copyfileobj(src, dst, _CHUNK)


# -- the per-distribution cache ---------------------------------------------------------

class DistZipCache:
    """Zips already written, by distribution, under ``<cache dir>/dist-zips``.

    The key is the distribution's RECORD as a file (device, inode, size, mtime) plus the
    format and compression: an install or upgrade rewrites the RECORD. A distribution
    edited in place without touching its RECORD is not seen (pex has the same rule).
    Zips unused for 30 days are removed.
    """

    def __init__(self, root: Optional[Path] = None):
        self.root = root or CacheDir.DIST_ZIPS.path()
        self._index: JsonIndex[dict] = JsonIndex(
            self.root / "index.json", lambda raw: raw if isinstance(raw, dict) else None)

    @staticmethod
    def key(dist: Distribution, compress: bool) -> Optional[str]:
        """None when the RECORD cannot be read (:func:`plan` then says why)."""
        try:
            st = (dist.metadata_dir / "RECORD").stat()
        except OSError:
            return None
        return (f"{FORMAT}:{int(compress)}:{dist.metadata_dir}:"
                f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}")

    def path(self, sha256: str) -> Path:
        return self.root / f"{sha256}.zip"

    def get(self, key: Optional[str]) -> Optional[DistZip]:
        if not key:
            return None
        entry = self._index.get(key)
        if not entry:
            return None
        try:
            found = DistZip(str(entry["wheel_name"]), str(entry["fingerprint"]),
                            str(entry["sha256"]), int(entry["size"]))
            if not (_SHA256.fullmatch(found.sha256) and _WHEEL_NAME.fullmatch(found.wheel_name)
                    and self.path(found.sha256).stat().st_size == found.size):
                return None
        except (KeyError, ValueError, OSError):
            return None
        if time.time() - entry.get("used", 0) > 24 * 3600:
            self._index.put(key, {**entry, "used": time.time()})
        return found

    def put(self, key: str, written: DistZip) -> None:
        self._index.put(key, {"wheel_name": written.wheel_name,
                              "fingerprint": written.fingerprint, "sha256": written.sha256,
                              "size": written.size, "used": time.time()})

    def save(self) -> None:
        if not self._index.dirty:
            return
        now = time.time()
        entries = self._index.entries
        stale = {k for k, v in entries.items() if now - v.get("used", 0) > _CACHE_MAX_AGE_S}
        kept = {k: v for k, v in entries.items() if k not in stale}
        live = {v.get("sha256") for v in kept.values()}
        for key in stale:
            sha = entries[key].get("sha256")
            if sha not in live and isinstance(sha, str) and _SHA256.fullmatch(sha):
                try:
                    self.path(sha).unlink()
                except OSError:
                    pass
        self._index.entries = kept
        for leftover in (self.root / "incoming").glob("*"):  # of killed writers
            try:
                if now - leftover.lstat().st_mtime > 24 * 3600:
                    leftover.unlink()
            except OSError:
                pass
        self._index.save()


def zip_distributions(dists: Sequence[Distribution], prefix: Path, compress: bool,
                      cache: Optional[DistZipCache] = None,
                      progress: Callable[[str], None] = lambda message: None,
                      refresh: bool = False, workers: Optional[int] = None,
                      ) -> List[Tuple[DistZip, Path]]:
    """The zip of every distribution, written where the cache has none (or for all of
    them with ``refresh``), on every core.

    ``workers``: threads writing zips (default: one per core).
    Raises :class:`Unsupported` (before writing anything) when one of them needs pex.
    Returns (zip, local file) in the order of ``dists``.
    """
    cache = cache or DistZipCache()
    keys = [cache.key(d, compress) for d in dists]
    found = [None if refresh else cache.get(k) for k in keys]
    todo = [plan(d, prefix) for d, f in zip(dists, found) if f is None]
    if todo:
        size = sum(p.size for p in todo)
        progress(f"zipping {len(todo)} of {len(dists)} distributions "
                 f"({size / 2**20:.0f} MiB)")
        todo.sort(key=lambda p: -p.size)  # the largest first: the cores finish together
        staging = cache.root / "incoming"

        def one(planned: _Plan) -> DistZip:
            # named by content only once written: written in a staging directory first
            tmp = staging / f"{os.getpid()}-{planned.wheel_name}"
            written = write(planned, tmp, compress)
            os.replace(tmp, cache.path(written.sha256))
            return written

        workers = max(1, min(len(todo), workers or os.cpu_count() or 1))
        try:
            settings.ensure_private_dir(cache.root)
            with ThreadPoolExecutor(workers) as pool:
                done = dict(zip((p.dist.metadata_dir for p in todo), pool.map(one, todo)))
        except OSError as exc:
            raise BuildError(f"cannot write the distribution zips in {cache.root} "
                             f"(C_PACK_CACHE_DIR): {exc.strerror or exc}") from None
        for i, dist in enumerate(dists):
            if found[i] is None:
                zipped = done[dist.metadata_dir]
                found[i] = zipped
                key = keys[i]
                if key:
                    cache.put(key, zipped)
    try:
        cache.save()
    except OSError as exc:  # the zips are written: only later builds lose the shortcut
        _logger.warning("cannot save the index of %s: %s", cache.root, exc)
    return [(f, cache.path(f.sha256)) for f in found if f is not None]
