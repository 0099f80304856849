"""Dask clusters whose scheduler and workers run from the packed environment.

Two engines, one shape (:class:`DaskCluster`, a context manager holding a connected
``distributed.Client``):

* :func:`local_cluster`: the scheduler and N workers are background processes started
  like :mod:`cluster_pack.launch.local` starts a job (fresh working directory per process,
  resources localized through the node cache, minimal environment, the generated launch
  script). Workers find the scheduler through a ``--scheduler-file``.
* :func:`yarn_cluster`: one skein application with a ``dask.scheduler`` service (1
  container) and a ``dask.worker`` service (``n_workers`` containers, ``worker_vcores`` /
  ``worker_memory``). The scheduler publishes its address in the skein key-value store
  (key ``dask.scheduler``); workers and the client read it there. ``scale(n)`` scales the
  worker service up or down.

Every process is ``<interpreter_cmd> -m ...`` built with
:func:`cluster_pack.launch.spec.build_launch_spec`: same artifact, editable sources and env
variables as every other engine. The packed environment must contain ``distributed``
(and ``skein`` for YARN: the containers talk to the skein ApplicationMaster).

Everything started is stopped when the ``with`` block exits (also on an exception), when
:meth:`DaskCluster.close` is called, or when the Python process ends (``atexit``). A
worker that dies is logged by a watcher thread and raised as :class:`ClusterError` by
:meth:`DaskCluster.check` and when the ``with`` block exits.

>>> from cluster_pack import dask as cp_dask
>>> with cp_dask.local_cluster(n_workers=2, package_path="/tmp/envs/me.pex") as cluster:  # doctest: +SKIP
...     cluster.client.gather(cluster.client.map(lambda x: x + 1, range(4)))
"""

from __future__ import annotations

import json
import logging
import os
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

from cluster_pack.errors import ClusterError  # noqa: F401  (re-exported)
from cluster_pack.launch import processes, yarn
from cluster_pack.launch import spec as launch

if TYPE_CHECKING:  # pragma: no cover
    import distributed
    import skein

_logger = logging.getLogger(__name__)

SCHEDULER_KEY = "dask.scheduler"
SCHEDULER_SERVICE = "dask.scheduler"
WORKER_SERVICE = "dask.worker"


class DaskCluster(processes.WatchedCluster):
    """A running Dask cluster and a ``distributed.Client`` connected to it."""

    kind = "dask"

    def __init__(self, scheduler_address: str, watch_every: float = 2.0):
        super().__init__(watch_every)
        self.scheduler_address = scheduler_address
        self.client: Optional["distributed.Client"] = None

    def connect(self, n_workers: int = 0, timeout: float = 180) -> "distributed.Client":
        from distributed import Client

        self.client = Client(self.scheduler_address, timeout=timeout)
        if n_workers:
            self.wait_for_workers(n_workers, timeout)
        return self.client

    def wait_for_workers(self, n_workers: int, timeout: float = 180) -> None:
        """Wait until ``n_workers`` workers are connected; fail early if the cluster dies."""
        assert self.client is not None
        deadline = time.monotonic() + timeout
        while True:
            count = len(self.client.scheduler_info(n_workers=-1)["workers"])
            if count >= n_workers:
                return
            self.check()
            if time.monotonic() > deadline:
                raise ClusterError(f"only {count}/{n_workers} dask workers after {timeout} s")
            time.sleep(0.5)

    def _close_client(self) -> None:
        if self.client is not None:
            try:
                self.client.close(timeout=10)
            except Exception as exc:  # pragma: no cover
                _logger.debug("closing the dask client: %s", exc)


class LocalDaskCluster(processes.LocalProcessCluster, DaskCluster):
    """Scheduler and workers as local background processes."""

    def __init__(self, scheduler: processes.LocalProcess, scheduler_address: str,
                 start_worker: Callable[[int], processes.LocalProcess], watch_every: float = 2.0):
        super().__init__(scheduler_address, watch_every)
        self.head = scheduler
        self.workers: List[processes.LocalProcess] = []
        self._start_worker = start_worker

    @property
    def scheduler(self) -> processes.LocalProcess:
        return self.head

    def scale(self, n: int) -> None:
        """Start or stop worker processes until ``n`` are running."""
        for worker in self._alive_after_starting(n)[n:]:
            if self.client is not None:
                try:
                    self.client.retire_workers(names=[worker.name], close_workers=True)
                except Exception as exc:  # pragma: no cover
                    _logger.debug("retire %s: %s", worker.name, exc)
            worker.stop()

    def _shutdown(self) -> None:
        self._close_client()
        self._stop_processes()


def scheduler_args(host: str = "127.0.0.1", dashboard: bool = False) -> List[str]:
    args = ["--host", host, "--port", "0"]
    return args + (["--dashboard-address", f"{host}:0"] if dashboard else ["--no-dashboard"])


def worker_args(nthreads: int = 1, memory_limit: str = "auto", host: str = "127.0.0.1",
                name: Optional[str] = None, death_timeout: int = 60) -> List[str]:
    args = ["--nthreads", str(nthreads), "--memory-limit", str(memory_limit),
            "--host", host, "--no-dashboard", "--death-timeout", str(death_timeout)]
    return args + (["--name", name] if name else [])


