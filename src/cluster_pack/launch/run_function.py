"""Runs a function shipped with cloudpickle: ``python -m cluster_pack.launch.run_function FILE [LEVEL]``.

The return value is logged and written (cloudpickled) to ``FILE.result``; an exception
is printed with its traceback and makes the process exit with status 1.

This module imports nothing from ``cluster_pack`` on purpose: the launchers also ship a
copy of it as the top-level module ``cluster_pack_runner``, in a small zip next to the
artifact (see :func:`cluster_pack.launch.spec.function_runner_resource`), so that a function
runs in any published environment, even one without cluster-pack or cloudpickle
(``upload_spec``, ``upload_zip``). That zip also holds the driver's cloudpickle under
``cluster_pack_vendor/``, used only when the environment has no cloudpickle of the
driver's major version (see :func:`load_cloudpickle`).
"""

import logging
import os
import sys
import traceback
import zipfile
from types import ModuleType
from typing import List, Optional

_LEVELS = ("DEBUG", "INFO", "WARNING", "ERROR", "CRITICAL")
# Set by the launcher: the version of the cloudpickle that pickled the function.
PICKLER_VERSION_ENV_VAR = "C_PACK_CLOUDPICKLE_VERSION"
VENDOR_DIR = "cluster_pack_vendor"


def _vendor_path() -> Optional[str]:
    """``<runner zip>/cluster_pack_vendor`` when this module runs from the runner zip."""
    archive = os.path.dirname(os.path.abspath(__file__))
    return os.path.join(archive, VENDOR_DIR) if zipfile.is_zipfile(archive) else None


def _major(version: str) -> str:
    return version.split(".", 1)[0]


def load_cloudpickle() -> ModuleType:
    """The cloudpickle to unpickle the function with.

    The environment's own cloudpickle when it has one of the driver's major version: the
    job's libraries (pyspark, dask...) may import cloudpickle too and should share the
    one they were published with. Otherwise (none, or another major version, whose
    pickle format differs) the driver's copy shipped in the runner zip, put first on
    ``sys.path``.
    """
    vendor = _vendor_path()
    wanted = os.environ.get(PICKLER_VERSION_ENV_VAR, "")
    try:
        import cloudpickle
    except ImportError:
        if vendor is None:
            raise
    else:
        found = getattr(cloudpickle, "__version__", "")
        if vendor is None or not wanted or _major(found) == _major(wanted):
            return cloudpickle
        logging.getLogger("cluster_pack").info(
            "the environment's cloudpickle %s cannot read what cloudpickle %s pickled: "
            "using the shipped copy", found, wanted)
        for name in [m for m in sys.modules if m == "cloudpickle" or m.startswith("cloudpickle.")]:
            del sys.modules[name]
    sys.path.insert(0, vendor)
    import cloudpickle

    return cloudpickle


def main(argv: Optional[List[str]] = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    if not argv:
        print("usage: python -m cluster_pack.launch.run_function FILE [LOG_LEVEL]", file=sys.stderr)
        return 2
    path = argv[0]
    level = argv[1] if len(argv) > 1 and argv[1] in _LEVELS else "INFO"
    logging.basicConfig(level=level)
    cloudpickle = load_cloudpickle()

    with open(path, "rb") as f:
        payload = cloudpickle.load(f)
    func, args = payload["func"], payload.get("args", [])
    name = getattr(func, "__qualname__", repr(func))
    try:
        result = func(*args)
    except BaseException:
        traceback.print_exc()
        print(f"cluster-pack: {name} failed", file=sys.stderr)
        return 1
    logging.getLogger("cluster_pack").info("%s returned %r", name, result)
    try:
        with open(f"{path}.result", "wb") as f:
            cloudpickle.dump(result, f)
    except Exception as exc:  # an unpicklable result is not a job failure
        logging.getLogger("cluster_pack").warning("cannot save the result: %s", exc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
