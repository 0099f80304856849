"""The original ``cluster_pack.filesystem`` API over :class:`cluster_pack.store.storage.Store`."""

from __future__ import annotations

from typing import Any, Tuple
from urllib.parse import urlparse

from cluster_pack.store.storage import Store


def resolve_filesystem_and_path(uri: str, **kwargs: Any) -> Tuple[Any, str]:
    """An fsspec filesystem for ``uri`` and the path part of ``uri``.

    The path is the original's: ``urlparse(uri).path``, i.e. the URL without scheme and
    host (``hdfs://nn:8020/a/b`` -> ``/a/b``, ``s3://bucket/key`` -> ``/key``), and a local
    path exactly as given (not made absolute, trailing ``/`` kept). Code that needs a
    path the filesystem understands for every scheme can pass the full ``uri`` to it.

    >>> fs, path = resolve_filesystem_and_path("/tmp/x/")
    >>> path
    '/tmp/x/'
    """
    store, _ = Store.for_url(uri, kwargs)
    parsed = urlparse(uri)
    # a one-letter "scheme" is a Windows drive (C:\\...): a local path, kept as given
    return store.fs, uri if len(parsed.scheme) == 1 else parsed.path
