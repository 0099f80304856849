"""What the Dask and Ray engines share: clusters of processes started from a LaunchSpec.

* :class:`LocalProcess` / :func:`start_local_process`: a background process started the way
  :func:`cluster_pack.launch.local.run` runs a job (fresh working directory, node cache, minimal
  environment, the generated launch script), in its own session so it can be stopped whole.
* :class:`WatchedCluster`: a context manager with a watcher thread that reports dead
  processes (:class:`ClusterError`) and stops everything at exit, also at interpreter exit.
* :class:`LocalProcessCluster`: the bookkeeping of a head process plus N workers.
* YARN helpers: failed containers, shutdown, diagnostics, waiting for a key in the skein
  key-value store, a skein service from a LaunchSpec.
"""

from __future__ import annotations

import atexit
import logging
import os
import signal
import subprocess
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional, Sequence

from cluster_pack import settings
from cluster_pack.errors import ClusterPackError
from cluster_pack.launch import local as runner
from cluster_pack.launch import spec as launch

if TYPE_CHECKING:  # pragma: no cover
    import skein

_logger = logging.getLogger(__name__)


class ClusterError(ClusterPackError):
    """A cluster process died, or the cluster could not start."""


# ------------------------------------------------------------- local background processes

@dataclass
class LocalProcess:
    """One LaunchSpec running in the background in its own working dir and process group."""

    name: str
    popen: subprocess.Popen
    workdir: Path
    log_path: Path
    stopping: bool = False

    @property
    def pid(self) -> int:
        return self.popen.pid

    def poll(self) -> Optional[int]:
        return self.popen.poll()

    def log_tail(self, n: int = 40) -> str:
        try:
            lines = self.log_path.read_text(errors="replace").splitlines()
        except OSError:
            return ""
        return "\n".join(lines[-n:])

    def session_pids(self) -> List[int]:
        """Every live process of this process's session (it is a session leader): its
        children, and theirs even when reparented after a parent died (Linux /proc)."""
        return _session_members(self.popen.pid)

    def stop(self, timeout: float = 10) -> None:
        """SIGTERM the process group, SIGKILL it after ``timeout`` seconds, then SIGKILL
        whatever is left in the session (processes that changed group, orphans)."""
        self.stopping = True
        for sig, wait in ((signal.SIGTERM, timeout), (signal.SIGKILL, 5)):
            try:
                os.killpg(self.popen.pid, sig)
            except (ProcessLookupError, PermissionError):
                pass
            try:
                self.popen.wait(wait)
                break
            except subprocess.TimeoutExpired:
                continue
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            left = self.session_pids()
            if not left:
                return
            for pid in left:
                try:
                    os.kill(pid, signal.SIGKILL)
                except (ProcessLookupError, PermissionError):
                    pass
            time.sleep(0.2)
        _logger.warning("%s: processes %s survived SIGKILL", self.name, self.session_pids())


def _session_members(sid: int) -> List[int]:
    members: List[int] = []
    try:
        entries = os.listdir("/proc")
    except OSError:  # pragma: no cover - not Linux: the process group kill is all we do
        return members
    for entry in entries:
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat", "rb") as f:
                stat = f.read().decode(errors="replace")
        except OSError:
            continue
        # pid (comm) state ppid pgrp session ...; comm may contain spaces/parentheses
        fields = stat[stat.rfind(")") + 2:].split()
        if len(fields) > 3 and fields[0] != "Z" and int(fields[3]) == sid:
            members.append(int(entry))
    return members


def start_local_process(spec: launch.LaunchSpec, name: str, workdir: Optional[Path] = None,
                        node_dir: Optional[Path] = None,
                        fs_args: Optional[Dict[str, Any]] = None,
                        extra_env: Optional[Dict[str, str]] = None) -> LocalProcess:
    """Start ``spec`` in the background, as :func:`cluster_pack.launch.local.run` would run it
    (fresh working dir, node cache, minimal env), in a new session/process group; its
    output goes to ``<workdir>/output.log``."""
    node_dir = settings.ensure_private_dir(Path(node_dir or runner.default_node_dir()))
    workdir = Path(workdir or tempfile.mkdtemp(prefix=f"cluster-pack-{name}-"))
    workdir.mkdir(parents=True, exist_ok=True)
    for resource in spec.resources:
        cached = runner.localize(resource, node_dir, fs_args)
        link = workdir / resource.name
        if link.is_symlink() or link.exists():
            link.unlink()
        link.symlink_to(cached, target_is_directory=cached.is_dir())
    script = workdir / "launch_container.sh"
    script.write_text(spec.shell_script(extra_env=extra_env))
    log_path = workdir / "output.log"
    with open(log_path, "ab") as log:
        popen = subprocess.Popen(["bash", str(script)], cwd=workdir,
                                 env=runner.minimal_env(spec.env, node_dir),
                                 stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                                 start_new_session=True)
    _logger.info("started %s (pid %d) in %s", name, popen.pid, workdir)
    return LocalProcess(name, popen, workdir, log_path)


# ---------------------------------------------------------------------- cluster object

# strong references: a cluster the caller dropped must still be stopped at exit
_LIVE: "set[Any]" = set()


