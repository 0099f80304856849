"""The original ``cluster_pack.filesystem`` API over :class:`cluster_pack.store.Store`."""

from __future__ import annotations

from typing import Any, Tuple

from cluster_pack.store import Store


def resolve_filesystem_and_path(uri: str, **kwargs: Any) -> Tuple[Any, str]:
    """An fsspec filesystem and the path inside it for ``uri``.

    >>> fs, path = resolve_filesystem_and_path("/tmp/x.pex")
    >>> path
    '/tmp/x.pex'
    """
    store, path = Store.for_url(uri, kwargs)
    return store.fs, path
