"""The launcher PySpark runs as its python: a real (tiny) venv-mode pex, no Spark."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from cluster_pack import spark_conf

PEX = shutil.which("pex", path=os.path.dirname(sys.executable))


@pytest.fixture(scope="module")
def tiny_pex(tmp_path_factory):
    if not PEX:
        pytest.skip("pex is not installed next to this interpreter")
    out = tmp_path_factory.mktemp("pex") / "env.pex"
    subprocess.run([PEX, "--venv", "--no-emit-warnings", "-o", str(out)], check=True,
                   timeout=300, env={**os.environ, "PEX_ROOT": str(out.parent / "build_root")})
    return out


def _workdir(tmp_path, tiny_pex, executable=True):
    work = tmp_path / "executor"
    work.mkdir()
    shutil.copy(tiny_pex, work / "env.pex")
    os.chmod(work / "env.pex", 0o755 if executable else 0o644)
    launcher = spark_conf.write_launcher("./env.pex", tmp_path)
    shutil.copy(launcher, work / launcher.name)
    (work / "editable_toy").mkdir()
    (work / "editable_toy" / "toy_mod.py").write_text("VALUE = 'from editable'\n")
    spark_lib = tmp_path / "spark_lib"
    spark_lib.mkdir()
    (spark_lib / "fake_pyspark.py").write_text("VALUE = 'from PYTHONPATH'\n")
    return work, f"./{launcher.name}", spark_lib


def _run(work, launcher, env, code):
    base = {"PATH": os.environ["PATH"], "HOME": str(work)}
    return subprocess.run([launcher, "-c", code], cwd=work, env={**base, **env},
                          capture_output=True, text=True, timeout=300)


CODE = ("import sys, toy_mod, fake_pyspark; print(toy_mod.VALUE); print(fake_pyspark.VALUE); "
        "print(sys.prefix)")


def test_forwards_pythonpath_and_uses_the_executor_dir_by_default(tmp_path, tiny_pex):
    work, launcher, spark_lib = _workdir(tmp_path, tiny_pex)
    out = _run(work, launcher, {"PYTHONPATH": str(spark_lib),
                                "PEX_EXTRA_SYS_PATH": ".:editable_toy"}, CODE)
    assert out.returncode == 0, out.stderr
    editable, pythonpath, prefix = out.stdout.splitlines()
    assert (editable, pythonpath) == ("from editable", "from PYTHONPATH")
    assert os.path.realpath(prefix).startswith(os.path.realpath(work / ".pex"))


def test_shared_pex_root_is_installed_once_and_reused(tmp_path, tiny_pex):
    work, launcher, spark_lib = _workdir(tmp_path, tiny_pex)
    root = tmp_path / "node_root"
    env = {"PYTHONPATH": str(spark_lib), "PEX_EXTRA_SYS_PATH": ".:editable_toy",
           "PEX_ROOT": str(root)}
    first = _run(work, launcher, env, CODE)
    assert first.returncode == 0, first.stderr
    venvs = sorted(p for p in (root / "venvs").iterdir())
    second = _run(work, launcher, env, CODE)
    assert second.returncode == 0, second.stderr
    real = lambda out: os.path.realpath(out.stdout.splitlines()[-1])  # noqa: E731
    assert real(second) == real(first) and real(first).startswith(os.path.realpath(root))
    assert sorted(p for p in (root / "venvs").iterdir()) == venvs
    assert not (work / ".pex").exists()
    assert root.stat().st_mode & 0o022 == 0


def test_a_shared_root_others_can_write_is_refused(tmp_path, tiny_pex):
    work, launcher, spark_lib = _workdir(tmp_path, tiny_pex)
    root = tmp_path / "open_root"
    root.mkdir()
    os.chmod(root, 0o777)
    out = _run(work, launcher, {"PEX_ROOT": str(root)}, "import sys; print(sys.prefix)")
    assert out.returncode == 0, out.stderr
    assert "not a private directory" in out.stderr
    assert os.path.realpath(out.stdout.strip()).startswith(os.path.realpath(work / ".pex"))


def test_target_without_execute_bit_runs_through_its_shebang(tmp_path, tiny_pex):
    work, launcher, spark_lib = _workdir(tmp_path, tiny_pex, executable=False)
    out = _run(work, launcher, {"PYTHONPATH": str(spark_lib)},
               "import fake_pyspark; print(fake_pyspark.VALUE)")
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip() == "from PYTHONPATH"


def test_launcher_name_is_content_addressed(tmp_path):
    a = spark_conf.write_launcher("./a.pex", tmp_path)
    b = spark_conf.write_launcher("pyenv/__main__.py", tmp_path)
    assert a != b and a == spark_conf.write_launcher("./a.pex", tmp_path)
    assert "pyenv/__main__.py" in b.read_text()
