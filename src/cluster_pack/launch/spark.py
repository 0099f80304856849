"""Spark: the properties that make PySpark executors run Python from a published environment.

Engine-neutral (no pyspark import): :func:`spark_conf` turns a :class:`~cluster_pack.launch.spec.LaunchSpec`
(or just the path of a published ``.pex`` / ``.pex.zip``, whose manifest it reads: one small
read) into Spark properties, and :func:`spark_submit_args` into ``spark-submit`` arguments.
``cluster_pack.spark.spark_config_builder`` applies the same properties to a
``SparkSession.Builder``.

>>> conf = spark_conf("hdfs:///user/me/envs/me.pex", master="yarn")   # doctest: +SKIP
>>> conf["spark.pyspark.python"]                                       # doctest: +SKIP
'./cluster_pack_python-1a2b3c4d.sh'

How it works
------------
* The environment travels as Spark *files* (``spark.files`` / ``spark.yarn.dist.files``) or an
  *archive* (``spark.archives`` / ``spark.yarn.dist.archives``), as its manifest says:

  - parts layout (``upload_env``'s default): every part of the packed pex, from the pool
    ``<env dir>/.cluster-pack-parts/<sha256>``, is a file; YARN localizes it as
    ``cpack-<sha256[:32]>`` (``url#name``), ``spark.files`` (which refuses ``#name``) under
    its own name ``<sha256>``, in the executor's working directory either way;
  - single-file ``.pex`` (or no manifest: the original's artifacts): one file;
  - ``.pex.zip``: an archive unpacked as ``pyenv``.

  Editable projects travel as archives ``#editable_<name>``.
* ``spark.pyspark.python`` (and ``PYSPARK_PYTHON`` for a driver that is already running) points
  at a small generated launcher script (``/bin/sh``) shipped with the environment, run by
  PySpark in the working directory of the executor (the YARN container of the driver in
  cluster mode). For the parts layout it first links parts that arrived under their own
  name to their ``cpack-`` name (naming any missing one), then re-creates the packed pex
  directory ``<name>.pex/`` with relative symlinks
  (:func:`cluster_pack.pack.script.assembly_script`: once per working directory, in a temporary
  directory renamed into place, so concurrent workers are safe) and runs
  ``./<name>.pex/__main__.py``. PySpark starts its workers with ``<python> -m pyspark.daemon``
  and puts its own modules (``pyspark.zip``, ``py4j``) on ``PYTHONPATH``, which the pex
  runtime ignores (venv mode runs ``python -I``); the launcher forwards ``PYTHONPATH`` into
  ``PEX_EXTRA_SYS_PATH`` (made absolute), chooses ``PEX_ROOT``, then execs the environment.
  So pyspark does not need to be packed in the environment
  (``upload_env(ignored_packages=["pyspark", "py4j"])`` keeps 450 MB of jars out of it); if it
  is packed, the packed copy wins. The launcher's name is the hash of its text (which holds
  the parts' digests): a new environment version is a new launcher.
* Caching: the pex runtime installs the environment into ``PEX_ROOT`` on the first start and
  re-execs the installed venv afterwards. PySpark forks every Python worker from one daemon
  per executor, so the environment is installed once per executor (default
  ``PEX_ROOT=<executor working directory>/.pex``), never per task; with ``pex_root=/abs/dir``
  it is installed once per node and user and reused by later executors and applications.
  Spark's fetch cache (``spark.files.useFetchCache``, default on) and YARN's localization cache
  download each file once per node; parts are named by content, so YARN re-uses the
  unchanged parts of a new environment version.
* Merging: comma lists (``spark.files``, ``spark.archives``, ...) and ``:`` paths
  (``PEX_EXTRA_SYS_PATH``) are merged with what is already set, in order, without
  duplicates; a scalar the user already set is kept (a warning says so).
"""

from __future__ import annotations

import hashlib
import logging
import os
import shlex
import sys
from pathlib import Path
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Union

