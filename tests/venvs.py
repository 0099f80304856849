"""Real virtualenvs for end-to-end tests, built once per session with uv.

``packed_venv`` holds numpy (compiled), six (pure), cluster-pack (editable, from this
checkout) and ``toyproj``, an editable project the tests edit.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

import pytest

REPO = Path(__file__).resolve().parents[1]


def _uv() -> str:
    from cluster_pack import settings

    uv = settings.find_uv()
    if uv is None:
        pytest.fail("uv is needed to build test virtualenvs (pip install uv)")
    return uv


@dataclass
class TestVenv:
    root: Path
    toyproj: Path

    @property
    def python(self) -> str:
        return str(self.root / "bin" / "python")

    @property
    def base_python(self) -> str:
        """The bare interpreter the venv was made from (no site-packages of ours)."""
        return os.path.realpath(getattr(sys, "_base_executable", sys.executable))

    @property
    def cli(self) -> str:
        return str(self.root / "bin" / "cluster-pack")

    def run(self, code: str, cache_dir: Path, env: Optional[Dict[str, str]] = None,
            check: bool = True) -> subprocess.CompletedProcess:
        """Run Python code with this venv's interpreter (its own cache/store dir)."""
        full_env = {k: v for k, v in os.environ.items()
                    if k not in ("VIRTUAL_ENV", "PYTHONPATH", "PEX", "C_PACK_PACKAGE_PATH",
                                 "C_PACK_LOCAL_ARTIFACT")}
        full_env["C_PACK_CACHE_DIR"] = str(cache_dir)
        full_env["C_PACK_UV"] = _uv()  # the venvs under test do not install uv
        full_env.update(env or {})
        proc = subprocess.run([self.python, "-c", textwrap.dedent(code)], env=full_env,
                              capture_output=True, text=True, cwd=cache_dir.parent)
        if check and proc.returncode != 0:
            raise AssertionError(f"exit {proc.returncode}\nstdout:\n{proc.stdout}\n"
                                 f"stderr:\n{proc.stderr}")
        return proc

    def json(self, code: str, cache_dir: Path, **kwargs) -> object:
        """Run code whose last stdout line is JSON; return it parsed."""
        out = self.run(code, cache_dir, **kwargs).stdout.strip().splitlines()
        return json.loads(out[-1])

    def set_toy_value(self, value: str) -> None:
        (self.toyproj / "src" / "toyproj" / "__init__.py").write_text(f"VALUE = {value!r}\n")


def make_toy_project(root: Path, name: str = "toyproj", value: str = "v1") -> Path:
    """``root/<name>``: a src-layout project whose package ``<name>`` holds ``VALUE``."""
    project = root / name
    (project / "src" / name).mkdir(parents=True)
    (project / "pyproject.toml").write_text(textwrap.dedent(f"""
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "{name}"
        version = "0.1"
        """))
    (project / "src" / name / "__init__.py").write_text(f"VALUE = {value!r}\n")
    return project


def build_venv(root: Path, packages, editables=()) -> Path:
    uv = _uv()
    base = getattr(sys, "_base_executable", sys.executable)
    subprocess.run([uv, "venv", "--quiet", "--python", base, str(root)], check=True)
    cmd = [uv, "pip", "install", "--quiet", "--python", str(root / "bin" / "python"),
           *packages]
    for path in editables:
        cmd += ["-e", str(path)]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        pytest.fail(f"cannot build the test venv: {proc.stderr[-2000:]}")
    return root


@pytest.fixture(scope="session")
def packed_venv(tmp_path_factory) -> TestVenv:
    root = tmp_path_factory.mktemp("venvs")
    toy = make_toy_project(root)
    venv = build_venv(root / "venv", ["numpy<3", "six"], editables=[REPO, toy])
    return TestVenv(venv, toy)


@pytest.fixture
def store_dir(tmp_path) -> Path:
    """A per-test cache and local store directory."""
    path = tmp_path / "cache"
    path.mkdir()
    return path
