"""The original ``cluster_pack.packaging`` API, kept as thin shims over the core modules.

New code should use :mod:`cluster_pack.store.publish`, :mod:`cluster_pack.pack.environment` and
:mod:`cluster_pack.launch.spec` directly.
"""

from __future__ import annotations

import glob
import importlib.util
import json
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any, Collection, Dict, List, NamedTuple, Optional, Set, Tuple, Union

from cluster_pack import settings
from cluster_pack.errors import BuildError, ConfigurationError
from cluster_pack.pack import editables, environment
from cluster_pack.pack import pex as pex_tool
from cluster_pack.pack.layout import env_name_of
from cluster_pack.store import hadoop_conf
from cluster_pack.store.manifest import run_info_for

_logger = logging.getLogger(__name__)

# The original's private index (0.3.19 value), kept for imports; never contacted.
CRITEO_PYPI_URL = "https://filer-build-pypi.prod.crto.in/repository/criteo.moab.pypi-read/simple"
EDITABLE_PACKAGES_INDEX = "editable_packages_index"
UNPACKED_ENV_NAME = "pyenv"
LARGE_PEX_CMD = f"{UNPACKED_ENV_NAME}/__main__.py"

JsonDictType = Dict[str, Any]


class PexTooLargeError(BuildError):
    """Kept for compatibility: large environments now switch layout automatically."""


class PexCreationError(BuildError):
    """The pex tool failed."""


class PythonEnvDescription(NamedTuple):
    """How to run an artifact once localized on a node."""

    path_to_archive: str
    interpreter_cmd: str
    dest_path: str
    must_unpack: bool


def _get_tmp_dir() -> str:
    return tempfile.mkdtemp(prefix="cluster-pack-")


def _get_current_user() -> str:
    return settings.get_current_user()


def _running_from_pex() -> bool:
    return environment.running_artifact() is not None


def zip_path(py_dir: str, include_base_name: bool = True, tmp_dir: Optional[str] = None) -> str:
    """Zip a directory (without ``.pyc`` files) into ``tmp_dir/<basename>.zip``.

    :param include_base_name: put the directory's name at the top of the archive
        (True for pyspark, False for skein which unpacks under that name)
    """
    tmp_dir = tmp_dir or _get_tmp_dir()
    base = os.path.basename(os.path.normpath(py_dir))
    archive = os.path.join(tmp_dir, base + ".zip")
    with zipfile.ZipFile(archive, "w", zipfile.ZIP_DEFLATED) as zipf:
        for root, dirs, files in os.walk(py_dir):
            dirs[:] = sorted(d for d in dirs if d != "__pycache__")
            for file in sorted(files):
                if file.endswith(".pyc"):
                    continue
                rel = os.path.relpath(os.path.join(root, file), py_dir)
                zipf.write(os.path.join(root, file),
                           os.path.join(base, rel) if include_base_name else rel)
    return archive


def format_requirements(requirements: Optional[Dict[str, str]]) -> List[str]:
    if requirements is None:
        return []
    return [f"{name}=={version}" if version else name for name, version in requirements.items()]


def check_large_pex(allow_large_pex: bool, pex_file: str) -> None:
    """Raise PexTooLargeError for a zipapp that CPython < 3.13 cannot run."""
    if allow_large_pex:
        return
    if os.path.getsize(pex_file) > 4 * 1024**3 and sys.version_info < (3, 13):
        raise PexTooLargeError(
            f"{pex_file} is larger than 4 GiB and cannot be run as a zipapp; use "
            "allow_large_pex=True (upload_env picks this layout automatically)")


def pack_spec_in_pex(spec_file: str, output: str, pex_inherit_path: str = "fallback",
                     allow_large_pex: bool = False, include_pex_tools: bool = False,
                     additional_repo: Optional[Union[List[str], str]] = None,
                     additional_indexes: Optional[List[str]] = None) -> str:
    with open(spec_file) as f:
        lines = [line for line in f.read().splitlines() if line and not line.startswith("#")]
    return pack_in_pex(lines, output, pex_inherit_path=pex_inherit_path,
                       allow_large_pex=allow_large_pex, include_pex_tools=include_pex_tools,
                       additional_repo=additional_repo, additional_indexes=additional_indexes)


