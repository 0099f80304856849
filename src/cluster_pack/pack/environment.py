"""What is installed: the interpreter, its platform and the distributions of a venv.

Everything is read in-process from the metadata on disk (``importlib.metadata``,
PEP 610 ``direct_url.json``, legacy ``.egg-link`` files); no ``pip list`` subprocess.

>>> env = current_environment()
>>> sorted(env.distributions)[:3]          # doctest: +SKIP
['certifi', 'charset-normalizer', 'cluster-pack']
"""

from __future__ import annotations

import ast
import hashlib
import importlib.metadata as md
import json
import os
import re
import sys
import sysconfig
from dataclasses import dataclass, field
from pathlib import Path
from typing import Dict, List, Optional, Tuple
from urllib.parse import unquote, urlparse

from cluster_pack.errors import BrokenDistributionError, NotInVirtualEnvError
from cluster_pack.pack.record import read_record

# Propagated by the launchers so that code running in a container knows which
# published environment it runs from (jobs launched from jobs).
PACKAGE_PATH_ENV_VAR = "C_PACK_PACKAGE_PATH"
# Propagated too: the localized artifact path inside the container.
LOCAL_ARTIFACT_ENV_VAR = "C_PACK_LOCAL_ARTIFACT"


def canonical_name(name: str) -> str:
    """PEP 503 normalisation: ``Foo.Bar_baz`` -> ``foo-bar-baz``."""
    return re.sub(r"[-_.]+", "-", name).lower()


@dataclass(frozen=True)
class Distribution:
    """One installed distribution."""

    name: str
    version: str
    metadata_dir: Path
    editable_location: Optional[Path] = None
    # sys.path entries this distribution adds (editable installs only)
    editable_paths: Tuple[Path, ...] = ()
    # top-level import names mapped to their source path (editable finder installs)
    editable_mapping: Tuple[Tuple[str, Path], ...] = ()

    @property
    def key(self) -> str:
        return canonical_name(self.name)

    @property
    def editable(self) -> bool:
        return self.editable_location is not None

    @property
    def requirement(self) -> str:
        return f"{self.name}=={self.version}"

    def content_hash(self) -> str:
        """A cheap fingerprint of what is installed: the sha256 of the RECORD file.

        RECORD lists every installed file with its own sha256, so it changes whenever
        the content does; reading it costs one small file read.
        """
        digest = hashlib.sha256(f"{self.key}=={self.version}\n".encode())
        record = read_record(self.metadata_dir)
        if record is not None:  # egg-info installs have none: name and version only
            digest.update(record.raw)
        return digest.hexdigest()

    def top_level_names(self) -> List[str]:
        top_level = self.metadata_dir / "top_level.txt"
        try:
            return [n.strip() for n in top_level.read_text().splitlines() if n.strip()]
        except OSError:
            return []


@dataclass(frozen=True)
class Environment:
    """A Python environment: interpreter facts plus its installed distributions."""

    prefix: Path
    base_executable: str
    python_version: str  # major.minor, e.g. "3.11"
    python_full_version: str
    platform_tag: str  # most specific wheel tag, e.g. "cp311-cp311-manylinux_2_36_x86_64"
    site_packages: Tuple[Path, ...]
    distributions: Dict[str, Distribution] = field(default_factory=dict)
    editables: Dict[str, Distribution] = field(default_factory=dict)
    name: str = "default"
    is_venv: bool = True

    @property
    def packed_distributions(self) -> Dict[str, Distribution]:
        """Non-editable distributions (what goes into the artifact)."""
        return self.distributions


def site_packages_dirs() -> Tuple[Path, ...]:
    """The running interpreter's site-packages directories (purelib, platlib), existing ones."""
    paths: List[Path] = []
    for key in ("purelib", "platlib"):
        p = Path(sysconfig.get_paths()[key])
        if p.is_dir() and all(p.resolve() != q.resolve() for q in paths):
            paths.append(p)
    return tuple(paths)


