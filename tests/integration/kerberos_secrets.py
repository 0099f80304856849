"""The secret scan of the Kerberos tests: keytab keys and ticket caches of the secure harness,
as the text forms they could leak in (hex, base64, latin-1), searched in outputs and logs.

``test_kerberos.py`` scans everything its tests saw at the end of its module; the secure Dask
and Ray tests (``test_dask.py``, ``test_ray.py``, whose venvs live in those modules) scan their
own outputs, their containers' logs and the cluster's log with :func:`assert_no_secrets`.
"""

from __future__ import annotations

import base64
import struct
from pathlib import Path
from typing import Any, Iterable, Iterator, List


def keytab_keys(data: bytes) -> Iterator[bytes]:
    """The key blocks of an MIT keytab (format 0x0502)."""
    pos = 2
    while pos + 4 <= len(data):
        (size,) = struct.unpack(">i", data[pos:pos + 4])
        pos += 4
        if size <= 0:
            pos += -size
            continue
        entry, pos = data[pos:pos + size], pos + size
        (ncomp,) = struct.unpack(">H", entry[0:2])
        p = 2
        for _ in range(ncomp + 1):  # realm, then the components
            (n,) = struct.unpack(">H", entry[p:p + 2])
            p += 2 + n
        p += 4 + 4 + 1 + 2  # name type, timestamp, kvno, key type
        (klen,) = struct.unpack(">H", entry[p:p + 2])
        yield entry[p + 2:p + 2 + klen]


def needles(secret: bytes, window: int = 16) -> List[str]:
    """Text forms of binary secret material as it could leak: hex, base64, latin-1."""
    out = []
    for i in range(0, max(1, len(secret) - window + 1), window):
        chunk = secret[i:i + window]
        if len(chunk) < 8 or chunk.isascii() and chunk.decode().isprintable():
            continue  # names, realms: not secret
        out += [chunk.hex(), chunk.hex().upper(), chunk.decode("latin-1")]
    if len(secret) >= 12:
        out.append(base64.b64encode(secret).decode()[:16])
    return out


def secrets_of(cluster: Any, ccaches: Iterable[Path] = ()) -> List[bytes]:
    """The keytab keys of alice and bob, and the content of the ticket caches ``ccaches``."""
    secrets = [key for user in ("alice", "bob")
               for key in keytab_keys(cluster.keytab(user).read_bytes())]
    assert secrets and all(len(k) >= 16 for k in secrets)
    secrets += [Path(c).read_bytes() for c in ccaches]
    return secrets


def assert_no_secrets(secrets: List[bytes], haystacks: Iterable[str]) -> int:
    """Fail if a fragment of ``secrets`` is in ``haystacks``; returns how many texts were
    scanned. The scan is first shown to find a planted leak, so it can fail."""
    found = [n for s in secrets for n in needles(s)]
    assert any(n in f"key: {secrets[0].hex()}" for n in found)  # the scan does see a leak
    texts = list(haystacks)
    leaks = [n[:8] for n in found for h in texts if n in h]
    assert not leaks, f"{len(leaks)} secret fragments found in outputs/logs"
    return len(texts)


def cluster_texts(cluster: Any) -> List[str]:
    """The harness JVM's log and whatever container logs are still in the NM log dirs."""
    texts = [cluster.log_file.read_text(errors="replace")]
    for log in Path(cluster.info["nm_log_dirs"]).rglob("*"):
        if log.is_file():
            texts.append(log.read_text(errors="replace"))
    return texts
