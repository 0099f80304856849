"""The Spark examples, run as they are (subprocesses of a real venv) against the harness.

* ``examples/spark/spark_example.py``: master ``yarn`` (client mode) on the harness
  MiniYARNCluster, the environment published to the harness HDFS
  (``$CLUSTER_PACK_HARNESS_DEFAULT_FS/user/$USER/envs/spark_example.pex``).
* ``examples/spark-with-S3/spark_example.py``: ``local-cluster[1,1,1024]``, the environment
  and the data on the harness S3 server (bucket/endpoint/credentials from the harness env),
  the s3a jars from ``.ci/install-spark-s3.sh`` (``CLUSTER_PACK_S3A_JARS``).

The venv is the one of the Spark tests (``tests.venvs.make_spark_venv``) plus what the
examples import (numpy, pandas, pyarrow): a venv of its own, so that the other Spark tests
do not pack them.
"""

from __future__ import annotations

import json
import subprocess
import time
from pathlib import Path

import pytest

pytest.importorskip("pyspark")

from test_spark_s3 import s3a_jars  # noqa: E402

from tests.venvs import JAVA_HOME, clean_env, make_spark_venv, remove_at_teardown  # noqa: E402

pytestmark = [pytest.mark.spark, pytest.mark.slow, pytest.mark.timeout(1200)]

ROOT = Path(__file__).resolve().parents[2]
EXAMPLES = ROOT / "examples"


@pytest.fixture(scope="module")
def examples_venv(tmp_path_factory):
    base = tmp_path_factory.mktemp("spark_examples")
    yield make_spark_venv(base, extra_packages=["numpy", "pandas", "pyarrow"])
    remove_at_teardown(base)


def _run_example(venv, script, extra_env, *args, timeout=1100):
    env = clean_env({"JAVA_HOME": JAVA_HOME, **extra_env, "SPARK_HOME": str(venv["spark_home"]),
                     "C_PACK_CACHE_DIR": str(venv["base"] / "cache")},
                    drop=("PYSPARK_PYTHON", "PYSPARK_DRIVER_PYTHON"))
    started = time.perf_counter()
    proc = subprocess.run([str(venv["python"]), str(script), *args], cwd=venv["base"], env=env,
                          capture_output=True, text=True, timeout=timeout)
    seconds = time.perf_counter() - started
    assert proc.returncode == 0, \
        f"{script} failed:\n{proc.stdout[-3000:]}\n{proc.stderr[-8000:]}"
    print(f"{script.relative_to(ROOT)}: {seconds:.1f}s\n{proc.stdout}")
    return proc.stdout


@pytest.mark.yarn
@pytest.mark.hdfs
def test_spark_example_on_yarn_and_hdfs(examples_venv, hadoop_cluster):
    out = _run_example(examples_venv, EXAMPLES / "spark" / "spark_example.py",
                       hadoop_cluster.env)
    lines = out.splitlines()
    intersections = next(line for line in lines if line.startswith("intersections: "))
    assert len(eval(intersections.split(": ", 1)[1])) == 4  # noqa: S307 - our own output
    numpy = next(line for line in lines if line.startswith("executors' numpy: "))
    assert "/.pex/venvs/" in numpy, numpy  # the packed environment, not the driver's venv


@pytest.mark.s3
def test_spark_s3_example(examples_venv, s3_server):
    jars = s3a_jars(str(examples_venv["python"]))
    env = dict(s3_server.env, CLUSTER_PACK_S3A_JARS=jars)
    # one executor: two executors fetching the pandas/pyarrow parts from moto cost ~40 s more
    # of CI, and test_spark_s3 already runs two
    out = _run_example(examples_venv, EXAMPLES / "spark-with-S3" / "spark_example.py", env,
                       "--master", "local-cluster[1,1,1024]")
    lines = out.splitlines()
    means = [line.split() for line in lines if line.split()[:1] in (["0"], ["1"])]
    assert [m[1:] for m in means] == [["1", "1.5"], ["2", "6.0"]], out
    pandas = next(line for line in lines if line.startswith("executors' pandas: "))
    assert "/.pex/venvs/" in pandas, pandas
    client = s3_server.client()
    # published as parts (the default layout): the manifest, and its parts in the pool
    manifest = json.loads(client.get_object(Bucket=s3_server.bucket,
                                            Key="envs/spark_example.json")["Body"].read())
    for part in manifest.get("parts") or []:
        assert client.head_object(Bucket=s3_server.bucket,
                                  Key=f"envs/.cluster-pack-parts/{part['sha256']}")
    if manifest["layout"] != "parts":
        assert client.head_object(Bucket=s3_server.bucket, Key="envs/spark_example.pex")