def _platform_tag() -> str:
    from packaging import tags

    return str(next(iter(tags.sys_tags())))


def default_env_name(prefix: Optional[Path] = None) -> str:
    """The name environments are published under by default (``<envs dir>/<name>.pex``).

    The original 0.3.19 rule: the basename of ``$VIRTUAL_ENV`` when that variable is set
    (exactly ``os.path.basename(os.environ["VIRTUAL_ENV"])``). When it is not set, the
    basename of the venv we run in (``prefix``, default ``sys.prefix``): 0.3.19 said
    ``default`` there, which made every non-activated venv overwrite the same artifact.
    Outside any virtualenv (and no ``prefix``): ``default``.

    (The original master appended ``_<sha1 of the path>[:7]``; that is not done here,
    so the default path is the one 0.3.19 published to.)
    """
    virtual_env = os.environ.get("VIRTUAL_ENV")
    if virtual_env:
        return os.path.basename(virtual_env)
    if prefix is None:
        if sys.prefix == sys.base_prefix:
            return "default"
        prefix = Path(sys.prefix)
    return os.path.basename(os.path.normpath(str(prefix))) or "default"


def _read_pth_paths(pth_file: Path, site_dir: Path) -> Tuple[List[Path], List[Path]]:
    """(directories added to sys.path, finder modules imported) by a ``.pth`` file."""
    dirs: List[Path] = []
    finders: List[Path] = []
    try:
        lines = pth_file.read_text(encoding="utf-8").splitlines()
    except OSError:
        return dirs, finders
    for line in lines:
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith(("import ", "import\t")):
            for module in re.findall(r"import\s+([\w.]+)", line):
                finder = site_dir / f"{module}.py"
                if finder.is_file():
                    finders.append(finder)
            continue
        path = Path(line)
        if not path.is_absolute():
            path = site_dir / path
        dirs.append(path)
    return dirs, finders


def _finder_mapping(finder: Path) -> Dict[str, Path]:
    """The ``MAPPING`` dict of a setuptools PEP 660 editable finder module."""
    try:
        tree = ast.parse(finder.read_text(encoding="utf-8"))
    except (OSError, SyntaxError):
        return {}
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(
                isinstance(t, ast.Name) and t.id == "MAPPING" for t in node.targets):
            try:
                value = ast.literal_eval(node.value)
            except ValueError:
                return {}
            return {str(k): Path(v) for k, v in value.items()}
    return {}


def _editable_location(dist: md.Distribution) -> Optional[Path]:
    try:
        raw = dist.read_text("direct_url.json")
    except Exception:
        raw = None
    if not raw:
        return None
    try:
        info = json.loads(raw)
    except ValueError:
        return None
    if not info.get("dir_info", {}).get("editable"):
        return None
    url = urlparse(info.get("url", ""))
    return Path(unquote(url.path)) if url.scheme == "file" else None


def _header_name_and_version(dist: md.Distribution) -> Tuple[str, str]:
    """Name and Version from the metadata's header lines ("" when not found there).

    importlib.metadata parses the whole file (long description included) with the email
    parser, twice for both fields: most of the time of an unchanged ``upload_env``.
    """
    text = dist.read_text("METADATA") or dist.read_text("PKG-INFO") or ""
    found: Dict[str, str] = {}
    for line in text.splitlines():
        if not line.strip():
            break  # the end of the headers
        key, sep, value = line.partition(":")
        if sep and line[0] not in " \t":
            found.setdefault(key.strip().lower(), value.strip())
        if "name" in found and "version" in found:
            break
    return found.get("name", ""), found.get("version", "")


