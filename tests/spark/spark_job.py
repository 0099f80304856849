"""A PySpark driver run by the integration tests (in a test venv): publishes the venv,
configures a SparkSession with cluster_pack.spark.spark_config_builder, runs one job and
prints a JSON report of what the executors saw.

    python spark_job.py PACKAGE_PATH MASTER [--pex-root DIR] [--no-editables] [--ignore-pyspark]
"""

import argparse
import json
import os
import sys
import time


def probe(index, iterator):
    import os
    import sys

    import cowsay  # only in the packed environment (never in the executor's default python)
    import pyspark
    import toy_pkg  # an editable project: its local source, shipped on each launch

    list(iterator)
    yield {
        "partition": index,
        "pid": os.getpid(),
        "ppid": os.getppid(),
        "executable": sys.executable,
        "prefix": sys.prefix,
        "cowsay": cowsay.__file__,
        "toy_value": toy_pkg.VALUE,
        "toy_file": toy_pkg.__file__,
        "pyspark": pyspark.__file__,
        "pex_root": os.environ.get("PEX_ROOT"),
        "cwd": os.getcwd(),
        # what the pex runtime ran: <cwd>/<name>.pex, a file (single-file layout) or the
        # packed directory the launcher assembled from the parts (symlinks into the cwd)
        "pex": os.environ.get("PEX"),
        "pex_is_dir": os.path.isdir(os.environ.get("PEX") or ""),
        "bootstrap_link": os.path.realpath(os.path.join(os.environ.get("PEX") or "", ".bootstrap")),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("package_path")
    parser.add_argument("master")
    parser.add_argument("--pex-root")
    parser.add_argument("--partitions", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--no-editables", action="store_true")
    parser.add_argument("--upload", action="store_true", help="publish the venv first")
    parser.add_argument("--s3-fs-args", help="JSON fs_args: also read s3a://.../data.txt")
    parser.add_argument("--s3-data")
    parser.add_argument("--conf", action="append", default=[], metavar="KEY=VALUE")
    args = parser.parse_args()

    from pyspark.sql import SparkSession

    import cluster_pack
    from cluster_pack.spark import spark_config_builder

    report = {}
    package_path = args.package_path
    if args.upload:
        started = time.perf_counter()
        fs_args = json.loads(args.s3_fs_args) if args.s3_fs_args else None
        package_path, _ = cluster_pack.upload_env(
            package_path=package_path, ignored_packages=["pyspark", "py4j"], fs_args=fs_args)
        report["upload_seconds"] = round(time.perf_counter() - started, 2)

    ssb = SparkSession.builder.appName("cluster-pack-test").master(args.master)
    ssb = ssb.config("spark.executor.memory", "512m").config("spark.ui.enabled", "false")
    ssb = ssb.config("spark.files", os.path.abspath(__file__))  # a user value, kept (merged)
    for item in args.conf:
        key, _, value = item.partition("=")
        ssb = ssb.config(key, value)
    spark_config_builder.add_packaged_environment(ssb, package_path, pex_root=args.pex_root)
    if not args.no_editables:
        spark_config_builder.add_editable_requirements(ssb)
    if args.s3_fs_args:
        spark_config_builder.add_s3_params(ssb, json.loads(args.s3_fs_args))
    report["options"] = {k: str(v) for k, v in ssb._options.items()}

    started = time.perf_counter()
    spark = ssb.getOrCreate()
    report["session_seconds"] = round(time.perf_counter() - started, 2)
    sc = spark.sparkContext
    rounds = []
    for _ in range(args.rounds):
        started = time.perf_counter()
        rows = sc.parallelize(range(args.partitions * 10), args.partitions) \
                 .mapPartitionsWithIndex(probe).collect()
        rounds.append({"seconds": round(time.perf_counter() - started, 2), "rows": rows})
    report["rounds"] = rounds
    if args.s3_data:
        report["s3_lines"] = sc.textFile(args.s3_data).collect()
    report["driver_executable"] = sys.executable
    spark.stop()
    print("REPORT " + json.dumps(report))


if __name__ == "__main__":
    main()
