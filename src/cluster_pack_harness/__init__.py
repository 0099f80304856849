"""Real-parts test harness for cluster-pack: HDFS + YARN (Hadoop minicluster) and an S3 server.

See docs/harness.md. Python API::

    from cluster_pack_harness import Harness
    h = Harness("/tmp/h").start(hadoop=True, s3=True)
    ...  # h.env, h.hadoop.default_fs, h.s3.endpoint_url
    h.stop()

CLI: ``python -m cluster_pack_harness start|stop|status|env|build``.
pytest: ``pytest_plugins = ["cluster_pack_harness.pytest_plugin"]``.
"""

from cluster_pack_harness._proc import HarnessError, HarnessUnavailable
from cluster_pack_harness.hadoop import HadoopCluster
from cluster_pack_harness.harness import Harness
from cluster_pack_harness.s3 import S3Server

__all__ = ["Harness", "HadoopCluster", "S3Server", "HarnessError", "HarnessUnavailable"]