from cluster_pack.atomic import write_bytes
from cluster_pack.cache import CacheDir
from cluster_pack.errors import ConfigurationError
from cluster_pack.launch import script
from cluster_pack.launch.spec import (
    EDITABLE_DIRS_ENV_VAR,
    LaunchSpec,
    Resource,
    editable_resources,
    environment_resources,
)
from cluster_pack.pack import environment
from cluster_pack.store import hadoop_conf
from cluster_pack.store.hadoop_conf import hadoop_url
from cluster_pack.store.manifest import (
    Manifest,
    artifact_name,
    read_published_manifest,
    run_info_for,
)

_logger = logging.getLogger(__name__)

LAUNCHER_PREFIX = "cluster_pack_python-"
# Comma-separated lists of Spark properties, merged entry by entry.
LIST_KEYS = frozenset({
    "spark.files", "spark.archives", "spark.jars", "spark.submit.pyFiles",
    "spark.yarn.dist.files", "spark.yarn.dist.archives", "spark.yarn.dist.jars",
    "spark.jars.packages", "spark.jars.repositories", "spark.kerberos.access.hadoopFileSystems",
})
# os.pathsep-separated environment variables, merged entry by entry.
PATH_VARIABLES = frozenset({"PEX_EXTRA_SYS_PATH", "PYTHONPATH"})
# comma-separated environment variables, merged entry by entry.
LIST_VARIABLES = frozenset({EDITABLE_DIRS_ENV_VAR})
# Variables of a LaunchSpec that make no sense for Spark: Spark owns PYTHONPATH (pyspark.zip,
# py4j); the launcher forwards it.
_SKIPPED_VARIABLES = frozenset({"PYTHONPATH"})
_ENV_PREFIXES = ("spark.executorEnv.", "spark.yarn.appMasterEnv.")

# s3a reads these from the environment (EnvironmentVariableCredentialsProvider); the SDK v1
# name also works with Hadoop 3.4 (mapped to the SDK v2 provider).
ENV_CREDENTIALS_PROVIDER = "com.amazonaws.auth.EnvironmentVariableCredentialsProvider"
AWS_ENV = {"key": "AWS_ACCESS_KEY_ID", "secret": "AWS_SECRET_ACCESS_KEY",
           "token": "AWS_SESSION_TOKEN"}
# The file systems Spark gets delegation tokens for on a Kerberized cluster, besides the default
# one and the staging directory's.
TOKEN_FILE_SYSTEMS_KEY = "spark.kerberos.access.hadoopFileSystems"
# Spark's default spark.redaction.regex: values of matching keys are hidden in the UI and logs.
SPARK_DEFAULT_REDACTION_REGEX = r"(?i)secret|password|token|access[.]key"


# -- merging ---------------------------------------------------------------------------------

def merge_values(old: Optional[str], new: Iterable[str], sep: str = ",") -> str:
    """``old`` followed by the entries of ``new`` it lacks; order kept, no duplicates."""
    out: List[str] = []
    for item in [*(old or "").split(sep), *new]:
        item = item.strip() if sep == "," else item
        if item and item not in out:
            out.append(item)
    return sep.join(out)


def _is_path_key(key: str) -> bool:
    return key.startswith(_ENV_PREFIXES) and key.rsplit(".", 1)[-1] in PATH_VARIABLES


def _is_list_key(key: str) -> bool:
    return key in LIST_KEYS or (key.startswith(_ENV_PREFIXES)
                                and key.rsplit(".", 1)[-1] in LIST_VARIABLES)


def merge_conf(existing: Mapping[str, str], new: Mapping[str, str]) -> Dict[str, str]:
    """The properties to set so that ``existing`` also holds ``new``.

    Lists and paths are merged; for any other key a value already set wins (logged when it
    differs). Returns only the keys whose value changes.
    """
    changes: Dict[str, str] = {}
    for key, value in new.items():
        old = existing.get(key)
        if _is_list_key(key):
            merged = merge_values(old, value.split(","), ",")
        elif _is_path_key(key):
            merged = merge_values(old, value.split(os.pathsep), os.pathsep)
        elif old is not None and str(old) != value:
            _logger.warning("%s is already set to %r: keeping it (cluster-pack would set %r)",
                            key, old, value)
            continue
        else:
            merged = value
        if merged != old:
            changes[key] = merged
    return changes


