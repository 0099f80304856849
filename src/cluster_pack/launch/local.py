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

:func:`fetch_env` is the way out: it writes a published environment to a local directory,
verified against its manifest, where the standard pex runtime runs it without cluster-pack.

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
from typing import Any, Callable, Dict, Optional, Sequence, Union

from cluster_pack import settings
from cluster_pack.cache import CacheDir
from cluster_pack.errors import ConfigurationError, IntegrityError, JobFailedError
from cluster_pack.launch import script
from cluster_pack.launch.spec import LaunchSpec, Resource, function_launch_spec
from cluster_pack.pack import parts
from cluster_pack.store import parts_pool
from cluster_pack.store.manifest import Manifest, manifest_path
from cluster_pack.store.storage import ARTIFACT_MODE, TMP_MARKER, Store

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
    return CacheDir.NODE.path()


def _cache_key(resource: Resource, store: Store, path: str) -> str:
    if resource.sha256:
        return resource.sha256
    info: Dict[str, Any] = {}
    with contextlib.suppress(Exception):
        info = store.fs.info(path)
    stamp = f"{resource.source}|{info.get('size')}|{info.get('mtime') or info.get('LastModified')}"
    return hashlib.sha256(stamp.encode()).hexdigest()


def _verify(path: Path, resource: Resource, what: Optional[str] = None) -> None:
    """Refuse a download that differs from the manifest; ``what`` names it in the error
    (default: its URL)."""
    what = what or resource.source
    if resource.size is not None and path.stat().st_size != resource.size:
        raise IntegrityError(
            f"{what}: size {path.stat().st_size} does not match the manifest "
            f"({resource.size}); the artifact is truncated or was replaced, refusing to run it")
    if resource.sha256:
        actual = parts.file_sha256(path)
        if actual != resource.sha256:
            raise IntegrityError(
                f"{what}: sha256 {actual} does not match the manifest "
                f"({resource.sha256}); the artifact was modified, refusing to run it")


def safe_extract(archive: Path, target: Path) -> None:
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
        try:
            store.download(path, local)
        except FileNotFoundError:
            raise IntegrityError(
                f"{resource.source} is missing from the store; the published environment "
                "is incomplete: publish it again (upload_env(force_upload=True))") from None
        _verify(local, resource)
        if resource.kind == "archive":
            safe_extract(local, tmp / resource.name)
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


def minimal_env(spec_env: Dict[str, str], node_dir: Path) -> Dict[str, str]:
    base_bin = str(Path(getattr(sys, "_base_executable", sys.executable)).parent)
    env = {"PATH": os.pathsep.join([base_bin, "/usr/local/bin", "/usr/bin", "/bin"])}
    for key in _KEPT_VARIABLES:
        if key in os.environ:
            env[key] = os.environ[key]
    env["PEX_ROOT"] = str(node_dir / "pex_root")
    # a shipped interpreter is extracted once per node, here in the runner's node cache
    env["C_PACK_INTERPRETER_ROOT"] = str(node_dir / "interpreters")
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
                          env=minimal_env(spec.env, node_dir), timeout=timeout,
                          stdout=subprocess.PIPE if capture else None,
                          stderr=subprocess.PIPE if capture else None, text=True)
    return LocalRun(proc.returncode, proc.stdout or "", proc.stderr or "", workdir)


def run_function(func: Callable, args: Sequence[Any] = (), package_path: Optional[str] = None,
                 **kwargs: Any) -> Any:
    """Run ``func(*args)`` from the packed environment and return its result.

    The pickled function and the working directory live in one temporary directory,
    removed when the call returns (unless ``workdir=`` is given: that one is the caller's).

    Raises :class:`~cluster_pack.errors.JobFailedError` (a ``RuntimeError``) with the
    remote traceback if the function fails.
    """
    import cloudpickle

    scratch = Path(tempfile.mkdtemp(prefix="cluster-pack-function-"))
    try:
        spec = function_launch_spec(func, args, package_path=package_path, tmp_dir=str(scratch))
        kwargs["workdir"] = kwargs.get("workdir") or scratch / "container"
        result = run(spec, **kwargs)
        if result.returncode != 0:
            raise JobFailedError(f"{getattr(func, '__qualname__', func)} failed in the packed "
                                 f"environment {spec.package_path}:\n{result.stderr}")
        function_file = next(r.name for r in spec.resources if r.name.startswith("function_"))
        with open(result.workdir / f"{function_file}.result", "rb") as f:
            return cloudpickle.load(f)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)


# -- fetch: a published environment as plain local files ---------------------------------

