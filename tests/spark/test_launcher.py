"""The launcher PySpark runs as its python: a real (tiny) venv-mode pex, no Spark."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys

import pytest

from cluster_pack.launch import spark as spark_conf

PEX = shutil.which("pex", path=os.path.dirname(sys.executable))


@pytest.fixture(scope="module")
def tiny_pex(tmp_path_factory):
    if not PEX:
        pytest.skip("pex is not installed next to this interpreter")
    out = tmp_path_factory.mktemp("pex") / "env.pex"
    subprocess.run([PEX, "--venv", "--no-emit-warnings", "-o", str(out)], check=True,
                   timeout=300, env={**os.environ, "PEX_ROOT": str(out.parent / "build_root")})
    yield out
    shutil.rmtree(out.parent, ignore_errors=True)


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


# -- the parts layout: the launcher assembles the packed pex from the shipped parts ----------

@pytest.fixture(scope="module")
def parts_env(tmp_path_factory):
    """A tiny venv-mode pex in the packed layout, published as parts to a local pool."""
    if not PEX:
        pytest.skip("pex is not installed next to this interpreter")
    from cluster_pack.pack import parts
    from cluster_pack.store import parts_pool
    from cluster_pack.store.manifest import Manifest, run_info_for

    base = tmp_path_factory.mktemp("parts")
    packed = base / "build" / "env.pex"
    subprocess.run([PEX, "--venv", "--no-emit-warnings", "--layout", "packed", "-o", str(packed)],
                   check=True, timeout=300,
                   env={**os.environ, "PEX_ROOT": str(base / "build_root")})
    listed = parts.list_parts(packed, parts.HashCache(base / "hashes.json"))
    pool = base / "envs" / parts_pool.POOL_DIR
    pool.mkdir(parents=True)
    for part, path in listed:
        shutil.copy(path, pool / part.sha256)
    found = [part for part, _ in listed]
    manifest = Manifest("fp", "env.pex", sum(p.size for p in found), parts.tree_sha256(found),
                        [], "any", "3", run_info_for("env.pex", "parts"), layout="parts",
                        parts=found)
    yield str(base / "envs" / "env.pex"), manifest
    shutil.rmtree(base, ignore_errors=True)


def _stage(conf, key, work):
    """What Spark does on an executor: every file of ``key`` lands in the working directory,
    under its ``#name`` (spark.yarn.dist.files) or the last component of its URL."""
    work.mkdir()
    for url in conf[key].split(","):
        source, _, name = url.partition("#")
        shutil.copy(source, work / (name or os.path.basename(source)))
    return f"./{conf['spark.pyspark.python'].rsplit('/', 1)[-1]}"


def _stage_local_cluster(parts_env, tmp_path):
    """The parts of ``parts_env`` staged as on a local-cluster executor:
    (manifest, working directory, launcher)."""
    package_path, manifest = parts_env
    conf = spark_conf.spark_conf(spark_conf.spark_launch_spec(package_path, manifest=manifest),
                                 master="local-cluster[2,1,1024]", launcher_dir=tmp_path)
    work = tmp_path / "executor"
    return manifest, work, _stage(conf, "spark.files", work)


PARTS_CODE = ("import os, sys, fake_pyspark; print(fake_pyspark.VALUE); print(sys.prefix); "
              "print(os.environ['PEX'])")


@pytest.mark.parametrize("master,key", [("yarn", "spark.yarn.dist.files"),
                                        ("local-cluster[2,1,1024]", "spark.files")])
def test_parts_are_assembled_in_the_working_dir_and_run(tmp_path, parts_env, master, key):
    package_path, manifest = parts_env
    spec = spark_conf.spark_launch_spec(package_path, manifest=manifest)
    conf = spark_conf.spark_conf(spec, master=master, launcher_dir=tmp_path)
    work = tmp_path / "executor"
    launcher = _stage(conf, key, work)
    assert not (work / "env.pex").exists()
    spark_lib = tmp_path / "spark_lib"
    spark_lib.mkdir()
    (spark_lib / "fake_pyspark.py").write_text("VALUE = 'from PYTHONPATH'\n")
    out = _run(work, launcher, {"PYTHONPATH": str(spark_lib)}, PARTS_CODE)
    assert out.returncode == 0, out.stderr
    value, prefix, pex = out.stdout.splitlines()
    assert value == "from PYTHONPATH"
    assert os.path.realpath(prefix).startswith(os.path.realpath(work / ".pex"))
    assert pex == str(work / "env.pex")  # the pex runtime ran the assembled directory
    assert (work / "env.pex" / "PEX-INFO").is_file()
    assert os.path.islink(work / "env.pex" / ".bootstrap")
    # again: nothing re-assembled
    before = os.stat(work / "env.pex").st_ino
    again = _run(work, launcher, {"PYTHONPATH": str(spark_lib)}, PARTS_CODE)
    assert again.returncode == 0, again.stderr
    assert os.stat(work / "env.pex").st_ino == before


def test_concurrent_workers_assemble_the_parts_once(tmp_path, parts_env):
    _, work, launcher = _stage_local_cluster(parts_env, tmp_path)
    env = {"PATH": os.environ["PATH"], "HOME": str(work)}
    procs = [subprocess.Popen([launcher, "-c", "import os; print(os.environ['PEX'])"], cwd=work,
                              env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
             for _ in range(6)]
    results = [p.communicate(timeout=300) + (p.returncode,) for p in procs]
    assert all(rc == 0 for _, _, rc in results), [err for _, err, _ in results]
    assert {out.strip() for out, _, _ in results} == {str(work / "env.pex")}
    assert not [p for p in os.listdir(work) if ".cpack-tmp-" in p]


def test_a_missing_part_is_named_and_nothing_is_assembled(tmp_path, parts_env):
    manifest, work, launcher = _stage_local_cluster(parts_env, tmp_path)
    lost = next(p for p in manifest.parts if p.path.startswith(".deps/") or p.path == ".bootstrap")
    os.unlink(work / lost.sha256)
    out = _run(work, launcher, {}, "print(1)")
    assert out.returncode == 1
    assert "missing" in out.stderr and lost.sha256 in out.stderr
    assert not (work / "env.pex").exists()