# -- the launcher ----------------------------------------------------------------------------

# E501: the shell text is kept as is (its hash names the launcher); one test line is long.
_LAUNCHER = r"""#!/bin/sh
# Generated by cluster-pack: runs PySpark's Python (driver in cluster mode, workers) from
# the environment __TARGET__, in the working directory where Spark put the shipped files.
set -f
here=$(pwd)
__SETUP__# PySpark puts pyspark.zip and py4j on PYTHONPATH, which the pex runtime ignores: forward
# it (and relative PEX_EXTRA_SYS_PATH entries, made absolute) through PEX_EXTRA_SYS_PATH.
extra=""
saved_ifs=$IFS
IFS=:
for entry in ${PEX_EXTRA_SYS_PATH:-} ${PYTHONPATH:-}; do
  [ -n "$entry" ] || continue
  case "$entry" in /*) ;; *) entry="$here/$entry" ;; esac
  case ":$extra:" in *":$entry:"*) ;; *) extra="${extra:+$extra:}$entry" ;; esac
done
IFS=$saved_ifs
export PEX_EXTRA_SYS_PATH="$extra"
# Where the environment is installed on its first start (then re-used by every worker)
__PEX_ROOT__target=__TARGET__
if [ -x "$target" ]; then
  exec "$target" "$@"
fi
# unpacked without execute bits: run it with the interpreter named on its first line
IFS= read -r first < "$target"
exec ${first#??} "$target" "$@"
"""  # noqa: E501


def launcher_script(target: str, setup: str = "") -> str:
    """The launcher's text for the artifact localized as ``target`` (relative path);
    ``setup`` (shell lines, see :func:`workdir_setup`) runs first, in the working directory."""
    setup = setup.rstrip("\n") + "\n" if setup.strip() else ""
    return (_LAUNCHER.replace("__TARGET__", shlex.quote(target)).replace("__SETUP__", setup)
            .replace("__PEX_ROOT__", script.pex_root_lines(script.WORKDIR_PEX_ROOT)))


def write_launcher(target: str, directory: Optional[Path] = None, setup: str = "") -> Path:
    """Write the launcher (content-addressed name: its text, setup included) and return its path."""
    text = launcher_script(target, setup)
    digest = hashlib.sha256(text.encode()).hexdigest()[:12]
    directory = directory or CacheDir.SPARK.ensure()
    path = Path(directory) / f"{LAUNCHER_PREFIX}{digest}.sh"
    if not path.exists() or path.read_text() != text:
        write_bytes(path, text.encode(), mode=0o755)
    return path


def workdir_setup(spec: LaunchSpec) -> str:
    """Shell lines preparing the working directory before the environment starts.

    ``spark.yarn.dist.files`` localizes a file under its ``#name``, but ``spark.files``
    refuses fragments: there a file arrives under the last component of its URL (a part
    as ``<sha256>``, not ``cpack-<sha256[:32]>``). Such files are first linked under the
    name the LaunchSpec gives them (a missing one is an error naming it), then the spec's
    own setup (the assembly of the parts layout) runs.
    """
    q = shlex.quote
    renamed = [r for r in spec.resources if r.kind == "file" and _basename(r) != r.name]
    lines: List[str] = []
    if renamed:
        guard = f"{spec.artifact_name}/PEX-INFO" if spec.setup and spec.artifact_name else ""
        indent = "  " if guard else ""
        if guard:
            lines.append(f"if [ ! -f {q(guard)} ]; then")
        lines.append(f'{indent}missing=""')
        for r in renamed:
            name, base = q(r.name), q(_basename(r))
            lines.append(f"{indent}[ -e {name} ] || {{ [ -e {base} ] && ln -s {base} {name} "
                         f"2>/dev/null; [ -e {name} ]; }} || missing=\"$missing {base}\"")
        lines.append(f'{indent}if [ -n "$missing" ]; then')
        lines.append(f'{indent}  echo "cluster-pack: files of the job are missing in $here:'
                     f'$missing (not shipped with spark.files / spark.yarn.dist.files?)" >&2')
        lines.append(f"{indent}  exit 1")
        lines.append(f"{indent}fi")
        if guard:
            lines.append("fi")
    if spec.setup.strip():
        lines.append(spec.setup.rstrip("\n"))
    return "\n".join(lines) + "\n" if lines else ""


