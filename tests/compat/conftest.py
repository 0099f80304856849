"""Point the compatibility tests at another ``cluster_pack`` when asked.

``CPACK_COMPAT_TARGET=/some/dir`` (a directory holding ``cluster_pack/``, e.g. the
unpacked original 0.3.19 wheel) is put first on ``sys.path`` so the contract test can be
sanity-checked against the original itself. Without it, the installed package (ours)
is tested.
"""

import os
import sys

_TARGET = os.environ.get("CPACK_COMPAT_TARGET")
if _TARGET:
    sys.path.insert(0, os.path.abspath(_TARGET))
    for _name in [m for m in sys.modules if m == "cluster_pack" or m.startswith("cluster_pack.")]:
        del sys.modules[_name]
