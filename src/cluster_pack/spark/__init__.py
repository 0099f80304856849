"""Spark support: ``cluster_pack.spark.spark_config_builder`` (needs pyspark).

The engine-neutral part (Spark properties, ``spark-submit`` arguments) is
:mod:`cluster_pack.launch.spark`, usable without pyspark.
"""
