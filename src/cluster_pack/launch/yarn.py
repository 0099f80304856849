"""The YARN engine: run a :class:`~cluster_pack.launch.spec.LaunchSpec` in YARN containers via skein.

It only translates the engine-neutral spec (what :mod:`cluster_pack.launch.local` runs locally):

* every resource becomes a ``skein.File`` under its ``name``: ``type="file"`` for the
  parts, the ``.pex`` and plain files, ``type="archive"`` for the unpacked ``.pex.zip``
  layout and the editable zips (YARN unpacks them);
* visibility: a *shared* resource (``Resource.shared``: what the published environment is
  made of) read from a remote store (HDFS, S3 through ``s3a://``) gets
  ``visibility="private"``: YARN's localization cache keeps one copy per node and user,
  shared by every container and every application of that user, keyed by the path and
  its timestamp. With the parts layout (``upload_env``'s default) every part of the pool,
  immutable and named by its sha256 (link name ``cpack-<sha256[:32]>``), is such a
  resource: a new version of the environment localizes only the parts it does not share
  with versions already used on the node. Per-job files (the pickled function, the
  runner zip ``cluster_pack_runner.zip`` running it, editable zips and their
  ``editable_packages_index``, extra files) and anything read from a local path stay
  ``"application"``;
* the container script is ``spec.shell_script(...)``: the environment's ``setup`` (the
  parts layout re-creates the packed pex directory ``<name>.pex/`` from the localized parts
  with relative symlinks; the interpreter is ``./<name>.pex/__main__.py``), then the
  command. Every value is quoted by :mod:`shlex`, no user string is interpreted by the
  shell (only ``pre_script_hook``, which is the user's own shell code);
* ``PEX_ROOT`` is a persistent per-user directory on the node,
  ``$HOME/.cache/cluster-pack/pex_root`` when ``$HOME`` is writable in the container, else
  ``$PWD/.pex`` (per container, the original's behaviour). A ``PEX_ROOT`` given in the
  job's environment wins. The pex runtime therefore installs the environment once per
  node and user; later containers re-exec the installed venv.

skein (and Java with the Hadoop client classpath, for skein's driver) is needed only when
a function of this module is called.

>>> import skein
>>> from cluster_pack import launch, yarn
>>> spec = launch.module_launch_spec("my_pkg.job", ["--day", "2024-01-01"])  # doctest: +SKIP
>>> with skein.Client() as client:                                           # doctest: +SKIP
...     app_id = yarn.submit(spec, client, memory="2 GiB", num_containers=2)
...     yarn.wait_for_finished(client, app_id)
"""

from __future__ import annotations

import logging
import os
import re
import time
import uuid
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence, Set
from urllib.parse import urlparse

from cluster_pack import settings
from cluster_pack.errors import ClusterError, ClusterPackError, IntegrityError
from cluster_pack.launch import script
from cluster_pack.launch.spec import LaunchSpec, Resource, function_launch_spec
from cluster_pack.store import hadoop_conf, parts_pool
from cluster_pack.store.hadoop_conf import hadoop_url
from cluster_pack.store.storage import Store

if TYPE_CHECKING:  # pragma: no cover
    import skein

_logger = logging.getLogger(__name__)

# Environment set on the container by YARN (not by the script), as the original did.
CONTAINER_ENV = {"SKEIN_CONFIG": "./.skein", "GIT_PYTHON_REFRESH": "quiet"}
PROCESS_LOGS_FILE = "output.log"

PEX_ROOT_SNIPPET = script.pex_root_lines(script.NODE_PEX_ROOT).rstrip("\n")


# ------------------------------------------------------------------------ translation

def _is_remote(source: str) -> bool:
    scheme = urlparse(source).scheme
    return bool(scheme) and scheme != "file" and len(scheme) > 1  # "C:" is not a scheme


def _visibility(resource: Resource, spec: LaunchSpec) -> str:
    if resource.shared and _is_remote(resource.source):
        return "private"
    return "application"


