"""The original ``skein_launcher`` API (also ``cluster_pack.yarn_launcher``).

Thin adapters: a :class:`cluster_pack.launch.spec.LaunchSpec` submitted by
:func:`cluster_pack.launch.yarn.submit`.

>>> import skein
>>> from cluster_pack.skein import skein_launcher
>>> with skein.Client() as client:                                      # doctest: +SKIP
...     app_id = skein_launcher.submit_func(client, func=lambda: 42)
...     skein_launcher.wait_for_finished(client, app_id)
...     print(skein_launcher.get_application_logs(client, app_id))
"""

from __future__ import annotations

import logging
import tempfile
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from cluster_pack import filesystem
from cluster_pack.launch import spec as launch
from cluster_pack.launch import yarn
from cluster_pack.skein.skein_config_builder import package_path_or_default

if TYPE_CHECKING:  # pragma: no cover
    import skein

logger = logging.getLogger(__name__)


def _submit(skein_client: "skein.Client", spec: launch.LaunchSpec, tmp_dir: str,
            **options: Any) -> str:
    return yarn.submit(spec, skein_client, tmp_dir=tmp_dir, **options)


def submit(
    skein_client: "skein.Client",
    module_name: str,
    args: Optional[List[str]] = None,
    name: str = "skein_launcher",
    num_cores: int = 1,
    memory: str = "1 GiB",
    package_path: Optional[str] = None,
    hadoop_file_systems: Optional[List[str]] = None,
    queue: Optional[str] = None,
    env_vars: Optional[Dict[str, str]] = None,
    additional_files: Optional[List[str]] = None,
    node_label: Optional[str] = None,
    num_containers: int = 1,
    user: Optional[str] = None,
    acquire_map_reduce_delegation_token: bool = False,
    pre_script_hook: Optional[str] = None,
    max_attempts: int = 1,
    max_restarts: int = 0,
    process_logs: Optional[Callable[[str], Any]] = None,
    allow_large_pex: bool = False,
) -> str:
    """Run ``python -m module_name args...`` from the packed environment in YARN containers.

    :param skein_client: the ``skein.Client`` to submit with
    :param module_name: the module to run (or a ``.py`` file shipped in additional_files)
    :param args: its command line arguments (passed as they are, never through a shell)
    :param name: the YARN application (and skein service) name
    :param num_cores: vcores per container
    :param memory: memory per container, e.g. ``"2 GiB"``
    :param package_path: the published environment; uploaded first (``upload_env``) if None
    :param hadoop_file_systems: extra file systems to get delegation tokens for
    :param queue: the YARN queue
    :param env_vars: environment variables for the job (any value, quoted)
    :param additional_files: files to ship to the containers' working directory
    :param node_label: the YARN node label to run on
    :param num_containers: number of containers running the same command
    :param user: run as this user (impersonation; the submitter must be allowed to proxy)
    :param acquire_map_reduce_delegation_token: also get a MapReduce delegation token
    :param pre_script_hook: shell code run in the container before python
    :param max_attempts: maximum submission attempts of the application master
    :param max_restarts: maximum container restarts of the service
    :param process_logs: called in the container with the path of the job's output
        (``output.log``) once it ends, e.g. to upload it
    :param allow_large_pex: publish the unpacked ``.pex.zip`` layout (when uploading)
    :return: the YARN application id
    """
    with tempfile.TemporaryDirectory(prefix="cluster-pack-skein-") as tmp_dir:
        spec = launch.module_launch_spec(
            module_name, list(args or []),
            package_path=package_path_or_default(package_path, allow_large_pex),
            env_vars=env_vars, additional_files=list(additional_files or []))
        return _submit(
            skein_client, spec, tmp_dir, name=name, num_cores=num_cores, memory=memory,
            hadoop_file_systems=hadoop_file_systems, queue=queue, node_label=node_label,
            num_containers=num_containers, user=user,
            acquire_map_reduce_delegation_token=acquire_map_reduce_delegation_token,
            pre_script_hook=pre_script_hook, max_attempts=max_attempts,
            max_restarts=max_restarts, process_logs=process_logs)


def submit_func(
    skein_client: "skein.Client",
    func: Callable,
    args: Optional[List[Any]] = None,
    name: str = "skein_launcher",
    num_cores: int = 1,
    memory: str = "1 GiB",
    package_path: Optional[str] = None,
    hadoop_file_systems: Optional[List[str]] = None,
    queue: Optional[str] = None,
    env_vars: Optional[Dict[str, str]] = None,
    additional_files: Optional[List[str]] = None,
    node_label: Optional[str] = None,
    num_containers: int = 1,
    user: Optional[str] = None,
    acquire_map_reduce_delegation_token: bool = False,
    pre_script_hook: Optional[str] = None,
    max_attempts: int = 1,
    max_restarts: int = 0,
    process_logs: Optional[Callable[[str], Any]] = None,
    allow_large_pex: bool = False,
) -> str:
    """Run ``func(*args)`` (shipped with cloudpickle) in YARN containers.

    The return value is logged (``... returned <repr>``) and an exception's traceback is
    printed; an exception makes the container, hence the application, fail. The other
    parameters are those of :func:`submit`.

    :return: the YARN application id
    """
    with tempfile.TemporaryDirectory(prefix="cluster-pack-skein-") as tmp_dir:
        spec = launch.function_launch_spec(
            func, list(args or []), tmp_dir=tmp_dir,
            package_path=package_path_or_default(package_path, allow_large_pex),
            env_vars=env_vars, additional_files=list(additional_files or []))
        return _submit(
            skein_client, spec, tmp_dir, name=name, num_cores=num_cores, memory=memory,
            hadoop_file_systems=hadoop_file_systems, queue=queue, node_label=node_label,
            num_containers=num_containers, user=user,
            acquire_map_reduce_delegation_token=acquire_map_reduce_delegation_token,
            pre_script_hook=pre_script_hook, max_attempts=max_attempts,
            max_restarts=max_restarts, process_logs=process_logs)


def upload_logs_to_hdfs(path_on_hdfs: str, local_log_path: str) -> None:
    """Copy a local file (e.g. ``output.log`` in a ``process_logs`` hook) to storage."""
    fs, _ = filesystem.resolve_filesystem_and_path(path_on_hdfs)
    fs.put(local_log_path, path_on_hdfs)


def get_application_logs(
    client: "skein.Client",
    app_id: str,
    wait_for_nb_logs: Optional[int] = None,
    log_tries: int = 15,
) -> Optional["skein.model.ApplicationLogs"]:
    """The application's logs (``skein.model.ApplicationLogs``), or None.

    Retries ``log_tries`` times (3 s apart) until ``wait_for_nb_logs`` container logs are
    there. Without YARN log aggregation, reads the NodeManager log directories when they
    are on this machine (single-node clusters).
    """
    return yarn.application_logs(client, app_id, wait_for_nb_logs, log_tries)


def wait_for_finished(client: "skein.Client", app_id: str, poll_every_secs: int = 5) -> bool:
    """Block until the application ends; True if it SUCCEEDED."""
    return yarn.wait_for_finished(client, app_id, poll_every_secs)


if __name__ == "__main__":
    try:
        import fire
    except ImportError:  # pragma: no cover
        raise SystemExit("this command line needs the 'fire' package (pip install fire)") from None
    fire.Fire()
