"""PySpark on ``local-cluster[2,1,1024]`` (separate executor JVMs and Python daemons) with a
published environment, through the original ``spark_config_builder`` API.

A real test venv (``spark_venv`` of tests/venvs.py, shared by the Spark tests) holds pyspark,
cluster-pack (editable), ``cowsay`` and an editable toy project. The driver runs in that venv
(``tests/spark/spark_job.py``), publishes it without pyspark/py4j, and the executors must
import ``cowsay`` from the packed environment, pyspark from Spark's own ``pyspark.zip``, and
the toy project from its local (edited) source.
Layouts: parts (the default: the launcher assembles ``job.pex/`` from the parts in each
executor's directory), single-file ``.pex`` (``C_PACK_LAYOUT=pex``) and ``.pex.zip``.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest

from tests.venvs import JAVA_HOME, clean_env

pytest.importorskip("pyspark")

pytestmark = [pytest.mark.spark, pytest.mark.slow]

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent.parent
JOB = ROOT / "tests" / "spark" / "spark_job.py"
MASTER = "local-cluster[2,1,1024]"


@pytest.fixture(autouse=True)
def _local_store_removed(spark_venv):
    """Each test publishes to the local store ``envs`` anew: removed after it."""
    yield
    shutil.rmtree(spark_venv["base"] / "envs", ignore_errors=True)


def _run_job(venv, package_path, *args, timeout=600, master=MASTER, extra_env=None):
    env = clean_env({"JAVA_HOME": JAVA_HOME, **(extra_env or {}),
                     "SPARK_HOME": str(venv["spark_home"]),
                     "C_PACK_CACHE_DIR": str(venv["base"] / "cache")},
                    drop=("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"))
    started = time.perf_counter()
    proc = subprocess.run([str(venv["python"]), str(JOB), str(package_path), master, *args],
                          cwd=venv["base"], env=env, capture_output=True, text=True,
                          timeout=timeout)
    elapsed = time.perf_counter() - started
    assert proc.returncode == 0, f"job failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    line = next(ln for ln in proc.stdout.splitlines() if ln.startswith("REPORT "))
    report = json.loads(line[len("REPORT "):])
    report["total_seconds"] = round(elapsed, 2)
    print(json.dumps({k: v for k, v in report.items() if k not in ("rounds", "options")}),
          [r["seconds"] for r in report["rounds"]])
    return report


def _rows(report):
    return [row for r in report["rounds"] for row in r["rows"]]


def test_parts_and_editables_on_local_cluster(spark_venv):
    envs = spark_venv["base"] / "envs"
    report = _run_job(spark_venv, envs / "job.pex", "--upload")
    manifest = json.loads((envs / "job.json").read_text())
    # the original's single file is at the path for code that ships it itself; Spark,
    # through cluster-pack, localizes the parts (checked below)
    assert manifest["layout"] == "parts" and (envs / "job.pex").is_file()
    rows = _rows(report)
    assert len(rows) == 8
    driver_site = str(spark_venv["python"].parent.parent)
    for row in rows:
        # the packed environment, installed in the executor's own directory
        assert "/.pex/venvs/" in row["executable"], row
        assert not row["executable"].startswith(driver_site + "/bin"), row
        assert row["cowsay"].startswith(row["prefix"]), row
        # ... from the packed directory the launcher assembled there from the parts
        assert row["pex"] == os.path.join(row["cwd"], "job.pex") and row["pex_is_dir"], row
        bootstrap = next(p for p in manifest["parts"] if p["path"] == ".bootstrap")
        assert row["bootstrap_link"] == os.path.join(row["cwd"], bootstrap["sha256"]), row
        # pyspark is not packed: Spark's own pyspark.zip, forwarded by the launcher
        assert "pyspark.zip" in row["pyspark"], row
        assert row["toy_value"] == "v1"
        assert "/editable_toy-pkg/" in row["toy_file"], row
    # two executors, each with one Python daemon forking the workers
    assert len({row["cwd"] for row in rows}) == 2
    assert len({row["ppid"] for row in rows}) == 2
    # the daemons (and the installed env) are reused by the second job: nothing re-extracted
    first, second = report["rounds"]
    assert {r["ppid"] for r in first["rows"]} == {r["ppid"] for r in second["rows"]}
    # every part is shipped by its URL in the pool (spark.files takes no "#name"), and the
    # user's own spark.files was merged, not overwritten
    files = report["options"]["spark.files"].split(",")
    pool = envs / ".cluster-pack-parts"
    assert files[0] == str(JOB)
    assert {f"{pool}/{p['sha256']}" for p in manifest["parts"]} <= set(files)
    assert not any(f.endswith("job.pex") for f in files)
    assert "PYSPARK_PYTHON" not in report["options"]


def test_single_file_pex_on_local_cluster(spark_venv):
    envs = spark_venv["base"] / "envs"
    # one executor is enough for the single file (the other tests run two)
    report = _run_job(spark_venv, envs / "single.pex", "--upload", "--rounds", "1",
                      master="local-cluster[1,1,1024]", extra_env={"C_PACK_LAYOUT": "pex"})
    manifest = json.loads((envs / "single.json").read_text())
    assert manifest["layout"] == "pex" and (envs / "single.pex").is_file()
    rows = _rows(report)
    assert len(rows) == 4
    for row in rows:
        assert "/.pex/venvs/" in row["executable"], row
        assert row["cowsay"].startswith(row["prefix"]), row
        # the single .pex file Spark put in the executor's directory
        assert row["pex"] == os.path.join(row["cwd"], "single.pex") and not row["pex_is_dir"], row
        assert "pyspark.zip" in row["pyspark"], row
    files = report["options"]["spark.files"].split(",")
    assert str(envs / "single.pex") in files
    assert not any(".cluster-pack-parts" in f for f in files)


def test_large_layout_edit_and_node_cache(spark_venv):
    envs = spark_venv["base"] / "envs"
    toy_init = spark_venv["toy"] / "src" / "toy_pkg" / "__init__.py"
    node_root = spark_venv["base"] / "node_pex_root"
    toy_init.write_text('VALUE = "v2"\n')  # a local edit, not re-installed
    try:
        _edited_and_node_cache(spark_venv, envs, node_root)
    finally:
        toy_init.write_text('VALUE = "v1"\n')  # as it was: the venv is shared
        shutil.rmtree(node_root, ignore_errors=True)


def _edited_and_node_cache(spark_venv, envs, node_root):
    cold = _run_job(spark_venv, envs / "job.pex.zip", "--upload", "--pex-root", str(node_root))
    rows = _rows(cold)
    assert {row["toy_value"] for row in rows} == {"v2"}
    assert all(row["executable"].startswith(str(node_root)) for row in rows)
    assert all(row["cowsay"].startswith(row["prefix"]) for row in rows)
    installed = sorted(p.name for p in (node_root / "venvs").rglob("*") if p.parent.parent.name == "venvs")
    # a second application on the same "node": the installed environment is reused
    warm = _run_job(spark_venv, envs / "job.pex.zip", "--pex-root", str(node_root))
    assert sorted(p.name for p in (node_root / "venvs").rglob("*")
                  if p.parent.parent.name == "venvs") == installed
    real = lambda rs: {os.path.realpath(row["prefix"]) for row in rs}  # noqa: E731
    assert real(_rows(warm)) == real(rows) and len(real(rows)) == 1
    print("first job, cold node cache:", cold["rounds"][0]["seconds"],
          "s; warm node cache:", warm["rounds"][0]["seconds"], "s")
