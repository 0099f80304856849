"""PySpark on the harness's real MiniYARNCluster (``master=yarn``, client mode) with the
environment published to the harness HDFS, through ``spark_config_builder``."""

from __future__ import annotations

import getpass
import os
import subprocess

import pytest

pytest.importorskip("pyspark")

from test_spark_local_cluster import _rows, _run_job, spark_venv  # noqa: E402,F401

pytestmark = [pytest.mark.spark, pytest.mark.yarn, pytest.mark.hdfs, pytest.mark.slow,
              pytest.mark.timeout(1200)]


def test_pyspark_on_yarn_with_the_env_on_hdfs(spark_venv, hadoop_cluster):  # noqa: F811
    package_path = f"{hadoop_cluster.default_fs}/user/{getpass.getuser()}/envs/spark_test.pex"
    # Publish in its own process: after hdfs-native was used, the fork PySpark makes to start
    # its JVM (Popen with preexec_fn) deadlocks (fsspec's at-fork cache clearing drops the
    # hdfs-native client, whose tokio runtime waits for threads the child does not have).
    publish = subprocess.run(
        [str(spark_venv["python"]), "-c",
         "import sys, cluster_pack; cluster_pack.upload_env(package_path=sys.argv[1], "
         "ignored_packages=['pyspark', 'py4j'])", package_path],
        env={**os.environ, **hadoop_cluster.env}, capture_output=True, text=True, timeout=600)
    assert publish.returncode == 0, publish.stderr
    report = _run_job(
        spark_venv, package_path,
        "--conf", "spark.submit.deployMode=client",
        "--conf", "spark.executor.instances=2", "--conf", "spark.executor.cores=1",
        "--conf", "spark.yarn.am.memory=512m", "--conf", "spark.executor.memoryOverhead=384m",
        master="yarn", extra_env=hadoop_cluster.env, timeout=1100)
    rows = _rows(report)
    assert package_path in report["options"]["spark.yarn.dist.files"].split(",")
    assert "spark.files" in report["options"]  # the user's own value, kept as given
    for row in rows:
        assert "/.pex/venvs/" in row["executable"], row
        assert row["cowsay"].startswith(row["prefix"]), row
        assert "pyspark.zip" in row["pyspark"], row
        assert row["toy_value"] in ("v1", "v2")
        assert "/editable_toy-pkg/" in row["toy_file"], row
    assert len({row["cwd"] for row in rows}) == 2  # two YARN containers