def worker_command(package_path: str, scheduler_address: str = "",
                   extra_args: Sequence[str] = (), **launch_options: Any) -> str:
    """The shell script that runs ONE dask worker from a published environment.

    For an existing Dask deployment (a batch system, Kubernetes, ...): make the
    resources of the returned spec available (``launch_spec_for_worker``) or just run this
    script on a node where ``package_path`` is readable by the storage layer — the script
    expects the artifact and editable zips in its working directory, as every engine
    localizes them; :func:`worker_launch_spec` gives the list.
    """
    return worker_launch_spec(package_path, scheduler_address, extra_args,
                              **launch_options).shell_script()


def worker_launch_spec(package_path: str, scheduler_address: str = "",
                       extra_args: Sequence[str] = (), **launch_options: Any
                       ) -> launch.LaunchSpec:
    """The LaunchSpec of one ``dask worker`` process running the published environment:
    ``spec.resources`` are what to localize, ``spec.shell_script()`` what to run."""
    argv = ["-m", "distributed.cli.dask_worker"]
    if scheduler_address:
        argv.append(scheduler_address)
    return launch.build_launch_spec([*argv, *extra_args], package_path=package_path,
                                    **launch_options)


def _wait_scheduler_file(path: Path, proc: processes.LocalProcess, timeout: float) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists():
            try:
                return json.loads(path.read_text())["address"]
            except (ValueError, KeyError):
                pass
        code = proc.poll()
        if code is not None:
            raise ClusterError(f"the dask scheduler exited with status {code} before "
                               f"starting:\n{proc.log_tail()}")
        time.sleep(0.2)
    proc.stop()
    raise ClusterError(f"the dask scheduler did not start in {timeout} s:\n{proc.log_tail()}")


def local_cluster(n_workers: int = 2, package_path: Optional[str] = None,
                  nthreads: int = 1, memory_limit: str = "auto", host: str = "127.0.0.1",
                  env_vars: Optional[Dict[str, str]] = None,
                  node_dir: Optional[Path] = None, base_dir: Optional[Path] = None,
                  fs_args: Optional[Dict[str, Any]] = None,
                  include_editables: bool = True, timeout: float = 180,
                  watch_every: float = 2.0) -> LocalDaskCluster:
    """Start a scheduler and ``n_workers`` workers locally, from the packed environment,
    and return a :class:`LocalDaskCluster` with a connected ``.client``.

    Without ``package_path`` the current environment is published first.
    """
    options: Dict[str, Any] = dict(env_vars=env_vars, fs_args=fs_args,
                                   include_editables=include_editables)
    if not package_path:
        from cluster_pack.store import publish

        package_path = publish.publish_env(fs_args=fs_args).path
    base = Path(base_dir or tempfile.mkdtemp(prefix="cluster-pack-dask-"))
    base.mkdir(parents=True, exist_ok=True)
    scheduler_file = base / "scheduler.json"
    spec = launch.build_launch_spec(
        ["-m", "distributed.cli.dask_scheduler", *scheduler_args(host),
         "--scheduler-file", str(scheduler_file)], package_path=package_path, **options)
    scheduler = processes.start_local_process(spec, "dask-scheduler", base / "scheduler", node_dir,
                                    fs_args)
    try:
        address = _wait_scheduler_file(scheduler_file, scheduler, timeout)
    except BaseException:
        scheduler.stop()
        raise

    def start_worker(i: int) -> processes.LocalProcess:
        name = f"dask-worker-{i}"
        wspec = worker_launch_spec(
            package_path, "", ["--scheduler-file", str(scheduler_file),
                               *worker_args(nthreads, memory_limit, host, name)], **options)
        return processes.start_local_process(wspec, name, base / name, node_dir, fs_args)

    cluster = LocalDaskCluster(scheduler, address, start_worker, watch_every)
    cluster.finish_start(lambda: cluster.scale(n_workers),
                          lambda: cluster.connect(n_workers, timeout))
    return cluster


# ---------------------------------------------------------------------------- YARN

class YarnDaskCluster(DaskCluster):
    """A skein application with a ``dask.scheduler`` and a ``dask.worker`` service."""

    def __init__(self, skein_client: "skein.Client", app_id: str, app: Any,
                 scheduler_address: str, owns_skein_client: bool = False,
                 watch_every: float = 5.0):
        super().__init__(scheduler_address, watch_every)
        self.skein_client = skein_client
        self.app_id = app_id
        self.app = app
        self._owns_skein_client = owns_skein_client

    def scale(self, n: int) -> None:
        """Scale the worker service to ``n`` containers (up or down)."""
        self.app.scale(WORKER_SERVICE, n)

    def _find_dead(self) -> List[str]:
        return yarn.failed_containers(self.skein_client, self.app_id, self.app, [WORKER_SERVICE,
                                                                            SCHEDULER_SERVICE])

    def _shutdown(self) -> None:
        self._close_client()
        yarn.shutdown_app(self.skein_client, self.app_id, self.app)
        if self._owns_skein_client:
            self.skein_client.close()


