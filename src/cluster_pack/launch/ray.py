"""Ray clusters (head + N workers) running the packed environment, and a ``runtime_env``
for an existing Ray cluster.

Same shape as :mod:`cluster_pack.launch.dask`:

* :func:`local_cluster`: ``ray start --head --block`` and N ``ray start --address ...
  --block`` as local background processes (fresh working dir, node cache, minimal env,
  the generated launch script; :mod:`cluster_pack.launch.local`'s rules), then
  ``ray.init(address=...)``;
* :func:`yarn_cluster`: a skein application with a ``ray.head`` service (1 container) and a
  ``ray.worker`` service (``n_workers`` containers); the head publishes ``host:port`` in the
  skein key-value store (key ``ray.head``) once its GCS accepts connections.

The Ray CLI is run as a module from the artifact: ``<interpreter_cmd> -m
ray.scripts.scripts start ...``. The packed environment must contain ``ray`` (and
``skein`` for YARN); the driver needs the same Ray and Python versions (Ray's rule).

For an existing Ray cluster, :func:`runtime_env_for` gives a ``runtime_env`` whose
``py_executable`` runs the published environment (no per-node pip install). Ray only
accepts remote ``working_dir``/``py_modules`` as ``https://``, ``s3://`` or ``gs://`` zip
URIs — not HDFS — so the environment must be readable at the same path on every node (a
shared filesystem): ``runtime_env_for(path, fetch_to="/shared/dir")`` fetches it there
(:func:`cluster_pack.launch.local.fetch_env`: the parts of the default layout are assembled into
the packed pex directory ``<name>.pex/``, run as ``<name>.pex/__main__.py``).
"""

from __future__ import annotations

import logging
import os
import secrets
import shlex
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Sequence, Set

from cluster_pack.errors import (
    ClusterError,  # noqa: F401  (re-exported)
    ConfigurationError,
)
from cluster_pack.launch import local as runner
from cluster_pack.launch import processes, yarn
from cluster_pack.launch import spec as launch
from cluster_pack.store.manifest import artifact_name, read_published_manifest, run_info_for

if TYPE_CHECKING:  # pragma: no cover
    import skein

_logger = logging.getLogger(__name__)

HEAD_KEY = "ray.head"
HEAD_SERVICE = "ray.head"
WORKER_SERVICE = "ray.worker"
# ``ray start`` through our wrapper (keeps a loopback --node-ip-address loopback)
NODE_CLI = ["-m", "cluster_pack.launch.ray", "node"]
# Ray's own usage-stats collection phones home: off by default in clusters we start
DEFAULT_ENV = {"RAY_USAGE_STATS_ENABLED": "0"}


def _is_loopback(host: str) -> bool:
    return host in ("127.0.0.1", "localhost", "::1")


def _keep_loopback_in_this_process() -> None:
    """Ray replaces a loopback node address by the machine's first routable IP (its
    ``resolve_ip_for_localhost``), and refuses multi-node clusters when told not to. For
    a cluster deliberately bound to 127.0.0.1 (local engine, tests), keep loopback as is.
    Only called when the requested node address is a loopback one."""
    from ray._private import services

    services.resolve_ip_for_localhost = lambda host: host


# Ray's own worker processes take ports from 10002-19999 (its --min/--max-worker-port)
_FIRST_PICKED_PORT = 20000


