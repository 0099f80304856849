"""The engine-neutral description of a job: what to localize, what to run, with which env.

Every engine (the local runner, YARN through skein, Spark, Dask, Ray) only translates a
:class:`LaunchSpec`; none of them looks inside an artifact.

>>> spec = module_launch_spec("my_pkg.job", ["--day", "2024-01-01"],
...                           package_path="hdfs:///user/me/envs/me.pex")  # doctest: +SKIP
>>> print(spec.shell_script())                                            # doctest: +SKIP
"""

from __future__ import annotations

import functools
import hashlib
import importlib.resources
import io
import os
import shlex
import tempfile
import uuid
import zipfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from cluster_pack import settings
from cluster_pack.atomic import write_bytes
from cluster_pack.cache import CacheDir
from cluster_pack.errors import ConfigurationError
from cluster_pack.launch import run_function, script
from cluster_pack.pack import editables, environment, parts
from cluster_pack.store import parts_pool
from cluster_pack.store.manifest import (
    Manifest,
    artifact_name,
    read_published_manifest,
    run_info_for,
)

EDITABLE_PACKAGES_INDEX = "editable_packages_index"
# Inside cluster-pack: ``python -m cluster_pack.launch.run_function`` (the original's entry point
# ``cluster_pack.skein._execute_fun`` is the same). Launchers run its standalone copy,
# FUNCTION_RUNNER_STANDALONE_MODULE, from the runner zip instead (any environment).
FUNCTION_RUNNER_MODULE = "cluster_pack.launch.run_function"
FUNCTION_RUNNER_STANDALONE_MODULE = "cluster_pack_runner"
FUNCTION_RUNNER_ZIP = "cluster_pack_runner.zip"
_ENV_NAME_OK = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_")


@dataclass(frozen=True)
class Resource:
    """A file to make available in the job's working directory under ``name``."""

    source: str  # storage URL or local path
    name: str  # link name in the working directory
    kind: str = "file"  # "file", or "archive": unpacked into a directory called ``name``
    size: Optional[int] = None
    sha256: Optional[str] = None
    # immutable, named by content (a part of a published environment): engines may keep it
    # in a cache shared by all the user's applications on a node
    shared: bool = False


@dataclass
class LaunchSpec:
    """What every engine needs to start one process of a job."""

    argv: List[str]
    resources: List[Resource] = field(default_factory=list)
    env: Dict[str, str] = field(default_factory=dict)
    package_path: str = ""
    artifact_name: str = ""
    manifest: Optional[Manifest] = None
    # shell lines run first in the working directory (assembling the environment's parts)
    setup: str = ""

    def shell_script(self, pre_script_hook: Optional[str] = None,
                     extra_env: Optional[Dict[str, str]] = None) -> str:
        """A bash script running the job; every value is quoted (no user string is
        interpreted by the shell). ``pre_script_hook`` is the user's own shell code and
        runs as given, before the command."""
        lines = ["set -e"]
        for key, value in sorted({**self.env, **(extra_env or {})}.items()):
            if not key or set(key) - _ENV_NAME_OK or key[0].isdigit():
                raise ConfigurationError(f"invalid environment variable name {key!r}")
            lines.append(f"export {key}={shlex.quote(value)}")
        if self.setup:
            lines.append(self.setup.rstrip("\n"))
        if self.artifact_name:
            lines.append(f'export {environment.LOCAL_ARTIFACT_ENV_VAR}="$PWD"/'
                         f"{shlex.quote(self.artifact_name)}")
        if pre_script_hook:
            lines.append(pre_script_hook)
        lines.append("set +e")
        lines.append(shlex.join(self.argv))
        return "\n".join(lines) + "\n"


def _check_env_vars(env_vars: Optional[Dict[str, str]]) -> Dict[str, str]:
    checked = {}
    for key, value in (env_vars or {}).items():
        if not isinstance(key, str) or not key or set(key) - _ENV_NAME_OK or key[0].isdigit():
            raise ConfigurationError(
                f"invalid environment variable name {key!r}: use letters, digits and _")
        checked[key] = str(value)
    return checked


def environment_resource(package_path: str, manifest: Optional[Manifest] = None) -> Resource:
    """A single-file artifact as a resource: a file for ``.pex``, an archive for ``.pex.zip``."""
    run = run_info_for(artifact_name(package_path))
    return Resource(package_path, run.dest_path, "archive" if run.must_unpack else "file",
                    manifest.size if manifest else None, manifest.sha256 if manifest else None,
                    shared=True)


