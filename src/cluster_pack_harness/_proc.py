"""Process helpers: process groups, liveness checks, clean termination, log tails."""

from __future__ import annotations

import os
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path
from typing import Dict, Iterable, List, Optional, Sequence


class HarnessError(RuntimeError):
    """A harness part failed to start or stop."""


class HarnessUnavailable(HarnessError):
    """A prerequisite is missing (no Java, no Maven, build missing...).

    The pytest plugin turns this into a skip on developer machines and a failure when CI=true.
    """


def pid_alive(pid: Optional[int]) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie is dead for our purposes.
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        state = stat.rsplit(")", 1)[1].split()[0]
        if state in ("Z", "X"):
            return False
    except (OSError, IndexError):
        pass
    return True


def cmdline(pid: int) -> str:
    try:
        return Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def pgid_members(pgid: int) -> List[int]:
    """Pids of live processes whose process group is ``pgid``."""
    out = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
            fields = stat.rsplit(")", 1)[1].split()
            state, pgrp = fields[0], int(fields[2])
        except (OSError, IndexError, ValueError):
            continue
        if pgrp == pgid and state not in ("Z", "X"):
            out.append(int(entry.name))
    return out


def _has_env(pid: int, name: str) -> bool:
    try:
        data = Path(f"/proc/{pid}/environ").read_bytes()
    except OSError:
        return False
    return data.startswith(name.encode() + b"=") or (b"\0" + name.encode() + b"=") in data


def processes_under(directory: Path, exclude: Iterable[int] = (), require_env: Optional[str] = None) -> List[int]:
    """Pids of live processes whose cwd or command line is inside ``directory``.

    Used to find YARN containers: the NodeManager starts them with setsid (their own session),
    so killing the JVM's process group does not reach them; their cwd is in the NM local dirs.
    ``require_env``: only processes having that environment variable (e.g. ``CONTAINER_ID``), so
    that a user's shell sitting in the directory is never touched.
    """
    root = str(Path(directory).resolve())
    skip = set(exclude) | {os.getpid()}
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        pid = int(entry.name)
        if pid in skip:
            continue
        try:
            cwd = os.readlink(entry / "cwd")
        except OSError:
            cwd = ""
        if cwd == root or cwd.startswith(root + "/") or root + "/" in cmdline(pid):
            if require_env and not _has_env(pid, require_env):
                continue
            if pid_alive(pid):
                found.append(pid)
    return found


def wait_gone(pids: Iterable[int], timeout: float) -> List[int]:
    deadline = time.monotonic() + timeout
    pids = list(pids)
    while True:
        alive = [p for p in pids if pid_alive(p)]
        if not alive or time.monotonic() > deadline:
            return alive
        time.sleep(0.1)


def kill_group(pgid: int, grace: float = 10.0) -> List[int]:
    """SIGTERM the process group, then SIGKILL what is left after ``grace`` seconds.

    Returns the pids still alive at the end (should be empty).
    """
    members = pgid_members(pgid)
    if not members:
        return []
    try:
        os.killpg(pgid, signal.SIGTERM)
    except ProcessLookupError:
        return []
    alive = wait_gone(members, grace)
    if alive:
        try:
            os.killpg(pgid, signal.SIGKILL)
        except ProcessLookupError:
            pass
        alive = wait_gone(members + pgid_members(pgid), 5.0)
    return alive


def kill_pids(pids: Iterable[int], grace: float = 5.0) -> List[int]:
    pids = [p for p in pids if pid_alive(p)]
    for p in pids:
        try:
            os.kill(p, signal.SIGTERM)
        except ProcessLookupError:
            pass
    alive = wait_gone(pids, grace)
    for p in alive:
        try:
            os.kill(p, signal.SIGKILL)
        except ProcessLookupError:
            pass
    return wait_gone(alive, 5.0)