def _ephemeral_ports() -> "tuple[int, int]":
    """The kernel's range for ``bind(0)`` and outgoing connections (Linux default)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return int(low), int(high)
    except (OSError, ValueError):
        return 32768, 60999


def free_port(host: str = "127.0.0.1") -> int:
    """A port free on ``host`` now, for a Ray process that binds it seconds later.

    Picked at random *below* the kernel's ephemeral range when there is room: meanwhile the
    other nodes of a host open many sockets (outgoing connections, ``bind(0)``), and the
    kernel takes those from the ephemeral range only, so none of them can steal the port
    before Ray binds it (a port taken meanwhile fails the Ray process meant for it, and
    the node with it)."""
    import random

    low = _FIRST_PICKED_PORT
    high = _ephemeral_ports()[0] - 1
    pick = random.SystemRandom()
    for _ in range(100 if high - low > 1000 else 0):
        port = pick.randint(low, high)
        if port in _HANDED_OUT:  # to another node of this process, not bound yet maybe
            continue
        with socket.socket() as s:
            try:
                s.bind((host, port))
            except OSError:
                continue
        _HANDED_OUT.add(port)
        return port
    with socket.socket() as s:
        s.bind((host, 0))
        return s.getsockname()[1]


_HANDED_OUT: Set[int] = set()


def node_args(num_cpus: int = 1, object_store_memory: int = 200 * 2 ** 20,
              host: str = "127.0.0.1", temp_dir: Optional[str] = None) -> List[str]:
    """Options common to head and worker ``ray start``. Every per-node port is chosen
    free here: several nodes may share a host (the local engine, or two containers on one
    NodeManager), and Ray's defaults (e.g. the dashboard agent's 52365) would collide."""
    ports = {name: free_port(host) for name in (
        "node-manager-port", "object-manager-port", "dashboard-agent-listen-port",
        "dashboard-agent-grpc-port", "metrics-export-port", "runtime-env-agent-port")}
    # a temp dir per node: Ray names its unix sockets there (raylet, raylet.1, ... chosen
    # racily by nodes starting together); short path: unix socket paths are 108 bytes max
    temp_dir = temp_dir or tempfile.mkdtemp(prefix="cpray-", dir="/tmp")
    os.makedirs(temp_dir, exist_ok=True)
    return ["--block", f"--node-ip-address={host}", f"--num-cpus={num_cpus}",
            f"--object-store-memory={object_store_memory}", "--disable-usage-stats",
            f"--temp-dir={temp_dir}",
            *(f"--{name}={port}" for name, port in ports.items())]


def head_args(port: int, num_cpus: int = 1, object_store_memory: int = 200 * 2 ** 20,
              host: str = "127.0.0.1", temp_dir: Optional[str] = None) -> List[str]:
    args = ["--head", f"--port={port}", "--include-dashboard=false",
            f"--ray-client-server-port={free_port(host)}",
            *node_args(num_cpus, object_store_memory, host, temp_dir)]
    return args


def _port_open(host: str, port: int) -> bool:
    try:
        with socket.create_connection((host, port), timeout=1):
            return True
    except OSError:
        return False


class RayCluster(processes.WatchedCluster):
    kind = "ray"

    def __init__(self, address: str, watch_every: float = 2.0):
        super().__init__(watch_every)
        self.address = address
        self.connected = False

    def connect(self, n_nodes: int = 0, timeout: float = 180, **init_kwargs: Any) -> Any:
        """``ray.init(address=...)``; waits for ``n_nodes`` alive nodes."""
        import ray

        host = self.address.rsplit(":", 1)[0]
        if _is_loopback(host):
            _keep_loopback_in_this_process()
            init_kwargs.setdefault("_node_ip_address", host)
        context = ray.init(address=self.address, **init_kwargs)
        self.connected = True
        if n_nodes:
            self.wait_for_nodes(n_nodes, timeout)
        return context

    def wait_for_nodes(self, n_nodes: int, timeout: float = 180) -> None:
        import ray

        deadline = time.monotonic() + timeout
        while True:
            alive = [n for n in ray.nodes() if n.get("Alive")]
            if len(alive) >= n_nodes:
                return
            self.check()
            if time.monotonic() > deadline:
                raise ClusterError(f"only {len(alive)}/{n_nodes} ray nodes after {timeout} s")
            time.sleep(0.5)

    def _disconnect(self) -> None:
        if self.connected:
            import ray

            try:
                ray.shutdown()
            except Exception as exc:  # pragma: no cover
                _logger.debug("ray.shutdown: %s", exc)
            self.connected = False


class LocalRayCluster(processes.LocalProcessCluster, RayCluster):
    def __init__(self, head: processes.LocalProcess, address: str, start_worker: Any,
                 watch_every: float = 2.0, temp_dir: Optional[str] = None):
        super().__init__(address, watch_every)
        self.head = head
        self.workers: List[processes.LocalProcess] = []
        self._start_worker = start_worker
        self.temp_dir = temp_dir  # Ray's session directory: removed on shutdown

    def scale(self, n: int) -> None:
        for worker in self._alive_after_starting(n)[n:]:
            worker.stop()

    def _shutdown(self) -> None:
        self._disconnect()
        self._stop_processes(timeout=20)
        if self.temp_dir:
            import shutil

            shutil.rmtree(self.temp_dir, ignore_errors=True)


def local_cluster(n_workers: int = 2, package_path: Optional[str] = None,
                  num_cpus: int = 1, object_store_memory: int = 200 * 2 ** 20,
                  host: str = "127.0.0.1", env_vars: Optional[Dict[str, str]] = None,
                  node_dir: Optional[Path] = None, base_dir: Optional[Path] = None,
                  fs_args: Optional[Dict[str, Any]] = None, include_editables: bool = True,
                  timeout: float = 180, watch_every: float = 2.0,
                  **init_kwargs: Any) -> LocalRayCluster:
    """Start a Ray head and ``n_workers`` worker nodes locally from the packed environment
    and connect this process to it (``ray.init``)."""
    if not package_path:
        from cluster_pack.store import publish

        package_path = publish.publish_env(fs_args=fs_args).path
    options: Dict[str, Any] = dict(
        package_path=package_path, env_vars={**DEFAULT_ENV, **(env_vars or {})},
        fs_args=fs_args, include_editables=include_editables)
    base = Path(base_dir or tempfile.mkdtemp(prefix="cluster-pack-ray-"))
    # Ray's unix sockets live under the temp dir: keep its path short (108 bytes max)
    temp_dir = tempfile.mkdtemp(prefix="cpray-", dir="/tmp")
    port = free_port(host)
    address = f"{host}:{port}"
    spec = launch.build_launch_spec(
        [*NODE_CLI, *head_args(port, num_cpus, object_store_memory, host, temp_dir)], **options)
    head = processes.start_local_process(spec, "ray-head", base / "head", node_dir, fs_args)
    deadline = time.monotonic() + timeout
    while not _port_open(host, port):
        if head.poll() is not None or time.monotonic() > deadline:
            head.stop()
            raise ClusterError(f"the ray head did not start (status {head.poll()}):\n"
                               f"{head.log_tail()}")
        time.sleep(0.3)

    def start_worker(i: int) -> processes.LocalProcess:
        name = f"ray-worker-{i}"
        wspec = launch.build_launch_spec(
            [*NODE_CLI, f"--address={address}",
             *node_args(num_cpus, object_store_memory, host, f"{temp_dir}/w{i}")], **options)
        return processes.start_local_process(wspec, name, base / name, node_dir, fs_args)

    cluster = LocalRayCluster(head, address, start_worker, watch_every, temp_dir)
    cluster.finish_start(lambda: cluster.scale(n_workers),
                          lambda: cluster.connect(n_workers + 1, timeout, **init_kwargs))
    return cluster


# ---------------------------------------------------------------------------- YARN

class YarnRayCluster(RayCluster):
    def __init__(self, skein_client: "skein.Client", app_id: str, app: Any, address: str,
                 owns_skein_client: bool = False, watch_every: float = 5.0):
        super().__init__(address, watch_every)
        self.skein_client = skein_client
        self.app_id = app_id
        self.app = app
        self._owns = owns_skein_client

    def scale(self, n: int) -> None:
        self.app.scale(WORKER_SERVICE, n)

    def _find_dead(self) -> List[str]:
        return yarn.failed_containers(self.skein_client, self.app_id, self.app,
                                  [HEAD_SERVICE, WORKER_SERVICE])

    def _shutdown(self) -> None:
        self._disconnect()
        yarn.shutdown_app(self.skein_client, self.app_id, self.app)
        if self._owns:
            self.skein_client.close()


def yarn_application_spec(package_path: str, n_workers: int = 2, worker_vcores: int = 1,
                          worker_memory: str = "2 GiB", head_vcores: int = 1,
                          head_memory: str = "2 GiB",
                          object_store_memory: int = 200 * 2 ** 20,
                          host: Optional[str] = None, name: str = "ray",
                          queue: Optional[str] = None, node_label: Optional[str] = None,
                          env_vars: Optional[Dict[str, str]] = None,
                          pre_script_hook: Optional[str] = None,
                          include_editables: bool = True, worker_max_restarts: int = 0,
                          fs_args: Optional[Dict[str, Any]] = None,
                          hadoop_file_systems: Optional[Sequence[str]] = None
                          ) -> "skein.ApplicationSpec":
    """The skein ApplicationSpec of a Ray cluster (see :func:`yarn_cluster`).

    ``hadoop_file_systems``: more file systems whose HDFS delegation tokens the containers
    get (as for Dask; on a Kerberized cluster ``fs.defaultFS`` and the environment's own are
    included anyway).

    ``worker_max_restarts``: how many times in all YARN may replace a failed worker
    container (-1: no limit) before the application fails; 0 (the default) fails it at the
    first worker failure, as a head failure always does."""

    host_args = ["--host", host] if host else []
    options: Dict[str, Any] = dict(
        package_path=package_path, env_vars={**DEFAULT_ENV, **(env_vars or {})},
        fs_args=fs_args, include_editables=include_editables)
    head = launch.build_launch_spec(
        ["-m", "cluster_pack.launch.ray", "yarn-head", *host_args, "--num-cpus", str(head_vcores),
         "--object-store-memory", str(object_store_memory)], **options)
    worker = launch.build_launch_spec(
        ["-m", "cluster_pack.launch.ray", "yarn-worker", *host_args, "--num-cpus", str(worker_vcores),
         "--object-store-memory", str(object_store_memory)], **options)
    services = {
        HEAD_SERVICE: yarn.skein_service(head, 1, head_vcores, head_memory, pre_script_hook, None, 0),
        WORKER_SERVICE: yarn.skein_service(worker, n_workers, worker_vcores, worker_memory,
                                 pre_script_hook, None, worker_max_restarts),
    }
    services[WORKER_SERVICE].depends = {HEAD_SERVICE}
    return yarn.services_application(name, services, queue, node_label, hadoop_file_systems)


def yarn_cluster(package_path: str, n_workers: int = 2,
                 skein_client: Optional["skein.Client"] = None, timeout: float = 300,
                 watch_every: float = 5.0, init_kwargs: Optional[Dict[str, Any]] = None,
                 **spec_options: Any) -> YarnRayCluster:
    """Start a Ray cluster on YARN and connect this process to it.

    ``spec_options`` are those of :func:`yarn_application_spec` (``worker_memory``,
    ``worker_max_restarts``, ``host``...). If the application cannot start,
    :class:`ClusterError` carries YARN's diagnostics; a failed node's container log ends
    with the tail of Ray's own logs (``yarn logs -applicationId ...``)."""
    client, owns, app_id, app, address = yarn.submit_and_wait_for_key(
        skein_client, yarn_application_spec(package_path, n_workers=n_workers, **spec_options),
        HEAD_KEY, timeout, "ray")
    cluster = YarnRayCluster(client, app_id, app, address, owns, watch_every)
    cluster.finish_start(lambda: cluster.connect(n_workers + 1, timeout, **(init_kwargs or {})))
    return cluster