def pack_in_pex(
    requirements: List[str],
    output: str,
    ignored_packages: Optional[Collection[str]] = None,
    pex_inherit_path: str = "fallback",
    editable_requirements: Optional[Dict[str, str]] = None,
    allow_large_pex: bool = False,
    include_pex_tools: bool = False,
    additional_repo: Optional[Union[str, List[str]]] = None,
    additional_indexes: Optional[List[str]] = None,
) -> str:
    """Build a pex of ``requirements`` at ``output`` (``output + '.zip'`` when large).

    Requirements all installed in the current venv are taken from it (no network);
    otherwise they are resolved from the package index, as the original did.
    """
    ignored = {environment.canonical_name(n) for n in (ignored_packages or [])}
    reqs = [r for r in requirements
            if environment.canonical_name(r.split("=")[0].strip()) not in ignored]
    installed: Set[str] = set()
    if sys.prefix != sys.base_prefix:
        installed = {f"{d.key}=={d.version}"
                     for d in environment.current_environment().distributions.values()}
    from_venv = bool(reqs) and all("==" in r for r in reqs) and all(
        environment.canonical_name(r.split("==")[0]) + "==" + r.split("==")[-1] in installed
        for r in reqs)
    layout = settings.get_layout_optimization()
    with tempfile.TemporaryDirectory() as tmp:
        for path in (editable_requirements or {}).values():
            shutil.copytree(path, os.path.join(tmp, "src", os.path.basename(path)))
        target = output + ".tmp" if allow_large_pex else output
        try:
            pex_tool.run_pex(
                Path(target), requirements=reqs, inherit_path=pex_inherit_path,
                # the installed files when they are all in the venv: no resolve, no network
                venv_repository=Path(sys.prefix) if from_venv else None,
                intransitive=from_venv, compress=False if from_venv else None,
                index_urls=[additional_repo] if isinstance(additional_repo, str)
                else additional_repo or [],
                find_links=additional_indexes or [], include_tools=include_pex_tools,
                sources_directory=Path(tmp, "src") if editable_requirements else None,
                layout=layout.pex_layout if allow_large_pex else None)
        except BuildError as exc:
            raise PexCreationError(str(exc)) from None
        if not allow_large_pex:
            check_large_pex(allow_large_pex, target)
            return output
        from cluster_pack.pack.builder import zip_directory

        zip_directory(Path(target), Path(output + ".zip"), compress=layout.compress)
        shutil.rmtree(target, ignore_errors=True)
        return output + ".zip"


class Packer:
    """Kept for compatibility; PEX is the only format."""

    def env_name(self) -> str:
        raise NotImplementedError

    def extension(self) -> str:
        raise NotImplementedError

    def pack(self, output: str, reqs: List[str], additional_packages: Dict[str, str],
             ignored_packages: Collection[str], editable_requirements: Dict[str, str],
             allow_large_pex: bool = False, include_pex_tools: bool = False,
             additional_repo: Optional[Union[str, List[str]]] = None,
             additional_indexes: Optional[List[str]] = None) -> str:
        raise NotImplementedError

    def pack_from_spec(self, spec_file: str, output: str, allow_large_pex: bool = False,
                       include_pex_tools: bool = False) -> str:
        raise NotImplementedError


def get_env_name(env_var_name: str) -> str:
    """Basename of the path in ``$env_var_name``, ``default`` if unset (0.3.19's rule)."""
    value = os.environ.get(env_var_name)
    return os.path.basename(value) if value else "default"


class PexPacker(Packer):
    def env_name(self) -> str:
        """``get_env_name("VIRTUAL_ENV")``; when unset, the name of the venv we run in.

        (0.3.19 said ``default`` for a venv that is not activated.)
        """
        return environment.default_env_name()

    def extension(self) -> str:
        return "pex"

    def pack(self, output: str, reqs: List[str], additional_packages: Dict[str, str],
             ignored_packages: Collection[str], editable_requirements: Dict[str, str],
             allow_large_pex: bool = False, include_pex_tools: bool = False,
             additional_repo: Optional[Union[str, List[str]]] = None,
             additional_indexes: Optional[List[str]] = None) -> str:
        return pack_in_pex(reqs, output, ignored_packages,
                           editable_requirements=editable_requirements,
                           allow_large_pex=allow_large_pex, include_pex_tools=include_pex_tools,
                           additional_repo=additional_repo, additional_indexes=additional_indexes)

    def pack_from_spec(self, spec_file: str, output: str, allow_large_pex: bool = False,
                       include_pex_tools: bool = False) -> str:
        return pack_spec_in_pex(spec_file, output, allow_large_pex=allow_large_pex,
                                include_pex_tools=include_pex_tools)


