"""cluster-pack: ship your Python environment and code to a cluster.

>>> import cluster_pack
>>> path, env_name = cluster_pack.upload_env()            # doctest: +SKIP

Two sets of names live here. The original cluster-pack's public API, kept compatible
(``upload_env``, ``upload_zip``, ``get_pyenv_usage_from_archive``...), and a small new API
over the same stages: :func:`publish_env` (``upload_env`` with a detailed result), the
engine-neutral :class:`LaunchSpec` that every engine (``cluster_pack.launch.local``,
``.yarn``, ``.spark``, ``.dask``, ``.ray``) runs, and the error types.

Every name is imported on first use (PEP 562), so ``import cluster_pack`` costs almost
nothing and a call pulls in only what it needs.
"""

from __future__ import annotations

import importlib

from cluster_pack.version import __version__ as __version__

# not typing.TYPE_CHECKING: importing typing would be most of this module's import time
TYPE_CHECKING = False

# public name -> the module defining it (a module itself when the name is a submodule)
_ORIGINAL_API: dict[str, str] = {
    "upload_env": "cluster_pack.uploader",
    "upload_zip": "cluster_pack.uploader",
    "upload_spec": "cluster_pack.uploader",
    "get_pyenv_usage_from_archive": "cluster_pack.packaging",
    "get_default_fs": "cluster_pack.packaging",
    "get_editable_requirements": "cluster_pack.packaging",
    "get_non_editable_requirements": "cluster_pack.packaging",
    "detect_packer_from_file": "cluster_pack.packaging",
    "zip_path": "cluster_pack.packaging",
    "Packer": "cluster_pack.packaging",
    "PEX_PACKER": "cluster_pack.packaging",
    "LayoutOptimization": "cluster_pack.settings",
    "get_layout_optimization": "cluster_pack.settings",
    "set_layout_optimization": "cluster_pack.settings",
    "get_venv_optimization_level": "cluster_pack.settings",
    "set_venv_optimization_level": "cluster_pack.settings",
    "is_uv_available": "cluster_pack.settings",
    "ClusterPackError": "cluster_pack.errors",
}
# submodules the original's __init__ imported eagerly (``cluster_pack.filesystem`` worked
# after a bare ``import cluster_pack``), and master's ``cluster_pack.yarn_launcher``
_ORIGINAL_MODULES: dict[str, str] = {
    "packaging": "cluster_pack.packaging",
    "filesystem": "cluster_pack.filesystem",
    "skein": "cluster_pack.skein",
    "yarn_launcher": "cluster_pack.skein.skein_launcher",
}
_NEW_API: dict[str, str] = {
    "publish_env": "cluster_pack.store.publish",
    "publish_zip": "cluster_pack.store.publish",
    "publish_spec": "cluster_pack.store.publish",
    "PublishResult": "cluster_pack.store.publish",
    "LaunchSpec": "cluster_pack.launch.spec",
    "Resource": "cluster_pack.launch.spec",
    "build_launch_spec": "cluster_pack.launch.spec",
    "module_launch_spec": "cluster_pack.launch.spec",
    "function_launch_spec": "cluster_pack.launch.spec",
    "fetch_env": "cluster_pack.launch.local",
    "ConfigurationError": "cluster_pack.errors",
    "BuildError": "cluster_pack.errors",
    "StorageError": "cluster_pack.errors",
    "KerberosError": "cluster_pack.errors",
    "IntegrityError": "cluster_pack.errors",
    "ClusterError": "cluster_pack.errors",
    "JobFailedError": "cluster_pack.errors",
}

__all__ = sorted({*_ORIGINAL_API, *_ORIGINAL_MODULES, *_NEW_API, "__version__"})


def __getattr__(name: str) -> object:
    if name in _ORIGINAL_MODULES:
        value = importlib.import_module(_ORIGINAL_MODULES[name])
    elif name in _ORIGINAL_API or name in _NEW_API:
        module = importlib.import_module(_ORIGINAL_API.get(name) or _NEW_API[name])
        value = getattr(module, name)
    else:
        raise AttributeError(f"module 'cluster_pack' has no attribute {name!r}")
    globals()[name] = value  # the next access is a plain attribute lookup
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # what type checkers and IDEs see: the same names, imported eagerly
    from cluster_pack import filesystem, packaging, skein  # noqa: F401
    from cluster_pack.errors import (  # noqa: F401
        BuildError,
        ClusterError,
        ClusterPackError,
        ConfigurationError,
        IntegrityError,
        JobFailedError,
        KerberosError,
        StorageError,
    )
    from cluster_pack.launch.local import fetch_env  # noqa: F401
    from cluster_pack.launch.spec import (  # noqa: F401
        LaunchSpec,
        Resource,
        build_launch_spec,
        function_launch_spec,
        module_launch_spec,
    )
    from cluster_pack.packaging import (  # noqa: F401
        PEX_PACKER,
        Packer,
        detect_packer_from_file,
        get_default_fs,
        get_editable_requirements,
        get_non_editable_requirements,
        get_pyenv_usage_from_archive,
        zip_path,
    )
    from cluster_pack.settings import (  # noqa: F401
        LayoutOptimization,
        get_layout_optimization,
        get_venv_optimization_level,
        is_uv_available,
        set_layout_optimization,
        set_venv_optimization_level,
    )
    from cluster_pack.skein import skein_launcher as yarn_launcher  # noqa: F401
    from cluster_pack.store.publish import (  # noqa: F401
        PublishResult,
        publish_env,
        publish_spec,
        publish_zip,
    )
    from cluster_pack.uploader import upload_env, upload_spec, upload_zip  # noqa: F401
