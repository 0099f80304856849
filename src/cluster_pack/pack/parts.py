"""Content-addressed parts: how an environment is published once and then only by difference.

``upload_env`` builds a standard pex in pex's ``packed`` layout: a directory holding
``__main__.py``, ``PEX-INFO``, ``.bootstrap`` (the pex runtime, zipped) and ``.deps/<wheel>``,
one zip per distribution (cached per distribution, so re-building after a change only zips
the changed distribution: :mod:`cluster_pack.pack.distzip`). Every file of that directory is a
*part*, stored once under its sha256 in a pool shared by all environments of the same
directory::

    envs/myenv.json                        the manifest: layout "parts", the list of parts
    envs/.cluster-pack-parts/<sha256>      immutable parts, written only when absent

A changed distribution therefore costs one new part and a new manifest. Nothing is ever
overwritten, so a job still localizing the previous version keeps reading the same bytes,
and readers check each part against the sha256 the manifest names.

On a node every engine localizes each part under a flat link name (``cpack-<sha256>``)
through its own cache (YARN's localization cache with ``private`` visibility, Spark's
fetch cache, the local runner's node cache), then :func:`assembly_script` re-creates the
packed directory with relative symlinks, which the standard pex runtime runs.

>>> parts = [Part(".deps/six-1.17.0-py2.py3-none-any.whl", "ab" * 32, 39176)]
>>> link_name(parts[0])
'cpack-abababababababababababababababab'
"""

from __future__ import annotations

import hashlib
import os
import re
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Iterable, List, Optional, Sequence, Tuple

from cluster_pack.cache import CacheDir, JsonIndex
from cluster_pack.errors import IntegrityError

LINK_PREFIX = "cpack-"
# Files the node copies instead of linking: Python resolves the symlinks of a script it
# runs (sys.path[0] would become the cache directory), and PEX-INFO is tiny.
COPIED = frozenset({"__main__.py", "PEX-INFO"})
_PART_PATH = re.compile(r"^[A-Za-z0-9_.+=~-]+(/[A-Za-z0-9_.+=~-]+)*$")
_SHA256 = re.compile(r"^[0-9a-f]{64}$")
_HASH_CHUNK = 4 * 1024 * 1024
_HASH_CACHE_ENTRIES = 50_000


@dataclass(frozen=True)
class Part:
    """One file of a packed pex directory."""

    path: str  # relative path inside the pex directory, e.g. ".deps/numpy-...whl"
    sha256: str
    size: int
    executable: bool = False

    def validate(self, where: str) -> None:
        parts = self.path.split("/")
        if not _PART_PATH.match(self.path) or any(p in (".", "..") for p in parts):
            raise IntegrityError(f"{where} names the part {self.path!r}: not a plain relative path")
        if not _SHA256.match(str(self.sha256)):
            raise IntegrityError(f"{where}: part {self.path} has an invalid sha256 {self.sha256!r}")
        if not isinstance(self.size, int) or self.size < 0:
            raise IntegrityError(f"{where}: part {self.path} has an invalid size {self.size!r}")


def is_sha256(name: str) -> bool:
    """Whether ``name`` is a lowercase hex sha256 (the name of a part)."""
    return bool(_SHA256.match(name))


def link_name(part: Part) -> str:
    """The flat name a part is localized under in a working directory."""
    return f"{LINK_PREFIX}{part.sha256[:32]}"


def tree_sha256(parts: Sequence[Part]) -> str:
    """One digest naming a whole set of parts (the manifest's ``sha256``)."""
    lines = sorted(f"{p.path}\0{p.sha256}\0{p.size}\0{int(p.executable)}" for p in parts)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# -- hashing, with a cache: unchanged zips are hard links into a cache (distzip's or
# -- pex's), so the same inode with the same size and mtime is the same content --------

class HashCache:
    """sha256 of local files keyed by (device, inode, size, mtime), kept in a JSON file."""

    def __init__(self, path: Optional[Path] = None):
        self.path = path or CacheDir.PART_HASHES.path()
        self._index: JsonIndex[str] = JsonIndex(self.path, str)

    @staticmethod
    def _key(path: Path) -> str:
        st = path.stat()
        return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"

    def sha256(self, path: Path) -> str:
        key = self._key(path)
        cached = self._index.get(key)
        if cached and _SHA256.match(cached):
            return cached
        digest = file_sha256(path)
        self._index.put(key, digest)
        return digest

    def save(self) -> None:
        self._index.save(keep_last=_HASH_CACHE_ENTRIES)


def file_sha256(path: Path) -> str:
    """sha256 of a file, streamed (never holds the file in memory)."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        while True:
            chunk = f.read(_HASH_CHUNK)
            if not chunk:
                break
            digest.update(chunk)
    return digest.hexdigest()


def list_parts(pex_dir: Path, cache: Optional[HashCache] = None,
               known: Optional[Dict[str, str]] = None) -> List[Tuple[Part, Path]]:
    """The parts of a packed pex directory with their sha256.

    ``known`` maps relative paths to sha256 already computed (not hashed again). Other
    large files are hashed through the :class:`HashCache` on every core (hashlib releases
    the GIL), small ones directly. Symbolic links (pex's ``pex -> __main__.py``
    convenience link) are not parts.
    """
    files: List[Path] = []
    for root, dirs, names in os.walk(pex_dir):
        dirs.sort()
        for name in sorted(names):
            path = Path(root) / name
            if not path.is_symlink():
                files.append(path)

    def rel(path: Path) -> str:
        return path.relative_to(pex_dir).as_posix()

    digests = dict(known or {})
    large = [f for f in files if rel(f) not in digests and f.stat().st_size >= _HASH_CHUNK]
    if large:  # through the cache, on every core
        cache = cache or HashCache()
        with ThreadPoolExecutor(max(1, min(len(large), os.cpu_count() or 1))) as pool:
            digests.update(zip(map(rel, large), pool.map(cache.sha256, large)))
        cache.save()
    out = []
    for path in files:
        st = path.stat()
        digest = digests.get(rel(path)) or file_sha256(path)
        out.append((Part(rel(path), digest, st.st_size, bool(st.st_mode & stat.S_IXUSR)), path))
    return out


def parts_from_json(raw: Iterable[Any], where: str) -> List[Part]:
    out = []
    for item in raw:
        if not isinstance(item, dict):
            raise IntegrityError(f"{where}: a part is not a JSON object")
        try:
            part = Part(str(item["path"]), str(item["sha256"]), item["size"],
                        bool(item.get("executable", False)))
        except KeyError as exc:
            raise IntegrityError(f"{where}: a part lacks {exc}") from None
        part.validate(where)
        out.append(part)
    return out