def check_parts(spec: LaunchSpec) -> None:
    """Refuse, before submitting, a parts environment whose pool lacks a part its manifest
    names, or holds it with another size (one listing of the pool).

    YARN would otherwise fail to localize a missing part, or localize a damaged one and
    run it: it checks a resource's timestamp, never its content. The content (sha256) of
    every part is checked by the local engine and ``runner.fetch_env``. A pool that
    cannot be listed from here (an object store reached with other ``fs_args``) is left
    to YARN.
    """
    manifest = spec.manifest
    if manifest is None or not manifest.is_parts:
        return

    try:
        store, path = Store.for_url(spec.package_path)
        absent = parts_pool.missing(store, path, manifest.pool_parts)
    except (ClusterPackError, OSError, ImportError) as exc:
        _logger.warning("cannot list the parts of %s before submitting: %s",
                        spec.package_path, exc)
        return
    if absent:
        names = ", ".join(f"{p.path} ({parts_pool.part_url(spec.package_path, p)})"
                          for p in absent[:5])
        raise IntegrityError(
            f"{spec.package_path}: {len(absent)} part(s) of the published environment are "
            f"missing from its pool or have another size than its manifest says: {names}"
            f"{' ...' if len(absent) > 5 else ''}; refusing to submit it, publish it again "
            "(upload_env re-uploads what is missing)")


def files_of(spec: LaunchSpec, *more: LaunchSpec) -> Dict[str, Any]:
    """``{link name: skein.File}`` for the resources of ``spec`` (and of ``more`` specs)."""
    import skein

    files: Dict[str, Any] = {}
    for one in (spec, *more):
        for resource in one.resources:
            if resource.name in files:
                continue  # same artifact / editable zips in the process_logs spec
            files[resource.name] = skein.File(
                source=hadoop_url(resource.source),
                type=resource.kind,
                visibility=_visibility(resource, one),
            )
    return files


def _heredoc(path: str, content: str) -> str:
    """Shell lines writing ``content`` verbatim to ``path`` (quoted heredoc: no expansion)."""
    marker = f"CLUSTER_PACK_EOF_{uuid.uuid4().hex}"
    if not content.endswith("\n"):
        content += "\n"
    return f"cat > {path} <<'{marker}'\n{content}{marker}\n"


def container_script(spec: LaunchSpec, pre_script_hook: Optional[str] = None,
                     process_logs_spec: Optional[LaunchSpec] = None) -> str:
    """The bash script a container runs.

    With ``process_logs_spec`` the job's output is also written to ``output.log`` (``tee``)
    and the process_logs function then runs on it; the container fails if either fails.
    """
    hook = PEX_ROOT_SNIPPET + ("\n" + pre_script_hook if pre_script_hook else "")
    script = spec.shell_script(pre_script_hook=hook)
    if process_logs_spec is None:
        return script
    logs_script = process_logs_spec.shell_script(pre_script_hook=PEX_ROOT_SNIPPET)
    return (
        _heredoc(".cluster_pack_run.sh", script)
        + _heredoc(".cluster_pack_process_logs.sh", logs_script)
        + "set -o pipefail\n"
        + f"bash .cluster_pack_run.sh 2>&1 | tee {PROCESS_LOGS_FILE}\n"
        + "CMD_STATUS=$?\n"
        + "bash .cluster_pack_process_logs.sh\n"
        + "LOG_STATUS=$?\n"
        + 'if [ "$CMD_STATUS" -ne 0 ]; then exit "$CMD_STATUS"; fi\n'
        + 'exit "$LOG_STATUS"\n'
    )


def process_logs_launch_spec(spec: LaunchSpec, process_logs: Callable[[str], Any],
                             tmp_dir: Optional[str] = None) -> LaunchSpec:
    """A spec running ``process_logs("output.log")`` from the same published artifact."""
    return function_launch_spec(process_logs, [PROCESS_LOGS_FILE], tmp_dir=tmp_dir,
                                package_path=spec.package_path, manifest=spec.manifest)


def kerberos_ticket_path() -> Optional[str]:
    """The Kerberos ticket cache to ship: ``$KRB5CCNAME`` (``FILE:`` stripped), else
    ``/tmp/krb5cc_<uid>`` (the original's rule), when it is a file that exists.

    A cache that is not a file (``MEMORY:``, ``KEYRING:``, ``KCM:``) or does not exist is not
    shipped (the original passed it to YARN, whose submission then failed): that is the case
    of a keytab login (``skein.Client(principal=..., keytab=...)``) and of code in a YARN
    container submitting a job with its delegation tokens only; neither needs a ticket.
    """
    value = os.environ.get("KRB5CCNAME")
    if value is None:
        path = f"/tmp/krb5cc_{os.getuid()}"
    else:
        path = value[len("FILE:"):] if value.startswith("FILE:") else value
    return path if os.path.isfile(path) else None


