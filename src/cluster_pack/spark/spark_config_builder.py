"""The original ``cluster_pack.spark.spark_config_builder`` API, over :mod:`cluster_pack.launch.spark`.

>>> import cluster_pack
>>> from cluster_pack.spark import spark_config_builder
>>> from pyspark.sql import SparkSession
>>> package_path, _ = cluster_pack.upload_env(ignored_packages=["pyspark", "py4j"])  # doctest: +SKIP
>>> ssb = SparkSession.builder.master("yarn").config("spark.submit.deployMode", "client")
>>> spark_config_builder.add_packaged_environment(ssb, package_path)                  # doctest: +SKIP
>>> spark_config_builder.add_editable_requirements(ssb)                               # doctest: +SKIP
>>> spark = ssb.getOrCreate()                                                         # doctest: +SKIP

Differences with the original, all fixes:

* values already set on the builder are merged (comma lists and ``PEX_EXTRA_SYS_PATH`` keep
  their order and get no duplicates) instead of being overwritten or reordered; a scalar
  the user set wins;
* a ``.pex`` in the parts layout (one file per part, assembled by the launcher on the
  node), a single-file ``.pex`` and a ``.pex.zip`` (an archive unpacked as ``pyenv``) work
  on every master: ``spark.yarn.dist.*`` on YARN, ``spark.files``/``spark.archives``
  elsewhere;
* ``add_s3_params`` never puts the secret key in a Spark property: the credentials go to the
  driver's environment and, where executors do not inherit it, to the redacted
  ``spark.executorEnv.AWS_SECRET_ACCESS_KEY``; or use a Hadoop credential store
  (``credential_provider_path``).
"""

from __future__ import annotations

import logging
import os
from typing import Any, Dict, Optional

from pyspark.sql import SparkSession

from cluster_pack.launch import spark as spark_conf

_logger = logging.getLogger(__name__)


def add_packaged_environment(ssb: SparkSession.Builder, archive: str, *,
                             pex_root: Optional[str] = None,
                             fs_args: Optional[Dict[str, Any]] = None) -> None:
    """Run the executors' Python (and the driver's in cluster mode) from ``archive``.

    :param archive: URL of a published ``.pex`` (parts layout or single file) or
        ``.pex.zip`` (``s3://`` becomes ``s3a://``); its manifest is read once, here
    :param pex_root: absolute directory on the nodes where the environment is installed once
        per node and user (default: once per executor, in its working directory)
    :param fs_args: storage options to read the manifest with; for ``s3://`` the default is
        the endpoint and region :func:`add_s3_params` set on the builder, with the
        credentials it exported (call it first)
    """
    master, deploy_mode = _master(ssb), _get_value(ssb, "spark.submit.deployMode")
    if fs_args is None:
        fs_args = _s3_fs_args_of(ssb, archive)
    conf = spark_conf.spark_conf(archive, master, deploy_mode, pex_root=pex_root,
                                 fs_args=fs_args)
    _apply(ssb, conf)
    # PySpark reads PYSPARK_PYTHON from the environment when its SparkContext starts.
    os.environ.update(spark_conf.driver_environment(conf))
    if deploy_mode == "cluster":
        os.environ["PYSPARK_DRIVER_PYTHON"] = conf["spark.pyspark.python"]
    if master and master.split("[", 1)[0] == "local":
        _logger.warning(
            "master %s runs the Python workers in the driver's working directory, where "
            "Spark does not put shipped files: use local-cluster[...] or a cluster", master)


def add_editable_requirements(ssb: SparkSession.Builder) -> None:
    """Ship the current venv's editable projects (zipped on each call, so local edits are
    seen) and put them on the executors' ``sys.path``."""
    _apply(ssb, spark_conf.editables_conf(_master(ssb), _get_value(ssb, "spark.submit.deployMode")))


