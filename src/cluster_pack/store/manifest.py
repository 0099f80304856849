"""The manifest: a small JSON file published next to every artifact.

It keeps the original cluster-pack's fields (``package_installed``, ``platform``,
``python_version``) so older readers still work, and adds what makes publishing safe
and starts cheap: the format version, the fingerprint that decides whether anything
must be rebuilt, the artifact's size and sha256 (readers trust the manifest, and
refuse an artifact that does not match it), and how to run it.

The manifest of ``envs/myenv.pex`` is ``envs/myenv.json`` and the one of
``envs/myenv.pex.zip`` is ``envs/myenv.pex.json``: the original's naming.

Format 2 adds the ``parts`` layout (see :mod:`cluster_pack.pack.parts`): the manifest then lists
the parts of the packed pex, and its ``sha256`` names the whole set (``parts.tree_sha256``).
By default the original's single file is published at the artifact's path as well: its
size and sha256 are then ``file_size`` and ``file_sha256`` (readers that do not know these
fields use the parts, as before).
"""

from __future__ import annotations

import json
import logging
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Dict, List, Optional

from cluster_pack.errors import ConfigurationError, IntegrityError
from cluster_pack.pack.interpreter import INTERPRETER_PART_PATH, InterpreterInfo
from cluster_pack.pack.layout import LARGE_PEX_SUFFIX, PEX_SUFFIX, PUBLISHED_PEX, Layout
from cluster_pack.pack.parts import Part, parts_from_json, tree_sha256
from cluster_pack.store.storage import Store

MANIFEST_FORMAT = 2
# written instead of MANIFEST_FORMAT when the manifest names an interpreter part
INTERPRETER_MANIFEST_FORMAT = 3
LAYOUT_PARTS = Layout.PARTS  # the manifest's layout of an environment published as parts
# A manifest is small; refuse to parse anything bigger (a mis-pointed path).
MAX_MANIFEST_BYTES = 16 * 1024 * 1024

# The original's key names, kept as module constants for callers that used them.
PACKAGE_INSTALLED_KEY = "package_installed"
PLATFORM_KEY = "platform"
PYTHON_VERSION_KEY = "python_version"


def manifest_path(package_path: str) -> str:
    """``.../env.pex`` -> ``.../env.json``; ``.../env.pex.zip`` -> ``.../env.pex.json``."""
    head, sep, name = package_path.rpartition("/")
    stem = name.rsplit(".", 1)[0] if "." in name else name
    return f"{head}{sep}{stem}.json"


@dataclass
class RunInfo:
    """How a node runs the artifact once localized under ``dest_path``."""

    dest_path: str
    interpreter_cmd: str
    must_unpack: bool


@dataclass
class Manifest:
    """What is in a published environment."""

    fingerprint: str
    artifact_name: str
    size: int
    sha256: str
    package_installed: List[str]
    platform: str
    python_version: str
    run: RunInfo
    # PUBLISHED_PEX (zipapp), PUBLISHED_PEX_ZIP (unpacked large layout) or LAYOUT_PARTS
    layout: str = PUBLISHED_PEX
    compressed: bool = False
    env_name: str = ""
    created_at: float = field(default_factory=time.time)
    created_by: str = ""
    format_version: int = MANIFEST_FORMAT
    extra: Dict[str, Any] = field(default_factory=dict)
    parts: List[Part] = field(default_factory=list)  # layout "parts" only
    # layout "parts" with the single file at the artifact's path too (the default)
    file_size: Optional[int] = None
    file_sha256: Optional[str] = None
    # include_interpreter: the base interpreter, one more part of the pool
    interpreter: Optional[InterpreterInfo] = None

    @property
    def is_parts(self) -> bool:
        return self.layout == LAYOUT_PARTS

    def interpreter_part(self) -> Optional[Part]:
        """The interpreter as a part of the pool (None without one)."""
        if self.interpreter is None:
            return None
        return Part(INTERPRETER_PART_PATH, self.interpreter.sha256, self.interpreter.size)

    @property
    def pool_parts(self) -> List[Part]:
        """Every part of the pool this manifest needs: the pex's and the interpreter."""
        extra = self.interpreter_part()
        return [*self.parts, extra] if extra is not None else list(self.parts)

    def to_json(self) -> bytes:
        data = asdict(self)
        if self.interpreter is None:
            del data["interpreter"]  # readers of format 2 see the same fields as before
        else:
            data["interpreter"] = self.interpreter.to_json()
        return (json.dumps(data, indent=2, sort_keys=True) + "\n").encode()

    @classmethod
    def from_json(cls, raw: bytes, where: str = "manifest") -> "Manifest":
        """Parse and validate; raises :class:`IntegrityError` naming ``where``."""
        if len(raw) > MAX_MANIFEST_BYTES:
            raise IntegrityError(f"{where} is {len(raw)} bytes, too large to be a manifest")
        try:
            data = json.loads(raw)
        except ValueError as exc:
            raise IntegrityError(f"{where} is not valid JSON: {exc}") from None
        if not isinstance(data, dict):
            raise IntegrityError(f"{where} is not a JSON object")
        if "format_version" not in data:
            raise LegacyManifest(data)
        if data["format_version"] > INTERPRETER_MANIFEST_FORMAT:
            raise IntegrityError(
                f"{where} has format {data['format_version']}, newer than this cluster-pack "
                f"understands ({INTERPRETER_MANIFEST_FORMAT}): upgrade cluster-pack")
        try:
            run = RunInfo(**data.pop("run"))
            parts = parts_from_json(data.pop("parts", None) or [], where)
            raw_interpreter = data.pop("interpreter", None)
            interpreter = (InterpreterInfo.from_json(raw_interpreter, where)
                           if raw_interpreter is not None else None)
            manifest = cls(run=run, parts=parts, interpreter=interpreter,
                           **{k: v for k, v in data.items()
                                                    if k in cls.__dataclass_fields__})
        except (TypeError, KeyError) as exc:
            raise IntegrityError(f"{where} is missing or has unexpected fields: {exc}") from None
        manifest.validate(where)
        return manifest

    def validate(self, where: str = "manifest") -> None:
        name = self.artifact_name
        if not name or "/" in name or "\\" in name or name in (".", ".."):
            raise IntegrityError(
                f"{where} names the artifact {name!r}; a manifest may only describe the "
                "artifact next to it")
        if not isinstance(self.size, int) or self.size < 0:
            raise IntegrityError(f"{where} has an invalid size {self.size!r}")
        if not (isinstance(self.sha256, str) and len(self.sha256) == 64):
            raise IntegrityError(f"{where} has an invalid sha256 {self.sha256!r}")
        if self.interpreter is not None and not self.is_parts:
            raise IntegrityError(f"{where} names an interpreter without the parts layout")
        if self.is_parts:
            if not self.parts or "PEX-INFO" not in {p.path for p in self.parts}:
                raise IntegrityError(f"{where} describes a parts layout without its PEX-INFO")
            for part in self.parts:
                part.validate(where)
            if self.file_sha256 is not None and not (
                    isinstance(self.file_sha256, str) and len(self.file_sha256) == 64
                    and isinstance(self.file_size, int) and self.file_size >= 0):
                raise IntegrityError(f"{where} describes its single file with an invalid "
                                     f"size or sha256 ({self.file_size!r}, {self.file_sha256!r})")
            if self.interpreter is not None and self.format_version < INTERPRETER_MANIFEST_FORMAT:
                raise IntegrityError(f"{where} names an interpreter but has format "
                                     f"{self.format_version}")
            if tree_sha256(self.parts) != self.sha256:
                raise IntegrityError(
                    f"{where}: its sha256 does not match the parts it lists; refusing it")


