"""``include_interpreter``: a venv on a Python the nodes lack runs on the local runner and on
MiniYARN with the interpreter shipped as a part.

The venv is made from a *copy* of a pyenv 3.12 installation (hard links: no disk), published
from that venv, then the copy is renamed away before any job starts: whatever the job
needs of its interpreter must come from the shipped part (nodes here have the system 3.11
on PATH). Jobs are submitted by the test runner's own Python (3.11), so nothing of 3.12
runs outside the containers.
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import shutil
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Dict, Iterator, Optional

import pytest

from cluster_pack_harness.pytest_plugin import in_ci
from tests.venvs import REPO, build_venv, clean_env, remove_at_teardown, remove_remote_dir

pytestmark = [pytest.mark.interpreter, pytest.mark.slow, pytest.mark.timeout(900)]

SHIPPED = "3.12"  # the pyenv Python the venv is made from (the nodes have 3.11)

JOB = '''\
"""Reports where its interpreter comes from."""

import json
import os
import sys

import six


def report(tag="job"):
    with open("/proc/self/maps") as f:
        libpython = sorted({line.split()[-1] for line in f if "libpython" in line})
    return {"tag": tag, "version": list(sys.version_info[:2]), "prefix": sys.prefix,
            "base_prefix": sys.base_prefix, "executable": sys.executable, "path": sys.path,
            "libpython": libpython, "six": six.__file__,
            "ld_library_path": os.environ.get("LD_LIBRARY_PATH", "")}


if __name__ == "__main__":
    print("INTERP-JOB " + json.dumps(report()), flush=True)
'''


def _pyenv_prefix(version: str) -> Path:
    root = Path(os.environ.get("PYENV_ROOT") or Path.home() / ".pyenv") / "versions"
    found = sorted(root.glob(f"{version}.*")) if root.is_dir() else []
    if not found:
        # CI's machines have pyenv's 3.9-3.13: there, a missing one is a failure
        (pytest.fail if in_ci() else pytest.skip)(f"no pyenv Python {version} under {root}")
    return found[-1]


class Shipped:
    """The venv, its hidden base prefix, and the published environment."""

    def __init__(self, base: Path):
        self.base = base
        self.prefix = base / "py"  # the copy the venv is made from
        self.hidden = base / "py-hidden"
        self.job_src = base / "job" / "src"
        self.store = base / "store"

    @contextlib.contextmanager
    def prefix_hidden(self) -> Iterator[None]:
        """The venv's base installation renamed away: the job cannot read it."""
        os.rename(self.prefix, self.hidden)
        try:
            yield
        finally:
            os.rename(self.hidden, self.prefix)

    def publish(self, package_path: str, include: Optional[bool] = True,
                extra_env: Dict[str, str] = (), **kwargs) -> dict:
        """``publish_env`` in the venv (``include``: ``include_interpreter``; None: from
        ``C_PACK_INCLUDE_INTERPRETER``)."""
        code = f"""
            import json, cluster_pack
            r = cluster_pack.publish_env(package_path={package_path!r},
                                         include_interpreter={include!r}, **{kwargs!r})
            shipped = r.manifest.interpreter
            print(json.dumps({{"path": r.path, "uploaded": r.uploaded_bytes, "built": r.built,
                               "interpreter": shipped.to_json() if shipped else None,
                               "file_sha256": r.manifest.file_sha256}}))
        """
        env = clean_env({"C_PACK_CACHE_DIR": str(self.base / "cache"), **dict(extra_env)})
        proc = subprocess.run([str(self.base / "venv" / "bin" / "python"), "-c",
                               textwrap.dedent(code)], env=env, capture_output=True, text=True)
        assert proc.returncode == 0, proc.stderr[-4000:]
        return json.loads(proc.stdout.strip().splitlines()[-1])

    def check_report(self, report: dict, interpreters_root: str) -> None:
        """The job ran the shipped 3.12, from the node's copy, and read nothing of the
        publishing machine's installation."""
        assert report["version"] == [3, 12], report
        assert report["base_prefix"].startswith(interpreters_root), report
        assert os.path.isfile(os.path.join(report["base_prefix"], "bin", f"python{SHIPPED}"))
        for entry in report["path"] + [report["prefix"], report["executable"], report["six"]]:
            assert str(self.prefix) not in entry and str(self.hidden) not in entry, entry
        assert report["libpython"] and all(p.startswith(report["base_prefix"])
                                           for p in report["libpython"]), report


