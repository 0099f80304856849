"""Helpers for the skein unit tests: no cluster, the generated scripts run with local bash."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Dict, Optional

import pytest

pytest.importorskip("skein")


@pytest.fixture(autouse=True)
def _no_editables_no_kerberos(monkeypatch):
    """Editable zips and the published manifest are other modules' business (and slow)."""
    from cluster_pack.launch import spec as launch

    monkeypatch.setattr(launch, "editable_resources", lambda workdir=None: [])
    monkeypatch.setattr(launch, "read_published_manifest", lambda package_path, fs_args: None)
    # no ticket cache of the developer's machine in the specs (tests/skein/test_* restore it)
    monkeypatch.setattr("cluster_pack.launch.yarn.kerberos_ticket_path", lambda: None)


@pytest.fixture
def fake_artifact(tmp_path) -> Path:
    """A local ``env.pex`` that runs this interpreter (stands for the packed environment)."""
    pex = tmp_path / "published" / "env.pex"
    pex.parent.mkdir()
    pex.write_text(f"#!/bin/sh\nexec {sys.executable} \"$@\"\n")
    pex.chmod(0o755)
    return pex


def run_container(script: str, files: Dict[str, object], workdir: Path,
                  env: Optional[Dict[str, str]] = None) -> subprocess.CompletedProcess:
    """Localize ``files`` (skein.File, file:// sources) like YARN and run ``script`` in bash."""
    workdir.mkdir(parents=True, exist_ok=True)
    for name, f in files.items():
        source = f.source[len("file://"):] if f.source.startswith("file://") else f.source
        target = workdir / name
        if str(f.type) == "ARCHIVE":
            shutil.unpack_archive(source, target, "zip")
        else:
            target.symlink_to(source)
    (workdir / ".skein.sh").write_text(script)
    base_env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "HOME": str(workdir.parent / "home"),
                "LANG": "C.UTF-8"}
    base_env.update(env or {})
    return subprocess.run(["bash", ".skein.sh"], cwd=workdir, env=base_env,
                          capture_output=True, text=True, timeout=120)


@pytest.fixture
def container(tmp_path):
    def run(script, files, env=None, name="container"):
        return run_container(script, files, tmp_path / name, env)
    return run

