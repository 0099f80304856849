"""PySpark on the harness's real MiniYARNCluster (``master=yarn``) with the environment
published to the harness HDFS (parts layout): YARN localizes every part as ``cpack-<sha>``
(``spark.yarn.dist.files``, ``url#name``) in the containers, where the launcher assembles
``spark_test.pex/``. Client mode through ``spark_config_builder``; cluster mode (the driver
runs from the environment too, in the application master's container) through
``spark-submit $(cluster-pack spark-args ...)``."""

from __future__ import annotations

import getpass
import json
import os
import subprocess
import textwrap

import pytest

pytest.importorskip("pyspark")

from test_spark_local_cluster import _rows, _run_job  # noqa: E402

from tests.venvs import JAVA_HOME, clean_env  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.yarn, pytest.mark.hdfs, pytest.mark.slow,
              pytest.mark.timeout(1200)]


@pytest.fixture(scope="module")
def published(spark_venv, hadoop_cluster):
    package_path = f"{hadoop_cluster.default_fs}/user/{getpass.getuser()}/envs/spark_test.pex"
    # Publish in its own process: after hdfs-native was used, the fork PySpark makes to start
    # its JVM (Popen with preexec_fn) deadlocks (fsspec's at-fork cache clearing drops the
    # hdfs-native client, whose tokio runtime waits for threads the child does not have).
    publish = subprocess.run(
        [str(spark_venv["python"]), "-c",
         "import sys, cluster_pack; cluster_pack.upload_env(package_path=sys.argv[1], "
         "ignored_packages=['pyspark', 'py4j'])", package_path],
        env=clean_env({**hadoop_cluster.env, "C_PACK_CACHE_DIR": str(spark_venv["base"] / "cache")}),
        capture_output=True, text=True, timeout=600)
    assert publish.returncode == 0, publish.stderr
    return package_path


def test_pyspark_on_yarn_with_the_env_on_hdfs(spark_venv, hadoop_cluster, published):
    package_path = published
    report = _run_job(
        spark_venv, package_path,
        "--conf", "spark.submit.deployMode=client",
        "--conf", "spark.executor.instances=2", "--conf", "spark.executor.cores=1",
        "--conf", "spark.yarn.am.memory=512m", "--conf", "spark.executor.memoryOverhead=384m",
        master="yarn", extra_env=hadoop_cluster.env, timeout=1100)
    rows = _rows(report)
    dist_files = report["options"]["spark.yarn.dist.files"].split(",")
    pool = package_path.rsplit("/", 1)[0] + "/.cluster-pack-parts/"
    parts = [f for f in dist_files if f.startswith(pool)]
    assert parts and all(f.split("#")[1] == "cpack-" + f[len(pool):][:32] for f in parts), parts
    assert not any(f.split("#")[0] == package_path for f in dist_files)  # no file at .pex
    assert "spark.files" in report["options"]  # the user's own value, kept as given
    for row in rows:
        assert "/.pex/venvs/" in row["executable"], row
        assert row["cowsay"].startswith(row["prefix"]), row
        assert "pyspark.zip" in row["pyspark"], row
        assert row["toy_value"] in ("v1", "v2")
        assert "/editable_toy-pkg/" in row["toy_file"], row
        # the packed directory assembled in the container from the localized parts
        assert row["pex"] == os.path.join(row["cwd"], "spark_test.pex") and row["pex_is_dir"], row
    assert len({row["cwd"] for row in rows}) == 2  # two YARN containers


CLUSTER_DRIVER = textwrap.dedent("""
    import json, os, sys

    import cowsay  # only in the packed environment: this driver runs from it
    from pyspark.sql import SparkSession


    def where(_):
        import os, sys

        import cowsay

        pex = os.environ.get("PEX") or ""
        return {"executable": sys.executable, "prefix": sys.prefix, "pex": pex,
                "pex_is_dir": os.path.isdir(pex), "cwd": os.getcwd(), "cowsay": cowsay.__file__}


    spark = SparkSession.builder.getOrCreate()
    rows = spark.sparkContext.parallelize([0, 1], 2).map(where).collect()
    driver = dict(where(0), package_path=os.environ.get("C_PACK_PACKAGE_PATH"))
    with open(sys.argv[1], "w") as f:
        json.dump({"driver": driver, "executors": rows}, f)
    spark.stop()
""")


def test_cluster_mode_driver_runs_from_the_parts(spark_venv, hadoop_cluster, published):
    base = spark_venv["base"]
    env = clean_env({**hadoop_cluster.env, "JAVA_HOME": JAVA_HOME,
                     "SPARK_HOME": str(spark_venv["spark_home"]),
                     "C_PACK_CACHE_DIR": str(base / "cache")},
                    drop=("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"))
    args = subprocess.run(
        [str(spark_venv["python"]), "-m", "cluster_pack", "spark-args", "--json",
         "--master", "yarn", "--deploy-mode", "cluster", published],
        env=env, capture_output=True, text=True, timeout=300)
    assert args.returncode == 0, args.stderr
    args = json.loads(args.stdout)
    files = args[args.index("--files") + 1].split(",")
    assert any("#cpack-" in f for f in files) and published not in files
    driver = base / "cluster_driver.py"
    driver.write_text(CLUSTER_DRIVER)
    out = base / "cluster_report.json"  # the NodeManager runs on this machine
    out.unlink(missing_ok=True)
    proc = subprocess.run(
        [str(spark_venv["spark_home"] / "bin" / "spark-submit"), *args,
         "--driver-memory", "512m", "--conf", "spark.driver.memoryOverhead=384m",
         "--conf", "spark.executor.instances=1", "--conf", "spark.executor.cores=1",
         "--conf", "spark.executor.memory=512m", "--conf", "spark.executor.memoryOverhead=384m",
         str(driver), str(out)],
        cwd=base, env=env, capture_output=True, text=True, timeout=1000)
    assert proc.returncode == 0, f"spark-submit failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-6000:]}"
    report = json.loads(out.read_text())
    for where in [report["driver"], *report["executors"]]:
        # the packed directory assembled in each container (the AM's for the driver)
        assert where["pex"] == os.path.join(where["cwd"], "spark_test.pex"), where
        assert where["pex_is_dir"] and "/.pex/venvs/" in where["executable"], where
        assert where["cowsay"].startswith(where["prefix"]), where
    assert report["driver"]["package_path"] == published
    assert report["driver"]["cwd"] not in {row["cwd"] for row in report["executors"]}