@pytest.fixture(scope="module")
def shipped(tmp_path_factory) -> Iterator[Shipped]:
    base = tmp_path_factory.mktemp("interp")
    s = Shipped(base)
    original = _pyenv_prefix(SHIPPED)
    # hard links: a copy of the installation at another path, for no disk
    subprocess.run(["cp", "-al", str(original), str(s.prefix)], check=True)
    pkg = base / "job"
    (s.job_src / "cpack_interp_job").mkdir(parents=True)
    (pkg / "pyproject.toml").write_text(textwrap.dedent("""
        [build-system]
        requires = ["setuptools>=64"]
        build-backend = "setuptools.build_meta"
        [project]
        name = "cpack-interp-job"
        version = "0.1"
        dependencies = ["six"]
        """))
    (s.job_src / "cpack_interp_job" / "__init__.py").write_text(JOB)
    (s.job_src / "cpack_interp_job" / "__main__.py").write_text(
        "from cpack_interp_job import report\nimport json\n"
        "print('INTERP-JOB ' + json.dumps(report()), flush=True)\n")
    build_venv(base / "venv", ["six", "hdfs-native", str(pkg)], editables=[REPO],
               python=str(s.prefix / "bin" / f"python{SHIPPED}"))
    yield s
    remove_at_teardown(base)


def test_local_runner_runs_module_and_function_with_the_shipped_interpreter(shipped, capsys):
    from cluster_pack import cli
    from cluster_pack.launch import local
    from cluster_pack.launch.spec import module_launch_spec
    from cluster_pack.store.manifest import read_published_manifest

    first = shipped.publish(str(shipped.store / "envs" / "a.pex"))
    info = first["interpreter"]
    assert info["version"].startswith(SHIPPED) and info["binary"] == f"bin/python{SHIPPED}"
    assert first["uploaded"] > info["size"]  # the interpreter was written once...
    # ...and a second environment on the same interpreter re-uses its part
    second = shipped.publish(str(shipped.store / "envs" / "b.pex"), include=None,
                             extra_env={"C_PACK_INCLUDE_INTERPRETER": "1"},
                             ignored_packages=["six"])
    assert second["interpreter"]["sha256"] == info["sha256"]
    assert second["uploaded"] < info["size"], second
    manifest = read_published_manifest(first["path"])
    assert manifest is not None and manifest.interpreter is not None
    assert manifest.format_version == 3
    assert cli.main(["info", first["path"]]) == 0
    assert f"interpreter Python {info['version']} (" in capsys.readouterr().out
    # the single file at the returned path is the same pex as without the option
    plain = shipped.publish(str(shipped.store / "plain" / "a.pex"), include=None)
    assert plain["interpreter"] is None
    assert plain["file_sha256"] == first["file_sha256"]

    node = shipped.base / "node"
    # the test runner's module path must not reach the job: the runner's own python
    # submits, with a minimal environment
    sys.path.insert(0, str(shipped.job_src))  # pickled by reference, imported in the job
    try:
        import cpack_interp_job

        with shipped.prefix_hidden():
            spec = module_launch_spec("cpack_interp_job", package_path=first["path"],
                                      include_editables=False)
            run = local.run(spec, node_dir=node)
            assert run.returncode == 0, run.stderr[-4000:]
            line = next(ln for ln in run.stdout.splitlines() if ln.startswith("INTERP-JOB "))
            shipped.check_report(json.loads(line[len("INTERP-JOB "):]),
                                 str(node / "interpreters"))
            report = local.run_function(cpack_interp_job.report, ["func"],
                                        package_path=first["path"], node_dir=node)
            assert report["tag"] == "func"
            shipped.check_report(report, str(node / "interpreters"))
            # fetch: the environment and its interpreter, run without cluster-pack
            assert cli.main(["fetch", first["path"], str(shipped.base / "fetched")]) == 0
            fetched = shipped.base / "fetched" / "a.pex"
            runner = local.interpreter_home(fetched) / "run"
            assert f"run it with: {runner} -m my_module" in capsys.readouterr().out
            proc = subprocess.run([str(runner), "-m", "cpack_interp_job"], capture_output=True,
                                  text=True, cwd=shipped.base,
                                  env={"PATH": "/usr/bin:/bin", "HOME": str(shipped.base),
                                       "PEX_ROOT": str(shipped.base / "fetched-pex-root")})
            assert proc.returncode == 0, proc.stderr[-4000:]
            shipped.check_report(json.loads(proc.stdout.split("INTERP-JOB ", 1)[1]),
                                 str(local.interpreter_home(fetched)))
    finally:
        sys.path.remove(str(shipped.job_src))
        sys.modules.pop("cpack_interp_job", None)


