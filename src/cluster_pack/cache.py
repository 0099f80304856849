"""The local cache: what cluster-pack keeps where, and the JSON index files some caches keep.

Everything lives under one root, :func:`cluster_pack.settings.get_cache_dir`
(``C_PACK_CACHE_DIR``, default ``$XDG_CACHE_HOME/cluster-pack`` or ``~/.cache/cluster-pack``),
one entry per :class:`CacheDir` (after pex's ``pex/cache/dirs.py``)::

    envs/               the local store (environments published without a Hadoop configuration)
    build/              artifacts built before their upload to a remote store
    dist-zips/          one zip per installed distribution, reused by every later build
    pex-runtimes/       the pex runtime, built once per pex version, interpreter and options
    part-hashes.json    sha256 of local files by (device, inode, size, mtime)
    node/               the local runner's node cache (localized resources, PEX_ROOT)
    editables/          zips of the editable projects shipped beside an environment
    runner/             the function runner zip shipped with ``submit_func``
    spark/              the Spark launcher scripts

The pex tool keeps its own cache (its ``PEX_ROOT``, ``~/.cache/pex`` by default) while it
builds; it is not listed here.

>>> CacheDir.DIST_ZIPS.relpath
'dist-zips'
"""

from __future__ import annotations

import enum
import json
from pathlib import Path
from typing import Any, Callable, Dict, Generic, Optional, TypeVar

from cluster_pack import settings
from cluster_pack.atomic import write_bytes


class CacheDir(enum.Enum):
    """A location under the cache root, with what it holds."""

    ENVS = ("envs", "the local store: environments published without a Hadoop configuration")
    BUILD = ("build", "where artifacts are built before their upload to a remote store")
    DIST_ZIPS = ("dist-zips", "one zip per installed distribution (pex's packed layout), "
                              "reused by every later build")
    PEX_RUNTIMES = ("pex-runtimes", "the pex runtime (.bootstrap, __main__.py, PEX-INFO), "
                                    "built once per pex version, interpreter and options")
    PART_HASHES = ("part-hashes.json", "sha256 of local files by (device, inode, size, mtime)")
    NODE = ("node", "the local runner's node cache: localized resources and PEX_ROOT")
    EDITABLES = ("editables", "zips of the editable projects shipped beside an environment")
    RUNNER = ("runner", "the function runner zip shipped with submit_func")
    SPARK = ("spark", "the Spark launcher scripts")
    INTERPRETERS = ("interpreters", "the base interpreters shipped with include_interpreter, "
                                    "one tar per installation")

    def __init__(self, relpath: str, purpose: str):
        self.relpath = relpath
        self.purpose = purpose

    def path(self) -> Path:
        """Its path under the current cache root (``C_PACK_CACHE_DIR`` is read now)."""
        return settings.get_cache_dir() / self.relpath

    def ensure(self) -> Path:
        """Its path, created private to the user (a directory)."""
        return settings.ensure_private_dir(self.path())


V = TypeVar("V")


class JsonIndex(Generic[V]):
    """A ``{key: value}`` cache kept in one JSON file: read once, saved atomically.

    A missing or damaged file is an empty index, and ``parse`` drops the values it does
    not accept (returns None), so a damaged entry costs a recomputation, never an error.
    """

    def __init__(self, path: Path, parse: Callable[[Any], Optional[V]]):
        self.path = path
        self.entries: Dict[str, V] = {}
        self.dirty = False
        try:
            loaded = json.loads(path.read_text())
        except (OSError, ValueError):
            return
        if isinstance(loaded, dict):
            for key, raw in loaded.items():
                value = parse(raw)
                if value is not None:
                    self.entries[str(key)] = value

    def get(self, key: str) -> Optional[V]:
        return self.entries.get(key)

    def put(self, key: str, value: V) -> None:
        self.entries[key] = value
        self.dirty = True

    def save(self, keep_last: Optional[int] = None) -> None:
        """Write the index if it changed (only its ``keep_last`` newest entries, when
        given); the directory is created private to the user."""
        if not self.dirty:
            return
        entries = self.entries
        if keep_last is not None:
            entries = dict(list(entries.items())[-keep_last:])
        settings.ensure_private_dir(self.path.parent)
        write_bytes(self.path, json.dumps(entries).encode())
        self.dirty = False
