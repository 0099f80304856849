"""Content-addressed parts: how an environment is published once and then only by difference.

``upload_env`` builds a standard pex in pex's ``packed`` layout: a directory holding
``__main__.py``, ``PEX-INFO``, ``.bootstrap`` (the pex runtime, zipped) and ``.deps/<wheel>``,
one zip per distribution (cached per distribution, so re-building after a change only zips
the changed distribution: :mod:`cluster_pack.distzip`). Every file of that directory is a
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
import json
import os
import re
import shlex
import stat
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from cluster_pack import settings
from cluster_pack.errors import IntegrityError

POOL_DIR = ".cluster-pack-parts"
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


def link_name(part: Part) -> str:
    """The flat name a part is localized under in a working directory."""
    return f"{LINK_PREFIX}{part.sha256[:32]}"


def pool_dir(package_path: str) -> str:
    """The pool of the directory holding ``package_path``."""
    return f"{package_path.rstrip('/').rsplit('/', 1)[0]}/{POOL_DIR}"


def part_url(package_path: str, part: Part) -> str:
    return f"{pool_dir(package_path)}/{part.sha256}"


def tree_sha256(parts: Sequence[Part]) -> str:
    """One digest naming a whole set of parts (the manifest's ``sha256``)."""
    lines = sorted(f"{p.path}\0{p.sha256}\0{p.size}\0{int(p.executable)}" for p in parts)
    return hashlib.sha256("\n".join(lines).encode()).hexdigest()


# -- hashing, with a cache: unchanged zips are hard links into a cache (distzip's or
# -- pex's), so the same inode with the same size and mtime is the same content --------

class HashCache:
    """sha256 of local files keyed by (device, inode, size, mtime), kept in a JSON file."""

    def __init__(self, path: Optional[Path] = None):
        self.path = path or settings.get_cache_dir() / "part-hashes.json"
        self._entries: Dict[str, str] = {}
        self._dirty = False
        try:
            loaded = json.loads(self.path.read_text())
            if isinstance(loaded, dict):
                self._entries = {str(k): str(v) for k, v in loaded.items()}
        except (OSError, ValueError):
            pass

    @staticmethod
    def _key(path: Path) -> str:
        st = path.stat()
        return f"{st.st_dev}:{st.st_ino}:{st.st_size}:{st.st_mtime_ns}"

    def sha256(self, path: Path) -> str:
        key = self._key(path)
        cached = self._entries.get(key)
        if cached and _SHA256.match(cached):
            return cached
        digest = file_sha256(path)
        self._entries[key] = digest
        self._dirty = True
        return digest

    def save(self) -> None:
        if not self._dirty:
            return
        entries = dict(list(self._entries.items())[-_HASH_CACHE_ENTRIES:])
        settings.ensure_private_dir(self.path.parent)
        tmp = self.path.with_name(f".{self.path.name}.{os.getpid()}.tmp")
        tmp.write_text(json.dumps(entries))
        os.replace(tmp, self.path)
        self._dirty = False


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


# -- on the node ---------------------------------------------------------------------

def assembly_script(dest: str, parts: Sequence[Part]) -> str:
    """POSIX shell lines re-creating the packed pex directory ``dest`` in the working
    directory from the parts localized there under their :func:`link_name`.

    Assembled once per working directory (a temporary directory renamed into place, so a
    second process of the same container waits for nothing and never sees half of it).
    Links are relative: the directory stays valid wherever the working directory is seen.
    """
    q = shlex.quote
    # the quoted name then the shell's $$ (one word): dest may hold any character
    tmp = q(f"{dest}.cpack-tmp-") + "$$"
    lines = [f"if [ ! -f {q(dest + '/PEX-INFO')} ]; then",
             f"  rm -rf {tmp}"]
    directories = sorted({p.path.rsplit("/", 1)[0] for p in parts if "/" in p.path})
    if directories:
        lines.append("  mkdir -p " + " ".join(f"{tmp}/{q(d)}" for d in directories))
    else:
        lines.append(f"  mkdir -p {tmp}")
    for part in sorted(parts, key=lambda p: p.path):
        target = f"{tmp}/{q(part.path)}"
        if part.path in COPIED:
            lines.append(f"  cp {q(link_name(part))} {target}")
            if part.executable:
                lines.append(f"  chmod 755 {target}")
        else:
            up = "../" * (part.path.count("/") + 1)
            lines.append(f"  ln -s {q(up + link_name(part))} {target}")
    # GNU mv -T refuses to move into an existing directory (another process won the race);
    # where -T is unknown (BSD), move only if nothing is there yet
    lines.append(f"  mv -T {tmp} {q(dest)} 2>/dev/null || "
                 f"{{ [ -e {q(dest)} ] || mv {tmp} {q(dest)}; }} 2>/dev/null")
    lines.append(f"  rm -rf {tmp}")
    lines.append("fi")
    return "\n".join(lines) + "\n"


def materialize(parts: Sequence[Part], dest: Path,
                fetch: Callable[[Part, Path], None]) -> Path:
    """Write the packed pex directory ``dest`` with real files (``fetch(part, local_path)``
    writes one part); ``python dest`` then runs it with the standard pex runtime."""
    for part in parts:
        target = dest / part.path
        target.parent.mkdir(parents=True, exist_ok=True)
        fetch(part, target)
        if part.executable:
            os.chmod(target, 0o755)
    return dest


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


# -- in the store ----------------------------------------------------------------------

_UPLOAD_THREADS = 4
# read-only: a part is never modified (on the local store it shares its inode with pex's
# cache of zipped distributions, so an in-place edit would damage both)
PART_MODE = 0o440


def missing(store: Any, package_path: str, parts: Sequence[Part]) -> List[Part]:
    """The parts absent from the pool (or present with another size: damaged), one listing."""
    present = {entry["name"].rstrip("/").rsplit("/", 1)[-1]: entry.get("size")
               for entry in store.ls(pool_dir(package_path))}
    out, seen = [], set()
    for part in parts:
        if part.sha256 in seen:
            continue
        seen.add(part.sha256)
        if present.get(part.sha256) != part.size:
            out.append(part)
    return out


def damaged(store: Any, package_path: str, parts: Sequence[Part]) -> List[Part]:
    """The parts present in the pool whose bytes do not hash to their name (reads them all:
    ``force_upload`` only)."""
    out = []
    for part in {p.sha256: p for p in parts}.values():
        digest = hashlib.sha256()
        try:
            with store.fs.open(part_url(package_path, part), "rb") as f:
                for chunk in iter(lambda: f.read(_HASH_CHUNK), b""):
                    digest.update(chunk)
        except FileNotFoundError:
            continue  # missing: missing() reports it
        if digest.hexdigest() != part.sha256:
            out.append(part)
    return out


def publish(store: Any, package_path: str, listed: Sequence[Tuple[Part, Path]],
            reporter: Any, verify: bool = False) -> int:
    """Put the parts the pool lacks; returns the bytes written.

    ``verify`` (``force_upload``): also read back the parts already there and replace
    those whose content is damaged.

    Each part appears in one step (temporary name, then rename; an object store's put),
    under its sha256, and a visible part is never rewritten (``Store.publish_file_once``).
    On the local store a part is a hard link to the built file (no copy) when the
    filesystem allows it.
    """
    import threading

    all_parts = [part for part, _ in listed]
    todo = missing(store, package_path, all_parts)
    repair = []
    if verify:
        reporter.step("verifying the published parts")
        absent = {part.sha256 for part in todo}
        repair = damaged(store, package_path, [p for p in all_parts if p.sha256 not in absent])
        todo += repair
    wanted = {part.sha256 for part in todo}
    local_of = {part.sha256: path for part, path in listed if part.sha256 in wanted}
    pool = pool_dir(package_path)
    store.makedirs(pool)
    store.remove_stale_temporaries(pool)
    total = sum(part.size for part in todo)
    if not todo:
        return 0
    reporter.step(f"publishing {len(todo)} new part(s) of {len(listed)}, {total} bytes")
    lock = threading.Lock()

    def advance(nbytes: int) -> None:
        with lock:
            reporter.advance(nbytes)

    def put(part: Part) -> None:
        target = f"{pool}/{part.sha256}"
        if part in repair:  # damaged bytes under the right size: replace them
            store.publish_file(local_of[part.sha256], target, progress=advance, sweep=False)
        else:
            store.publish_file_once(local_of[part.sha256], target, part.size,
                                    progress=advance, mode=PART_MODE)

    reporter.start_transfer(f"publishing to {store.url(pool)}", total)
    try:
        threads = 1 if store.is_local else _UPLOAD_THREADS
        with ThreadPoolExecutor(threads) as pool_executor:
            list(pool_executor.map(put, todo))
    finally:
        reporter.end_transfer()
    return total


# -- garbage collection ------------------------------------------------------------------

DEFAULT_GC_MIN_AGE_DAYS = 7.0


@dataclass
class Collected:
    """What :func:`collect_garbage` found (and removed unless it was a dry run)."""

    unreferenced: List[str]  # pool entries no manifest of the directory names
    removed: List[str]
    kept_young: List[str]  # unreferenced but younger than the minimum age
    freed_bytes: int


def collect_garbage(store: Any, directory: str, min_age_days: float = DEFAULT_GC_MIN_AGE_DAYS,
                    dry_run: bool = False) -> Collected:
    """Remove the parts of ``directory``'s pool that no manifest there names any more.

    Only parts older than ``min_age_days`` go: a job submitted with an older manifest may
    still be localizing them, and a publisher writes its parts before its manifest. A
    manifest that cannot be read stops the collection (nothing is removed: its parts
    could be the ones in use).

    >>> from cluster_pack.store import Store                      # doctest: +SKIP
    >>> store, path = Store.for_url("hdfs:///user/me/envs")       # doctest: +SKIP
    >>> collect_garbage(store, path, dry_run=True).unreferenced   # doctest: +SKIP
    """
    import time

    from cluster_pack.errors import StorageError
    from cluster_pack.manifest import MAX_MANIFEST_BYTES, LegacyManifest, Manifest
    from cluster_pack.store import TMP_MARKER, _mtime

    directory = directory.rstrip("/")
    referenced: Set[str] = set()
    for entry in store.ls(directory):
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if entry.get("type") == "directory" or not name.endswith(".json") or TMP_MARKER in name:
            continue
        raw = store.read_bytes(f"{directory}/{name}", MAX_MANIFEST_BYTES) or b""
        try:
            manifest = Manifest.from_json(raw, store.url(f"{directory}/{name}"))
        except LegacyManifest:
            continue
        except IntegrityError as exc:
            raise StorageError(f"not collecting {store.url(directory)}: {exc}") from None
        referenced.update(part.sha256 for part in manifest.parts)
    now = time.time()
    out = Collected([], [], [], 0)
    for entry in store.ls(f"{directory}/{POOL_DIR}"):
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if not _SHA256.match(name) or name in referenced:
            continue
        out.unreferenced.append(name)
        mtime = _mtime(entry)
        if mtime is not None and now - mtime < min_age_days * 86400:
            out.kept_young.append(name)
            continue
        if not dry_run:
            store.remove(f"{directory}/{POOL_DIR}/{name}")
        out.removed.append(name)
        out.freed_bytes += int(entry.get("size") or 0)
    return out