DRIVER = """
import json, os, sys
import skein
from cluster_pack.skein import skein_launcher
import cpack_interp_job

PKG = {pkg!r}
out = {{}}
with skein.Client() as client:
    app = skein_launcher.submit(client, "cpack_interp_job", package_path=PKG, memory="512 MiB")
    out["module_ok"] = skein_launcher.wait_for_finished(client, app, poll_every_secs=1)
    logs = skein_launcher.get_application_logs(client, app, log_tries=10)
    out["module_logs"] = "\\n".join(dict(logs.items()).values()) if logs else ""
    app = skein_launcher.submit_func(client, cpack_interp_job.report, args=["yarn-func"],
                                     package_path=PKG, memory="512 MiB")
    out["func_ok"] = skein_launcher.wait_for_finished(client, app, poll_every_secs=1)
    logs = skein_launcher.get_application_logs(client, app, log_tries=10)
    out["func_logs"] = "\\n".join(dict(logs.items()).values()) if logs else ""
print("RESULT:" + json.dumps(out), flush=True)
"""


@pytest.mark.yarn
@pytest.mark.hdfs
def test_yarn_submit_and_submit_func_with_the_shipped_interpreter(shipped, hadoop_cluster):
    user = os.environ.get("C_PACK_USER") or getpass.getuser()
    directory = f"{hadoop_cluster.default_fs}/user/{user}/interp-envs"
    proc = subprocess.run([str(shipped.base / "venv" / "bin" / "cluster-pack"), "upload",
                           "--package-path", f"{directory}/interp.pex", "--include-interpreter",
                           "--json"], capture_output=True, text=True,
                          env=clean_env({**hadoop_cluster.env,
                                         "C_PACK_CACHE_DIR": str(shipped.base / "cache")}))
    assert proc.returncode == 0, proc.stderr[-4000:]
    published = json.loads(proc.stdout)
    assert published["interpreter"].startswith(SHIPPED)
    driver = shipped.base / "driver.py"
    driver.write_text(DRIVER.format(pkg=published["path"]))
    # the runner's own Python (the nodes' 3.11) submits; PYTHONPATH: this checkout and the
    # job's module (its function is pickled by reference)
    env = clean_env({**hadoop_cluster.env,
                     "PYTHONPATH": os.pathsep.join([str(REPO / "src"), str(shipped.job_src)])})
    try:
        with shipped.prefix_hidden():
            proc = subprocess.run([sys.executable, str(driver)], env=env, capture_output=True,
                                  text=True, timeout=600, cwd=shipped.base)
        lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT:")]
        assert proc.returncode == 0 and lines, proc.stderr[-4000:]
        out = json.loads(lines[-1][len("RESULT:"):])
        assert out["module_ok"], out["module_logs"][-4000:]
        assert out["func_ok"], out["func_logs"][-4000:]
        line = next(ln for ln in out["module_logs"].splitlines()
                    if ln.startswith("INTERP-JOB "))
        report = json.loads(line[len("INTERP-JOB "):])
        shipped.check_report(report, os.path.dirname(report["base_prefix"]))
        assert "/.cache/cluster-pack/interpreters/" in report["base_prefix"], report
        assert "'tag': 'yarn-func'" in out["func_logs"]
        assert "'version': [3, 12]" in out["func_logs"]
    finally:
        remove_remote_dir(directory, None)
        shutil.rmtree(shipped.base / "driver.py", ignore_errors=True)