# --------------------------------------------------------------- existing Ray cluster

def runtime_env_for(package_path: str, local_artifact: Optional[str] = None,
                    env_vars: Optional[Dict[str, str]] = None,
                    fetch_to: Optional[str] = None,
                    fs_args: Optional[Dict[str, Any]] = None,
                    **runtime_env: Any) -> Dict[str, Any]:
    """A ``runtime_env`` running Ray workers with the published environment.

    ``py_executable`` is the environment run as an interpreter:

    * parts (``upload_env``'s default layout): nothing runnable exists at ``package_path``
      itself; the environment must be materialized as the packed pex directory
      ``<name>.pex/`` (:func:`cluster_pack.launch.local.fetch_env` writes it, verified against
      the manifest), and ``py_executable`` is ``<that directory>/__main__.py``;
    * a single-file ``.pex``: the file itself;
    * the unpacked ``.pex.zip`` layout: ``python <dir>/__main__.py``.

    Ray runs it on every node, so it must be at a path valid on every node (a shared
    filesystem). Either give ``local_artifact`` (where the environment already is: the
    ``.pex`` file, or the directory ``fetch_env`` or an unpacking wrote), or ``fetch_to``, a
    directory readable on every node: the environment is fetched there first (parts
    assembled into ``<fetch_to>/<name>.pex/``, a ``.pex.zip`` unpacked into
    ``<fetch_to>/<name>.pex/``). By default, a local ``package_path`` of a single-file
    ``.pex`` is run where it is. Ray's remote ``working_dir``/``py_modules`` only accept
    ``https://``, ``s3://`` and ``gs://`` zip URIs: HDFS environments must be fetched first.

    >>> env = runtime_env_for("hdfs:///user/me/envs/me.pex", fetch_to="/nfs/envs")  # doctest: +SKIP
    >>> env["py_executable"]                                                     # doctest: +SKIP
    '/nfs/envs/me.pex/__main__.py'
    """

    run = run_info_for(artifact_name(package_path))
    if fetch_to is not None:
        if local_artifact:
            raise ConfigurationError("give local_artifact (where the environment is) or "
                                     "fetch_to (where to fetch it), not both")
        path = str(_fetch(package_path, fetch_to, fs_args, run.must_unpack))
    else:
        path = local_artifact or package_path
        if "://" in path and not path.startswith("file://"):
            raise ConfigurationError(
                f"{path}: Ray cannot run an environment from a remote URL; give fetch_to= (a "
                "directory readable on every node, the environment is fetched there) or "
                "local_artifact= (where it already is)")
        path = path[len("file://"):] if path.startswith("file://") else path
    if run.must_unpack:
        executable = f"{shlex.quote(sys.executable)} {shlex.quote(path + '/__main__.py')}"
    elif path.endswith("/") or os.path.isdir(path) or (
            not os.path.exists(path) and _published_as_parts(package_path, fs_args)):
        if local_artifact is None and fetch_to is None:
            raise ConfigurationError(
                f"{package_path} is published as parts (upload_env's default layout): "
                "nothing runnable is at that path; give fetch_to= (a directory readable on "
                "every node, the environment is fetched there) or local_artifact= (the "
                "directory cluster_pack.launch.local.fetch_env wrote)")
        executable = shlex.quote(path.rstrip("/") + "/__main__.py")
        shipped = runner.interpreter_home(Path(path.rstrip("/"))) / "run"
        if shipped.is_file():  # include_interpreter: fetched beside the environment
            executable = shlex.quote(str(shipped))
    else:
        executable = shlex.quote(path)
    env = {**DEFAULT_ENV, "C_PACK_PACKAGE_PATH": package_path, **(env_vars or {})}
    return {"py_executable": executable, "env_vars": env, **runtime_env}


