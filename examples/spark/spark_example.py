"""PySpark with HDFS on YARN: executors run Python from the published environment.

    python spark_example.py                      # master yarn, client mode, env on HDFS
    python spark_example.py --master "local-cluster[2,1,1024]" --package-path /tmp/envs/ex.pex

Needs a Hadoop configuration (HADOOP_CONF_DIR) for YARN/HDFS, a JDK, and pyspark in the venv.
Against the test harness: ``python -m cluster_pack_harness start`` and
``source .harness/env.sh`` first (see docs/harness.md); the environment then goes to
``$CLUSTER_PACK_HARNESS_DEFAULT_FS/user/$USER/envs/spark_example.pex``. CI runs it that way
(tests/integration/test_examples.py).
"""

import argparse
import getpass
import os

import numpy as np
from pyspark.sql import SparkSession

import cluster_pack
from cluster_pack.spark import spark_config_builder


def intersection(pair):
    first, second = pair
    return np.intersect1d(first, second).tolist()  # numpy from the packed environment


def default_package_path():
    """On the harness its HDFS; elsewhere upload_env's {fs.defaultFS}/user/$USER/envs/<venv>.pex."""
    default_fs = os.environ.get("CLUSTER_PACK_HARNESS_DEFAULT_FS")
    if default_fs:
        return f"{default_fs}/user/{getpass.getuser()}/envs/spark_example.pex"
    return None


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--master", default="yarn")
    parser.add_argument("--package-path", default=default_package_path(),
                        help="default: {fs.defaultFS}/user/$USER/envs/<venv>.pex")
    args = parser.parse_args()

    # pyspark and py4j stay out of the environment: the executors use Spark's own copy
    package_path, _ = cluster_pack.upload_env(package_path=args.package_path,
                                              ignored_packages=["pyspark", "py4j"])

    ssb = (SparkSession.builder.appName("cluster-pack spark example").master(args.master)
           .config("spark.submit.deployMode", "client")
           .config("spark.executor.instances", "2")
           .config("spark.executor.cores", "1")
           .config("spark.executor.memory", "512m")
           .config("spark.executor.memoryOverhead", "384m"))
    spark_config_builder.add_packaged_environment(ssb, package_path)
    spark_config_builder.add_editable_requirements(ssb)
    spark = ssb.getOrCreate()

    rng = np.random.default_rng(0)
    pairs = [(rng.integers(0, 100, 100), rng.integers(0, 100, 100)) for _ in range(4)]
    result = spark.sparkContext.parallelize(pairs, numSlices=2).map(intersection).collect()
    print(f"intersections: {[len(r) for r in result]}")
    where = spark.sparkContext.parallelize([0], 1).map(lambda _: np.__file__).first()
    print(f"executors' numpy: {where}")
    spark.stop()


if __name__ == "__main__":
    main()