# -- LaunchSpec -> Spark ---------------------------------------------------------------------

def hadoop_path(path: str) -> str:
    """``s3://bucket/key`` -> ``s3a://bucket/key`` (:func:`~cluster_pack.store.hadoop_conf.hadoop_url`)
    without a trailing slash; other paths unchanged."""
    return hadoop_url(path).rstrip("/") if path.startswith("s3://") else path


def _package_path_of(path: str) -> str:
    path = hadoop_path(str(path))
    if "://" not in path:
        path = os.path.abspath(path)
    return path


def read_env_manifest(package_path: str,
                      fs_args: Optional[Mapping[str, Any]] = None) -> Optional[Manifest]:
    """The manifest published next to ``package_path`` (one small read); None when there is
    none (an artifact published by the original cluster-pack, or by hand): a single file."""
    return read_published_manifest(package_path, dict(fs_args) if fs_args else None)


def spark_launch_spec(package_path: str, include_editables: bool = False,
                      env_vars: Optional[Mapping[str, str]] = None,
                      additional_files: Sequence[str] = (), *,
                      fs_args: Optional[Mapping[str, Any]] = None,
                      manifest: Optional[Manifest] = None) -> LaunchSpec:
    """A LaunchSpec for PySpark processes (no command: PySpark starts its own daemon).

    Reads the environment's manifest (one small read, unless ``manifest`` is given): a
    ``.pex`` published in the parts layout is one resource per part plus the shell lines
    assembling ``<name>.pex/`` (:func:`cluster_pack.launch.spec.environment_resources`); a
    single-file ``.pex`` / ``.pex.zip`` is one resource.
    """
    package_path = _package_path_of(package_path)
    if manifest is None:
        manifest = read_env_manifest(package_path, fs_args)
    resources, setup = environment_resources(package_path, manifest)
    run = run_info_for(artifact_name(package_path), manifest.layout if manifest else "")
    resources += [Resource(str(f), os.path.basename(str(f).rstrip("/"))) for f in additional_files]
    sources = editable_resources() if include_editables else []
    resources += sources
    env = {"PEX_EXTRA_SYS_PATH": ":".join(["."] + [r.name for r in sources]),
           environment.PACKAGE_PATH_ENV_VAR: package_path}
    if sources:
        env[EDITABLE_DIRS_ENV_VAR] = ",".join(r.name for r in sources)
    env.update({k: str(v) for k, v in (env_vars or {}).items()})
    return LaunchSpec([run.interpreter_cmd], resources, env, package_path,
                      "" if run.must_unpack else run.dest_path, manifest, setup)


def _is_yarn(master: Optional[str]) -> bool:
    return master is not None and master.split(":", 1)[0] == "yarn"


def _interpreter_of(spec: LaunchSpec) -> str:
    cmd = spec.argv[0] if spec.argv else ""
    if cmd:
        return cmd
    artifact = spec.resources[0] if spec.resources else None
    if artifact is None:
        raise ConfigurationError("the LaunchSpec has neither a command nor resources: nothing "
                                 "to run Python from; build it with spark_launch_spec()")
    return run_info_for(artifact.name if artifact.kind == "file" else artifact.source).interpreter_cmd


