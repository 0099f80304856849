# Real-parts harness fixtures (hadoop_cluster, s3_server, hadoop_env, s3_env, harness_env).
pytest_plugins = ["cluster_pack_harness.pytest_plugin", "tests.venvs"]
