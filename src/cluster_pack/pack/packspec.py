"""What to pack: the environment's distributions after the user's selection.

The selection rules are the original cluster-pack's, with names compared after PEP 503
normalisation (the original compared substrings, so adding ``torchvision`` dropped
``torch``):

1. ``additional_packages`` ({name: version}) replace an installed distribution of the
   same name, or are added;
2. ``ignored_packages`` are removed;
3. ``only_packages``, when given, keeps only the named packages (additional ones too).

The :meth:`PackSpec.fingerprint` is what "unchanged" means: distribution names,
versions and installed content, Python major.minor, the platform tag and the build
options. Kernel strings or micro versions never cause a rebuild.
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from typing import Collection, Dict, List, Mapping, Optional, Tuple

from cluster_pack.errors import ConfigurationError, PackageSelectionError
from cluster_pack.pack.environment import Distribution, Environment, canonical_name
from cluster_pack.pack.layout import FileKind
from cluster_pack.settings import LayoutOptimization

# Bump when the artifact layout changes, so that old artifacts are rebuilt.
# 2: PEX-INFO inherits the node's site-packages as a fallback; the single file by default.
FORMAT_VERSION = 2


@dataclass(frozen=True)
class Requirement:
    """One distribution of the packed environment."""

    name: str
    version: str
    # the installed distribution to pack from, or None when it must be resolved
    installed: Optional[Distribution] = None

    @property
    def key(self) -> str:
        return canonical_name(self.name)

    def __str__(self) -> str:
        return f"{self.name}=={self.version}" if self.version else self.name


@dataclass(frozen=True)
class PackSpec:
    """Everything that decides the content of the artifact."""

    environment: Environment
    requirements: Tuple[Requirement, ...]
    large: bool = False  # the unzipped ``.pex.zip`` layout
    parts: bool = False  # published as content-addressed parts (pex ``packed`` layout)
    single_file: bool = True  # a single-file artifact (``.pex`` zipapp or ``.pex.zip``)
    compress: bool = False
    include_pex_tools: bool = False
    resolve_from_index: bool = False  # C_PACK_VENV_OPTIMIZATION_LEVEL=0
    layout_optimization: str = "SLOW_FAST_SMALL"
    additional_repo: Tuple[str, ...] = ()
    additional_indexes: Tuple[str, ...] = ()
    # include_editable=True: (arcname, source file) of the editable projects, baked into
    # the single file as the pex's own code
    editable_sources: Tuple[Tuple[str, str], ...] = ()
    # include_interpreter: the identity of the base interpreter shipped as a part
    # (:func:`cluster_pack.pack.interpreter.identity`), "" when the node's Python is used
    interpreter: str = ""

    def __post_init__(self) -> None:
        """The layout fields must fit together (:func:`~cluster_pack.pack.layout.choose_layout`
        chooses them so)."""
        if not (self.parts or self.single_file):
            raise ConfigurationError("a PackSpec must ask for the parts, the single file or "
                                     "both: there is nothing to build")
        if self.large and not self.single_file:
            raise ConfigurationError("large describes the single file (.pex.zip), and this "
                                     "PackSpec has none")
        LayoutOptimization.from_string(self.layout_optimization)  # a known name

    @property
    def file_kind(self) -> FileKind:
        """The single file's kind (:class:`~cluster_pack.pack.layout.FileKind`)."""
        return FileKind.of(self.large, self.layout_optimization)

    @property
    def package_installed(self) -> List[str]:
        """``name==version`` lines, the original manifest's ``package_installed`` field."""
        return sorted(str(r) for r in self.requirements)

    @property
    def to_resolve(self) -> Tuple[Requirement, ...]:
        """Requirements that are not installed in the venv (need a resolver)."""
        return tuple(r for r in self.requirements if r.installed is None)

    def fingerprint(self) -> str:
        """sha256 over everything that changes the artifact; equal means 'skip'."""
        payload = {
            "format": FORMAT_VERSION,
            "python": self.environment.python_version,
            "platform": self.environment.platform_tag,
            "requirements": sorted(
                [r.key, r.version, r.installed.content_hash() if r.installed else ""]
                for r in self.requirements),
            "large": self.large,
            "parts": self.parts,
            "single_file": self.single_file,
            "editable_sources": _sources_digest(self.editable_sources),
            "compress": self.compress,
            "layout": self.layout_optimization if self.large else "",
            "tools": self.include_pex_tools,
            "index": self.resolve_from_index,
        }
        if self.interpreter:  # absent otherwise: fingerprints published before are kept
            payload["interpreter"] = self.interpreter
        blob = json.dumps(payload, sort_keys=True).encode()
        return hashlib.sha256(blob).hexdigest()


def _sources_digest(sources: Tuple[Tuple[str, str], ...]) -> str:
    """Names, sizes and modification times of the editable sources: an edit, an added
    or a removed file changes it (reading every file at each call would not be cheap)."""
    if not sources:
        return ""
    digest = hashlib.sha256()
    for arcname, path in sorted(sources):
        try:
            st = os.stat(path)
            digest.update(f"{arcname}\0{st.st_size}\0{st.st_mtime_ns}\n".encode())
        except OSError:
            digest.update(f"{arcname}\0missing\n".encode())
    return digest.hexdigest()


def _normalize_names(names: Optional[Collection[str]], argument: str) -> Optional[List[str]]:
    if names is None:
        return None
    if isinstance(names, str):
        raise ConfigurationError(
            f"{argument} must be a list of package names, not the string {names!r}")
    return [canonical_name(n) for n in names]


def select_requirements(
    environment: Environment,
    additional_packages: Optional[Mapping[str, str]] = None,
    ignored_packages: Optional[Collection[str]] = None,
    only_packages: Optional[Collection[str]] = None,
) -> Tuple[Requirement, ...]:
    """Apply the original's selection rules (see module doc) with normalised names."""
    installed = environment.distributions
    selected: Dict[str, Requirement] = {
        key: Requirement(d.name, d.version, d) for key, d in installed.items()}

    if additional_packages:
        if not isinstance(additional_packages, Mapping):
            raise ConfigurationError(
                "additional_packages must be a dict {name: version} "
                f"(version may be ''), got {additional_packages!r}")
        for name, version in additional_packages.items():
            key = canonical_name(name)
            version = (version or "").strip()
            current = installed.get(key)
            if current is not None and (not version or version == current.version):
                selected[key] = Requirement(current.name, current.version, current)
            else:
                selected[key] = Requirement(name, version, None)

    for key in _normalize_names(ignored_packages, "ignored_packages") or []:
        selected.pop(key, None)

    only = _normalize_names(only_packages, "only_packages")
    if only is not None:
        missing = [n for n in only if n not in selected]
        if missing:
            raise PackageSelectionError(
                f"only_packages names {', '.join(sorted(missing))}, which "
                f"{'is' if len(missing) == 1 else 'are'} not installed in "
                f"{environment.prefix}; install it or remove it from only_packages")
        selected = {k: v for k, v in selected.items() if k in set(only)}

    return tuple(sorted(selected.values(), key=lambda r: r.key))
