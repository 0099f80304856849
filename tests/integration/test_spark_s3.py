"""PySpark with the packed environment on the harness S3 server (moto) through Hadoop's s3a.

The test venv (``spark_venv`` of tests/venvs.py: pyspark, cluster-pack editable, ``cowsay``,
s3fs) is published
to ``s3://<bucket>/envs/spark_s3.pex`` (parts layout: ``envs/spark_s3.json`` and the parts in
``envs/.cluster-pack-parts/``) with ``cluster_pack.upload_env(..., fs_args=...)`` in its own
process; a driver in that venv configures ``local-cluster[2,1,1024]`` with
``add_s3_params`` + ``add_packaged_environment`` (which reads the manifest from S3 with the
endpoint set by ``add_s3_params``; the parts travel as ``s3a://`` files), reads a CSV object
through ``s3a://`` and maps a function importing ``cowsay`` (only in the packed environment),
then writes parquet back to S3.

The s3a connector (``hadoop-aws`` in the version of pyspark's Hadoop jars + the AWS SDK v2
bundle) comes from Maven Central into ``~/.m2`` through ``.ci/install-spark-s3.sh``.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import textwrap
import time
from pathlib import Path

import pytest

pytest.importorskip("pyspark")

from cluster_pack.launch.spark import SPARK_DEFAULT_REDACTION_REGEX  # noqa: E402
from cluster_pack_harness.pytest_plugin import in_ci  # noqa: E402
from tests.venvs import JAVA_HOME, clean_env  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.s3, pytest.mark.slow, pytest.mark.timeout(900)]

ROOT = Path(__file__).resolve().parents[2]
INSTALL = ROOT / ".ci" / "install-spark-s3.sh"
MASTER = "local-cluster[2,1,1024]"
WORDS = ["moo", "spark", "s3a", "pex", "yarn", "hdfs"]

DRIVER = '''
import json, os, sys, time

from pyspark.sql import SparkSession

from cluster_pack.spark import spark_config_builder


def decorate(row):
    import os
    import sys

    import cowsay  # only in the packed environment

    return {"word": row.word, "n": int(row.n),
            "said": row.word in cowsay.get_output_string("cow", row.word),
            "cowsay": cowsay.__file__, "prefix": sys.prefix, "executable": sys.executable,
            "pex": os.environ.get("PEX"), "cwd": os.getcwd()}


package_path, data, out, jars, master = sys.argv[1:6]
fs_args = json.loads(os.environ.pop("CPACK_TEST_FS_ARGS"))
ssb = (SparkSession.builder.appName("cluster-pack-s3-test").master(master)
       .config("spark.executor.memory", "512m").config("spark.ui.enabled", "false")
       .config("spark.sql.shuffle.partitions", "2")
       # on the JVMs' classpath, not spark.jars: spark-submit already resolves the s3a://
       # spark.files (the environment) before it loads spark.jars, and executors fetch
       # files before jars
       .config("spark.driver.extraClassPath", jars.replace(",", os.pathsep))
       .config("spark.executor.extraClassPath", jars.replace(",", os.pathsep)))
spark_config_builder.add_s3_params(ssb, fs_args)
spark_config_builder.add_packaged_environment(ssb, package_path)
started = time.perf_counter()
spark = ssb.getOrCreate()
sc = spark.sparkContext
report = {"session_seconds": round(time.perf_counter() - started, 2),
          "conf": sorted(sc.getConf().getAll())}
hconf = sc._jsc.hadoopConfiguration()
report["hadoop"] = {k: hconf.get(k) for k in (
    "fs.s3a.aws.credentials.provider", "fs.s3a.path.style.access", "fs.s3a.endpoint",
    "fs.s3a.access.key", "fs.s3a.endpoint.region")}
report["hadoop_secret_set"] = hconf.get("fs.s3a.secret.key") is not None
jvm = sc._jvm
fs = jvm.org.apache.hadoop.fs.FileSystem.get(jvm.java.net.URI(data), hconf)
report["filesystem"] = fs.getClass().getName()
report["fs_string"] = fs.toString()
started = time.perf_counter()
df = spark.read.csv(data, header=True, inferSchema=True)
report["rows"] = df.rdd.map(decorate).collect()
report["read_seconds"] = round(time.perf_counter() - started, 2)
started = time.perf_counter()
df.groupBy((df.n % 2).alias("parity")).count().write.mode("overwrite").parquet(out)
report["parquet"] = sorted(tuple(r) for r in spark.read.parquet(out).collect())
report["write_seconds"] = round(time.perf_counter() - started, 2)
spark.stop()
print("REPORT " + json.dumps(report))
'''


def s3a_jars(python: str) -> str:
    """The comma-separated s3a jars (hadoop-aws + AWS SDK bundle) from ~/.m2, fetched if needed."""
    proc = subprocess.run(["bash", str(INSTALL)], env={**os.environ, "SPARK_S3_PYTHON": python},
                          capture_output=True, text=True, timeout=900, stdin=subprocess.DEVNULL)
    jars = proc.stdout.strip().splitlines()[-1] if proc.stdout.strip() else ""
    if proc.returncode != 0 or "hadoop-aws" not in jars:
        msg = f"cannot get the s3a jars with {INSTALL}:\n{proc.stderr[-3000:]}"
        if in_ci():
            pytest.fail(msg, pytrace=False)
        pytest.skip(msg)
    return jars


@pytest.fixture(scope="module")
def s3_jars(spark_venv):
    return s3a_jars(str(spark_venv["python"]))


def _clean_env(venv, extra):
    return clean_env({"JAVA_HOME": JAVA_HOME, "SPARK_HOME": str(venv["spark_home"]),
                      "C_PACK_CACHE_DIR": str(venv["base"] / "cache"), **extra},
                     drop=("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON", "AWS_ACCESS_KEY_ID",
                           "AWS_SECRET_ACCESS_KEY", "AWS_SESSION_TOKEN"))


def test_pyspark_with_the_env_and_the_data_on_s3(spark_venv, s3_server, s3_jars):
    bucket = s3_server.bucket
    package_path = f"s3://{bucket}/envs/spark_s3.pex"
    fs_args = s3_server.fs_args
    env = _clean_env(spark_venv, {"CPACK_TEST_FS_ARGS": json.dumps(fs_args)})

    started = time.perf_counter()
    publish = subprocess.run(
        [str(spark_venv["python"]), "-c", textwrap.dedent("""
            import json, os, sys, cluster_pack
            path, _ = cluster_pack.upload_env(
                package_path=sys.argv[1], ignored_packages=["pyspark", "py4j"],
                fs_args=json.loads(os.environ["CPACK_TEST_FS_ARGS"]))
            print("PUBLISHED " + path)
        """), package_path],
        cwd=spark_venv["base"], env=env, capture_output=True, text=True, timeout=600)
    assert publish.returncode == 0, publish.stderr[-4000:]
    upload_seconds = time.perf_counter() - started
    client = s3_server.client()
    manifest = json.loads(client.get_object(Bucket=bucket, Key="envs/spark_s3.json")["Body"].read())
    assert manifest["layout"] == "parts"
    for part in manifest["parts"]:
        key = f"envs/.cluster-pack-parts/{part['sha256']}"
        assert client.head_object(Bucket=bucket, Key=key)["ContentLength"] == part["size"]

    csv = "word,n\n" + "".join(f"{w},{i}\n" for i, w in enumerate(WORDS))
    client.put_object(Bucket=bucket, Key="data/words.csv", Body=csv.encode())
    data = f"s3a://{bucket}/data/words.csv"
    out = f"s3a://{bucket}/out/parity.parquet"

    script = spark_venv["base"] / "s3_driver.py"
    script.write_text(DRIVER)
    started = time.perf_counter()
    proc = subprocess.run([str(spark_venv["python"]), str(script), package_path, data, out,
                           s3_jars, MASTER],
                          cwd=spark_venv["base"], env=env, capture_output=True, text=True,
                          timeout=800)
    job_seconds = time.perf_counter() - started
    assert proc.returncode == 0, f"job failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-8000:]}"
    line = next(out for out in proc.stdout.splitlines() if out.startswith("REPORT "))
    report = json.loads(line[len("REPORT "):])
    print(f"upload_env to S3: {upload_seconds:.1f}s; job: {job_seconds:.1f}s "
          f"(session {report['session_seconds']}s, read+map {report['read_seconds']}s, "
          f"parquet {report['write_seconds']}s)")

    # the data came through s3a, the function ran in the packed environment
    assert report["filesystem"] == "org.apache.hadoop.fs.s3a.S3AFileSystem"
    rows = sorted(report["rows"], key=lambda r: r["n"])
    assert [r["word"] for r in rows] == WORDS
    driver_prefix = str(spark_venv["python"].parent.parent)
    for row in rows:
        assert row["said"], row
        assert "/.pex/venvs/" in row["executable"], row
        assert row["cowsay"].startswith(row["prefix"]), row
        assert not row["prefix"].startswith(driver_prefix), row
        # the packed directory the launcher assembled in the executor's directory
        assert row["pex"] == os.path.join(row["cwd"], "spark_s3.pex"), row
    assert report["parquet"] == [[0, 3], [1, 3]]
    keys = [o["Key"] for o in client.list_objects_v2(Bucket=bucket, Prefix="out/")["Contents"]]
    assert any(k.endswith(".parquet") for k in keys), keys

    conf = dict(report["conf"])
    # the environment's parts were shipped from S3 (s3:// -> s3a://)
    files = conf["spark.files"].split(",")
    for part in manifest["parts"]:
        assert f"s3a://{bucket}/envs/.cluster-pack-parts/{part['sha256']}" in files, files
    # path-style requests to the moto endpoint (virtual-host style would ask for
    # <bucket>.127.0.0.1, which does not resolve)
    hadoop = report["hadoop"]
    assert hadoop["fs.s3a.path.style.access"] == "true"
    assert hadoop["fs.s3a.endpoint"] == s3_server.endpoint_url
    assert hadoop["fs.s3a.endpoint.region"] == fs_args["client_kwargs"]["region_name"]
    # credentials from the environment (SDK v2 provider, mapped from the v1 name on Hadoop 3.4)
    provider = hadoop["fs.s3a.aws.credentials.provider"]
    assert provider == "com.amazonaws.auth.EnvironmentVariableCredentialsProvider", provider
    # ... the only provider, and the one that gave the credentials (SDK v2's toString)
    assert "size=1: [EnvironmentVariableCredentialsProvider()] last provider: " \
        "EnvironmentVariableCredentialsProvider()" in report["fs_string"], report["fs_string"]
    # ... without a deprecation warning about the provider's name
    warnings = [line for line in proc.stderr.splitlines() if "WARN" in line and "redential" in line]
    assert not warnings, warnings
    # Spark itself (SparkHadoopUtil) copies AWS_ACCESS_KEY_ID/AWS_SECRET_ACCESS_KEY from the
    # driver's environment into its in-memory Hadoop configuration (fs.s3a.access.key /
    # fs.s3a.secret.key): not a Spark property, and hidden by spark.redaction.regex where
    # the UI shows Hadoop properties.
    assert hadoop["fs.s3a.access.key"] in (None, fs_args["key"])
    for key in ("fs.s3a.access.key", "fs.s3a.secret.key"):
        assert re.search(SPARK_DEFAULT_REDACTION_REGEX, key)
    # the secret never shows in the Spark conf, nor in what the driver printed
    secret = fs_args["secret"]
    assert not [kv for kv in report["conf"] if secret in kv[0] or secret in kv[1]]
    leaks = [line for line in (proc.stdout + proc.stderr).splitlines() if secret in line]
    assert not leaks, leaks[:5]
