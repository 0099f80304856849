"""Helpers shared by test_dask.py and test_ray.py: a driver running code with the python of
the engine's REAL venv (``tests.venvs.build_venv``: the test runner's own env has neither
``tomli_w`` nor, usually, ``distributed``/``ray``)."""

from __future__ import annotations

import json
import subprocess
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

from tests import venvs

# Driver-side helpers every driver script starts with (after importing json and psutil):
# report a result line, and list a process tree.
DRIVER_HELPERS = """
def done(**kw):
    print("RESULT:" + json.dumps(kw), flush=True)

def tree(pids):
    out = set()
    for pid in pids:
        try:
            p = psutil.Process(pid)
            out.add(pid)
            out.update(c.pid for c in p.children(recursive=True))
        except psutil.NoSuchProcess:
            pass
    return sorted(out)
"""


def clean_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    """:func:`tests.venvs.clean_env`, without Ray's usage statistics."""
    return venvs.clean_env({"RAY_USAGE_STATS_ENABLED": "0", **(extra or {})})


def run_driver(python: Path, code: str, cwd: Path, env: Dict[str, str],
               timeout: float = 600) -> Any:
    """Run ``code`` with ``python``; it prints ``RESULT:<json>``, returned decoded."""
    script = cwd / f"driver_{time.monotonic_ns()}.py"
    script.write_text(textwrap.dedent(code))
    proc = subprocess.run([str(python), str(script)], cwd=cwd, env=env, capture_output=True,
                          text=True, timeout=timeout)
    lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT:")]
    if proc.returncode != 0 or not lines:
        raise AssertionError(f"driver failed ({proc.returncode}):\n--- stdout\n"
                             f"{proc.stdout[-6000:]}\n--- stderr\n{proc.stderr[-8000:]}")
    return json.loads(lines[-1][len("RESULT:"):])


def still_alive(pids: Sequence[int]) -> list:
    import psutil

    alive = []
    for pid in pids:
        try:
            proc = psutil.Process(pid)
            if proc.status() != psutil.STATUS_ZOMBIE:
                alive.append((pid, proc.name()))
        except psutil.NoSuchProcess:
            pass
    return alive
