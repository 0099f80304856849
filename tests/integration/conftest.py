"""Shared fixtures for the YARN integration tests: a REAL user venv, published to HDFS.

* ``yarn_venv``: a virtualenv built with uv holding cluster-pack (editable, from this
  checkout), skein + hdfs-native, ``tomli_w`` (a small pure package that is NOT in the
  driver's env) and ``cpack_toy``, an editable toy project. The submitting code runs with
  this venv's python in a subprocess, so the environment that gets packed is that venv.
* ``published_env``: that venv packed and published to the harness HDFS with
  ``cluster_pack.upload_env(package_path=f"{default_fs}/user/<user>/envs/test.pex")``.
* ``run_driver``: run a Python snippet in the venv with the harness environment; the
  snippet prints one JSON line prefixed with ``RESULT:``, which is returned decoded.
"""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

REPO = Path(__file__).resolve().parents[2]

TOY_PYPROJECT = """\
[build-system]
requires = ["setuptools>=64"]
build-backend = "setuptools.build_meta"

[project]
name = "cpack-toy"
version = "0.1.0"
dependencies = ["tomli_w"]

[tool.setuptools.packages.find]
where = ["src"]
"""

TOY_INIT = '''\
"""A toy project installed in editable mode in the test venv."""

import tomli_w


def greet(name):
    return "hello " + name


def as_toml(data):
    return tomli_w.dumps(data)
'''

TOY_JOB = '''\
"""python -m cpack_toy.job ARGS...: prints its argv and some env as JSON."""

import json
import os
import sys

import cpack_toy

print("TOY-JOB " + json.dumps({
    "argv": sys.argv[1:],
    "greet": cpack_toy.greet("yarn"),
    "env": {k: os.environ.get(k) for k in ("CPACK_TEST_VAR", "CPACK_HOOK_VAR")},
}), flush=True)
'''


def _base_python() -> str:
    return getattr(sys, "_base_executable", sys.executable)


def _uv() -> str:
    candidate = Path(sys.executable).parent / "uv"
    return str(candidate) if candidate.exists() else "uv"


@dataclass
class TestVenv:
    root: Path
    toy: Path

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")


@pytest.fixture(scope="session")
def yarn_venv(tmp_path_factory) -> TestVenv:
    base = tmp_path_factory.mktemp("yarn_venv")
    toy = base / "cpack_toy"
    (toy / "src" / "cpack_toy").mkdir(parents=True)
    (toy / "pyproject.toml").write_text(TOY_PYPROJECT)
    (toy / "src" / "cpack_toy" / "__init__.py").write_text(TOY_INIT)
    (toy / "src" / "cpack_toy" / "job.py").write_text(TOY_JOB)
    venv = base / "venv"
    t0 = time.monotonic()
    subprocess.run([_uv(), "venv", "--quiet", "--python", _base_python(), str(venv)],
                   check=True)
    subprocess.run(
        [_uv(), "pip", "install", "--quiet", "--python", str(venv / "bin" / "python"),
         "-e", str(REPO), "-e", str(toy), "skein", "hdfs-native", "tomli_w", "ipykernel"],
        check=True)
    print(f"[yarn tests] venv built in {time.monotonic() - t0:.1f}s", file=sys.stderr)
    return TestVenv(venv, toy)


@pytest.fixture(scope="session")
def driver_env(hadoop_cluster) -> Dict[str, str]:
    env = {k: v for k, v in os.environ.items()
           if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PEX", "C_PACK_LOCAL_ARTIFACT",
                        "C_PACK_PACKAGE_PATH", "C_PACK_EDITABLE_DIRS")}
    env.update(hadoop_cluster.env)
    return env


@pytest.fixture(scope="session")
def run_driver(yarn_venv, driver_env, tmp_path_factory):
    scripts = tmp_path_factory.mktemp("drivers")

    def run(code: str, timeout: float = 600, cwd: Optional[Path] = None,
            extra_env: Optional[Dict[str, str]] = None) -> Any:
        script = scripts / f"driver_{time.monotonic_ns()}.py"
        script.write_text(textwrap.dedent(code))
        proc = subprocess.run([yarn_venv.python, str(script)], cwd=cwd or yarn_venv.root.parent,
                              env={**driver_env, **(extra_env or {})}, capture_output=True,
                              text=True, timeout=timeout)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT:")]
        if proc.returncode != 0 or not lines:
            raise AssertionError(
                f"driver failed ({proc.returncode}):\n--- stdout\n{proc.stdout[-6000:]}\n"
                f"--- stderr\n{proc.stderr[-6000:]}")
        return json.loads(lines[-1][len("RESULT:"):])

    return run


@pytest.fixture(scope="session")
def published_env(hadoop_cluster, run_driver) -> str:
    user = os.environ.get("C_PACK_USER") or getpass.getuser()
    target = f"{hadoop_cluster.default_fs}/user/{user}/envs/test.pex"
    result = run_driver(f"""
        import json, time, cluster_pack
        t0 = time.monotonic()
        path, name = cluster_pack.upload_env(package_path={target!r})
        print("RESULT:" + json.dumps({{"path": path, "seconds": time.monotonic() - t0}}))
    """)
    print(f"[yarn tests] upload_env: {result['seconds']:.1f}s", file=sys.stderr)
    return result["path"]
