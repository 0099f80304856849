"""Helpers shared by test_dask.py and test_ray.py: a REAL uv venv per engine and a
driver running code in it (the test runner's own env has neither ``tomli_w`` nor, usually,
``distributed``/``ray``)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import time
from pathlib import Path
from typing import Any, Dict, Optional, Sequence

REPO = Path(__file__).resolve().parents[2]


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


def _uv() -> str:
    candidate = Path(sys.executable).parent / "uv"
    return str(candidate) if candidate.exists() else "uv"


def base_python() -> str:
    return getattr(sys, "_base_executable", sys.executable)


def build_venv(root: Path, packages: Sequence[str]) -> Path:
    t0 = time.monotonic()
    subprocess.run([_uv(), "venv", "--quiet", "--python", base_python(), str(root)],
                   check=True)
    subprocess.run([_uv(), "pip", "install", "--quiet", "--python",
                    str(root / "bin" / "python"), "-e", str(REPO), *packages], check=True)
    print(f"[dask/ray tests] venv {root.name} built in {time.monotonic() - t0:.1f}s",
          file=sys.stderr)
    return root / "bin" / "python"


def clean_env(extra: Optional[Dict[str, str]] = None) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PEX", "C_PACK_LOCAL_ARTIFACT",
                        "C_PACK_PACKAGE_PATH", "C_PACK_EDITABLE_DIRS")}
    env["RAY_USAGE_STATS_ENABLED"] = "0"
    env.update(extra or {})
    return env


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