def _describe(dist: md.Distribution, site_dir: Path) -> Distribution:
    # ignore: PathDistribution's directory is private (_path); no public attribute has it
    metadata_dir = Path(str(dist._path))  # type: ignore[attr-defined]
    try:
        name, version = _header_name_and_version(dist)
        if not name or not version:  # unusual metadata: the full parser decides
            name, version = dist.metadata["Name"], dist.version
    except Exception as exc:  # unreadable METADATA
        raise BrokenDistributionError(
            f"cannot read the metadata of {metadata_dir}: {exc}; "
            "reinstall that package or remove the directory") from None
    if not name or not version:
        raise BrokenDistributionError(
            f"the distribution at {metadata_dir} has no Name or Version in its metadata; "
            "reinstall that package or remove the directory")
    location = _editable_location(dist)
    if location is None:
        return Distribution(name, version, metadata_dir)
    paths: List[Path] = []
    mapping: Dict[str, Path] = {}
    for entry in dist.files or []:
        if str(entry).endswith(".pth"):
            dirs, finders = _read_pth_paths(site_dir / str(entry), site_dir)
            paths.extend(dirs)
            for finder in finders:
                mapping.update(_finder_mapping(finder))
    return Distribution(name, version, metadata_dir, editable_location=location,
                        editable_paths=tuple(paths),
                        editable_mapping=tuple(sorted(mapping.items())))


def _legacy_editables(site_dirs: Tuple[Path, ...]) -> List[Distribution]:
    """``setup.py develop`` / ``pip install -e`` with a legacy ``.egg-link`` file."""
    found = []
    for site_dir in site_dirs:
        for link in sorted(site_dir.glob("*.egg-link")):
            try:
                target = Path(link.read_text().splitlines()[0].strip())
            except (OSError, IndexError):
                continue
            for dist in md.distributions(path=[str(target)]):
                described = _describe(dist, site_dir)
                found.append(Distribution(
                    described.name, described.version, described.metadata_dir,
                    editable_location=target, editable_paths=(target,)))
    return found


def current_environment() -> Environment:
    """Describe the running interpreter's environment.

    Raises :class:`NotInVirtualEnvError` when not running in a virtualenv.
    """
    prefix = Path(sys.prefix)
    is_venv = sys.prefix != sys.base_prefix
    if not is_venv:
        raise NotInVirtualEnvError(
            f"{sys.executable} is not running in a virtualenv, and cluster-pack packs the "
            "current virtualenv: activate one (python -m venv .venv && . .venv/bin/activate), "
            "or set C_PACK_ENV_FALLBACK_PATH to a pre-built .pex")
    return inspect_site_packages(prefix, site_packages_dirs(), is_venv=is_venv)


def inspect_site_packages(prefix: Path, site_dirs: Tuple[Path, ...],
                          is_venv: bool = True) -> Environment:
    """Describe the environment rooted at ``prefix`` (must be the running interpreter's)."""
    distributions: Dict[str, Distribution] = {}
    editables: Dict[str, Distribution] = {}
    for site_dir in site_dirs:
        for dist in md.distributions(path=[str(site_dir)]):
            described = _describe(dist, site_dir)
            target = editables if described.editable else distributions
            # The first one found on the path wins, as it does at import time.
            target.setdefault(described.key, described)
    for described in _legacy_editables(site_dirs):
        distributions.pop(described.key, None)
        editables.setdefault(described.key, described)
    vi = sys.version_info
    return Environment(
        prefix=prefix,
        base_executable=getattr(sys, "_base_executable", sys.executable),
        python_version=f"{vi.major}.{vi.minor}",
        python_full_version=f"{vi.major}.{vi.minor}.{vi.micro}",
        platform_tag=_platform_tag(),
        site_packages=site_dirs,
        distributions=distributions,
        editables=editables,
        name=default_env_name(prefix if is_venv else None),
        is_venv=is_venv,
    )


def running_artifact() -> Optional[str]:
    """The local path of the packed environment we run from, or None.

    The pex runtime exports ``PEX``; our launchers also export ``C_PACK_LOCAL_ARTIFACT``.
    """
    for var in (LOCAL_ARTIFACT_ENV_VAR, "PEX"):
        value = os.environ.get(var)
        if value:
            return value
    return None