def tail(path: Path, lines: int = 40) -> str:
    try:
        with open(path, "rb") as f:
            f.seek(0, os.SEEK_END)
            size = f.tell()
            f.seek(max(0, size - 64 * 1024))
            data = f.read().decode(errors="replace")
    except OSError as e:
        return f"<cannot read {path}: {e}>"
    return "\n".join(data.splitlines()[-lines:])


class ServerProcess:
    """What the harness's servers (the Hadoop JVM, the S3 server) share: one process started
    in its own session in ``workdir`` (pid in ``workdir/pid``, output in ``log_file``),
    asked to stop with the file ``workdir/stop`` (or by closing its stdin), then terminated
    with its process group.

    A subclass sets ``workdir``, ``log_file``, ``pid`` and ``_proc`` and the class attributes
    below.
    """

    marker = ""  # a string of its command line: a recycled pid is not taken for it
    description = "a server"  # as in "a server (pid 12) already runs in DIR"
    name = "the server"  # as in "processes left after stopping the server"

    workdir: Path
    log_file: Path
    pid: Optional[int]
    _proc: Optional[subprocess.Popen]

    def running(self) -> bool:
        if not self.pid:
            return False
        return self._is_ours(self.pid)

    def _is_ours(self, pid: Optional[int]) -> bool:
        return pid is not None and pid_alive(pid) and self.marker in cmdline(pid)

    def _read_pid(self) -> Optional[int]:
        try:
            return int((self.workdir / "pid").read_text().strip())
        except (OSError, ValueError):
            return None

    def _refuse_if_running(self) -> None:
        existing = self._read_pid()
        if self._is_ours(existing):
            raise HarnessError(
                f"{self.description} (pid {existing}) already runs in {self.workdir}; stop it first")

    def _fresh_workdir(self) -> None:
        if self.workdir.exists():
            shutil.rmtree(self.workdir)
        self.workdir.mkdir(parents=True)

    def _spawn(self, cmd: Sequence[str], env: Dict[str, str], watch_parent: bool) -> None:
        """Start ``cmd`` in its own session, appending to ``log_file`` after a header line.

        ``watch_parent``: its stdin is a pipe from this process, closed when this one dies."""
        with open(self.log_file, "ab") as logf:
            logf.write(f"\n==== {time.strftime('%Y-%m-%d %H:%M:%S')} {shlex.join(cmd)}\n".encode())
            logf.flush()
            self._proc = subprocess.Popen(
                cmd, cwd=self.workdir, env=env, stdout=logf, stderr=subprocess.STDOUT,
                stdin=subprocess.PIPE if watch_parent else subprocess.DEVNULL,
                start_new_session=True,
            )
        self.pid = self._proc.pid
        (self.workdir / "pid").write_text(f"{self.pid}\n")

    def _terminate(self, pid: Optional[int], timeout: float, after_sigterm: float = 0.0) -> List[int]:
        """Ask the process to stop (stop file, stdin closed) and wait ``timeout`` seconds,
        SIGTERM it if it is still there (and wait ``after_sigterm`` more), then terminate its
        process group; returns the pids that survived."""
        leftovers: List[int] = []
        if pid and self._is_ours(pid):
            try:
                (self.workdir / "stop").touch()
            except OSError:
                pass
            if self._proc and self._proc.stdin:
                try:
                    self._proc.stdin.close()
                except OSError:
                    pass
            if wait_gone([pid], timeout):
                try:
                    os.kill(pid, signal.SIGTERM)
                except ProcessLookupError:
                    pass
                if after_sigterm:
                    wait_gone([pid], after_sigterm)
            leftovers = kill_group(pid, grace=5)
        if self._proc:
            try:
                self._proc.wait(timeout=5)
            except subprocess.TimeoutExpired:
                pass
        return leftovers

    def _finish_stop(self, pid: Optional[int], leftovers: List[int]) -> None:
        """Forget the process; HarnessError if anything of its process group is left."""
        if pid:
            leftovers = leftovers + pgid_members(pid)
        self.pid = None
        self._proc = None
        if leftovers:
            raise HarnessError(f"processes left after stopping {self.name}: {sorted(set(leftovers))}")
