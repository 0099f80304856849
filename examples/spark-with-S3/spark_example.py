"""PySpark on S3: the environment is published to S3 and the job reads data through s3a://.

    python spark_example.py --bucket my-bucket [--endpoint-url http://127.0.0.1:9000]
        [--master "local-cluster[2,1,1024]"] [--s3a-jars JAR,JAR,...]

Defaults come from the environment, as exported by the harness env.sh for its S3 server:
``CLUSTER_PACK_HARNESS_S3_BUCKET``, ``AWS_ENDPOINT_URL`` (none: AWS itself), ``AWS_REGION``
and ``CLUSTER_PACK_S3A_JARS``. Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from
the environment. They are never written into Spark properties: see README.md, "Running with
Spark".

s3a needs ``org.apache.hadoop:hadoop-aws`` in the version of pyspark's Hadoop jars
(``hadoop-client-api-*.jar`` in pyspark/jars; 3.4.1 for pyspark 4.0) and the AWS SDK v2 bundle.
``bash .ci/install-spark-s3.sh`` fetches them into ~/.m2 and prints them comma-separated
(``export CLUSTER_PACK_S3A_JARS=$(bash .ci/install-spark-s3.sh)``). They must be on the JVMs'
classpath (``spark.{driver,executor}.extraClassPath``), not in ``spark.jars``/
``spark.jars.packages``: the environment's parts are ``s3a://`` files that spark-submit and
the executors fetch before they load ``spark.jars``. On a cluster whose Spark already has s3a
(EMR, Dataproc, a Spark distribution with hadoop-aws), leave ``--s3a-jars`` empty.
"""

import argparse
import os

import pandas as pd
from pyspark.sql import SparkSession
from pyspark.sql.functions import pandas_udf

import cluster_pack
from cluster_pack.spark import spark_config_builder


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bucket", default=os.environ.get("CLUSTER_PACK_HARNESS_S3_BUCKET"))
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    parser.add_argument("--region", default=os.environ.get("AWS_REGION"))
    parser.add_argument("--master", default="local-cluster[2,1,1024]")
    parser.add_argument("--s3a-jars", default=os.environ.get("CLUSTER_PACK_S3A_JARS", ""),
                        help="comma-separated local jars: hadoop-aws and the AWS SDK bundle")
    args = parser.parse_args()
    if not args.bucket:
        parser.error("--bucket is needed (or CLUSTER_PACK_HARNESS_S3_BUCKET)")

    fs_args = {"key": os.environ["AWS_ACCESS_KEY_ID"],
               "secret": os.environ["AWS_SECRET_ACCESS_KEY"]}
    client_kwargs = {}
    if args.endpoint_url:
        client_kwargs["endpoint_url"] = args.endpoint_url
    if args.region:
        client_kwargs["region_name"] = args.region
    if client_kwargs:
        fs_args["client_kwargs"] = client_kwargs
    package_path, _ = cluster_pack.upload_env(
        package_path=f"s3://{args.bucket}/envs/spark_example.pex",
        ignored_packages=["pyspark", "py4j"], fs_args=fs_args)

    data = f"s3://{args.bucket}/data/values.csv"
    import fsspec

    with fsspec.open(data, "w", **fs_args) as f:
        f.write("id,v\n1,1.0\n1,2.0\n2,3.0\n2,5.0\n2,10.0\n")

    ssb = (SparkSession.builder.appName("cluster-pack spark S3 example").master(args.master)
           .config("spark.executor.memory", "512m"))
    if args.s3a_jars:
        classpath = os.pathsep.join(args.s3a_jars.split(","))
        ssb = (ssb.config("spark.driver.extraClassPath", classpath)
               .config("spark.executor.extraClassPath", classpath))
    spark_config_builder.add_s3_params(ssb, fs_args)
    # reads the environment's manifest from S3 (with fs_args) and ships its parts as s3a:// files
    spark_config_builder.add_packaged_environment(ssb, package_path, fs_args=fs_args)
    spark_config_builder.add_editable_requirements(ssb)
    spark = ssb.getOrCreate()

    df = spark.read.csv(data.replace("s3://", "s3a://"), header=True, inferSchema=True)

    @pandas_udf("double")
    def mean_udf(v: pd.Series) -> float:  # pandas and pyarrow from the packed environment
        return v.mean()

    print(df.groupby("id").agg(mean_udf(df["v"]).alias("mean")).orderBy("id").toPandas())
    where = spark.sparkContext.parallelize([0], 1).map(lambda _: pd.__file__).first()
    print(f"executors' pandas: {where}")
    spark.stop()


if __name__ == "__main__":
    main()