def _source_url(resource: Resource) -> str:
    source = hadoop_path(resource.source)
    if "://" not in source:
        source = os.path.abspath(source)
    return source


def _basename(resource: Resource) -> str:
    return _source_url(resource).rstrip("/").rsplit("/", 1)[-1]


def _resource_url(resource: Resource, fragment: bool = True) -> str:
    """The URL Spark ships; ``#name`` when the resource is named otherwise (archives always,
    files only where ``fragment`` is allowed: ``spark.yarn.dist.files``; ``spark.files``
    refuses a fragment, the launcher links such files under their name)."""
    source = _source_url(resource)
    if resource.kind == "archive" or (fragment and _basename(resource) != resource.name):
        return f"{source}#{resource.name}"
    return source


def _ship(spec: LaunchSpec,
          launcher_dir: Optional[Path]) -> "tuple[Path, List[str], List[str], List[str]]":
    """The launcher, the files for YARN (``#name``), the files for ``spark.files`` and the
    archives."""
    launcher = write_launcher(_interpreter_of(spec), launcher_dir, workdir_setup(spec))
    files = [r for r in spec.resources if r.kind == "file"]
    yarn_files = [_resource_url(r) for r in files] + [str(launcher)]
    plain_files = [_resource_url(r, fragment=False) for r in files] + [str(launcher)]
    archives = [_resource_url(r) for r in spec.resources if r.kind == "archive"]
    return launcher, yarn_files, plain_files, archives


def spark_conf(spec_or_package_path: Union[LaunchSpec, str], master: Optional[str] = None,
               deploy_mode: Optional[str] = None, *, pex_root: Optional[str] = None,
               include_editables: bool = False, launcher_dir: Optional[Path] = None,
               fs_args: Optional[Mapping[str, Any]] = None) -> Dict[str, str]:
    """The Spark properties running PySpark from a published environment.

    :param spec_or_package_path: a LaunchSpec, or the URL/path of a published ``.pex``
        (parts layout or single file) or ``.pex.zip``; its manifest is read (one small read)
    :param master: ``yarn`` ships with ``spark.yarn.dist.*`` (YARN's localization cache);
        any other master with ``spark.files`` / ``spark.archives``; None (unknown yet):
        both, as the original did
    :param deploy_mode: ``cluster``: the driver runs from the environment too
    :param pex_root: an absolute directory on the nodes: the environment is installed
        there once per node and user (default: once per executor, in its working directory)
    :param include_editables: with a package path, ship the current venv's editable projects
    :param fs_args: storage options to read the manifest with (S3 endpoint, credentials)
    """
    if isinstance(spec_or_package_path, LaunchSpec):
        spec = spec_or_package_path
    else:
        spec = spark_launch_spec(spec_or_package_path, include_editables=include_editables,
                                 fs_args=fs_args)
    launcher, yarn_files, plain_files, archives = _ship(spec, launcher_dir)

    conf: Dict[str, str] = {}
    yarn = _is_yarn(master)
    if yarn or master is None:
        conf["spark.yarn.dist.files"] = ",".join(yarn_files)
        if archives:
            conf["spark.yarn.dist.archives"] = ",".join(archives)
    if not yarn:
        conf["spark.files"] = ",".join(plain_files)
        if archives:
            conf["spark.archives"] = ",".join(archives)
    if yarn or master is None:
        conf.update(token_file_systems_conf(spec))
    python = f"./{launcher.name}"
    conf["spark.pyspark.python"] = python
    env = {k: v for k, v in spec.env.items() if k not in _SKIPPED_VARIABLES}
    if pex_root:
        env["PEX_ROOT"] = pex_root
    for key, value in sorted(env.items()):
        conf[f"spark.executorEnv.{key}"] = value
    if deploy_mode == "cluster":
        conf["spark.pyspark.driver.python"] = python
        if yarn or master is None:
            for key, value in sorted(env.items()):
                conf[f"spark.yarn.appMasterEnv.{key}"] = value
    return conf