def _published_as_parts(package_path: str, fs_args: Optional[Dict[str, Any]]) -> bool:
    """Whether the manifest of ``package_path`` describes the parts layout; False when it
    cannot be read (then the artifact is taken for a single file, as before parts)."""
    try:
        manifest = read_published_manifest(package_path, fs_args)
    except Exception as exc:  # the layout is only a hint here: never fail on it
        _logger.warning("cannot read the manifest of %s (%s): taking it for a single-file "
                        ".pex", package_path, exc)
        return False
    return manifest is not None and manifest.is_parts


def _fetch(package_path: str, dest_dir: str, fs_args: Optional[Dict[str, Any]],
           unpack: bool) -> Path:
    """The environment fetched (verified) into ``dest_dir``, as a runnable path."""

    fetched = runner.fetch_env(package_path, dest_dir, fs_args)
    if not unpack:
        return fetched
    # a .pex.zip: unpacked next to it, under a temporary name renamed into place
    import shutil

    target = fetched.with_name(fetched.name[:-len(".zip")])
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.cpack-tmp-", dir=fetched.parent))
    try:
        runner.safe_extract(fetched, tmp / "env")
        if target.exists():
            os.replace(target, tmp / "previous")
        os.replace(tmp / "env", target)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    fetched.unlink()
    return target


