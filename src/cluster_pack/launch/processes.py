"""What the Dask and Ray engines share: clusters of local processes started from a LaunchSpec
(their YARN side is in :mod:`cluster_pack.launch.yarn`).

* :class:`LocalProcess` / :func:`start_local_process`: a background process started the way
  :func:`cluster_pack.launch.local.run` runs a job (fresh working directory, node cache, minimal
  environment, the generated launch script), in its own session so it can be stopped whole.
* :class:`WatchedCluster`: a context manager with a watcher thread that reports dead
  processes (:class:`ClusterError`) and stops everything at exit, also at interpreter exit.
* :class:`LocalProcessCluster`: the bookkeeping of a head process plus N workers.
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
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Optional

from cluster_pack import settings
from cluster_pack.errors import ClusterError
from cluster_pack.launch import local as runner
from cluster_pack.launch import spec as launch

if TYPE_CHECKING:  # pragma: no cover
    pass

_logger = logging.getLogger(__name__)


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
