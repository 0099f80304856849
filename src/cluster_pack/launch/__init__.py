"""LaunchSpec -> engines: run a published environment locally, on YARN, Spark, Dask, Ray."""
