"""The original ``cluster_pack.skein`` package: YARN through skein (needs ``skein``).

``cluster_pack.skein.yarn_launcher`` and ``cluster_pack.yarn_launcher`` are the same
module as :mod:`cluster_pack.skein.skein_launcher`. New code can use :mod:`cluster_pack.launch.yarn`.
"""

import sys

from cluster_pack.skein import skein_launcher

sys.modules["cluster_pack.skein.yarn_launcher"] = skein_launcher

__all__ = ["skein_launcher"]