def token_file_systems(files: Dict[str, Any],
                       hadoop_file_systems: Optional[Sequence[str]] = None) -> List[str]:
    """The file systems the application needs HDFS delegation tokens for:
    ``hadoop_file_systems`` (as Hadoop names them), then, when the Hadoop configuration is
    Kerberized, the file system of every HDFS resource the containers localize (the published
    environment may live on a namenode other than ``fs.defaultFS``, the only one skein adds by
    itself). Without Kerberos, ``hadoop_file_systems`` only: the specification is unchanged."""
    out = list(dict.fromkeys(hadoop_url(u) for u in hadoop_file_systems or []))
    if not hadoop_conf.security_enabled():
        return out
    for f in files.values():
        fs = hadoop_conf.token_file_system(str(getattr(f, "source", "")))
        if fs and fs not in out:
            out.append(fs)
    return out


def application_spec(
    spec: LaunchSpec,
    name: str = "cluster-pack",
    num_cores: int = 1,
    memory: str = "1 GiB",
    num_containers: int = 1,
    queue: Optional[str] = None,
    node_label: Optional[str] = None,
    user: Optional[str] = None,
    hadoop_file_systems: Optional[Sequence[str]] = None,
    acquire_map_reduce_delegation_token: bool = False,
    pre_script_hook: Optional[str] = None,
    max_attempts: int = 1,
    max_restarts: int = 0,
    process_logs: Optional[Callable[[str], Any]] = None,
    tmp_dir: Optional[str] = None,
    env: Optional[Dict[str, str]] = None,
) -> "skein.ApplicationSpec":
    """The ``skein.ApplicationSpec`` running ``spec`` in ``num_containers`` containers.

    ``env`` is extra container environment set by YARN (simple values only; the job's
    own variables travel in the quoted script). ``user``: impersonation, applied only
    when it differs from the current user (``C_PACK_USER`` or the login name).
    """
    import skein

    check_parts(spec)
    logs_spec = process_logs_launch_spec(spec, process_logs, tmp_dir) if process_logs else None
    files = files_of(spec, *([logs_spec] if logs_spec else []))
    container_env = {**CONTAINER_ENV, **(env or {})}
    ticket = kerberos_ticket_path()
    if ticket:
        container_env["KRB5CCNAME"] = f"FILE:{os.path.basename(ticket)}"
        files[os.path.basename(ticket)] = skein.File(source=ticket, type="file")
    service = skein.Service(
        resources=skein.Resources(memory=memory, vcores=num_cores),
        instances=num_containers,
        files=files,
        env=container_env,
        script=container_script(spec, pre_script_hook, logs_spec),
        max_restarts=max_restarts,
    )
    if node_label:
        service.node_label = node_label
    app = skein.ApplicationSpec(
        name=name,
        file_systems=token_file_systems(files, hadoop_file_systems),
        services={name: service},
        acls=skein.model.ACLs(enable=True, ui_users=["*"], view_users=["*"]),
        max_attempts=max_attempts,
    )
    # Only skein builds with https://github.com/jcrist/skein/pull/197 (not in any skein
    # release up to 0.8.2) know this option; the original ignored it silently otherwise.
    if hasattr(skein.ApplicationSpec, "acquire_map_reduce_delegation_token"):
        app.acquire_map_reduce_delegation_token = acquire_map_reduce_delegation_token
    elif acquire_map_reduce_delegation_token:
        _logger.warning("acquire_map_reduce_delegation_token=True is ignored: this skein "
                        "(%s) cannot acquire a MapReduce delegation token",
                        getattr(skein, "__version__", "?"))
    if user and user != settings.get_current_user():
        app.user = user
    if queue:
        app.queue = queue
    return app


def submit(spec: LaunchSpec, client: "skein.Client", **options: Any) -> str:
    """Submit ``spec`` to YARN; returns the application id.

    ``options`` are those of :func:`application_spec` (``name``, ``num_cores``,
    ``memory``, ``num_containers``, ``queue``, ``node_label``, ``user``, ...).
    """
    app = application_spec(spec, **options)
    app_id = client.submit(app)
    _logger.info("submitted %s (%s)", app_id, spec.package_path)
    return app_id


# ----------------------------------------------------------------------- follow-up

def wait_for_finished(client: "skein.Client", app_id: str, poll_every_secs: float = 5,
                      timeout: Optional[float] = None) -> bool:
    """Wait until the application ends; True when its final status is SUCCEEDED."""
    import skein

    deadline = None if timeout is None else time.monotonic() + timeout
    state = None
    while True:
        report = client.application_report(app_id)
        if state != report.state:
            _logger.info("%s: %s", app_id, _format_app_report(report))
        state = report.state
        if str(report.final_status) != "UNDEFINED":
            _logger.info("%s: %s", app_id, report.final_status)
            return report.final_status == skein.model.FinalStatus.SUCCEEDED
        if deadline is not None and time.monotonic() > deadline:
            raise TimeoutError(f"{app_id} still {report.state} after {timeout} s")
        time.sleep(poll_every_secs)