def token_file_systems_conf(spec: LaunchSpec) -> Dict[str, str]:
    """``spark.kerberos.access.hadoopFileSystems`` naming the Hadoop file systems the
    environment's resources are on, when the Hadoop client configuration is Kerberized.

    YARN localizes the shipped files with the application's delegation tokens, and Spark only
    gets tokens for the default file system, the staging directory's and this list: an
    environment published on another namenode (or nameservice) would fail to localize.
    On a cluster without Kerberos (or for an environment on S3 or a local path), empty:
    the properties are those of a non-secure cluster, unchanged.
    """
    if not hadoop_conf.security_enabled():
        return {}
    file_systems: List[str] = []
    for resource in spec.resources:
        file_system = hadoop_conf.token_file_system(_source_url(resource))
        if file_system and file_system not in file_systems:
            file_systems.append(file_system)
    return {TOKEN_FILE_SYSTEMS_KEY: ",".join(file_systems)} if file_systems else {}


def editables_conf(master: Optional[str] = None, deploy_mode: Optional[str] = None,
                   workdir: Optional[Path] = None) -> Dict[str, str]:
    """Ship the current venv's editable projects (zipped, unpacked as ``editable_<name>``) and
    put them on the executors' ``sys.path``; to merge with :func:`spark_conf`'s properties."""
    sources = editable_resources(workdir)
    if not sources:
        return {}
    archives = ",".join(_resource_url(r) for r in sources)
    yarn = _is_yarn(master)
    conf: Dict[str, str] = {}
    if yarn or master is None:
        conf["spark.yarn.dist.archives"] = archives
    if not yarn:
        conf["spark.archives"] = archives
    env = {"PEX_EXTRA_SYS_PATH": ":".join(["."] + [r.name for r in sources]),
           EDITABLE_DIRS_ENV_VAR: ",".join(r.name for r in sources)}
    prefixes = ["spark.executorEnv."]
    if deploy_mode == "cluster" and (yarn or master is None):
        prefixes.append("spark.yarn.appMasterEnv.")
    for prefix in prefixes:
        for key, value in env.items():
            conf[prefix + key] = value
    return conf


def driver_environment(conf: Mapping[str, str]) -> Dict[str, str]:
    """Variables a driver that is already running (``python my_job.py``) must export before
    its SparkContext starts: PySpark reads ``PYSPARK_PYTHON`` from the environment."""
    return {"PYSPARK_PYTHON": conf["spark.pyspark.python"]} if "spark.pyspark.python" in conf else {}


def spark_submit_args(spec_or_package_path: Union[LaunchSpec, str], master: Optional[str] = None,
                      deploy_mode: Optional[str] = None, *, pex_root: Optional[str] = None,
                      include_editables: bool = False, driver_python: Optional[str] = None,
                      files: Sequence[str] = (), archives: Sequence[str] = (),
                      launcher_dir: Optional[Path] = None,
                      fs_args: Optional[Mapping[str, Any]] = None) -> List[str]:
    """``spark-submit`` arguments (``--files``, ``--archives``, ``--conf k=v``...) using the env.

    ``--files``/``--archives`` map to ``spark.yarn.dist.*`` on YARN and ``spark.files``/
    ``spark.archives`` elsewhere. spark-submit keeps only the last ``--files``: pass your own
    files and archives here (``files``/``archives``) to get one merged list. In client mode
    the driver runs locally: ``driver_python`` (default: this interpreter) is used for it.
    Files renamed with ``#name`` only when ``master`` is YARN (``spark.files`` refuses
    fragments; the launcher links them under their name on any master).
    """
    if isinstance(spec_or_package_path, LaunchSpec):
        spec = spec_or_package_path
    else:
        spec = spark_launch_spec(spec_or_package_path, include_editables=include_editables,
                                 fs_args=fs_args)
    conf = spark_conf(spec, "yarn", deploy_mode, pex_root=pex_root, launcher_dir=launcher_dir)
    _, yarn_files, plain_files, _ = _ship(spec, launcher_dir)
    conf.pop("spark.yarn.dist.files")
    ship_files = merge_values(",".join(files), yarn_files if _is_yarn(master) else plain_files)
    ship_archives = merge_values(",".join(archives),
                                 conf.pop("spark.yarn.dist.archives", "").split(","))
    if deploy_mode != "cluster":
        conf["spark.pyspark.driver.python"] = driver_python or sys.executable
    args: List[str] = []
    if master:
        args += ["--master", master]
    if deploy_mode:
        args += ["--deploy-mode", deploy_mode]
    args += ["--files", ship_files]
    if ship_archives:
        args += ["--archives", ship_archives]
    for key, value in conf.items():
        if key.startswith("spark.yarn.appMasterEnv.") and master and not _is_yarn(master):
            continue
        args += ["--conf", f"{key}={value}"]
    return args