SPARK_DRIVER = """
import json, sys, time
t0 = time.monotonic()
from pyspark.sql import SparkSession
import cluster_pack
from cluster_pack.spark import spark_config_builder
import cpack_interp_job

path, _ = cluster_pack.upload_env(package_path={pkg!r}, ignored_packages=["pyspark", "py4j"],
                                  include_interpreter=True)
print(f"published {{time.monotonic() - t0:.1f}}", file=sys.stderr)
ssb = (SparkSession.builder.appName("cpack-interp").master("local-cluster[1,1,1024]")
       .config("spark.executor.memory", "512m").config("spark.ui.enabled", "false"))
spark_config_builder.add_packaged_environment(ssb, path)
spark = ssb.getOrCreate()
print(f"session {{time.monotonic() - t0:.1f}}", file=sys.stderr)
rows = spark.sparkContext.parallelize([0, 1], 2).map(
    lambda i: cpack_interp_job.report(f"spark-{{i}}")).collect()
print(f"job {{time.monotonic() - t0:.1f}}", file=sys.stderr)
spark.stop()
print(f"stopped {{time.monotonic() - t0:.1f}}", file=sys.stderr)
print("RESULT:" + json.dumps(rows), flush=True)
"""


@pytest.mark.spark
def test_spark_executors_run_the_shipped_interpreter(shipped):
    """PySpark on local-cluster: the driver is the venv's 3.12 (PySpark wants the same X.Y
    on both sides), each executor's Python the shipped copy, extracted by the launcher."""
    pyspark = pytest.importorskip("pyspark")
    from tests.venvs import JAVA_HOME, link_from_runner

    if not Path(JAVA_HOME, "bin", "java").exists():
        pytest.skip(f"no JDK at {JAVA_HOME}")
    link_from_runner(shipped.base / "venv", ["pyspark", "py4j"])
    spark_home = shipped.base / "spark_home"
    spark_home.mkdir(exist_ok=True)
    for name in ("bin", "jars", "python", "sbin"):
        if not (spark_home / name).exists():
            (spark_home / name).symlink_to(Path(pyspark.__file__).parent / name)
    driver = shipped.base / "spark_driver.py"
    driver.write_text(SPARK_DRIVER.format(pkg=str(shipped.store / "spark" / "job.pex")))
    home = shipped.base / "spark-user"  # the executors' $HOME: their interpreter cache
    env = clean_env({"JAVA_HOME": JAVA_HOME, "SPARK_HOME": str(spark_home), "HOME": str(home),
                     "C_PACK_CACHE_DIR": str(shipped.base / "cache")},
                    drop=("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"))
    proc = subprocess.run([str(shipped.base / "venv" / "bin" / "python"), str(driver)],
                          env=env, capture_output=True, text=True, timeout=600,
                          cwd=shipped.base)
    lines = [ln for ln in proc.stdout.splitlines() if ln.startswith("RESULT:")]
    assert proc.returncode == 0 and lines, proc.stderr[-6000:]
    rows = json.loads(lines[-1][len("RESULT:"):])
    timings = [ln for ln in proc.stderr.splitlines()
               if ln.split(" ", 1)[0] in ("published", "session", "job", "stopped")]
    print(f"\n[interpreter] spark driver: {'; '.join(timings)} (s)", file=sys.stderr)
    assert sorted(r["tag"] for r in rows) == ["spark-0", "spark-1"]
    for row in rows:
        shipped.check_report(row, str(home / ".cache" / "cluster-pack" / "interpreters"))
