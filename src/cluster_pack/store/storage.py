"""One way to reach any storage URL, and atomic publishing on top of it.

``Store.for_url(url)`` resolves ``hdfs://``, ``viewfs://``, ``s3://``/``s3a://``,
``file://`` and plain local paths to an fsspec filesystem and a path in it.

Publishing is atomic for readers: an artifact is written under a temporary name in
the target directory and renamed into place (object stores have atomic puts, so the
object is written directly), and the manifest goes last. A reader that finds a
manifest finds the artifact it describes; temporaries have a recognisable name
(``.<name>.cpack-tmp-<pid>-<random>``) and are removed on failure, or by the next
publish to the same directory once older than an hour (a SIGKILLed upload).
"""

from __future__ import annotations

import contextlib
import logging
import os
import secrets
import time
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Tuple
from urllib.parse import urlparse

from cluster_pack.atomic import atomic_write
from cluster_pack.errors import ConfigurationError, StorageError
from cluster_pack.store import backends
from cluster_pack.store.backends import ARTIFACT_MODE, DIR_MODE, FILE_MODE

_logger = logging.getLogger(__name__)

TMP_MARKER = ".cpack-tmp-"
STALE_TMP_SECONDS = 3600
_COPY_CHUNK = 8 * 1024 * 1024

ProgressCallback = Callable[[int], None]  # called with the number of bytes just copied

_LOCAL_SCHEMES = ("", "file", "local")
_KNOWN_SCHEMES = _LOCAL_SCHEMES + ("hdfs", "viewfs", "s3", "s3a", "gs", "gcs", "abfs",
                                   "memory", "http", "https")


def parse_url(url: str) -> Any:
    """``urlparse(url)``; a malformed URL (a port that is not a number, an unclosed IPv6
    bracket) is a :class:`ConfigurationError` naming it."""
    try:
        parsed = urlparse(url)
        parsed.port  # noqa: B018 - parsed lazily: this is what validates it
    except ValueError as exc:
        raise ConfigurationError(f"{url}: malformed URL ({exc})") from None
    return parsed


def split_url(url: str) -> Tuple[str, str]:
    """(scheme, rest) with single letters treated as local paths (``C:\\``)."""
    parsed = parse_url(url)
    scheme = parsed.scheme if len(parsed.scheme) > 1 else ""
    return scheme, url


