"""The local engine: run a LaunchSpec exactly as a YARN container would, on this machine.

* a fresh, empty working directory;
* every resource localized through a node cache (like YARN's localization cache: a file
  is downloaded and verified once per node, then linked into each working directory;
  archives are unpacked once);
* a minimal environment: no ``PYTHONPATH``, ``VIRTUAL_ENV`` or ``sys.path`` of the packing
  venv leaks in, only ``PATH`` with the base interpreter, ``HOME``, locale, and the
  LaunchSpec's own variables;
* the same generated shell script the YARN engine runs.

It proves that an artifact is self-contained, and it is the embedded default engine.

>>> from cluster_pack import launch, runner
>>> result = runner.run(launch.module_launch_spec("my_pkg.job"))    # doctest: +SKIP
>>> result.returncode
0
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Sequence

from cluster_pack import settings
from cluster_pack.errors import IntegrityError
from cluster_pack.launch import LaunchSpec, Resource, function_launch_spec
from cluster_pack.store import TMP_MARKER, Store

_KEPT_VARIABLES = ("HOME", "USER", "LOGNAME", "LANG", "LC_ALL", "TZ", "TMPDIR")


@dataclass
class LocalRun:
    """The outcome of a local run."""

    returncode: int
    stdout: str
    stderr: str
    workdir: Path

    def check(self) -> "LocalRun":
        if self.returncode != 0:
            raise subprocess.CalledProcessError(self.returncode, "job", self.stdout, self.stderr)
        return self


def default_node_dir() -> Path:
    return settings.get_cache_dir() / "node"


def _cache_key(resource: Resource, store: Store, path: str) -> str:
    if resource.sha256:
        return resource.sha256
    info: Dict[str, Any] = {}
    with contextlib.suppress(Exception):
        info = store.fs.info(path)
    stamp = f"{resource.source}|{info.get('size')}|{info.get('mtime') or info.get('LastModified')}"
    return hashlib.sha256(stamp.encode()).hexdigest()


def _verify(path: Path, resource: Resource) -> None:
    if resource.size is not None and path.stat().st_size != resource.size:
        raise IntegrityError(
            f"{resource.source}: size {path.stat().st_size} does not match the manifest "
            f"({resource.size}); the artifact is truncated or was replaced, refusing to run it")
    if resource.sha256:
        from cluster_pack.builder import file_sha256

        actual = file_sha256(path)
        if actual != resource.sha256:
            raise IntegrityError(
                f"{resource.source}: sha256 {actual} does not match the manifest "
                f"({resource.sha256}); the artifact was modified, refusing to run it")


def _safe_extract(archive: Path, target: Path) -> None:
    with zipfile.ZipFile(archive) as zf:
        root = target.resolve()
        for info in zf.infolist():
            dest = (target / info.filename).resolve()
            if not dest.is_relative_to(root):
                raise IntegrityError(
                    f"{archive}: entry {info.filename!r} would be written outside the "
                    "directory it is unpacked to; refusing it")
        zf.extractall(target)
        for info in zf.infolist():  # keep execute bits (the pex __main__.py is run directly)
            mode = (info.external_attr >> 16) & 0o777
            if mode:
                os.chmod(target / info.filename, mode)


def localize(resource: Resource, node_dir: Path, fs_args: Optional[Dict[str, Any]] = None) -> Path:
    """The node-cache path of a resource, downloading/unpacking it on first use."""
    store, path = Store.for_url(resource.source, fs_args)
    # one entry per content *and* link name: the same bytes may be localized under two names
    key = hashlib.sha256(
        f"{_cache_key(resource, store, path)}|{resource.name}|{resource.kind}".encode()).hexdigest()
    entry = node_dir / "filecache" / key
    ready = entry / resource.name
    if ready.exists():
        return ready
    settings.ensure_private_dir(entry.parent)
    tmp = Path(tempfile.mkdtemp(prefix=f".{TMP_MARKER}", dir=entry.parent))
    try:
        local = tmp / "download"
        store.download(path, local)
        _verify(local, resource)
        if resource.kind == "archive":
            _safe_extract(local, tmp / resource.name)
            local.unlink()
        else:
            os.chmod(local, 0o750)
            local.rename(tmp / resource.name)
        try:
            tmp.rename(entry)  # atomic: concurrent localizers agree on one copy
        except OSError:
            if not ready.exists():
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return ready


def _minimal_env(spec_env: Dict[str, str], node_dir: Path) -> Dict[str, str]:
    base_bin = str(Path(getattr(sys, "_base_executable", sys.executable)).parent)
    env = {"PATH": os.pathsep.join([base_bin, "/usr/local/bin", "/usr/bin", "/bin"])}
    for key in _KEPT_VARIABLES:
        if key in os.environ:
            env[key] = os.environ[key]
    env["PEX_ROOT"] = str(node_dir / "pex_root")
    env.update(spec_env)
    return env


def run(spec: LaunchSpec, workdir: Optional[Path] = None, node_dir: Optional[Path] = None,
        timeout: Optional[float] = None, capture: bool = True,
        fs_args: Optional[Dict[str, Any]] = None, pre_script_hook: Optional[str] = None,
        stream: Optional[Callable[[str], None]] = None) -> LocalRun:
    """Run ``spec`` in a fresh working directory; returns its exit status and output."""
    node_dir = settings.ensure_private_dir(Path(node_dir or default_node_dir()))
    workdir = Path(workdir or tempfile.mkdtemp(prefix="cluster-pack-container-"))
    workdir.mkdir(parents=True, exist_ok=True)
    for resource in spec.resources:
        cached = localize(resource, node_dir, fs_args)
        link = workdir / resource.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(cached, target_is_directory=cached.is_dir())
    script = workdir / "launch_container.sh"
    script.write_text(spec.shell_script(pre_script_hook))
    proc = subprocess.run(["bash", str(script)], cwd=workdir,
                          env=_minimal_env(spec.env, node_dir), timeout=timeout,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None, text=True)
    return LocalRun(proc.returncode, proc.stdout or "", proc.stderr or "", workdir)


def run_function(func: Callable, args: Sequence[Any] = (), package_path: Optional[str] = None,
                 **kwargs: Any) -> Any:
    """Run ``func(*args)`` from the packed environment and return its result.

    Raises ``RuntimeError`` with the remote traceback if the function fails.
    """
    import cloudpickle

    spec = function_launch_spec(func, args, package_path=package_path)
    result = run(spec, **kwargs)
    if result.returncode != 0:
        raise RuntimeError(f"the function failed in the packed environment:\n{result.stderr}")
    function_file = next(r.name for r in spec.resources if r.name.startswith("function_"))
    with open(result.workdir / f"{function_file}.result", "rb") as f:
        return cloudpickle.load(f)
