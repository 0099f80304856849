"""cluster-pack: ship your Python environment and code to a cluster.

>>> import cluster_pack
>>> path, env_name = cluster_pack.upload_env()            # doctest: +SKIP

The names below are the original cluster-pack's public API, kept compatible.
"""

# F401: these imports are the package's public API (re-exported names), not used here.
from cluster_pack import packaging  # noqa: E402,F401
from cluster_pack.errors import ClusterPackError  # noqa: E402,F401
from cluster_pack.packaging import (  # noqa: E402,F401
    PEX_PACKER,
    Packer,
    detect_packer_from_file,
    get_default_fs,
    get_editable_requirements,
    get_non_editable_requirements,
    get_pyenv_usage_from_archive,
    zip_path,
)
from cluster_pack.settings import (  # noqa: E402,F401
    LayoutOptimization,
    get_layout_optimization,
    get_venv_optimization_level,
    is_uv_available,
    set_layout_optimization,
    set_venv_optimization_level,
)
from cluster_pack.uploader import upload_env, upload_spec, upload_zip  # noqa: E402,F401
from cluster_pack.version import __version__  # noqa: E402,F401

# Submodules the original's __init__ imported eagerly (so ``cluster_pack.filesystem``
# and ``cluster_pack.skein`` worked after a bare ``import cluster_pack``): imported here
# on first access, so that ``import cluster_pack`` pulls in neither skein nor fsspec.
_LAZY_SUBMODULES = ("filesystem", "skein")


def __getattr__(name: str):
    import importlib

    # skein is optional: cluster_pack.yarn_launcher is imported on first use only.
    if name == "yarn_launcher":
        return importlib.import_module("cluster_pack.skein.skein_launcher")
    if name in _LAZY_SUBMODULES:
        return importlib.import_module(f"cluster_pack.{name}")
    raise AttributeError(f"module 'cluster_pack' has no attribute {name!r}")


def __dir__():
    return sorted(set(globals()) | set(_LAZY_SUBMODULES) | {"yarn_launcher"})