def yarn_application_spec(package_path: str, n_workers: int = 2, worker_vcores: int = 1,
                          worker_memory: str = "1 GiB", worker_nthreads: Optional[int] = None,
                          scheduler_vcores: int = 1, scheduler_memory: str = "1 GiB",
                          host: Optional[str] = None, name: str = "dask",
                          queue: Optional[str] = None, node_label: Optional[str] = None,
                          env_vars: Optional[Dict[str, str]] = None,
                          pre_script_hook: Optional[str] = None,
                          scheduler_pre_script_hook: Optional[str] = None,
                          hadoop_file_systems: Optional[Sequence[str]] = None,
                          include_editables: bool = True, worker_max_restarts: int = 0,
                          fs_args: Optional[Dict[str, Any]] = None) -> "skein.ApplicationSpec":
    """The skein ApplicationSpec of a Dask cluster (see :func:`yarn_cluster`)."""

    host_args = ["--host", host] if host else []
    options: Dict[str, Any] = dict(package_path=package_path, env_vars=env_vars,
                                   fs_args=fs_args, include_editables=include_editables)
    sched = launch.build_launch_spec(["-m", "cluster_pack.launch.dask", "yarn-scheduler", *host_args],
                                     **options)
    worker = launch.build_launch_spec(
        ["-m", "cluster_pack.launch.dask", "yarn-worker", *host_args, "--nthreads",
         str(worker_nthreads or worker_vcores), "--memory-limit", _memory_bytes(worker_memory)],
        **options)

    services = {
        SCHEDULER_SERVICE: yarn.skein_service(sched, 1, scheduler_vcores, scheduler_memory,
                                    scheduler_pre_script_hook or pre_script_hook, None, 0),
        WORKER_SERVICE: yarn.skein_service(worker, n_workers, worker_vcores, worker_memory,
                                 pre_script_hook, None, worker_max_restarts),
    }
    services[WORKER_SERVICE].depends = {SCHEDULER_SERVICE}
    return yarn.services_application(name, services, queue, node_label, hadoop_file_systems)


def _memory_bytes(memory: str) -> str:
    """Dask's memory limit for a container: 90 % of the YARN allocation."""
    import skein

    mib = skein.Resources(memory=memory, vcores=1).memory
    return str(int(mib * 2 ** 20 * 0.9))


def yarn_cluster(package_path: str, n_workers: int = 2,
                 skein_client: Optional["skein.Client"] = None, timeout: float = 300,
                 watch_every: float = 5.0, **spec_options: Any) -> YarnDaskCluster:
    """Start a Dask cluster on YARN from the published environment ``package_path`` and
    return a :class:`YarnDaskCluster` with a connected ``.client``.

    ``spec_options`` are those of :func:`yarn_application_spec` (``worker_vcores``,
    ``worker_memory``, ``queue``, ``host``: the address the processes bind, default the
    container's host name...). If the application cannot start, :class:`ClusterError`
    carries YARN's diagnostics and the container logs.
    """
    client, owns, app_id, app, address = yarn.submit_and_wait_for_key(
        skein_client, yarn_application_spec(package_path, n_workers=n_workers, **spec_options),
        SCHEDULER_KEY, timeout, "dask")
    cluster = YarnDaskCluster(client, app_id, app, address, owns, watch_every)
    cluster.finish_start(lambda: cluster.connect(n_workers, timeout))
    return cluster


# ------------------------------------------------------------- inside the containers

def _yarn_scheduler(host: Optional[str]) -> None:
    import asyncio

    import skein
    from distributed import Scheduler

    app = skein.ApplicationClient.from_current()

    async def serve() -> None:
        async with Scheduler(host=yarn.container_host(host), port=0, dashboard=False) as sched:
            app.kv[SCHEDULER_KEY] = sched.address.encode()
            print(f"dask scheduler at {sched.address}", flush=True)
            await sched.finished()

    asyncio.run(serve())


def _yarn_worker(host: Optional[str], extra: List[str]) -> None:
    import skein
    from distributed.cli import dask_worker

    app = skein.ApplicationClient.from_current()
    address = app.kv.wait(SCHEDULER_KEY).decode()
    name = os.environ.get("SKEIN_CONTAINER_ID", "")
    args = [address, "--host", yarn.container_host(host), "--no-dashboard", *extra]
    if name:
        args += ["--name", name]
    print(f"dask worker {name} -> {address}", flush=True)
    dask_worker.main(args)


def main(argv: Optional[List[str]] = None) -> None:
    import argparse

    parser = argparse.ArgumentParser(prog="python -m cluster_pack.launch.dask")
    parser.add_argument("role", choices=["yarn-scheduler", "yarn-worker"])
    parser.add_argument("--host")
    args, extra = parser.parse_known_args(argv)
    if args.role == "yarn-scheduler":
        _yarn_scheduler(args.host)
    else:
        _yarn_worker(args.host, extra)


if __name__ == "__main__":
    main(sys.argv[1:])
