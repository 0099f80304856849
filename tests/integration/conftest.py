"""Shared fixtures for the YARN integration tests: a REAL user venv, published to HDFS.

* ``yarn_venv``: a virtualenv (``tests.venvs.build_venv``) holding cluster-pack (editable, from this
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
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from tests.venvs import REPO, TestVenv, build_venv, clean_env, remove_at_teardown

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


@pytest.fixture(scope="session")
def yarn_venv(tmp_path_factory) -> TestVenv:
    base = tmp_path_factory.mktemp("yarn_venv")
    toy = base / "cpack_toy"
    (toy / "src" / "cpack_toy").mkdir(parents=True)
    (toy / "pyproject.toml").write_text(TOY_PYPROJECT)
    (toy / "src" / "cpack_toy" / "__init__.py").write_text(TOY_INIT)
    (toy / "src" / "cpack_toy" / "job.py").write_text(TOY_JOB)
    venv = build_venv(base / "venv", ["skein", "hdfs-native", "tomli_w", "ipykernel"],
                      editables=[REPO, toy])
    yield TestVenv(venv, toy)
    remove_at_teardown(base)


@pytest.fixture(scope="session")
def driver_env(hadoop_cluster) -> Dict[str, str]:
    return clean_env(hadoop_cluster.env)


def driver_runner(venv: TestVenv, base_env: Dict[str, str], scripts: Path):
    """``run(code, ...)``: run ``code`` with the python of ``venv`` and ``base_env``; the
    decoded ``RESULT:`` line it prints (used with the plain and the secure cluster)."""

    def run(code: str, timeout: float = 600, cwd: Optional[Path] = None,
            extra_env: Optional[Dict[str, str]] = None) -> Any:
        script = scripts / f"driver_{time.monotonic_ns()}.py"
        script.write_text(textwrap.dedent(code))
        proc = subprocess.run([venv.python, str(script)], cwd=cwd or venv.root.parent,
                              env={**base_env, **(extra_env or {})}, capture_output=True,
                              text=True, timeout=timeout)
        lines = [line for line in proc.stdout.splitlines() if line.startswith("RESULT:")]
        if proc.returncode != 0 or not lines:
            raise AssertionError(
                f"driver failed ({proc.returncode}):\n--- stdout\n{proc.stdout[-6000:]}\n"
                f"--- stderr\n{proc.stderr[-6000:]}")
        return json.loads(lines[-1][len("RESULT:"):])

    return run


@pytest.fixture(scope="session")
def run_driver(yarn_venv, driver_env, tmp_path_factory):
    return driver_runner(yarn_venv, driver_env, tmp_path_factory.mktemp("drivers"))


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


@pytest.fixture(scope="module")
def krb(secure_hadoop_cluster, tmp_path_factory):
    """The secure cluster (``.cluster``), its client environment, ``ticket(user)`` (a fresh
    cache under ``.caches``, one directory per module) and ``no_ticket()``: what the
    Kerberos test modules share."""
    cluster = secure_hadoop_cluster
    caches = tmp_path_factory.mktemp("krb-ccaches")

    class Krb:
        base_env = clean_env(cluster.env)
        default_fs = cluster.default_fs
        envs = f"{cluster.default_fs}/user/alice/envs"

        @staticmethod
        def ticket(user: str, lifetime: Optional[str] = None) -> Dict[str, str]:
            cache = caches / f"{user}-{time.monotonic_ns()}"
            return cluster.kinit(user, cache, lifetime=lifetime)

        @staticmethod
        def no_ticket() -> Dict[str, str]:
            return {"KRB5CCNAME": f"FILE:{caches / 'never-created'}"}

    Krb.cluster = cluster  # type: ignore[attr-defined]
    Krb.caches = caches  # type: ignore[attr-defined]
    return Krb