# ------------------------------------------------------------- inside the containers

def _run_forwarding_signals(cmd: Sequence[str]) -> int:
    import signal

    proc = subprocess.Popen(list(cmd))

    def forward(signum, frame):  # noqa: ARG001
        _unlink_links()  # first: YARN's SIGKILL follows SIGTERM closely
        proc.send_signal(signum)

    previous = {sig: signal.signal(sig, forward) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        return proc.wait()
    finally:
        for sig, handler in previous.items():
            signal.signal(sig, handler)


# where Ray says why a node stopped; the container's log is all that YARN keeps
RAY_FAILURE_LOGS = ("ray_process_exit.log", "raylet.err", "raylet.out", "gcs_server.err",
                    "dashboard_agent.log", "runtime_env_agent.log")


def print_ray_logs(temp_dir: str, lines: int = 30, out: Any = None) -> None:
    """Print the last ``lines`` lines of each of Ray's logs that say why a node stopped
    (``RAY_FAILURE_LOGS`` under ``<temp_dir>/session_latest/logs``) to ``out`` (stderr)."""
    out = out or sys.stderr
    logs = Path(temp_dir) / "session_latest" / "logs"
    for name in RAY_FAILURE_LOGS:
        try:
            text = (logs / name).read_text(errors="replace").splitlines()[-lines:]
        except OSError:
            continue
        if text:
            print(f"--- {logs / name} (last {len(text)} lines)", *text, sep="\n", file=out)
    out.flush()


def _run_node(role: str, cmd: List[str], temp_dir: str) -> int:
    print(f"ray {role}:", shlex.join(cmd), flush=True)
    status = _run_forwarding_signals(cmd)
    if status not in (0, -15, 143):  # not YARN's stop (SIGTERM)
        print(f"ray {role} exited with status {status}", file=sys.stderr)
        print_ray_logs(temp_dir)
    return status


def _container_temp_dir() -> str:
    """Ray's temp dir for this container: its data lives in the container's working dir
    (YARN deletes it), reached through a short ``/tmp/cpray-*`` symlink (unix socket paths
    are limited to 108 bytes; container dirs are long). The symlink is removed at exit
    (if YARN's SIGKILL comes first, only a dangling symlink is left)."""
    import atexit

    target = os.path.join(os.getcwd(), "ray-tmp")
    os.makedirs(target, exist_ok=True)
    while True:  # a fresh name: os.symlink never replaces an existing path
        link = f"/tmp/cpray-{secrets.token_hex(6)}"
        try:
            os.symlink(target, link)
            break
        except FileExistsError:
            continue
    _LINKS.append(link)
    atexit.register(_unlink_links)
    return link


_LINKS: List[str] = []


def _unlink_links() -> None:
    while _LINKS:
        link = _LINKS.pop()
        try:
            os.unlink(link)
        except OSError:
            pass


def _yarn_head(host: Optional[str], num_cpus: int, object_store_memory: int) -> int:
    import threading

    import skein

    app = skein.ApplicationClient.from_current()
    host = yarn.container_host(host)
    port = free_port(host)
    temp_dir = _container_temp_dir()
    cmd = [sys.executable, *NODE_CLI, *head_args(port, num_cpus, object_store_memory, host,
                                                temp_dir)]
    stopped = threading.Event()

    def publish_address_once_up() -> None:
        while not stopped.is_set():
            if _port_open(host, port):
                app.kv[HEAD_KEY] = f"{host}:{port}".encode()
                print(f"ray head at {host}:{port}", flush=True)
                return
            time.sleep(0.3)

    threading.Thread(target=publish_address_once_up, daemon=True).start()
    try:
        return _run_node("head", cmd, temp_dir)
    finally:
        stopped.set()


def _yarn_worker(host: Optional[str], num_cpus: int, object_store_memory: int) -> int:
    import skein

    app = skein.ApplicationClient.from_current()
    address = app.kv.wait(HEAD_KEY).decode()
    host = yarn.container_host(host)
    temp_dir = _container_temp_dir()
    cmd = [sys.executable, *NODE_CLI, f"--address={address}",
           *node_args(num_cpus, object_store_memory, host, temp_dir)]
    return _run_node("worker", cmd, temp_dir)


def _node(args: List[str]) -> None:
    """``ray start ARGS``, keeping a loopback ``--node-ip-address`` loopback."""
    if any(a.startswith("--node-ip-address=") and _is_loopback(a.split("=", 1)[1])
           for a in args):
        _keep_loopback_in_this_process()
    from ray.scripts import scripts

    sys.argv = ["ray", "start", *args]
    scripts.main()


def main(argv: Optional[List[str]] = None) -> None:
    import argparse

    argv = list(sys.argv[1:] if argv is None else argv)
    if argv[:1] == ["node"]:
        _node(argv[1:])
        return

    parser = argparse.ArgumentParser(prog="python -m cluster_pack.launch.ray")
    parser.add_argument("role", choices=["yarn-head", "yarn-worker"])
    parser.add_argument("--host")
    parser.add_argument("--num-cpus", type=int, default=1)
    parser.add_argument("--object-store-memory", type=int, default=200 * 2 ** 20)
    args = parser.parse_args(argv)
    role = _yarn_head if args.role == "yarn-head" else _yarn_worker
    sys.exit(role(args.host, args.num_cpus, args.object_store_memory))


if __name__ == "__main__":
    main(sys.argv[1:])
