"""The original ``skein_config_builder`` API: a :class:`SkeinConfig` for your own skein spec.

A thin adapter: the job is a :class:`cluster_pack.launch.spec.LaunchSpec` translated by
:mod:`cluster_pack.launch.yarn`. ``files`` maps link names to ``skein.File`` objects (type and
visibility set; ``skein.Service(files=...)`` accepts them as the original's strings).

>>> config = build_with_func(lambda x: x + 1, [1])                 # doctest: +SKIP
>>> service = skein.Service(resources=skein.Resources("1 GiB", 1), script=config.script,
...                         files=config.files, env=config.env)   # doctest: +SKIP
"""

from __future__ import annotations

from typing import Any, Callable, Dict, List, NamedTuple, Optional

from cluster_pack.launch import spec as launch
from cluster_pack.launch import yarn


class SkeinConfig(NamedTuple):
    script: str
    files: Dict[str, Any]
    env: Dict[str, str]


def package_path_or_default(package_path: Optional[str], allow_large_pex: bool) -> Optional[str]:
    """``package_path``, or with ``allow_large_pex`` and no path the one ``upload_env``
    publishes now (the original's rule; without either, the launch spec picks the default)."""
    if not package_path and allow_large_pex:
        from cluster_pack import uploader

        package_path, _ = uploader.upload_env(allow_large_pex=True)
    return package_path


def _config(spec: launch.LaunchSpec, process_logs: Optional[Callable[[str], Any]],
            tmp_dir: Optional[str]) -> SkeinConfig:
    logs_spec = yarn.process_logs_launch_spec(spec, process_logs, tmp_dir) \
        if process_logs else None
    more = [logs_spec] if logs_spec else []
    return SkeinConfig(yarn.container_script(spec, None, logs_spec),
                       yarn.files_of(spec, *more), dict(yarn.CONTAINER_ENV))


def build_with_func(
    func: Callable,
    args: Optional[List[Any]] = None,
    package_path: Optional[str] = None,
    additional_files: Optional[List[str]] = None,
    tmp_dir: Optional[str] = None,
    log_level: str = "INFO",
    process_logs: Optional[Callable[[str], Any]] = None,
    allow_large_pex: bool = False,
) -> SkeinConfig:
    """The skein config running ``func(*args)`` (shipped with cloudpickle) in a container.

    :param func: the function to execute remotely
    :param args: the function's arguments
    :param package_path: the published environment (uploaded first when None)
    :param additional_files: additional files to ship to the containers
    :param tmp_dir: where to write the pickled function (a new temporary dir if None)
    :param log_level: the remote log level
    :param process_logs: a function called in the container with the path of the job's
        output (``output.log``), e.g. to upload it somewhere
    :param allow_large_pex: publish the unpacked ``.pex.zip`` layout (when uploading)
    """
    spec = launch.function_launch_spec(
        func, list(args or []), log_level=log_level, tmp_dir=tmp_dir,
        package_path=package_path_or_default(package_path, allow_large_pex),
        additional_files=list(additional_files or []))
    return _config(spec, process_logs, tmp_dir)


def build(
    module_name: str,
    args: Optional[List[Any]] = None,
    package_path: Optional[str] = None,
    additional_files: Optional[List[str]] = None,
    tmp_dir: Optional[str] = None,
    process_logs: Optional[Callable[[str], Any]] = None,
    allow_large_pex: bool = False,
) -> SkeinConfig:
    """The skein config running ``python -m module_name args...`` (or a ``.py`` script).

    Arguments are passed as they are (quoted), never interpreted by a shell.

    :param module_name: the module (or ``.py`` file shipped in ``additional_files``)
    :param args: its command line arguments
    :param package_path: the published environment (uploaded first when None)
    :param additional_files: additional files to ship to the containers
    :param tmp_dir: where to write temporary files (a new temporary dir if None)
    :param process_logs: a function called in the container with ``output.log``
    :param allow_large_pex: publish the unpacked ``.pex.zip`` layout (when uploading)
    """
    spec = launch.module_launch_spec(
        module_name, list(args or []),
        package_path=package_path_or_default(package_path, allow_large_pex),
        additional_files=list(additional_files or []))
    return _config(spec, process_logs, tmp_dir)