class Store:
    """A filesystem plus the URL prefix that rebuilds full URLs from its paths."""

    def __init__(self, fs: Any, scheme: str, netloc: str = ""):
        self.fs = fs
        self.scheme = scheme
        self.netloc = netloc

    @property
    def is_local(self) -> bool:
        return self.scheme in _LOCAL_SCHEMES

    # -- resolution -------------------------------------------------------------------
    @classmethod
    def for_url(cls, url: str, fs_args: Optional[Dict[str, Any]] = None) -> Tuple["Store", str]:
        """Resolve ``url`` to ``(store, path inside the store)``."""
        if not url:
            raise ConfigurationError("empty storage path")
        fs_args = dict(fs_args or {})
        scheme, _ = split_url(url)
        scheme = scheme.lower()
        if scheme not in _KNOWN_SCHEMES:
            raise ConfigurationError(
                f"{url}: unknown storage scheme '{scheme}://'; use a local path, file://, "
                "hdfs://, viewfs:// or s3://")
        if scheme in _LOCAL_SCHEMES:
            import fsspec

            path = urlparse(url).path if scheme else url
            path = os.path.abspath(os.path.expanduser(path))
            return cls(fsspec.filesystem("file", **fs_args), ""), path
        fs, store_scheme, netloc, path = backends.resolve(url, scheme, fs_args)
        return cls(fs, store_scheme, netloc), path

    def url(self, path: str) -> str:
        """The full URL of a path of this store (plain path for local stores)."""
        if self.is_local:
            return path
        if self.scheme == "s3":
            return f"s3://{path.lstrip('/')}"
        return f"{self.scheme}://{self.netloc}{path if path.startswith('/') else '/' + path}"

    # -- reading ----------------------------------------------------------------------
    def exists(self, path: str) -> bool:
        with self._errors(f"checking {self.url(path)}"):
            return self.fs.exists(path)

    def isdir(self, path: str) -> bool:
        with self._errors(f"checking {self.url(path)}"):
            return self.fs.isdir(path)

    def read_bytes(self, path: str, max_size: int) -> Optional[bytes]:
        """The content of a small file, or None when it does not exist."""
        with self._errors(f"reading {self.url(path)}"):
            try:
                with self.fs.open(path, "rb") as f:
                    data = f.read(max_size + 1)
            except FileNotFoundError:
                return None
        return data

    def download(self, path: str, local_path: Path,
                 progress: Optional[ProgressCallback] = None) -> None:
        """Copy a file of the store to a local path (atomically: tmp then rename)."""
        with atomic_write(Path(local_path), marker=TMP_MARKER) as tmp:
            with self._errors(f"downloading {self.url(path)}"):
                with self.fs.open(path, "rb") as src, open(tmp, "wb") as dst:
                    _copy(src, dst, progress)

    def ls(self, path: str) -> List[Dict[str, Any]]:
        with self._errors(f"listing {self.url(path)}"):
            try:
                return list(self.fs.ls(path, detail=True))
            except FileNotFoundError:
                return []

    # -- publishing -------------------------------------------------------------------
    def makedirs(self, path: str) -> None:
        with self._errors(f"creating {self.url(path)}"):
            if self.is_local:
                os.makedirs(path, mode=DIR_MODE, exist_ok=True)
            elif not self.fs.exists(path):
                self.fs.makedirs(path, exist_ok=True)

    def publish_file(self, local_path: Path, path: str,
                     progress: Optional[ProgressCallback] = None, sweep: bool = True) -> None:
        """Make ``local_path`` appear at ``path`` in one step for readers.

        ``sweep=False``: the caller already created the directory and swept its stale
        temporaries (publishing many files to one directory)."""
        directory = path.rsplit("/", 1)[0] or "/"
        if sweep:
            self.makedirs(directory)
            self.remove_stale_temporaries(directory)
        if self._atomic_put():
            with self._errors(f"uploading to {self.url(path)}"):
                self._put(local_path, path, progress)
            return
        tmp = self._tmp_name(path)
        try:
            with self._errors(f"uploading to {self.url(path)}"):
                self._put(local_path, tmp, progress)
                self._rename(tmp, path)
        except BaseException:
            self._discard(tmp)
            raise

    def publish_file_once(self, local_path: Path, path: str, size: int,
                          progress: Optional[ProgressCallback] = None,
                          mode: int = FILE_MODE) -> bool:
        """Make ``local_path`` appear at ``path`` unless a file of ``size`` bytes is already
        there (content-addressed files: same name, same bytes); returns True if written.

        A visible file is never rewritten, even by a concurrent publisher of the same
        content: its timestamp is what YARN checks when it localizes a resource submitted
        earlier. A file of another size (damaged) is replaced. The caller created the
        directory and swept its temporaries. On the local store the file is a hard link
        to ``local_path`` when possible (no copy), with a fresh timestamp.
        """
        if self._atomic_put():  # object stores: a put replaces, so look just before it
            if self._has_size(path, size):
                return False
            self.publish_file(local_path, path, progress=progress, sweep=False)
            return True
        tmp = self._tmp_name(path)
        try:
            with self._errors(f"uploading to {self.url(path)}"):
                if not (self.is_local and _hard_link(local_path, tmp)):
                    self._put(local_path, tmp, progress)
                elif progress:
                    progress(size)
                self._chmod(tmp, mode)
                if self.is_local:
                    os.utime(tmp)  # a hard link keeps the age of the build's file
                written = self._rename_if_absent(tmp, path, size)
        finally:
            self._discard(tmp)
        return written

    def publish_bytes(self, data: bytes, path: str) -> None:
        """Atomically write a small file (a manifest)."""
        directory = path.rsplit("/", 1)[0] or "/"
        self.makedirs(directory)
        if self._atomic_put():
            with self._errors(f"writing {self.url(path)}"):
                self.fs.pipe_file(path, data)
            return
        tmp = self._tmp_name(path)
        try:
            with self._errors(f"writing {self.url(path)}"):
                with self.fs.open(tmp, "wb") as f:
                    f.write(data)
                self._chmod(tmp)
                self._rename(tmp, path)
        except BaseException:
            self._discard(tmp)
            raise

    def remove(self, path: str) -> None:
        with self._errors(f"removing {self.url(path)}"):
            with contextlib.suppress(FileNotFoundError):
                self.fs.rm(path)

    def remove_stale_temporaries(self, directory: str, older_than: float = STALE_TMP_SECONDS) -> int:
        """Remove temporaries left by killed uploads; returns how many were removed."""
        removed = 0
        now = time.time()
        try:
            entries = self.fs.ls(directory, detail=True)
        except (FileNotFoundError, OSError):
            return 0
        for entry in entries:
            name = entry["name"].rstrip("/").rsplit("/", 1)[-1]
            if TMP_MARKER not in name:
                continue
            mtime = mtime_of(entry)
            if mtime is not None and now - mtime < older_than:
                continue  # maybe a concurrent upload still running
            with contextlib.suppress(Exception):
                # publish_zip/publish_spec/the node cache leave temporary *directories*
                self.fs.rm(entry["name"], recursive=entry.get("type") == "directory")
                removed += 1
        return removed

    @contextlib.contextmanager
    def lock(self, path: str) -> Iterator[None]:
        """Serialize publishers of the same target (same machine, local stores)."""
        if self.scheme in ("hdfs", "viewfs"):
            # create the directory with DIR_MODE first: creating the lock file would
            # otherwise create it with the namenode's default (0777 & ~umask) mode
            self.makedirs(path.rsplit("/", 1)[0] or "/")
            with backends.hdfs_lock(self.fs, path):
                yield
            return
        if not self.is_local:
            yield  # object stores: atomic puts, manifest last
            return
        import fcntl

        directory, _, name = path.rpartition("/")
        lock_path = f"{directory}/.locks/{name}.lock"  # out of the way of `ls` and readers
        os.makedirs(os.path.dirname(lock_path), mode=0o700, exist_ok=True)
        fd = os.open(lock_path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
        with os.fdopen(fd, "a") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    # -- internals --------------------------------------------------------------------
    def _atomic_put(self) -> bool:
        """Object stores make an object visible only once complete."""
        return self.scheme in ("s3", "s3a", "gs", "gcs")

    def _tmp_name(self, path: str) -> str:
        directory, _, name = path.rpartition("/")
        return f"{directory}/.{name}{TMP_MARKER}{os.getpid()}-{secrets.token_hex(4)}"

    def _put(self, local_path: Path, path: str, progress: Optional[ProgressCallback]) -> None:
        if self.is_local:
            with open(local_path, "rb") as src, open(path, "wb") as dst:
                _copy(src, dst, progress)
            self._chmod(path, ARTIFACT_MODE)
            return
        with open(local_path, "rb") as src, self.fs.open(path, "wb") as dst:
            _copy(src, dst, progress)
        self._chmod(path, ARTIFACT_MODE)

    def _chmod(self, path: str, mode: int = FILE_MODE) -> None:
        if self.is_local:
            os.chmod(path, mode)
        else:
            with contextlib.suppress(Exception):
                self.fs.chmod(path, mode)

    def _rename(self, source: str, target: str) -> None:
        if self.is_local:
            os.replace(source, target)
        else:
            backends.rename_over(self.fs, source, target)

    def _has_size(self, path: str, size: int) -> bool:
        try:
            return self.fs.info(path).get("size") == size
        except FileNotFoundError:
            return False

    def _rename_if_absent(self, source: str, target: str, size: int) -> bool:
        """Rename unless an intact ``target`` exists (then ``source`` is left to discard)."""
        if self.is_local:
            try:
                os.link(source, target)  # fails if present: never replaces
                return True
            except FileExistsError:
                pass
        else:
            if backends.rename_if_absent(self.fs, source, target):
                return True
        if self._has_size(target, size):
            return False
        self._rename(source, target)  # absent (no atomic primitive) or damaged: replace
        return True

    def _discard(self, path: str) -> None:
        with contextlib.suppress(Exception):
            if self.is_local:
                os.unlink(path)
            else:
                self.fs.rm(path)

    @contextlib.contextmanager
    def _errors(self, doing: str) -> Iterator[None]:
        try:
            yield
        except StorageError:
            raise
        except FileNotFoundError:
            raise
        except NotADirectoryError:
            raise ConfigurationError(
                f"{doing} failed: a part of the path is a file, not a directory") from None
        except (OSError, IOError, TypeError) as exc:
            # a TypeError here is the filesystem refusing an option it was created with
            error = ConfigurationError if isinstance(exc, TypeError) else StorageError
            hint = "; check the storage options (fs_args, --fs-arg)" if error is ConfigurationError \
                else ""
            hidden = getattr(self.fs, "cpack_secrets", ())
            message = f"{doing} failed: {exc}{hint}"
            if hidden:  # never chain an exception that could carry a credential
                for secret in hidden:
                    message = message.replace(secret, "***")
                raise error(message) from None
            raise error(message) from exc


def _hard_link(source: Path, target: str) -> bool:
    try:
        os.link(source, target)
        return True
    except OSError:
        return False


def _copy(src: Any, dst: Any, progress: Optional[ProgressCallback]) -> None:
    while True:
        chunk = src.read(_COPY_CHUNK)
        if not chunk:
            break
        dst.write(chunk)
        if progress:
            progress(len(chunk))


def mtime_of(entry: Dict[str, Any]) -> Optional[float]:
    for key in ("mtime", "modification_time", "LastModified", "last_modified", "created"):
        value = entry.get(key)
        if value is None:
            continue
        if hasattr(value, "timestamp"):
            return value.timestamp()
        try:
            value = float(value)
        except (TypeError, ValueError):
            continue
        return value / 1000.0 if value > 1e11 else value  # HDFS reports milliseconds
    return None