class LegacyManifest(Exception):
    """A manifest written by the original cluster-pack (no format version)."""

    def __init__(self, data: Dict[str, Any]):
        super().__init__("legacy manifest")
        self.data = data

    @property
    def package_installed(self) -> List[str]:
        return list(self.data.get(PACKAGE_INSTALLED_KEY, []))


def artifact_name(package_path: str) -> str:
    """The artifact's file name, last component of its path or URL.

    >>> artifact_name("hdfs://nn/user/me/envs/me.pex.zip")
    'me.pex.zip'
    """
    return package_path.rstrip("/").rsplit("/", 1)[-1]


def run_info_for(artifact_name: str, layout: str = "") -> RunInfo:
    """The original's ``get_pyenv_usage_from_archive`` rules (and the parts layout's:
    the packed directory is assembled as ``<name>.pex`` and run through its ``__main__.py``).

    Raises :class:`~cluster_pack.errors.ConfigurationError` (a ``ValueError``, as the
    original's) for a name that is neither ``.pex`` nor ``.pex.zip``."""
    if layout == LAYOUT_PARTS:
        return RunInfo(artifact_name, f"./{artifact_name}/__main__.py", False)
    if artifact_name.endswith(LARGE_PEX_SUFFIX):
        return RunInfo("pyenv", "pyenv/__main__.py", True)
    if artifact_name.endswith(PEX_SUFFIX):
        return RunInfo(artifact_name, f"./{artifact_name}", False)
    raise ConfigurationError(
        f"{artifact_name}: unsupported artifact, the path must end in .pex or .pex.zip")


def summarize(manifest: Manifest) -> Dict[str, Optional[Any]]:
    """A flat, human-oriented summary (for ``cluster-pack info``)."""
    return {
        "artifact": manifest.artifact_name,
        "size": manifest.size,
        "sha256": manifest.sha256,
        "python": manifest.python_version,
        "platform": manifest.platform,
        "distributions": len(manifest.package_installed),
        "layout": manifest.layout,
        "parts": len(manifest.parts) if manifest.is_parts else None,
        "interpreter": (f"{manifest.interpreter.version} ({manifest.interpreter.size} bytes)"
                        if manifest.interpreter else None),
        "created_at": manifest.created_at,
        "fingerprint": manifest.fingerprint,
    }


def read_manifest(store: Store, path: str, strict: bool = False) -> Optional[Manifest]:
    """The manifest of the artifact at ``path``, None if absent or from the original tool.

    A damaged manifest is ignored (logged) when publishing, which rebuilds anyway; readers
    that launch jobs pass ``strict=True`` and get the :class:`IntegrityError` naming it.
    """
    where = store.url(manifest_path(path))
    raw = store.read_bytes(manifest_path(path), MAX_MANIFEST_BYTES)
    if raw is None:
        return None
    try:
        return Manifest.from_json(raw, where)
    except LegacyManifest:
        return None
    except IntegrityError as exc:
        if strict:
            raise
        logging.getLogger(__name__).warning("ignoring %s and rebuilding: %s", where, exc)
        return None


def read_published_manifest(package_path: str,
                            fs_args: Optional[Dict[str, Any]] = None) -> Optional[Manifest]:
    """The manifest published next to ``package_path`` (any storage URL), for a launcher:
    None when there is none (an artifact of the original tool), an
    :class:`~cluster_pack.errors.IntegrityError` when it is damaged.

    >>> read_published_manifest("hdfs:///user/me/envs/me.pex")   # doctest: +SKIP
    """
    store, path = Store.for_url(package_path, fs_args)
    return read_manifest(store, path, strict=True)
