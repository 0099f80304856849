"""Remote filesystems behind :class:`cluster_pack.store.Store` (HDFS, S3, ...).

Kept apart from the store so that ``import cluster_pack`` never imports hdfs-native
or s3fs; the storage issue extends this module.
"""

from __future__ import annotations

from typing import Any, Dict, Tuple
from urllib.parse import urlparse

from cluster_pack.errors import ConfigurationError, StorageError


def resolve(url: str, scheme: str, fs_args: Dict[str, Any], store_cls: Any) -> Tuple[Any, str]:
    import fsspec

    parsed = urlparse(url)
    protocol = {"s3a": "s3"}.get(scheme, scheme)
    try:
        fs = fsspec.filesystem(protocol, **fs_args) if protocol != "hdfs" else \
            fsspec.filesystem("hdfs", host=parsed.hostname or "default",
                              port=parsed.port or 0, **fs_args)
    except ImportError as exc:
        extra = {"hdfs": "hdfs", "viewfs": "hdfs", "s3": "s3"}.get(protocol, "all")
        raise ConfigurationError(
            f"{url}: support for {scheme}:// is not installed "
            f"(pip install 'cluster-pack[{extra}]'): {exc}") from None
    path = parsed.path if protocol not in ("s3",) else f"{parsed.netloc}{parsed.path}"
    netloc = parsed.netloc if protocol != "s3" else ""
    return store_cls(fs, "s3" if protocol == "s3" else scheme, netloc), path


def rename_over(fs: Any, source: str, target: str) -> None:
    """Rename ``source`` to ``target``, replacing it (rename is atomic on HDFS)."""
    try:
        if fs.exists(target):
            fs.rm(target)
        fs.mv(source, target)
    except OSError as exc:
        raise StorageError(f"renaming {source} to {target} failed: {exc}") from exc
