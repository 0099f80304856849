"""PySpark on S3: the environment is published to S3 and the job reads data through s3a://.

    python spark_example.py --bucket my-bucket [--endpoint-url http://127.0.0.1:9000]
        [--master "local-cluster[2,1,1024]"]

Credentials: AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY from the environment (as exported by
the harness env.sh for its S3 server). They are never written
into Spark properties: see README.md, "Running with Spark". s3a needs hadoop-aws in the version of pyspark's
Hadoop jars (``hadoop-client-api-*.jar`` in pyspark/jars), fetched from Maven Central by
``spark.jars.packages`` below.
"""

import argparse
import glob
import os

import pandas as pd
import pyspark
from pyspark.sql import SparkSession
from pyspark.sql.functions import pandas_udf

import cluster_pack
from cluster_pack.spark import spark_config_builder


def hadoop_version() -> str:
    jars = glob.glob(os.path.join(os.path.dirname(pyspark.__file__), "jars", "hadoop-client-api-*.jar"))
    return os.path.basename(jars[0])[len("hadoop-client-api-"):-len(".jar")]


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--bucket", default=os.environ.get("CLUSTER_PACK_HARNESS_S3_BUCKET"))
    parser.add_argument("--endpoint-url", default=os.environ.get("AWS_ENDPOINT_URL"))
    parser.add_argument("--master", default="local-cluster[2,1,1024]")
    args = parser.parse_args()

    fs_args = {"key": os.environ["AWS_ACCESS_KEY_ID"],
               "secret": os.environ["AWS_SECRET_ACCESS_KEY"]}
    if args.endpoint_url:
        fs_args["client_kwargs"] = {"endpoint_url": args.endpoint_url}
    package_path, _ = cluster_pack.upload_env(
        package_path=f"s3://{args.bucket}/envs/spark_example.pex",
        ignored_packages=["pyspark", "py4j"], fs_args=fs_args)

    data = f"s3://{args.bucket}/data/values.csv"
    import fsspec

    with fsspec.open(data, "w", **fs_args) as f:
        f.write("id,v\n1,1.0\n1,2.0\n2,3.0\n2,5.0\n2,10.0\n")

    ssb = (SparkSession.builder.appName("cluster-pack spark S3 example").master(args.master)
           .config("spark.jars.packages", f"org.apache.hadoop:hadoop-aws:{hadoop_version()}")
           .config("spark.executor.memory", "512m"))
    spark_config_builder.add_s3_params(ssb, fs_args)
    spark_config_builder.add_packaged_environment(ssb, package_path)
    spark_config_builder.add_editable_requirements(ssb)
    spark = ssb.getOrCreate()

    df = spark.read.csv(data.replace("s3://", "s3a://"), header=True, inferSchema=True)

    @pandas_udf("double")
    def mean_udf(v: pd.Series) -> float:  # pandas and pyarrow from the packed environment
        return v.mean()

    print(df.groupby("id").agg(mean_udf(df["v"]).alias("mean")).orderBy("id").toPandas())
    spark.stop()


if __name__ == "__main__":
    main()
