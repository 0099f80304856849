"""The parts pool of a store directory: publishing only the parts it lacks, and sweeping
those no manifest names any more.

::

    envs/myenv.json                        the manifest: layout "parts", the list of parts
    envs/.cluster-pack-parts/<sha256>      immutable parts, written only when absent
"""

from __future__ import annotations

import hashlib
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import List, Sequence, Set, Tuple

from cluster_pack.errors import IntegrityError, StorageError
from cluster_pack.pack.parts import Part, is_sha256
from cluster_pack.progress import Reporter
from cluster_pack.store.manifest import MAX_MANIFEST_BYTES, LegacyManifest, Manifest
from cluster_pack.store.storage import TMP_MARKER, Store, mtime_of

POOL_DIR = ".cluster-pack-parts"
_HASH_CHUNK = 4 * 1024 * 1024


def pool_dir(package_path: str) -> str:
    """The pool of the directory holding ``package_path``."""
    return f"{package_path.rstrip('/').rsplit('/', 1)[0]}/{POOL_DIR}"


def part_url(package_path: str, part: Part) -> str:
    return f"{pool_dir(package_path)}/{part.sha256}"


_UPLOAD_THREADS = 4
# read-only: a part is never modified (on the local store it shares its inode with pex's
# cache of zipped distributions, so an in-place edit would damage both)
PART_MODE = 0o440


def missing(store: Store, package_path: str, parts: Sequence[Part]) -> List[Part]:
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


def damaged(store: Store, package_path: str, parts: Sequence[Part]) -> List[Part]:
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


def publish(store: Store, package_path: str, listed: Sequence[Tuple[Part, Path]],
            reporter: Reporter, verify: bool = False) -> int:
    """Put the parts the pool lacks; returns the bytes written.

    ``verify`` (``force_upload``): also read back the parts already there and replace
    those whose content is damaged.

    Each part appears in one step (temporary name, then rename; an object store's put),
    under its sha256, and a visible part is never rewritten (``Store.publish_file_once``).
    On the local store a part is a hard link to the built file (no copy) when the
    filesystem allows it.
    """
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


def collect_garbage(store: Store, directory: str, min_age_days: float = DEFAULT_GC_MIN_AGE_DAYS,
                    dry_run: bool = False) -> Collected:
    """Remove the parts of ``directory``'s pool that no manifest there names any more.

    Only parts older than ``min_age_days`` go: a job submitted with an older manifest may
    still be localizing them, and a publisher writes its parts before its manifest. A
    manifest that cannot be read stops the collection (nothing is removed: its parts
    could be the ones in use).

    >>> from cluster_pack.store.storage import Store                      # doctest: +SKIP
    >>> store, path = Store.for_url("hdfs:///user/me/envs")       # doctest: +SKIP
    >>> collect_garbage(store, path, dry_run=True).unreferenced   # doctest: +SKIP
    """
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
        referenced.update(part.sha256 for part in manifest.pool_parts)
    now = time.time()
    out = Collected([], [], [], 0)
    for entry in store.ls(f"{directory}/{POOL_DIR}"):
        name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
        if not is_sha256(name) or name in referenced:
            continue
        out.unreferenced.append(name)
        mtime = mtime_of(entry)
        if mtime is not None and now - mtime < min_age_days * 86400:
            out.kept_young.append(name)
            continue
        if not dry_run:
            store.remove(f"{directory}/{POOL_DIR}/{name}")
        out.removed.append(name)
        out.freed_bytes += int(entry.get("size") or 0)
    return out