def fetch_env(package_path: str, dest_dir: Union[str, Path],
              fs_args: Optional[Dict[str, Any]] = None) -> Path:
    """Write the environment published at ``package_path`` into ``dest_dir`` and return
    its local path, which the standard pex runtime runs without cluster-pack.

    The parts layout becomes the packed pex directory ``<dest_dir>/<name>.pex`` (every part
    downloaded and checked against the sha256 its manifest names); a single-file
    ``.pex``/``.pex.zip`` is downloaded and checked. The result is assembled under a
    temporary name and renamed into place, replacing an earlier fetch of the same name.
    Raises :class:`IntegrityError` naming the part that is missing or differs.

    >>> local = fetch_env("hdfs:///user/me/envs/me.pex", "/tmp/envs")   # doctest: +SKIP
    >>> local                                                          # doctest: +SKIP
    PosixPath('/tmp/envs/me.pex')
    >>> subprocess.run(["python3", str(local), "-m", "my_pkg.job"])      # doctest: +SKIP
    """
    store, path = Store.for_url(package_path, fs_args)
    manifest = _published_manifest(store, path)
    name = path.rstrip("/").rsplit("/", 1)[-1]
    dest_dir = Path(dest_dir).expanduser().absolute()
    dest = dest_dir / name
    if store.is_local and os.path.abspath(path) == str(dest):
        # a directory at the published path would hide the environment from its publisher
        raise ConfigurationError(
            f"{dest}: fetching an environment onto its own published path; choose another "
            "destination directory")
    try:
        dest_dir.mkdir(parents=True, exist_ok=True)
    except OSError as exc:  # a file on the way, no permission...
        raise ConfigurationError(
            f"{dest_dir}: cannot write the environment there ({exc.strerror or exc}); "
            "choose another destination directory") from None
    tmp = Path(tempfile.mkdtemp(prefix=f".{name}{TMP_MARKER}fetch-", dir=dest_dir))
    try:
        if manifest is not None and manifest.is_parts:
            script.materialize(manifest.parts, tmp / name,
                              lambda part, target: _fetch_part(store, path, part, target))
        else:
            _fetch_file(store, path, manifest, tmp / name)
        shipped = manifest.interpreter_part() if manifest is not None else None
        if manifest is not None and manifest.interpreter is not None and shipped is not None:
            home = interpreter_home(dest)
            _fetch_part(store, path, shipped, tmp / "interpreter.tar")
            safe_extract_tar(tmp / "interpreter.tar", tmp / home.name)
            script.write_interpreter_runner(tmp / home.name, manifest.interpreter, name)
            _replace(tmp / home.name, home, tmp / ".previous-interpreter")
        _replace(tmp / name, dest, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return dest


def interpreter_home(fetched: Path) -> Path:
    """Where :func:`fetch_env` puts the interpreter shipped with the environment fetched
    as ``fetched`` (``DIR/me.pex`` -> ``DIR/me.python``); its ``run`` script runs the
    environment with it (``DIR/me.python/run -m my_job``)."""
    stem = fetched.name[:-len(".pex")] if fetched.name.endswith(".pex") else fetched.name
    return fetched.with_name(f"{stem}.python")


def safe_extract_tar(archive: Path, target: Path) -> None:
    """Extract an interpreter part: regular files, directories and relative symbolic links
    inside ``target`` only (anything else is refused)."""
    import tarfile

    root = target.resolve()
    with tarfile.open(archive) as tar:
        members = tar.getmembers()
        for member in members:
            dest = (target / member.name).resolve()
            link_ok = not member.issym() or (
                not member.linkname.startswith("/")
                and (dest.parent / member.linkname).resolve().is_relative_to(root))
            if not dest.is_relative_to(root) or not (member.isfile() or member.isdir()
                                                     or member.issym()) or not link_ok:
                raise IntegrityError(
                    f"{archive}: entry {member.name!r} would be written outside the directory "
                    "it is unpacked to (or is not a plain file); refusing it")
        target.mkdir(parents=True, exist_ok=True)
        if hasattr(tarfile, "data_filter"):  # 3.12, and 3.8-3.11 security releases
            # the same rules once more by tarfile itself, and no set-uid bits; 3.14 makes
            # it the default
            tar.extractall(target, members=members, filter="data")
        else:
            tar.extractall(target, members=members)


def _published_manifest(store: Store, path: str) -> Optional[Manifest]:
    """The manifest of ``path``; None for the original tool's (no sizes or digests to
    check). Unlike publishing, a damaged manifest is an error here, not a reason to rebuild."""
    from cluster_pack.store import publish

    manifest = publish.read_manifest(store, path, strict=True)
    if manifest is None and not store.exists(manifest_path(path)):
        raise ConfigurationError(
            f"{store.url(path)}: no cluster-pack manifest at "
            f"{store.url(manifest_path(path))}; is it published?")
    return manifest


def _fetch_part(store: Store, package_path: str, part: parts.Part, target: Path) -> None:
    url = store.url(parts_pool.part_url(package_path, part))
    try:
        store.download(parts_pool.part_url(package_path, part), target)
    except FileNotFoundError:
        raise IntegrityError(
            f"{url}: part {part.path} is missing from the store; the published environment "
            "is incomplete, publish it again") from None
    _verify(target, Resource(url, part.path, size=part.size, sha256=part.sha256),
            what=f"part {part.path} ({url})")


def _fetch_file(store: Store, path: str, manifest: Optional[Manifest], target: Path) -> None:
    url = store.url(path)
    try:
        store.download(path, target)
    except FileNotFoundError:
        raise IntegrityError(
            f"{url} is missing from the store although its manifest describes it; "
            "publish it again") from None
    if manifest is not None:
        _verify(target, Resource(url, target.name, size=manifest.size, sha256=manifest.sha256))
    if target.name.endswith(".pex"):
        os.chmod(target, ARTIFACT_MODE)  # runnable as ./env.pex, like on a node


def _replace(source: Path, dest: Path, scratch: Path) -> None:
    """Rename ``source`` to ``dest``; an earlier fetch there is moved into ``scratch``
    (removed by the caller) first, since a rename cannot replace a non-empty directory."""
    if dest.is_symlink() or dest.exists():
        scratch.mkdir(parents=True, exist_ok=True)
        os.replace(dest, scratch / ".previous")
    os.replace(source, dest)