PEX_PACKER = PexPacker()


# Asked to another interpreter: where its packages are installed (what pip list -l reads).
_SITE_DIRS_CODE = (
    "import json, sys, sysconfig\n"
    "paths = sysconfig.get_paths()\n"
    "print(json.dumps({'prefix': sys.prefix,"
    " 'site': [paths[k] for k in ('purelib', 'platlib')]}))\n")


def _is_current_interpreter(executable: Optional[str]) -> bool:
    # Compared as paths, not resolved: a venv's python is a symlink to the base one.
    return not executable or os.path.abspath(executable) == os.path.abspath(sys.executable)


def _environment_of(executable: Optional[str]) -> environment.Environment:
    """The installed distributions of ``executable``'s environment.

    Another interpreter is asked (a subprocess) where its packages are installed, as the
    original asked it with ``pip list``; the metadata found there is then read from disk
    like our own (so ``pip`` does not need to be installed in it).
    """
    if _is_current_interpreter(executable):
        if sys.prefix != sys.base_prefix:
            return environment.current_environment()
        return environment.inspect_site_packages(Path(sys.prefix),
                                                 environment.site_packages_dirs(), is_venv=False)
    try:
        raw = subprocess.run([str(executable), "-I", "-c", _SITE_DIRS_CODE], check=True,
                             stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True).stdout
        info = json.loads(raw.strip().splitlines()[-1])
    except (OSError, subprocess.CalledProcessError, ValueError, IndexError) as exc:
        detail = getattr(exc, "stderr", "") or exc
        raise ConfigurationError(f"cannot inspect the interpreter {executable}: {detail}") \
            from None
    site_dirs: List[Path] = []
    for raw_path in info["site"]:
        path = Path(raw_path)
        if path.is_dir() and all(path.resolve() != known.resolve() for known in site_dirs):
            site_dirs.append(path)
    return environment.inspect_site_packages(Path(info["prefix"]), tuple(site_dirs))


# never listed by pip list (pip's stdlib_pkgs)
_PIP_LIST_SKIPPED = frozenset({"python", "wsgiref", "argparse"})


def _pip_version(version: str) -> str:
    """The version as ``pip list`` prints it (normalized when valid)."""
    from packaging.version import InvalidVersion, Version

    try:
        return str(Version(version))
    except InvalidVersion:
        return version


def get_non_editable_requirements(executable: str = sys.executable) -> Dict[str, str]:
    """``{name: version}`` of the non-editable distributions of ``executable``'s env.

    What the original read from ``pip list -l --exclude-editable --format json`` (so in
    pip's order, by normalized name, and without editable installs, ``.egg-link`` ones
    included).
    """
    env = _environment_of(executable)
    dists = sorted(env.distributions.values(), key=lambda d: d.key)
    return {d.name: _pip_version(d.version) for d in dists if d.key not in _PIP_LIST_SKIPPED}


def get_editable_requirements(executable: str = sys.executable,
                              editable_packages_dir: Optional[str] = None) -> Dict[str, str]:
    """``{top-level package: source directory}`` of the editable projects of ``executable``.

    Inside a packed environment (a job launched from a job), the packages listed in
    ``editable_packages_dir/editable_packages_index`` (default: the current directory,
    at call time) are looked up instead.
    """
    editable_packages_dir = editable_packages_dir or os.getcwd()
    if _running_from_pex():
        found: Dict[str, str] = {}
        index = os.path.join(editable_packages_dir, EDITABLE_PACKAGES_INDEX)
        try:
            names = Path(index).read_text().splitlines()
        except FileNotFoundError:
            return found
        for name in filter(None, names):
            spec = importlib.util.find_spec(name)
            if spec is None or spec.origin is None:
                _logger.error("could not import editable package %s", name)
                continue
            package_dir = os.path.dirname(spec.origin)
            found[os.path.basename(package_dir)] = package_dir
        return found

    result: Dict[str, str] = {}
    for dist in _environment_of(executable).editables.values():
        for name, path in editables.project_of(dist).roots:
            if path.is_dir():
                result[name] = str(path)
    return result


