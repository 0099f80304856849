"""Reliability & security suite: a shared summary of what was tried (issue 9).

Every test records what it did in the session-wide :data:`SUMMARY` through the
``summary`` fixture (``summary.add("faults_injected")``...). At the end of the session
the table is printed (``pytest_terminal_summary``) and written as JSON to the pytest
base temp directory (``<basetemp>/reliability-summary.json``), never into the repository.

The counters that must stay 0 (``artifacts_corrupted``, ``leaked_temporaries``,
``secrets_leaked``) are also asserted by the tests that count them: the table reports,
the tests fail.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Optional

import pytest

from cluster_pack.store import parts_pool

# counters, in the order they are printed; (name, label, must_be_zero)
COUNTERS = (
    ("faults_injected", "faults injected", False),
    ("runs", "runs", False),
    ("artifacts_corrupted", "artifacts corrupted", True),
    ("torn_states_refused", "torn artifact/manifest pairs (refused by readers)", False),
    ("leaked_temporaries", "leaked temporaries", True),
    ("stale_temporaries_swept", "stale temporaries swept", False),
    ("reader_checks", "reader checks (manifest+artifact sha256)", False),
    ("hostile_inputs", "hostile inputs tried", False),
    ("secrets_scanned", "places scanned for secrets", False),
    ("secrets_leaked", "secrets leaked", True),
    ("integrity_refusals", "tampered/truncated artifacts refused", False),
    ("permission_checks", "permission checks", False),
)


class Summary:
    """Thread-safe counters plus free-form figures (throughput...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Dict[str, int] = OrderedDict((name, 0) for name, _, _ in COUNTERS)
        self.figures: Dict[str, str] = OrderedDict()

    def add(self, name: str, n: int = 1) -> None:
        if name not in self.counts:
            raise KeyError(f"unknown summary counter {name!r}")
        with self._lock:
            self.counts[name] += n

    def figure(self, name: str, value: str) -> None:
        with self._lock:
            self.figures[name] = value

    def as_dict(self) -> Dict[str, object]:
        return {"counters": dict(self.counts), "figures": dict(self.figures)}

    def table(self) -> str:
        width = max(len(label) for _, label, _ in COUNTERS)
        lines = [f"{'what':<{width}}  {'count':>7}  expected", "-" * (width + 20)]
        for name, label, zero in COUNTERS:
            value = self.counts[name]
            flag = ("0  " + ("OK" if value == 0 else "FAIL")) if zero else ""
            lines.append(f"{label:<{width}}  {value:>7}  {flag}")
        for name, value in self.figures.items():
            lines.append(f"{name:<{width}}  {value}")
        return "\n".join(lines)


SUMMARY = Summary()


@pytest.fixture(scope="session")
def summary() -> Summary:
    return SUMMARY


def fault_runs(default: int) -> int:
    """How many runs a fault loop does: ``CPACK_FAULT_RUNS`` or ``default``."""
    raw = os.environ.get("CPACK_FAULT_RUNS")
    return int(raw) if raw else default


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not any(SUMMARY.counts.values()) and not SUMMARY.figures:
        return
    terminalreporter.section("cluster-pack reliability & security summary")
    for line in SUMMARY.table().splitlines():
        terminalreporter.write_line(line)
    path = _summary_path(config)
    if path is not None:
        terminalreporter.write_line(f"(also written to {path})")


def _summary_path(config) -> Optional[Path]:
    try:
        base = config._tmp_path_factory.getbasetemp()  # the session's pytest basetemp
    except Exception:
        return None
    path = Path(base) / "reliability-summary.json"
    try:
        path.write_text(json.dumps(SUMMARY.as_dict(), indent=2) + "\n")
    except OSError:
        return None
    return path


# -- helpers shared by the tests ---------------------------------------------------------

def make_pex(path: Path, payload_size: int = 0, main: str = "print('hello from pex')\n",
             seed: bytes = b"") -> Path:
    """A minimal runnable PEX-like zipapp (shebang + PEX-INFO + __main__.py).

    ``payload_size`` bytes of incompressible data make it large (stored, not deflated).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("PEX-INFO", json.dumps(
            {"distributions": {"six-1.16.0-py2.py3-none-any.whl": "x"}}))
        zf.writestr("__main__.py", main)
        zf.writestr("seed.txt", seed or os.urandom(16).hex())
        if payload_size:
            chunk = 8 << 20
            with zf.open("payload.bin", "w", force_zip64=True) as out:
                left = payload_size
                while left > 0:
                    n = min(chunk, left)
                    out.write(os.urandom(n))
                    left -= n
    os.chmod(path, 0o755)
    return path


def tmp_entries(directory: Path):
    """Names in ``directory`` that are cluster-pack temporaries."""
    from cluster_pack.store.storage import TMP_MARKER

    if not Path(directory).is_dir():
        return []
    return sorted(p.name for p in Path(directory).iterdir() if TMP_MARKER in p.name)


# -- the parts layout (C_PACK_LAYOUT=parts, the default of upload_env) -------------------

PARTS_MAIN = "import toydep\nprint('hello from parts', toydep.VERSION)\n"
_ZIP_DATE = (2020, 1, 1, 0, 0, 0)


def _wheel(path: Path, module: str, source: str, payload_size: int = 0,
           seed: bytes = b"") -> None:
    """A deterministic zip (fixed dates, stored): the same arguments give the same bytes,
    hence the same part, in every process."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_STORED) as zf:
        zf.writestr(zipfile.ZipInfo(f"{module}.py", _ZIP_DATE), source)
        if payload_size:
            import random

            rng = random.Random(seed or module.encode())
            info = zipfile.ZipInfo(f"{module}_payload.bin", _ZIP_DATE)
            with zf.open(info, "w", force_zip64=True) as out:
                left = payload_size
                while left > 0:
                    n = min(8 << 20, left)
                    out.write(rng.randbytes(n))
                    left -= n


def make_packed_dir(path: Path, deps: Optional[Dict[str, str]] = None,
                    main: str = PARTS_MAIN, payload_size: int = 0,
                    payload_seed: bytes = b"") -> Path:
    """A runnable stand-in for pex's ``--layout packed`` directory: ``__main__.py`` (a
    script run by this interpreter that puts ``.deps/*.whl`` on ``sys.path``), ``PEX-INFO``,
    ``.bootstrap`` and one zip per "distribution" in ``.deps``.

    ``deps`` maps a module name to its version (``{"toydep": "1"}`` by default); the
    payload (random, reproducible from ``payload_seed``) goes into its own distribution
    ``bigdep``, split over several parts when large.
    """
    import sys

    path = Path(path)
    deps = dict(deps or {"toydep": "1"})
    (path / ".deps").mkdir(parents=True, exist_ok=True)
    (path / "__main__.py").write_text(
        f"#!{sys.executable}\n"
        "import glob, os, sys\n"
        "here = os.path.dirname(os.path.abspath(__file__))\n"
        "sys.path[:0] = sorted(glob.glob(os.path.join(here, '.deps', '*.whl')))\n" + main)
    os.chmod(path / "__main__.py", 0o755)
    wheels = {}
    for module, version in sorted(deps.items()):
        name = f"{module}-{version}-py3-none-any.whl"
        _wheel(path / ".deps" / name, module, f"VERSION = {version!r}\n")
        wheels[name] = version
    if payload_size:
        chunk = max(1, payload_size // 4)
        for i in range(4 if payload_size >= 4 else 1):
            name = f"bigdep{i}-1-py3-none-any.whl"
            _wheel(path / ".deps" / name, f"bigdep{i}", "", chunk, payload_seed + bytes([i]))
            wheels[name] = "1"
    (path / "PEX-INFO").write_text(json.dumps({"distributions": dict(sorted(wheels.items()))}))
    (path / ".bootstrap").write_bytes(b"the pex runtime would be here\n")
    return path


def publish_parts(packed: Path, url: str, fs_args: Optional[dict] = None):
    """Publish a packed directory as ``upload_env`` does (parts first, then the manifest)
    and return its manifest. The directory is copied first, as a fresh build would be:
    on a local store the pool's parts are hard links to the build's files."""
    import shutil
    import tempfile

    from cluster_pack.pack import parts
    from cluster_pack.pack.builder import BuiltArtifact
    from cluster_pack.progress import Reporter
    from cluster_pack.store import publish
    from cluster_pack.store.storage import Store

    store, path = Store.for_url(url, fs_args)
    name = path.rsplit("/", 1)[-1]
    publish._workdir(store, path)  # as publish_env: creates the directory, sweeps it
    with tempfile.TemporaryDirectory(prefix="cpack-test-build-") as tmp:
        build = Path(tmp) / name
        shutil.copytree(packed, build, symlinks=True)
        listed = parts.list_parts(build, parts.HashCache(Path(tmp) / "hashes.json"))
        part_list = [part for part, _ in listed]
        requirements = sorted(json.loads((build / "PEX-INFO").read_text())["distributions"])
        built = BuiltArtifact(build, False, sum(p.size for p in part_list),
                              parts.tree_sha256(part_list), tuple(requirements), tuple(listed))
        manifest = publish._manifest_for(built, name, requirements,
                                         f"test:{built.sha256}", None, name.split(".pex")[0])
        publish._write_parts(store, built, path, manifest, Reporter())
    return manifest


def check_published_parts(url: str, fs_args: Optional[dict] = None, content: bool = True):
    """What a reader of ``url`` finds: ``(manifest or None, problems)``, where problems
    names every part the manifest lists that is missing, of another size or (``content``)
    another sha256 in the pool."""
    import hashlib

    from cluster_pack.store.manifest import Manifest, manifest_path
    from cluster_pack.store.storage import Store

    store, path = Store.for_url(url, fs_args)
    raw = store.read_bytes(manifest_path(path), 1 << 24)
    if raw is None:
        return None, []
    manifest = Manifest.from_json(raw, url)
    present = {e["name"].rstrip("/").rsplit("/", 1)[-1]: e.get("size")
               for e in store.ls(parts_pool.pool_dir(path))}
    problems = []
    for part in {p.sha256: p for p in manifest.parts}.values():
        if part.sha256 not in present:
            problems.append(("missing", part.path, part.sha256[:12]))
        elif present[part.sha256] != part.size:
            problems.append(("size", part.path, present[part.sha256], part.size))
        elif content:
            digest = hashlib.sha256()
            with store.fs.open(parts_pool.part_url(path, part), "rb") as f:
                for chunk in iter(lambda: f.read(8 << 20), b""):
                    digest.update(chunk)
            if digest.hexdigest() != part.sha256:
                problems.append(("sha256", part.path, part.sha256[:12]))
    return manifest, problems


def pool_entries(url: str, fs_args: Optional[dict] = None) -> Dict[str, dict]:
    """``{name: ls entry}`` of the pool next to ``url``."""
    from cluster_pack.store.storage import Store

    store, path = Store.for_url(url, fs_args)
    return {e["name"].rstrip("/").rsplit("/", 1)[-1]: e for e in store.ls(parts_pool.pool_dir(path))}
