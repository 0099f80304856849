"""Spark support: ``cluster_pack.spark.spark_config_builder`` (needs pyspark).

The engine-neutral part (Spark properties, ``spark-submit`` arguments) is
:mod:`cluster_pack.spark_conf`, usable without pyspark.
"""
