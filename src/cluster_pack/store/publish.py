"""Pack and publish: the core flow behind ``upload_env``, ``upload_zip``, ``upload_spec``.

Environment -> PackSpec -> (skip if the published manifest has the same fingerprint)
-> Builder -> Artifact -> Store (artifact first, manifest last).

>>> result = publish_env(package_path="/tmp/envs/demo.pex")        # doctest: +SKIP
>>> result.path, result.built
('/tmp/envs/demo.pex', True)
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import shutil
import sys
import tempfile
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Collection, Dict, List, Mapping, Optional, Sequence, Tuple, Union
from urllib.parse import urlparse

from cluster_pack import settings
from cluster_pack.cache import CacheDir
from cluster_pack.errors import ConfigurationError, IntegrityError, StorageError
from cluster_pack.pack import editables, environment, interpreter
from cluster_pack.pack import pex as pex_tool
from cluster_pack.pack.builder import BuiltArtifact, PexBuilder, file_sha256, zip_directory
from cluster_pack.pack.layout import (
    LARGE_PEX_SUFFIX,
    PEX_SUFFIX,
    Layout,
    LayoutChoice,
    artifact_path,
    check_package_path,
    choose_layout,
    env_name_of,
    published_layout,
)
from cluster_pack.pack.packspec import PackSpec, select_requirements
from cluster_pack.pack.parts import Part
from cluster_pack.pack.record import installed_size
from cluster_pack.progress import Reporter
from cluster_pack.store import hadoop_conf, parts_pool
from cluster_pack.store.manifest import (
    INTERPRETER_MANIFEST_FORMAT,
    LAYOUT_PARTS,
    Manifest,
    manifest_path,
    read_manifest,
    run_info_for,
)
from cluster_pack.store.storage import ARTIFACT_MODE, TMP_MARKER, Store
from cluster_pack.version import __version__ as _version

_logger = logging.getLogger(__name__)


@dataclass
class PublishResult:
    """What a publish call did."""

    path: str  # the artifact's URL (plain path for the local store)
    env_name: str
    manifest: Optional[Manifest]
    built: bool  # an artifact was built in this call
    uploaded_bytes: int  # bytes written to storage by this call
    reason: str  # why it was (not) rebuilt, for humans


# -- paths ---------------------------------------------------------------------------------

def default_env_dir() -> str:
    """``{fs.defaultFS}/user/{user}/envs`` with a Hadoop configuration, else the local store."""
    fs = hadoop_conf.default_fs()
    if fs:
        return f"{fs}/user/{settings.get_current_user()}/envs"
    return str(CacheDir.ENVS.path())


def _in_env_dir(name: str) -> Callable[[], str]:
    """``default_env_dir()/name``, computed when called (only without an explicit path)."""
    return lambda: f"{default_env_dir()}/{name}"


def default_package_path(env_name: str, large: bool = False) -> str:
    return artifact_path(None, large, _in_env_dir(env_name))


def normalize_package_path(package_path: Optional[str], env_name: str, large: bool) -> str:
    """Validate a user-given target (or compute the default one)."""
    if package_path:
        check_package_path(package_path, env_name)
    return artifact_path(package_path, large, _in_env_dir(env_name))


def _resolve(target: str, fs_args: Optional[Dict[str, Any]]) -> Tuple[Store, str]:
    store, path = Store.for_url(target, fs_args)
    if store.isdir(path):
        raise ConfigurationError(
            f"package_path {target} is an existing directory; give a file path ending in .pex")
    return store, path


def _write(store: Store, local: Path, path: str, manifest: Manifest,
           reporter: Reporter) -> int:
    """Artifact then manifest, under a lock; returns bytes written."""
    size = local.stat().st_size
    with store.lock(path):
        reporter.start_transfer(f"publishing to {store.url(path)}", size)
        try:
            store.publish_file(local, path, progress=reporter.advance)
        finally:
            reporter.end_transfer()
        data = manifest.to_json()
        store.publish_bytes(data, manifest_path(path))
    return size + len(data)


def _workdir(store: Store, path: str) -> Path:
    """Where to build: next to the target for the local store (publish is a rename)."""
    if store.is_local:
        directory = Path(path).parent
        os.makedirs(directory, mode=0o750, exist_ok=True)
    else:
        directory = CacheDir.BUILD.ensure()
    # builds killed with SIGKILL leave temporaries here: sweep the stale ones
    local, local_dir = Store.for_url(str(directory))
    local.remove_stale_temporaries(local_dir)
    return directory


# -- upload_env ----------------------------------------------------------------------------

def publish_env(
    package_path: Optional[str] = None,
    additional_packages: Optional[Mapping[str, str]] = None,
    ignored_packages: Optional[Collection[str]] = None,
    only_packages: Optional[Collection[str]] = None,
    force_upload: bool = False,
    include_editable: bool = False,
    fs_args: Optional[Dict[str, Any]] = None,
    allow_large_pex: bool = False,
    include_pex_tools: bool = False,
    additional_repo: Optional[Union[str, List[str]]] = None,
    additional_indexes: Optional[List[str]] = None,
    reporter: Optional[Reporter] = None,
    layout: Union[Layout, str, None] = None,
    include_interpreter: Optional[bool] = None,
) -> PublishResult:
    """Pack the current virtualenv and publish it, unless the published one is current.

    See :func:`cluster_pack.upload_env` for the arguments; ``layout`` is what to publish
    when given explicitly (``cluster-pack upload --layout``), else ``C_PACK_LAYOUT``;
    ``include_interpreter`` (default ``C_PACK_INCLUDE_INTERPRETER``) also publishes the
    venv's base interpreter as a part (:mod:`cluster_pack.pack.interpreter`).
    """
    reporter = reporter or Reporter()

    running = _running_environment()
    if running is not None:
        return _republish_running(running, package_path, fs_args, reporter)

    try:
        env = environment.current_environment()
    except ConfigurationError:
        fallback = settings.get_env_fallback_path()
        if not fallback:
            raise
        reporter.step(f"not in a virtualenv: publishing C_PACK_ENV_FALLBACK_PATH {fallback}")
        return publish_zip(fallback, package_path, force_upload, fs_args, reporter=reporter)

    requirements = select_requirements(env, additional_packages, ignored_packages, only_packages)
    installed = [r.installed.metadata_dir for r in requirements if r.installed is not None]
    choice = choose_layout(layout, allow_large_pex=allow_large_pex, package_path=package_path,
                           env_name=env.name, installed=lambda: installed_size(installed))
    target = choice.artifact_path(package_path, _in_env_dir(env.name))
    interpreter_layout = _interpreter_layout(include_interpreter, choice)
    spec = PackSpec(
        environment=env,
        requirements=requirements,
        large=choice.large,
        parts=choice.parts,
        single_file=choice.single_file,
        compress=choice.compress,
        include_pex_tools=include_pex_tools,
        resolve_from_index=settings.get_venv_optimization_level() == 0,
        layout_optimization=choice.optimization.name,
        additional_repo=tuple([additional_repo] if isinstance(additional_repo, str)
                              else additional_repo or ()),
        additional_indexes=tuple(additional_indexes or ()),
        editable_sources=_editable_sources(env, include_editable, choice, reporter),
        interpreter=interpreter.identity(interpreter_layout, settings.get_interpreter_bytecode())
        if interpreter_layout else "",
    )
    store, path = _resolve(target, fs_args)
    fingerprint = spec.fingerprint()

    if not force_upload:
        current = read_manifest(store, path)
        if current is not None and current.fingerprint == fingerprint \
                and _is_complete(store, path, current):
            return PublishResult(store.url(path), env.name, current, False, 0,
                                 "unchanged: the published manifest has the same fingerprint")
    manifest, written = _build_and_write(spec, fingerprint, store, path, force_upload, reporter)
    return PublishResult(store.url(path), env.name, manifest, True, written,
                         "forced" if force_upload else "built")


def _interpreter_layout(include_interpreter: Optional[bool],
                        choice: LayoutChoice) -> Optional[interpreter.InterpreterLayout]:
    """The base interpreter to ship (None unless asked); refused without the parts pool."""
    if include_interpreter is None:
        include_interpreter = settings.get_include_interpreter()
    if not include_interpreter:
        return None
    if not choice.parts:
        raise ConfigurationError(
            "include_interpreter needs the parts layout (the interpreter is a part): use "
            "C_PACK_LAYOUT=pex+parts (the default) or parts, not pex")
    return interpreter.select_layout(interpreter.current_config())


def _editable_sources(env: environment.Environment, include_editable: bool,
                      choice: LayoutChoice, reporter: Reporter) -> Tuple[Tuple[str, str], ...]:
    """``include_editable``: (arcname, file) of the editable projects baked into the
    single file (none without one: the launchers ship them beside the parts)."""
    if not (include_editable and env.editables):
        return ()
    if not choice.single_file:
        _logger.warning(
            "include_editable=True with C_PACK_LAYOUT=parts: editable projects are "
            "shipped next to the parts on every launch, not baked into them")
        return ()
    reporter.step(f"including the editable projects {', '.join(sorted(env.editables))}")
    return tuple(editables.source_files(env.editables))


def _build_and_write(spec: PackSpec, fingerprint: str, store: Store, path: str,
                     force_upload: bool, reporter: Reporter) -> Tuple[Manifest, int]:
    """Build (or reuse C_PACK_ENV_FALLBACK_PATH), then publish; (manifest, bytes written)."""
    workdir = _workdir(store, path)
    tmp_name = f".{Path(path).name}{TMP_MARKER}{os.getpid()}-build"
    built: Optional[BuiltArtifact] = None
    fallback = settings.get_env_fallback_path()
    try:
        if fallback and not force_upload and not spec.parts and not spec.editable_sources:
            built = _reuse_fallback(fallback, spec, workdir, tmp_name, reporter)
        if built is None:
            # forced: nothing cached is trusted, every distribution is zipped again
            built = PexBuilder(progress=reporter.step).build(spec, workdir, tmp_name,
                                                             rebuild=force_upload)
        manifest = _manifest_for(built, Path(path).name, spec.package_installed, fingerprint,
                                 spec.environment, spec.environment.name)
        extra: List[Tuple[Part, Path]] = []
        if spec.interpreter:
            reporter.step("packing the base interpreter")
            shipped = interpreter.build(include_bytecode=settings.get_interpreter_bytecode())
            manifest.interpreter = shipped.info
            manifest.format_version = INTERPRETER_MANIFEST_FORMAT
            part = manifest.interpreter_part()
            assert part is not None
            extra.append((part, shipped.path))
        if built.parts:
            written = _write_parts(store, built, path, manifest, reporter, verify=force_upload,
                                   extra=extra)
        else:
            with store.lock(path):
                written = _publish_single(store, built.path, path, reporter)
                data = manifest.to_json()
                store.publish_bytes(data, manifest_path(path))
            written += len(data)
    finally:
        if built is not None:
            _remove_local(built.path)
            if built.single is not None:
                _remove_local(built.single.path)
    return manifest, written


def _remove_local(path: Path) -> None:
    if path.is_dir():
        shutil.rmtree(path, ignore_errors=True)
    else:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(path)


def _is_complete(store: Store, path: str, manifest: Manifest) -> bool:
    """Is everything the manifest describes in the store?"""
    if manifest.is_parts:
        if parts_pool.missing(store, path, manifest.pool_parts):
            return False
        return manifest.file_sha256 is None or store.exists(path)
    return store.exists(path)


def _write_parts(store: Store, built: BuiltArtifact, path: str, manifest: Manifest,
                 reporter: Reporter, verify: bool = False,
                 extra: Sequence[Tuple[Part, Path]] = ()) -> int:
    """New parts (the pex's, then ``extra``: the interpreter), the single file (when
    built), then the manifest. Without a single file, one left at ``path`` by an earlier
    publish is removed (it would be a stale environment)."""
    listed = [*built.parts, *extra]
    with store.lock(path):
        written = parts_pool.publish(store, path, listed, reporter, verify=verify)
        # the pool is swept by parts_pool.publish; the manifest's directory here (a killed
        # publisher's manifest temporary), as publish_file does for a single file
        store.remove_stale_temporaries(path.rsplit("/", 1)[0] or "/")
        if built.single is not None:
            written += _publish_single(store, built.single.path, path, reporter)
        data = manifest.to_json()
        store.publish_bytes(data, manifest_path(path))
        # a garbage collection may have removed an old part we found and reused: put back
        # what vanished (one listing)
        if parts_pool.missing(store, path, manifest.pool_parts):
            written += parts_pool.publish(store, path, listed, reporter)
        if built.single is None and store.exists(path) and not store.isdir(path):
            store.remove(path)
    return written + len(data)


def _publish_single(store: Store, local: Path, path: str, reporter: Reporter) -> int:
    """The single file at ``path``: a rename for the local store, else an upload (the
    caller holds the lock)."""
    size = local.stat().st_size
    if store.is_local:
        os.chmod(local, ARTIFACT_MODE)
        os.replace(local, path)
        return size
    reporter.start_transfer(f"publishing {store.url(path)}", size)
    try:
        store.publish_file(local, path, progress=reporter.advance)
    finally:
        reporter.end_transfer()
    return size


def _manifest_for(built: BuiltArtifact, name: str, package_installed: Sequence[str],
                  fingerprint: str, env: Optional[environment.Environment],
                  env_name: str) -> Manifest:
    return Manifest(
        fingerprint=fingerprint,
        artifact_name=name,
        size=built.size,
        sha256=built.sha256,
        package_installed=list(package_installed),
        platform=env.platform_tag if env else "",
        python_version=env.python_version if env else "",
        run=run_info_for(name, LAYOUT_PARTS if built.parts else ""),
        layout=published_layout(name, bool(built.parts)),
        parts=[part for part, _ in built.parts],
        file_size=built.single.size if built.parts and built.single else None,
        file_sha256=built.single.sha256 if built.parts and built.single else None,
        compressed=False,
        env_name=env_name,
        created_by=f"cluster-pack {_version}",
    )


# -- jobs launched from jobs ---------------------------------------------------------------

@dataclass
class _Running:
    local_artifact: str
    package_path: Optional[str]


def _running_environment() -> Optional[_Running]:
    local = environment.running_artifact()
    if not local:
        return None
    return _Running(local, os.environ.get(environment.PACKAGE_PATH_ENV_VAR) or None)


def _republish_running(running: _Running, package_path: Optional[str],
                       fs_args: Optional[Dict[str, Any]], reporter: Reporter) -> PublishResult:
    """Inside a packed environment: reuse it, never pack again."""
    env_name = env_name_of(running.local_artifact)
    if running.package_path and (not package_path or package_path == running.package_path):
        reporter.step(f"running from {running.package_path}: reusing it")
        return PublishResult(running.package_path, env_name, None, False, 0,
                             "running from this published environment")
    local = Path(running.local_artifact)
    if local.is_dir():
        raise ConfigurationError(
            f"running from the unpacked environment {local} and no published path is known "
            f"({environment.PACKAGE_PATH_ENV_VAR} is not set): pass package_path explicitly "
            "to the environment published before")
    return publish_zip(str(local), package_path, False, fs_args, reporter=reporter)


# -- upload_zip ----------------------------------------------------------------------------

def _check_archive(path: Path) -> List[str]:
    """Validate a .pex/.pex.zip and return its ``name==version`` list (from PEX-INFO)."""
    try:
        with zipfile.ZipFile(path) as zf:
            for name in zf.namelist():
                parts = name.replace("\\", "/").split("/")
                if name.startswith("/") or ".." in parts or (len(name) > 1 and name[1] == ":"):
                    raise IntegrityError(
                        f"{path}: archive entry {name!r} would be written outside the "
                        "directory it is unpacked to; refusing it")
            info_name = next((n for n in ("PEX-INFO",) if n in zf.namelist()), None)
            if info_name is None:
                raise ConfigurationError(f"{path} is a zip but not a PEX (no PEX-INFO)")
            info = json.loads(zf.read(info_name))
    except zipfile.BadZipFile:
        raise ConfigurationError(f"{path} is not a valid .pex/.pex.zip (not a zip file)") from None
    return sorted(_wheel_requirement(w) for w in info.get("distributions", {}))


def _wheel_requirement(wheel_name: str) -> str:
    parts = wheel_name.split("-")
    return f"{parts[0]}=={parts[1]}" if len(parts) > 1 else wheel_name


def _download(url: str, target: Path) -> None:
    from urllib.request import urlopen

    try:
        with urlopen(url, timeout=60) as response, open(target, "wb") as out:  # noqa: S310
            shutil.copyfileobj(response, out, 8 * 1024 * 1024)
    except OSError as exc:
        raise StorageError(f"downloading {url} failed: {exc}") from None


def publish_zip(
    zip_file: str,
    package_path: Optional[str] = None,
    force_upload: bool = False,
    fs_args: Optional[Dict[str, Any]] = None,
    expected_sha256: Optional[str] = None,
    reporter: Optional[Reporter] = None,
) -> PublishResult:
    """Publish an existing ``.pex``/``.pex.zip`` (local path, storage URL or http(s) URL)."""
    from cluster_pack.store.storage import parse_url

    reporter = reporter or Reporter()
    source_name = Path(parse_url(zip_file).path).name
    if not (source_name.endswith(PEX_SUFFIX) or source_name.endswith(LARGE_PEX_SUFFIX)):
        raise ConfigurationError(
            f"{zip_file}: unsupported archive, must be a .pex or .pex.zip file")
    large = source_name.endswith(LARGE_PEX_SUFFIX)
    env_name = env_name_of(source_name)
    if not package_path:
        if sys.prefix != sys.base_prefix:  # the original named it after the venv
            env_name = environment.default_env_name()
    target = normalize_package_path(package_path, env_name, large)
    store, path = _resolve(target, fs_args)

    with tempfile.TemporaryDirectory(dir=_workdir(store, path),
                                     prefix=f".{Path(path).name}{TMP_MARKER}zip-") as tmp:
        local = Path(tmp) / source_name
        scheme = urlparse(zip_file).scheme
        if scheme in ("http", "https"):
            reporter.step(f"downloading {zip_file}")
            _download(zip_file, local)
        elif scheme and len(scheme) > 1 and scheme != "file":
            source_store, source_path = Store.for_url(zip_file, fs_args)
            source_store.download(source_path, local)
        else:
            source = Path(urlparse(zip_file).path if scheme == "file" else zip_file)
            if not source.is_file():
                raise ConfigurationError(f"{zip_file} does not exist or is not a file")
            local = source
        requirements = _check_archive(local)
        sha256 = file_sha256(local)
        if expected_sha256 and sha256 != expected_sha256.lower():
            raise IntegrityError(
                f"{zip_file} has sha256 {sha256}, expected {expected_sha256}; refusing it")
        if not force_upload:
            current = read_manifest(store, path)
            if current is not None and current.sha256 == sha256 and store.exists(path):
                return PublishResult(store.url(path), env_name, current, False, 0,
                                     "unchanged: the same archive is already published")
        built = BuiltArtifact(local, large, local.stat().st_size, sha256, tuple(requirements))
        manifest = _manifest_for(built, Path(path).name, requirements, f"sha256:{sha256}",
                                 None, env_name)
        written = _write(store, local, path, manifest, reporter)
    return PublishResult(store.url(path), env_name, manifest, True, written, "uploaded")


def _reuse_fallback(fallback: str, spec: PackSpec, workdir: Path, tmp_name: str,
                    reporter: Reporter) -> Optional[BuiltArtifact]:
    """Use the pre-built C_PACK_ENV_FALLBACK_PATH when its requirements match."""
    if spec.large:
        return None
    local = workdir / f"{tmp_name}-fallback.pex"
    reporter.step(f"checking the pre-built environment {fallback}")
    scheme = urlparse(fallback).scheme
    try:
        if scheme in ("http", "https"):
            _download(fallback, local)
        else:
            source_store, source_path = Store.for_url(fallback)
            source_store.download(source_path, local)
        theirs = {r.lower().replace("_", "-") for r in _check_archive(local)}
    except Exception as exc:  # a broken fallback must not block building
        _logger.warning("cannot use C_PACK_ENV_FALLBACK_PATH %s: %s", fallback, exc)
        with contextlib.suppress(FileNotFoundError):
            local.unlink()
        return None
    ours = {f"{r.key}=={r.version}" for r in spec.requirements}
    if theirs != ours:
        _logger.info("C_PACK_ENV_FALLBACK_PATH %s does not match the environment", fallback)
        local.unlink()
        return None
    reporter.step("reusing the pre-built environment")
    return BuiltArtifact(local, False, local.stat().st_size, file_sha256(local),
                         tuple(spec.package_installed))


# -- upload_spec ---------------------------------------------------------------------------

def publish_spec(
    spec_file: str,
    package_path: Optional[str] = None,
    force_upload: bool = False,
    fs_args: Optional[Dict[str, Any]] = None,
    allow_large_pex: bool = False,
    reporter: Optional[Reporter] = None,
) -> PublishResult:
    """Build an environment from a requirements file, resolved from the package index
    (``C_PACK_PYPI_URL`` when set, else PyPI)."""
    reporter = reporter or Reporter()
    spec_path = Path(spec_file)
    if not spec_path.is_file():
        raise ConfigurationError(f"spec_file {spec_file} does not exist")
    if spec_path.name != "requirements.txt" and not spec_path.name.endswith(".txt"):
        raise ConfigurationError(
            f"spec_file {spec_file}: unsupported format, must be a requirements .txt file")
    repo = spec_path.resolve().parent.name
    unique = f"cluster_pack{'_' + repo if repo else ''}"
    if package_path and not (package_path.endswith(PEX_SUFFIX)
                             or package_path.endswith(LARGE_PEX_SUFFIX)):
        package_path = f"{package_path.rstrip('/')}/{unique}{PEX_SUFFIX}"  # a directory
    package_path = artifact_path(package_path, allow_large_pex, _in_env_dir(unique))
    store, path = _resolve(package_path, fs_args)
    digest = hashlib.sha1(spec_path.read_bytes()).hexdigest()  # the original's key
    if not force_upload:
        current = read_manifest(store, path)
        if current is not None and current.fingerprint == f"spec:{digest}" and store.exists(path):
            return PublishResult(store.url(path), env_name_of(path), current,
                                 False, 0, "unchanged: same requirements file")
    workdir = _workdir(store, path)
    with tempfile.TemporaryDirectory(dir=workdir,
                                     prefix=f".{Path(path).name}{TMP_MARKER}spec-") as tmp:
        layout = settings.get_layout_optimization()
        out = Path(tmp) / ("env.pex" if not allow_large_pex else "env-dir.pex")
        reporter.step(f"resolving and building {spec_file}")
        index = settings.get_pypi_index()  # C_PACK_PYPI_URL, as for upload_env's resolves
        pex_tool.run_pex(out, requirements_file=spec_path,
                         layout=layout.pex_layout if allow_large_pex else None,
                         index_urls=[index] if index else ())
        if allow_large_pex:
            zipped = Path(tmp) / "env.pex.zip"
            zip_directory(out, zipped, compress=layout.compress)
            out = zipped
        built = BuiltArtifact(out, allow_large_pex, out.stat().st_size, file_sha256(out), ())
        env = None
        with contextlib.suppress(Exception):
            env = environment.current_environment()
        manifest = _manifest_for(built, Path(path).name, [digest], f"spec:{digest}", env,
                                 env_name_of(path))
        written = _write(store, out, path, manifest, reporter)
    return PublishResult(store.url(path), manifest.env_name, manifest, True, written, "built")


# -- listing -------------------------------------------------------------------------------

@dataclass
class PublishedEnvironment:
    """An environment found in a directory by :func:`list_environments`."""

    name: str  # the artifact's file name: env.pex, env.pex.zip
    path: str  # its URL (plain path for the local store)
    size: Optional[int]  # bytes of the file at the path; the parts' total without one
    modified: Optional[float]  # mtime of that file (of the manifest without one), epoch seconds
    layout: str  # what is at the path: "pex", "pex.zip", or "parts" (nothing, parts only)
    version: Optional[str]  # who published it ("cluster-pack 1.2.3"); None: the original tool


def list_environments(directory: Optional[str] = None,
                      fs_args: Optional[Dict[str, Any]] = None) -> List[PublishedEnvironment]:
    """The environments published in ``directory`` (default: :func:`default_env_dir`),
    sorted by name.

    A ``.pex``/``.pex.zip`` file is one; so is a manifest of the parts layout with nothing
    at its path. Other files (JSON that is not a manifest, a damaged manifest,
    temporaries of an upload in progress) are skipped. Raises :class:`ConfigurationError`
    when ``directory`` is a file or, when given, does not exist (the default directory
    before anything was published there is just empty).

    >>> [(e.name, e.layout) for e in list_environments("/tmp/envs")]   # doctest: +SKIP
    [('demo.pex', 'pex')]
    """
    from cluster_pack.store.storage import mtime_of

    store, path = Store.for_url(directory or default_env_dir(), fs_args)
    if not store.isdir(path):
        if store.exists(path):
            raise ConfigurationError(
                f"{store.url(path)} is a file; give the directory the environments are "
                "published in")
        if directory:
            raise ConfigurationError(f"{store.url(path)}: no such directory")
        return []
    entries = {entry["name"].rstrip("/").rsplit("/", 1)[-1]: entry for entry in store.ls(path)}
    found = []
    for name, entry in entries.items():
        if TMP_MARKER in name or entry.get("type") == "directory":
            continue
        full = f"{path.rstrip('/')}/{name}"
        if name.endswith(PEX_SUFFIX) or name.endswith(LARGE_PEX_SUFFIX):
            manifest = _listed_manifest(store, full, name)
            found.append(PublishedEnvironment(
                name, store.url(full), entry.get("size"), mtime_of(entry),
                "pex.zip" if name.endswith(LARGE_PEX_SUFFIX) else "pex",
                (manifest.created_by or None) if manifest else None))
        elif name.endswith(".json") and name[:-len(".json")] + PEX_SUFFIX not in entries:
            artifact = name[:-len(".json")] + PEX_SUFFIX
            manifest = _listed_manifest(store, f"{path.rstrip('/')}/{artifact}", artifact)
            if manifest is not None and manifest.is_parts:
                found.append(PublishedEnvironment(
                    artifact, store.url(f"{path.rstrip('/')}/{artifact}"), manifest.size,
                    mtime_of(entry), manifest.layout, manifest.created_by or None))
    return sorted(found, key=lambda e: e.name)


def _listed_manifest(store: Store, path: str, name: str) -> Optional[Manifest]:
    """The manifest of the artifact ``name`` at ``path``; None when there is none, it is
    the original tool's, damaged, or describes another artifact."""
    from cluster_pack.errors import ClusterPackError

    try:
        manifest = read_manifest(store, path, strict=True)
    except ClusterPackError as exc:
        _logger.debug("%s: no usable manifest: %s", store.url(path), exc)
        return None
    return manifest if manifest is not None and manifest.artifact_name == name else None