@atexit.register
def _close_all() -> None:  # pragma: no cover - exercised at interpreter exit
    for cluster in list(_LIVE):
        try:
            cluster.close()
        except Exception as exc:  # keep stopping the others
            _logger.warning("cannot stop the %s at exit: %s", cluster.kind, exc)


class WatchedCluster:
    """Common behaviour: watcher thread, context manager, atexit registration."""

    kind = "cluster"

    def __init__(self, watch_every: float = 2.0):
        self._closed = False
        self._dead: List[str] = []
        self._lock = threading.Lock()
        self._stop_watch = threading.Event()
        self._watch_every = watch_every
        self._watcher: Optional[threading.Thread] = None
        _LIVE.add(self)

    # subclasses
    def _find_dead(self) -> List[str]:
        raise NotImplementedError

    def _shutdown(self) -> None:
        raise NotImplementedError

    def _start_watcher(self) -> None:
        self._watcher = threading.Thread(target=self._watch, daemon=True,
                                         name=f"cluster-pack-{self.kind}-watcher")
        self._watcher.start()

    def finish_start(self, *steps: Callable[[], Any]) -> "WatchedCluster":
        """Run the start-up steps (scale, connect...) then start watching; on any failure
        close what was started (processes, YARN application) and re-raise."""
        try:
            for step in steps:
                step()
            self._start_watcher()
        except BaseException:
            self.close()
            raise
        return self

    def _watch(self) -> None:
        while not self._stop_watch.wait(self._watch_every):
            try:
                self._collect()
            except Exception as exc:  # pragma: no cover - best effort
                _logger.debug("watcher: %s", exc)

    def _collect(self) -> List[str]:
        found = self._find_dead()
        with self._lock:
            new = [d for d in found if d not in self._dead]
            self._dead.extend(new)
        for message in new:
            _logger.error("%s: %s", self.kind, message)
        return list(self._dead)

    @property
    def dead(self) -> List[str]:
        """Descriptions of the cluster processes/containers that died unexpectedly."""
        if not self._closed:
            self._collect()
        return list(self._dead)

    def check(self) -> None:
        """Raise :class:`ClusterError` if a process/container of the cluster died."""
        dead = self.dead
        if dead:
            raise ClusterError(f"{self.kind}: {len(dead)} process(es) died:\n"
                               + "\n".join(dead))

    def close(self) -> None:
        """Stop everything that was started (idempotent)."""
        if self._closed:
            return
        self._closed = True
        self._stop_watch.set()
        try:
            self._shutdown()
        finally:
            _LIVE.discard(self)

    def __enter__(self):
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        try:
            if exc_type is None:
                self.check()
        finally:
            self.close()


class LocalProcessCluster:
    """A head process plus worker processes started on demand (mixin of the local engines)."""

    head: "LocalProcess"
    workers: List["LocalProcess"]
    _start_worker: Callable[[int], "LocalProcess"]
    _next: int = 0

    @property
    def processes(self) -> List["LocalProcess"]:
        return [self.head, *self.workers]

    @property
    def pids(self) -> List[int]:
        return [p.pid for p in self.processes]

    def _alive_after_starting(self, n: int) -> List["LocalProcess"]:
        """Start workers until ``n`` are alive; return the alive ones, oldest first."""
        alive = [w for w in self.workers if w.poll() is None]
        while len(alive) < n:
            worker = self._start_worker(self._next)
            self._next += 1
            self.workers.append(worker)
            alive.append(worker)
        return alive

    def _find_dead(self) -> List[str]:
        return [f"{p.name} (pid {p.pid}) exited with status {p.poll()}; log {p.log_path}:\n"
                f"{p.log_tail()}" for p in self.processes
                if p.poll() is not None and not p.stopping]

    def _stop_processes(self, timeout: float = 10) -> None:
        for proc in reversed(self.processes):
            proc.stop(timeout=timeout)


def failed_containers(client: "skein.Client", app_id: str, app: Any,
                       services: Sequence[str]) -> List[str]:
    report = client.application_report(app_id)
    if str(report.state) in ("FINISHED", "FAILED", "KILLED"):
        return [f"application {app_id} is {report.state} ({report.final_status}): "
                f"{report.diagnostics}"]
    containers = app.get_containers(services=list(services), states=["FAILED"])
    return [f"{c.id} ({c.service_name}) failed on {c.yarn_node_http_address}: "
            f"{c.exit_message}" for c in containers]


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
    from cluster_pack.launch import yarn

    text = (f"application {app_id} is {report.state} ({report.final_status}):\n"
            f"{report.diagnostics}")
    try:
        logs = yarn.application_logs(client, app_id, log_tries=3, retry_secs=1)
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


def skein_service(spec: launch.LaunchSpec, instances: int, vcores: int, memory: str,
             pre_script_hook: Optional[str], env: Optional[Dict[str, str]],
             max_restarts: int) -> Any:
    import skein

    from cluster_pack.launch import yarn

    yarn.check_parts(spec)
    return skein.Service(resources=skein.Resources(memory=memory, vcores=vcores),
                         instances=instances, files=yarn.files_of(spec),
                         env={**yarn.CONTAINER_ENV, **(env or {})},
                         script=yarn.container_script(spec, pre_script_hook),
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