def _format_app_report(report: Any) -> str:
    attrs = ["state", "queue", "start_time", "finish_time", "final_status", "tracking_url",
             "user"]
    return os.linesep + os.linesep.join(
        f"{attr:>16}: {getattr(report, attr, '') or ''}" for attr in attrs)


def _local_log_dirs() -> List[Path]:
    """``yarn.nodemanager.log-dirs`` of the client's yarn-site.xml, when on this machine."""
    directory = hadoop_conf.conf_dir("yarn-site.xml")
    if directory is None:
        return []
    value = hadoop_conf.read_properties(directory / "yarn-site.xml").get(
        "yarn.nodemanager.log-dirs", "")
    dirs = [Path(urlparse(d).path if "://" in d else d) for d in value.split(",") if d]
    return [d for d in dirs if d.is_dir()]


def local_node_logs(app_id: str) -> Optional[Dict[str, str]]:
    """Container logs read from the NodeManager log directories of this machine.

    Used when YARN log aggregation is disabled (the default of a pseudo-distributed
    Hadoop, and of the test minicluster): ``{container_id: text}`` in skein's format.
    """
    if not re.fullmatch(r"application_\d+_\d+", app_id):
        return None
    logs: Dict[str, str] = {}
    for log_dir in _local_log_dirs():
        for container in sorted((log_dir / app_id).glob("container_*")):
            parts = []
            for f in sorted(container.iterdir()):
                if not f.is_file() or f.name in ("launch_container.sh", "directory.info"):
                    continue
                try:
                    text = f.read_text(errors="replace")
                except OSError:
                    continue
                parts.append(f"LogType:{f.name}\nLogLength:{len(text)}\nLog Contents:\n"
                             f"{text}\nEnd of LogType:{f.name}\n")
            logs[container.name] = "\n".join(parts)
    return logs or None


def application_logs(client: "skein.Client", app_id: str,
                     wait_for_nb_logs: Optional[int] = None, log_tries: int = 15,
                     retry_secs: float = 3) -> Optional[Any]:
    """The application's logs (``skein.model.ApplicationLogs``), None if unavailable.

    Aggregated logs are asked to YARN up to ``log_tries`` times (aggregation completes a
    few seconds after the end). If aggregation is disabled and the NodeManager log
    directories are on this machine, they are read there.
    """
    import skein

    nb_keys, logs = 0, None
    for attempt in range(log_tries):
        try:
            logs = client.application_logs(app_id)
            nb_keys = len(logs.keys())
            if not wait_for_nb_logs or nb_keys >= wait_for_nb_logs:
                return logs
        except Exception as exc:
            local = local_node_logs(app_id)
            if local and (not wait_for_nb_logs or len(local) >= wait_for_nb_logs):
                return skein.model.ApplicationLogs(app_id, local)
            _logger.warning("cannot collect the logs of %s (attempt %d/%d): %s",
                            app_id, attempt + 1, log_tries, exc)
        time.sleep(retry_secs)
    if nb_keys >= 1:
        _logger.warning("only %d logs retrieved instead of %s", nb_keys, wait_for_nb_logs)
        return logs
    local = local_node_logs(app_id)
    return skein.model.ApplicationLogs(app_id, local) if local else None


# ------------------------------------------------- applications of long-running services
# (the YARN side of the Dask and Ray clusters)

def services_application(name: str, services: Dict[str, Any], queue: Optional[str] = None,
                         node_label: Optional[str] = None,
                         hadoop_file_systems: Optional[Sequence[str]] = None) -> Any:
    """A skein ``ApplicationSpec`` of long-running ``services`` (one attempt: a cluster that
    fails is reported, not restarted), with the delegation tokens of ``hadoop_file_systems``
    and of the HDFS file systems the services localize from (:func:`token_file_systems`)."""
    import skein

    files: Dict[str, Any] = {}
    for service_name, service in services.items():
        if node_label:
            service.node_label = node_label
        files.update({f"{service_name}/{k}": v for k, v in service.files.items()})
    app = skein.ApplicationSpec(name=name, services=services, max_attempts=1,
                                file_systems=token_file_systems(files, hadoop_file_systems))
    if queue:
        app.queue = queue
    return app


def container_host(host: Optional[str] = None) -> str:
    """The address a service in a container announces: ``host``, else the node's name as
    YARN knows it (``NM_HOST``), else this host's name."""
    import socket

    return host or os.environ.get("NM_HOST") or socket.gethostname()