def get_default_fs() -> str:
    """``fs.defaultFS`` of the Hadoop configuration, read from its files."""
    fs = hadoop_conf.default_fs()
    if fs is None:
        raise ConfigurationError(
            "no Hadoop configuration with fs.defaultFS found: set HADOOP_CONF_DIR to the "
            "directory holding core-site.xml, or pass an explicit package_path")
    return fs


def _build_package_path(name: str, extension: Optional[str]) -> str:
    from cluster_pack.store import publish

    path = f"{publish.default_env_dir()}/{name}"
    return path if extension is None else f"{path}.{extension}"


def detect_archive_names(packer: Packer, package_path: Optional[str] = None,
                         allow_large_pex: Optional[bool] = None) -> Tuple[str, str, str]:
    """(package_path, env_name, pex_file we run from or '') as the original computed them."""
    if _running_from_pex():
        pex_file = get_current_pex_filepath()
        env_name = env_name_of(pex_file)
    else:
        pex_file = ""
        env_name = packer.env_name()
    extension = packer.extension()
    if not package_path:
        package_path = _build_package_path(env_name, extension)
    elif not (package_path.endswith(f".{extension}") or package_path.endswith(f".{extension}.zip")):
        raise ValueError(f"{package_path} has the wrong extension, .{extension} is expected")
    if allow_large_pex and not package_path.endswith(".zip"):
        package_path += ".zip"
    if pex_file and os.path.isdir(pex_file) and not package_path.endswith(".zip"):
        package_path = _build_package_path(os.path.basename(resolve_zip_from_pex_dir(pex_file)),
                                           None)
    return package_path, env_name, pex_file


def resolve_zip_from_pex_dir(pex_dir: str) -> str:
    parent_dir = os.path.dirname(pex_dir)
    pex_files = glob.glob(f"{parent_dir}/*.pex.zip")
    if len(pex_files) == 1:
        return pex_files[0]
    match = next((x for x in pex_files if pex_dir == x.split(".zip")[0]), None)
    if match is None:
        raise ValueError(f"{pex_dir}.zip not found, found {pex_files}")
    return match


def detect_packer_from_spec(spec_file: str) -> Packer:
    if os.path.basename(spec_file) == "requirements.txt":
        return PEX_PACKER
    raise ValueError(f"Archive format {spec_file} unsupported. Must be requirements.txt")


def detect_packer_from_env() -> Packer:
    return PEX_PACKER


def detect_packer_from_file(zip_file: str) -> Packer:
    if zip_file.endswith(".pex") or zip_file.endswith(".pex.zip"):
        return PEX_PACKER
    raise ValueError(f"Archive format {zip_file} unsupported. Must be .pex")


def get_current_pex_filepath() -> str:
    """The path of the packed environment we run from (raises when not in one)."""
    path = environment.running_artifact()
    if path:
        return path
    raise RuntimeError("Trying to get current pex file path while not running from PEX")


def get_pyenv_usage_from_archive(path_to_archive: str) -> PythonEnvDescription:
    """How a node runs the artifact: where it is localized and the command to start it.

    >>> get_pyenv_usage_from_archive("hdfs:///user/me/envs/myenv.pex")
    PythonEnvDescription(path_to_archive='hdfs:///user/me/envs/myenv.pex', \
interpreter_cmd='./myenv.pex', dest_path='myenv.pex', must_unpack=False)
    """

    name = os.path.basename(path_to_archive)
    try:
        run = run_info_for(name)
    except ConfigurationError:
        raise ValueError(f"Archive format {name} unsupported. Must be .pex/pex.zip") from None
    return PythonEnvDescription(path_to_archive, run.interpreter_cmd, run.dest_path,
                                run.must_unpack)