def environment_resources(package_path: str,
                          manifest: Optional[Manifest] = None) -> "tuple[List[Resource], str]":
    """The published environment as resources, plus the shell lines that assemble it.

    A single-file artifact is one resource and needs no assembly; the parts layout is one
    resource per part (each localized under its content name) and an assembly script
    re-creating the packed pex directory ``<name>.pex`` from them; with a shipped
    interpreter, one more part and the lines starting the environment with it
    (:func:`cluster_pack.launch.script.interpreter_lines`).
    """
    if manifest is None or not manifest.is_parts:
        return [environment_resource(package_path, manifest)], ""
    resources, seen = [], set()
    for part in manifest.parts:
        name = parts.link_name(part)
        if name not in seen:
            seen.add(name)
            resources.append(Resource(parts_pool.part_url(package_path, part), name, "file",
                                      part.size, part.sha256, shared=True))
    run = run_info_for(artifact_name(package_path), manifest.layout)
    setup = script.assembly_script(run.dest_path, manifest.parts)
    interpreter = manifest.interpreter_part()
    if manifest.interpreter is not None and interpreter is not None:
        name = parts.link_name(interpreter)
        resources.append(Resource(parts_pool.part_url(package_path, interpreter), name, "file",
                                  interpreter.size, interpreter.sha256, shared=True))
        setup += script.interpreter_lines(manifest.interpreter, name)
    return resources, setup


EDITABLE_DIRS_ENV_VAR = "C_PACK_EDITABLE_DIRS"


def editable_resources(workdir: Optional[Path] = None) -> List[Resource]:
    """The editable projects, zipped, as archives a node unpacks.

    In a normal venv these are the editable installs. Inside a job (a job launching a
    job) they are the unpacked directories the launcher listed in ``C_PACK_EDITABLE_DIRS``.
    """
    out = workdir or CacheDir.EDITABLES.ensure()
    if environment.running_artifact():
        zips = []
        for name in filter(None, os.environ.get(EDITABLE_DIRS_ENV_VAR, "").split(",")):
            directory = Path(os.getcwd()) / name
            if directory.is_dir():
                zips.append(editables.zip_unpacked(directory, name, out))
    else:
        try:
            env = environment.current_environment()
        except ConfigurationError:
            return []
        zips = editables.zip_editables(env.editables, out)
    return [Resource(str(z.path), z.link_name, "archive", z.path.stat().st_size, z.sha256)
            for z in zips]


def _write_named(directory: Path, stem: str, suffix: str, content: bytes) -> Tuple[Path, str]:
    """Write ``content`` once as ``directory/<stem>-<sha256 prefix><suffix>`` (atomic)."""
    digest = hashlib.sha256(content).hexdigest()
    path = settings.ensure_private_dir(directory) / f"{stem}-{digest[:16]}{suffix}"
    if not path.is_file():
        write_bytes(path, content)
    return path, digest


def _top_level_packages(archive: Path) -> List[str]:
    """The top-level directories of an editable zip: its packages (as the original's
    ``get_editable_requirements`` lists them: packages, not single modules)."""
    with zipfile.ZipFile(archive) as zf:
        return sorted({n.split("/", 1)[0] for n in zf.namelist() if "/" in n})


def editable_index_resource(sources: Sequence[Resource],
                            workdir: Optional[Path] = None) -> Optional[Resource]:
    """``editable_packages_index``: the top-level packages of the shipped editable zips,
    one a line, or None without editable sources.

    Inside a job, ``cluster_pack.packaging.get_editable_requirements()`` reads this file
    from the working directory (the original launchers shipped it too) to find the
    editable packages again, e.g. to ship them along with a job launched from the job.
    """
    names = sorted({name for r in sources for name in _top_level_packages(Path(r.source))})
    if not names:
        return None
    out = workdir or CacheDir.EDITABLES.path()
    path, digest = _write_named(out, EDITABLE_PACKAGES_INDEX, "",
                                "".join(f"{n}\n" for n in names).encode())
    return Resource(str(path), EDITABLE_PACKAGES_INDEX, "file", path.stat().st_size, digest)


def build_launch_spec(
    argv_after_interpreter: Sequence[str],
    package_path: Optional[str] = None,
    env_vars: Optional[Dict[str, str]] = None,
    additional_files: Optional[Sequence[str]] = None,
    include_editables: bool = True,
    fs_args: Optional[Dict[str, Any]] = None,
    manifest: Optional[Manifest] = None,
) -> LaunchSpec:
    """A LaunchSpec running ``<env interpreter> <argv_after_interpreter...>``.

    Without ``package_path`` the current environment is published first (``upload_env``).
    """
    if not package_path:
        from cluster_pack.store import publish

        result = publish.publish_env(fs_args=fs_args)
        package_path, manifest = result.path, result.manifest
    if manifest is None:
        manifest = read_published_manifest(package_path, fs_args)
    resources, setup = environment_resources(package_path, manifest)
    # from the name and layout, never from the manifest's text: it only says what to fetch
    run = run_info_for(artifact_name(package_path), manifest.layout if manifest else "")
    for path in additional_files or []:
        resources.append(Resource(str(path), os.path.basename(str(path).rstrip("/"))))
    sources = editable_resources() if include_editables else []
    resources.extend(sources)
    index = editable_index_resource(sources)
    if index is not None:
        resources.append(index)
    python_path = ["."] + [r.name for r in sources]
    env = {
        # the pex runtime in venv mode ignores PYTHONPATH; PEX_EXTRA_SYS_PATH is its way
        "PEX_EXTRA_SYS_PATH": ":".join(python_path),
        "PYTHONPATH": ":".join(python_path),
        environment.PACKAGE_PATH_ENV_VAR: package_path,
    }
    if sources:
        env[EDITABLE_DIRS_ENV_VAR] = ",".join(r.name for r in sources)
    env.update(_check_env_vars(env_vars))
    argv = [run.interpreter_cmd] + [str(a) for a in argv_after_interpreter]
    return LaunchSpec(argv, resources, env, package_path,
                      run.dest_path if not run.must_unpack else "", manifest, setup)


