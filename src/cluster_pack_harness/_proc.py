"""Process helpers: process groups, liveness checks, clean termination, log tails."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path
from typing import Iterable, List, Optional


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
