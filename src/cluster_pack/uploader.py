"""The original ``cluster_pack.uploader`` API, as thin wrappers over :mod:`publish`."""

from __future__ import annotations

import logging
import platform as _platform
import sys
from typing import Any, Collection, Dict, List, Optional, Tuple, Union

from cluster_pack import packaging
from cluster_pack.errors import ConfigurationError
from cluster_pack.store import publish
from cluster_pack.store.manifest import PACKAGE_INSTALLED_KEY, PLATFORM_KEY, PYTHON_VERSION_KEY  # noqa: F401

_logger = logging.getLogger(__name__)


def upload_env(
    package_path: Optional[str] = None,
    packer: Optional[packaging.Packer] = None,
    additional_packages: Optional[Dict[str, str]] = None,
    ignored_packages: Optional[Collection[str]] = None,
    only_packages: Optional[Collection[str]] = None,
    force_upload: bool = False,
    include_editable: bool = False,
    fs_args: Optional[Dict[str, Any]] = None,
    allow_large_pex: bool = False,
    include_pex_tools: bool = False,
    additional_repo: Optional[Union[str, List[str]]] = None,
    additional_indexes: Optional[List[str]] = None,
    include_interpreter: Optional[bool] = None,
) -> Tuple[str, str]:
    """Pack the current virtualenv into a PEX and publish it; skip when unchanged.

    At the returned path there is what the original published there: a ``.pex`` zipapp
    (``.pex.zip`` when large), runnable with nothing but a Python of the same version
    (``python env.pex -m mod``). By default (``C_PACK_LAYOUT=pex+parts``) the same
    environment is also published beside it as content-addressed parts, one per
    distribution and uploaded only when new, which cluster-pack's own launchers localize.
    ``C_PACK_LAYOUT=parts`` publishes the parts only (nothing at the returned path),
    ``C_PACK_LAYOUT=pex`` the single file only.

    :param package_path: where to publish (``hdfs://...``, ``s3://...``, a local path);
        default ``{fs.defaultFS}/user/{user}/envs/{env}.pex`` with a Hadoop configuration,
        else ``~/.cache/cluster-pack/envs/{env}.pex``, ``{env}`` being the basename of
        ``$VIRTUAL_ENV``
    :param packer: only ``PEX_PACKER`` exists (kept for compatibility)
    :param additional_packages: ``{name: version}`` to add or replace (resolved with uv
        when not installed)
    :param ignored_packages: names to leave out
    :param only_packages: keep only these names
    :param force_upload: rebuild and republish even when unchanged (parts: also read back
        the published parts and repair any that is damaged)
    :param include_editable: bake the editable projects into the single file (the artifact
        alone imports them); without it cluster-pack's launchers ship them at each launch
    :param fs_args: arguments for the storage filesystem (e.g. S3 endpoint and keys)
    :param allow_large_pex: publish the single file in the unpacked ``.pex.zip`` layout
        (chosen automatically for environments too large for a zipapp)
    :param include_pex_tools: include the pex tools in the artifact
    :param additional_repo: extra package indexes for additional packages
    :param additional_indexes: extra find-links pages for additional packages
    :param include_interpreter: also publish the venv's base interpreter as a part, and
        start jobs with it instead of the node's Python (default:
        ``C_PACK_INCLUDE_INTERPRETER``); the single file at the returned path is unchanged
    :return: ``(package_path, env_name)``

    >>> path, name = upload_env(package_path="/tmp/envs/demo.pex")   # doctest: +SKIP
    """
    if packer is not None and packer is not packaging.PEX_PACKER and \
            packer.extension() != "pex":
        raise ConfigurationError(
            f"unsupported packer {packer!r}: only PEX_PACKER exists; pass packer=None")
    result = publish.publish_env(
        package_path, additional_packages, ignored_packages, only_packages, force_upload,
        include_editable, fs_args, allow_large_pex, include_pex_tools, additional_repo,
        additional_indexes, include_interpreter=include_interpreter)
    _logger.info("%s: %s", result.path, result.reason)
    return result.path, result.env_name


def upload_zip(
    zip_file: str,
    package_path: Optional[str] = None,
    force_upload: bool = False,
    fs_args: Optional[Dict[str, Any]] = None,
) -> str:
    """Publish an existing ``.pex``/``.pex.zip`` (local path or http(s) URL); returns its path."""
    return publish.publish_zip(zip_file, package_path, force_upload, fs_args).path


def upload_spec(
    spec_file: str,
    package_path: Optional[str] = None,
    force_upload: bool = False,
    fs_args: Optional[Dict[str, Any]] = None,
    allow_large_pex: bool = False,
) -> str:
    """Build an environment from a ``requirements.txt`` and publish it; returns its path."""
    return publish.publish_spec(spec_file, package_path, force_upload, fs_args,
                                allow_large_pex).path


def get_platform_and_python_version() -> Tuple[str, str]:
    """The original's (platform string, python x.y.z) pair."""
    vi = sys.version_info
    return _platform.platform(), f"{vi.major}.{vi.minor}.{vi.micro}"


def build_metadata_dict(current_packages_list: List[str]) -> Dict:
    """The original's manifest content for a package list."""
    cur_platform, python_version = get_platform_and_python_version()
    return {PACKAGE_INSTALLED_KEY: current_packages_list, PLATFORM_KEY: cur_platform,
            PYTHON_VERSION_KEY: python_version}