def module_launch_spec(module_name: str, args: Sequence[Any] = (), **kwargs: Any) -> LaunchSpec:
    """Run ``python -m module_name args...`` (or a ``.py`` script) in the environment."""
    if module_name.endswith(".py"):
        return build_launch_spec([module_name, *map(str, args)], **kwargs)
    return build_launch_spec(["-m", module_name, *map(str, args)], **kwargs)


def _runner_zip_entries() -> Iterator[Tuple[str, bytes]]:
    """(arcname, content) of the runner zip: the standalone runner module, and the
    driver's cloudpickle package under ``cluster_pack_vendor/``."""
    yield (f"{FUNCTION_RUNNER_STANDALONE_MODULE}.py",
           importlib.resources.files("cluster_pack.launch").joinpath("run_function.py").read_bytes())
    stack = [(importlib.resources.files("cloudpickle"), f"{run_function.VENDOR_DIR}/cloudpickle")]
    while stack:
        directory, prefix = stack.pop()
        for entry in directory.iterdir():
            if entry.is_dir() and entry.name != "__pycache__":
                stack.append((entry, f"{prefix}/{entry.name}"))
            elif entry.is_file() and entry.name.endswith(".py"):
                yield f"{prefix}/{entry.name}", entry.read_bytes()


@functools.lru_cache(maxsize=None)
def _runner_zip_bytes() -> bytes:
    """The runner zip's content, deterministic (sorted entries, fixed timestamps)."""
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as zf:
        for arcname, content in sorted(_runner_zip_entries()):
            info = zipfile.ZipInfo(arcname, (1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            info.compress_type = zipfile.ZIP_DEFLATED
            zf.writestr(info, content)
    return out.getvalue()


def function_runner_resource() -> Resource:
    """The runner zip (``cluster_pack_runner.zip``): what a container needs to run a
    pickled function, whatever the published environment holds.

    The function runner lives in cluster-pack, which an environment published by
    ``upload_spec`` (or any pex) may lack, as it may lack cloudpickle. The zip holds a
    copy of :mod:`cluster_pack.launch.run_function` (which imports nothing from cluster-pack) as
    the top-level module ``cluster_pack_runner``, and the driver's cloudpickle in a
    directory that is not on ``sys.path``: the zip goes at the end of ``PYTHONPATH`` and
    its only importable name is ``cluster_pack_runner``, so it shadows nothing of the
    environment; the runner decides which cloudpickle unpickles the function (the
    environment's if it has the driver's major version, else the shipped one). Built
    once per process, written once under the cache directory, named by content.
    """
    path, digest = _write_named(CacheDir.RUNNER.path(), "cluster_pack_runner",
                                ".zip", _runner_zip_bytes())
    return Resource(str(path), FUNCTION_RUNNER_ZIP, "file", path.stat().st_size, digest)


def _append_python_path(spec: LaunchSpec, entry: str) -> None:
    """Put ``entry`` last on the job's ``PYTHONPATH`` (and the pex runtime's equivalent)."""
    for var in ("PYTHONPATH", "PEX_EXTRA_SYS_PATH"):
        spec.env[var] = ":".join(filter(None, [spec.env.get(var, ""), entry]))


def function_launch_spec(func: Callable, args: Sequence[Any] = (), log_level: str = "INFO",
                         tmp_dir: Optional[str] = None, **kwargs: Any) -> LaunchSpec:
    """Run ``func(*args)`` in the environment; the function travels with cloudpickle.

    The command is ``<interpreter> -m cluster_pack_runner FILE LEVEL`` with the runner zip
    (:func:`function_runner_resource`) shipped and last on ``PYTHONPATH``: it works in
    any published environment, with or without cluster-pack and cloudpickle.
    """
    import cloudpickle

    tmp_dir = tmp_dir or tempfile.mkdtemp(prefix="cluster-pack-func-")
    name = f"function_{uuid.uuid4().hex}.dat"
    path = Path(tmp_dir) / name
    with open(path, "wb") as f:
        cloudpickle.dump({"func": func, "args": list(args)}, f)
    files = list(kwargs.pop("additional_files", None) or []) + [str(path)]
    spec = build_launch_spec(["-m", FUNCTION_RUNNER_STANDALONE_MODULE, name, log_level],
                             additional_files=files, **kwargs)
    runner = function_runner_resource()
    spec.resources.append(runner)
    _append_python_path(spec, runner.name)
    spec.env[run_function.PICKLER_VERSION_ENV_VAR] = cloudpickle.__version__
    return spec