# -- S3 --------------------------------------------------------------------------------------

def s3a_conf(fs_args: Optional[Mapping[str, object]] = None,
             credential_provider_path: Optional[str] = None) -> Dict[str, str]:
    """s3a properties for an s3fs-style ``fs_args``; never the credentials themselves.

    With a key in ``fs_args`` the credentials are read from the environment
    (``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``, see :func:`s3_credentials_env`);
    with ``credential_provider_path`` (a Hadoop credential store made with
    ``hadoop credential create fs.s3a.access.key ... -provider jceks://hdfs/...``) from it.
    """
    fs_args = fs_args or {}
    conf = {"spark.hadoop.fs.s3a.impl": "org.apache.hadoop.fs.s3a.S3AFileSystem",
            "spark.hadoop.fs.s3a.path.style.access": "true"}
    client_kwargs = fs_args.get("client_kwargs") or {}
    endpoint = client_kwargs.get("endpoint_url") if isinstance(client_kwargs, Mapping) else None
    endpoint = endpoint or fs_args.get("endpoint_url")
    if endpoint:
        conf["spark.hadoop.fs.s3a.endpoint"] = str(endpoint)
        if str(endpoint).startswith("http://"):
            conf["spark.hadoop.fs.s3a.connection.ssl.enabled"] = "false"
    region = client_kwargs.get("region_name") if isinstance(client_kwargs, Mapping) else None
    if region:
        conf["spark.hadoop.fs.s3a.endpoint.region"] = str(region)
    if credential_provider_path:
        conf["spark.hadoop.hadoop.security.credential.provider.path"] = credential_provider_path
    elif "key" in fs_args or "secret" in fs_args:
        conf["spark.hadoop.fs.s3a.aws.credentials.provider"] = ENV_CREDENTIALS_PROVIDER
    return conf


def s3_credentials_env(fs_args: Optional[Mapping[str, object]] = None) -> Dict[str, str]:
    """``AWS_ACCESS_KEY_ID``/``AWS_SECRET_ACCESS_KEY``/``AWS_SESSION_TOKEN`` from ``fs_args``."""
    fs_args = fs_args or {}
    return {var: str(fs_args[key]) for key, var in AWS_ENV.items() if fs_args.get(key)}


def executor_credentials_conf(credentials: Mapping[str, str]) -> Dict[str, str]:
    """Executor environment carrying the credentials (``spark.executorEnv.AWS_*``).

    Spark redacts the values of keys matching ``spark.redaction.regex`` (by default anything
    with ``secret`` or ``token``) in its UI, event logs and launch logs; the key id is not a
    secret. Needed where executors do not inherit the driver's environment (YARN,
    Kubernetes); on ``local``/``local-cluster`` they do.
    """
    return {f"spark.executorEnv.{k}": v for k, v in credentials.items()}


def inherits_driver_environment(master: Optional[str]) -> bool:
    """Executors started by the driver's own JVM inherit its environment."""
    return master is not None and master.startswith("local")