def add_s3_params(ssb: SparkSession.Builder, fs_args: Optional[Dict[str, Any]] = None, *,
                  credential_provider_path: Optional[str] = None) -> None:
    """Configure Hadoop's s3a connector like ``fs_args`` (s3fs arguments: ``key``,
    ``secret``, ``token``, ``client_kwargs={"endpoint_url": ..., "region_name": ...}``).

    The credentials never become ``spark.hadoop.fs.s3a.*`` properties (which Spark shows
    and Hadoop copies into every job configuration). They are exported to this process's
    environment, which the driver JVM (started by ``getOrCreate``) and ``local-cluster``
    executors inherit, read by ``EnvironmentVariableCredentialsProvider``; on other masters
    executors get them through ``spark.executorEnv.AWS_*``, whose secret values Spark
    redacts. With ``credential_provider_path`` (a Hadoop credential store, e.g.
    ``jceks://hdfs/user/me/s3.jceks``) nothing is exported: s3a reads the store.
    """
    fs_args = fs_args or {}
    master, deploy_mode = _master(ssb), _get_value(ssb, "spark.submit.deployMode")
    conf = spark_conf.s3a_conf(fs_args, credential_provider_path)
    if not credential_provider_path:
        credentials = spark_conf.s3_credentials_env(fs_args)
        if credentials:
            _warn_if_jvm_running()
            os.environ.update(credentials)
            if not spark_conf.inherits_driver_environment(master):
                conf.update(spark_conf.executor_credentials_conf(credentials))
                if deploy_mode == "cluster":
                    conf.update({f"spark.yarn.appMasterEnv.{k}": v for k, v in credentials.items()})
                _check_redaction(ssb)
    _apply(ssb, conf)


# -- helpers ---------------------------------------------------------------------------------

def _get_value(ssb: SparkSession.Builder, key: str) -> Optional[str]:
    value = ssb._options.get(key)
    return None if value is None else str(value)


def _master(ssb: SparkSession.Builder) -> Optional[str]:
    return _get_value(ssb, "spark.master") or os.environ.get("MASTER") or None


def _s3_fs_args_of(ssb: SparkSession.Builder, archive: str) -> Optional[Dict[str, Any]]:
    """s3fs options matching the builder's s3a endpoint and region (credentials: the
    environment, where add_s3_params exported them); None for other URLs."""
    if not str(archive).startswith(("s3://", "s3a://")):
        return None
    fs_args: Dict[str, Any] = {}
    endpoint = _get_value(ssb, "spark.hadoop.fs.s3a.endpoint")
    if endpoint:
        if "://" not in endpoint:  # s3a takes a host; s3fs an URL
            ssl = _get_value(ssb, "spark.hadoop.fs.s3a.connection.ssl.enabled") != "false"
            endpoint = f"{'https' if ssl else 'http'}://{endpoint}"
        fs_args["endpoint_url"] = endpoint
    region = _get_value(ssb, "spark.hadoop.fs.s3a.endpoint.region")
    if region:
        fs_args["client_kwargs"] = {"region_name": region}
    return fs_args or None


def _apply(ssb: SparkSession.Builder, conf: Dict[str, str]) -> None:
    existing = {k: str(v) for k, v in ssb._options.items()}
    for key, value in spark_conf.merge_conf(existing, conf).items():
        ssb.config(key, value)


def _warn_if_jvm_running() -> None:
    from pyspark import SparkContext

    if SparkContext._active_spark_context is not None:
        _logger.warning("a SparkContext is already running: its JVM does not see the S3 "
                        "credentials exported now; call add_s3_params before getOrCreate")


def _check_redaction(ssb: SparkSession.Builder) -> None:
    import re

    regex = _get_value(ssb, "spark.redaction.regex") or spark_conf.SPARK_DEFAULT_REDACTION_REGEX
    if not re.search(regex, "spark.executorEnv.AWS_SECRET_ACCESS_KEY"):
        _logger.warning("spark.redaction.regex %r does not hide spark.executorEnv."
                        "AWS_SECRET_ACCESS_KEY: the S3 secret will show in the Spark UI", regex)