def failed_containers(client: "skein.Client", app_id: str, app: Any,
                       services: Sequence[str]) -> List[str]:
    report = client.application_report(app_id)
    if str(report.state) in ("FINISHED", "FAILED", "KILLED"):
        return [f"application {app_id} is {report.state} ({report.final_status}): "
                f"{report.diagnostics}"]
    containers = app.get_containers(services=list(services), states=["FAILED"])
    if not containers:
        return []
    # a service allowed to restart (``worker_max_restarts``) gets a new container from
    # skein: its failures are warnings; once it runs out of restarts the application fails
    # and the report above says so
    spec = app.get_specification().services
    dead = []
    for c in containers:
        text = (f"{c.id} ({c.service_name}) failed on {c.yarn_node_http_address}: "
                f"{c.exit_message}")
        if spec[c.service_name].max_restarts == 0:
            dead.append(text)
        elif c.id not in _RESTARTED:
            _RESTARTED.add(c.id)
            _logger.warning("%s; YARN starts another one", text)
    return dead


_RESTARTED: Set[str] = set()  # container ids (unique cluster-wide) already warned about


def shutdown_app(client: "skein.Client", app_id: str, app: Any) -> None:
    try:
        app.shutdown("SUCCEEDED")
    except Exception:
        try:
            client.kill_application(app_id)
        except Exception as exc:  # pragma: no cover
            _logger.warning("cannot kill %s: %s", app_id, exc)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if str(client.application_report(app_id).state) in ("FINISHED", "FAILED",
                                                                  "KILLED"):
                return
        except Exception:  # pragma: no cover
            return
        time.sleep(0.5)
    client.kill_application(app_id)


def _diagnostics(client: "skein.Client", app_id: str, report: Any) -> str:
    text = (f"application {app_id} is {report.state} ({report.final_status}):\n"
            f"{report.diagnostics}")
    try:
        logs = application_logs(client, app_id, log_tries=3, retry_secs=1)
    except Exception:  # pragma: no cover
        logs = None
    if logs:
        for key, value in logs.items():
            text += f"\n--- {key}\n{value[-3000:]}"
    return text


def wait_for_key(client: "skein.Client", app_id: str, key: str, timeout: float
                 ) -> "tuple[Any, str]":
    """Connect to ``app_id`` and wait for ``key`` in its key-value store; raise
    :class:`ClusterError` with YARN's diagnostics and the container logs if the
    application ends (or does not start) first."""
    deadline = time.monotonic() + timeout
    app = None
    while True:
        report = client.application_report(app_id)
        state = str(report.state)
        if state in ("FINISHED", "FAILED", "KILLED"):
            raise ClusterError(_diagnostics(client, app_id, report))
        if state == "RUNNING":
            if app is None:
                app = client.connect(app_id, wait=False)
            value = app.kv.get(key)
            if value is not None:
                return app, value.decode()
            failed = app.get_containers(states=["FAILED"])
            if failed:
                raise ClusterError(
                    "containers failed while starting:\n"
                    + "\n".join(f"{c.id} ({c.service_name}): {c.exit_message}" for c in failed)
                    + "\n" + _diagnostics(client, app_id, report))
        if time.monotonic() > deadline:
            raise ClusterError(f"{key!r} not published after {timeout} s; "
                               + _diagnostics(client, app_id, report))
        time.sleep(1)


def skein_service(spec: LaunchSpec, instances: int, vcores: int, memory: str,
             pre_script_hook: Optional[str], env: Optional[Dict[str, str]],
             max_restarts: int) -> Any:
    import skein

    check_parts(spec)
    return skein.Service(resources=skein.Resources(memory=memory, vcores=vcores),
                         instances=instances, files=files_of(spec),
                         env={**CONTAINER_ENV, **(env or {})},
                         script=container_script(spec, pre_script_hook),
                         max_restarts=max_restarts)


def submit_and_wait_for_key(skein_client: Optional["skein.Client"], app_spec: Any, key: str,
                            timeout: float, what: str) -> "tuple[Any, bool, str, Any, str]":
    """Submit ``app_spec`` and wait for ``key`` (see :func:`wait_for_key`).

    Returns ``(client, owns_client, app_id, app, value)``; on failure the application is
    killed and a client created here is closed before the error propagates.
    """
    import skein

    owns = skein_client is None
    client = skein_client or skein.Client()
    app_id = client.submit(app_spec)
    _logger.info("%s on YARN: %s", what, app_id)
    try:
        app, value = wait_for_key(client, app_id, key, timeout)
    except BaseException:
        try:
            client.kill_application(app_id)
        finally:
            if owns:
                client.close()
        raise
    return client, owns, app_id, app, value
