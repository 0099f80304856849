"""Writing a local file atomically: a temporary beside it, renamed over it once complete.

Readers (another process, a concurrent build, a node cache) see the old file or the new
one, never a half-written one; a writer that fails or is killed leaves at most a hidden
temporary (``.<name><marker><pid>-<random>``), which the callers that care sweep by their
marker (the store's ``TMP_MARKER``).

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "index.json"
>>> write_bytes(target, b"{}")
>>> target.read_bytes()
b'{}'
"""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path
from typing import Iterator, Optional

DEFAULT_MARKER = ".tmp-"


def temporary_name(path: Path, marker: str = DEFAULT_MARKER) -> Path:
    """A hidden temporary beside ``path``, unique to this call (pid and random suffix)."""
    return path.with_name(f".{path.name}{marker}{os.getpid()}-{secrets.token_hex(4)}")


@contextlib.contextmanager
def atomic_write(path: Path, mode: Optional[int] = None,
                 marker: str = DEFAULT_MARKER) -> Iterator[Path]:
    """Yield a temporary path to write; once the block succeeds it gets ``mode`` (when
    given) and replaces ``path``. On any error the temporary is removed and ``path`` is
    left as it was."""
    path = Path(path)
    tmp = temporary_name(path, marker)
    try:
        yield tmp
        if mode is not None:
            os.chmod(tmp, mode)
        os.replace(tmp, path)
    finally:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)


def write_bytes(path: Path, data: bytes, mode: Optional[int] = None) -> None:
    """``path.write_bytes(data)``, atomically (see :func:`atomic_write`)."""
    with atomic_write(path, mode) as tmp:
        tmp.write_bytes(data)
