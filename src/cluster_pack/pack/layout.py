"""What an environment is published as: the layout and the single file's kind, chosen once.

:func:`choose_layout` turns the inputs (the requested :class:`Layout`, ``allow_large_pex``,
the extension of an explicit ``package_path``, the installed size against the zipapp
limits, the :class:`~cluster_pack.settings.LayoutOptimization`) into a
:class:`LayoutChoice`. The rules:

1. the requested layout (``C_PACK_LAYOUT``, default ``pex+parts``) says whether the parts
   and the single file are published;
2. an explicitly large single file (``allow_large_pex=True`` or a ``package_path`` ending
   in ``.pex.zip``) is published even when ``C_PACK_LAYOUT=parts``: the call's argument
   wins over the environment (``pex+parts``). A layout passed explicitly (``cluster-pack
   upload --layout parts``) with an explicitly large single file contradicts it: a
   :class:`~cluster_pack.errors.ConfigurationError`;
3. the single file is large (``.pex.zip``) when asked to be, or when the environment is
   over the size threshold (``C_PACK_LARGE_PEX_THRESHOLD``) or the zipapp entry limit
   (CPython < 3.13 cannot run a ZIP64 zipapp); else a ``.pex`` zipapp. The parts have no
   limit: without a single file the size is not even measured;
4. a large single file is in the ``packed`` or ``loose`` layout of the layout optimization,
   compressed when it says so (or when ``C_PACK_COMPRESS`` does);
5. an explicit ``package_path`` must be a file path ending in ``.pex`` or ``.pex.zip``; a
   ``.pex`` one gets ``.zip`` appended when the single file is large.

>>> from cluster_pack.settings import LayoutOptimization
>>> choice = choose_layout("pex", package_path="/envs/e.pex", installed=lambda: (5, 70_000),
...                        threshold=2**30, optimization=LayoutOptimization.FAST_MID_BIG,
...                        compress=False)
>>> choice.file_kind, choice.artifact_path("/envs/e.pex", lambda: "/envs/default")
(<FileKind.LOOSE: 'loose'>, '/envs/e.pex.zip')
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Optional, Tuple, Union

from cluster_pack import settings
from cluster_pack.errors import ConfigurationError
from cluster_pack.settings import Layout, LayoutOptimization, StringEnum

__all__ = ["Layout", "FileKind", "LayoutChoice", "choose_layout", "check_package_path",
           "artifact_path", "published_layout", "PEX_SUFFIX", "LARGE_PEX_SUFFIX",
           "PUBLISHED_PEX", "PUBLISHED_PEX_ZIP", "env_name_of"]

PEX_SUFFIX = ".pex"
LARGE_PEX_SUFFIX = ".pex.zip"
# what the manifest (and ``cluster-pack ls``/``fetch``) call a single file at the path
PUBLISHED_PEX = "pex"
PUBLISHED_PEX_ZIP = "pex.zip"


class FileKind(StringEnum):
    """The single file's kind, as :mod:`cluster_pack.pack.singlefile` writes it."""

    ZIPAPP = "zipapp"  # ``env.pex``: ``python env.pex -m mod``
    PACKED = "packed"  # ``env.pex.zip``: unpacked as ``pyenv/``, one zip per distribution
    LOOSE = "loose"  # ``env.pex.zip``: unpacked as ``pyenv/``, the distributions unzipped

    @property
    def large(self) -> bool:
        return self is not FileKind.ZIPAPP

    @property
    def suffix(self) -> str:
        return LARGE_PEX_SUFFIX if self.large else PEX_SUFFIX

    @classmethod
    def of(cls, large: bool, optimization: Union[LayoutOptimization, str]) -> "FileKind":
        """A zipapp, or the large layout ``optimization`` asks for."""
        if not large:
            return cls.ZIPAPP
        return cls(LayoutOptimization.from_string(optimization).pex_layout)


@dataclass(frozen=True)
class LayoutChoice:
    """What is published, decided by :func:`choose_layout`."""

    layout: Layout  # parts and/or the single file
    file_kind: FileKind  # of the single file (ZIPAPP when there is none)
    optimization: LayoutOptimization
    compress: bool

    @property
    def parts(self) -> bool:
        return self.layout.parts

    @property
    def single_file(self) -> bool:
        return self.layout.single_file

    @property
    def large(self) -> bool:
        return self.file_kind.large

    def artifact_path(self, package_path: Optional[str], default_stem: Callable[[], str]) -> str:
        """See :func:`artifact_path`."""
        return artifact_path(package_path, self.large, default_stem)


def check_package_path(package_path: str, env_name: str = "env") -> None:
    """A :class:`ConfigurationError` unless ``package_path`` is a file path ending in
    ``.pex`` or ``.pex.zip``."""
    if package_path.endswith("/"):
        raise ConfigurationError(
            f"package_path {package_path} is a directory; give a file path ending in .pex, "
            f"e.g. {package_path}{env_name}.pex")
    if not (package_path.endswith(PEX_SUFFIX) or package_path.endswith(LARGE_PEX_SUFFIX)):
        raise ConfigurationError(
            f"package_path {package_path} has the wrong extension, .pex is expected")


def artifact_path(package_path: Optional[str], large: bool,
                  default_stem: Callable[[], str]) -> str:
    """Where the environment is published: ``package_path`` (checked with
    :func:`check_package_path`), a ``.pex`` one with ``.zip`` appended when the single file
    is large; without one ``default_stem()`` and the suffix."""
    if not package_path:
        return default_stem() + (LARGE_PEX_SUFFIX if large else PEX_SUFFIX)
    if package_path.endswith(LARGE_PEX_SUFFIX):
        return package_path  # already the large layout: kept, whatever the size
    return package_path + ".zip" if large else package_path


def published_layout(name: str, parts: bool = False) -> str:
    """The manifest's ``layout`` of what is published at ``name``: ``parts``, else the
    single file's ``pex.zip`` or ``pex`` (from its extension)."""
    if parts:
        return Layout.PARTS.value
    return PUBLISHED_PEX_ZIP if name.endswith(LARGE_PEX_SUFFIX) else PUBLISHED_PEX


def env_name_of(package_path: str) -> str:
    """The environment's name, the original's rule: the artifact's file name before ``.pex``.

    >>> env_name_of("hdfs:///user/me/envs/myenv.pex.zip")
    'myenv'
    """
    return package_path.rstrip("/").rsplit("/", 1)[-1].split(PEX_SUFFIX)[0]


def choose_layout(
    layout: Union[Layout, str, None] = None,
    *,
    allow_large_pex: bool = False,
    package_path: Optional[str] = None,
    env_name: str = "env",
    installed: Callable[[], Tuple[int, int]] = lambda: (0, 0),
    threshold: Optional[int] = None,
    max_entries: Optional[int] = None,
    optimization: Union[LayoutOptimization, str, None] = None,
    compress: Optional[bool] = None,
) -> LayoutChoice:
    """Choose the layout and the single file's kind (the rules are in the module's doc).

    :param layout: the layout asked for explicitly; None: ``C_PACK_LAYOUT``
    :param package_path: the explicit target, if any (its extension counts)
    :param env_name: the environment's name, for the error messages
    :param installed: ``(bytes, files)`` the environment installs, called only when the
        single file's size decides its kind
    :param threshold: bytes above which the single file is large (default
        ``C_PACK_LARGE_PEX_THRESHOLD``)
    :param max_entries: files above which it is large (default: the zipapp limit)
    :param optimization: the large layout (default ``C_PACK_LAYOUT_OPTIMIZATION``)
    :param compress: compress every artifact (default ``C_PACK_COMPRESS``)
    """
    explicit = layout is not None
    requested = (Layout.parse(layout, "layout") if layout is not None
                 else settings.get_artifact_layout())
    if package_path:
        check_package_path(package_path, env_name)
    large_asked = [why for why, asked in (
        ("allow_large_pex=True", allow_large_pex),
        (f"package_path {package_path}", bool(package_path)
         and str(package_path).endswith(LARGE_PEX_SUFFIX))) if asked]
    if large_asked and not requested.single_file:
        if explicit:
            raise ConfigurationError(
                f"the {requested.value} layout publishes no single file, but "
                f"{' and '.join(large_asked)} asks for the .pex.zip one: choose one")
        requested = Layout.PEX_AND_PARTS  # the call's argument wins over C_PACK_LAYOUT
    large = bool(large_asked)
    if requested.single_file and not large:
        size, files = installed()
        large = (size > (settings.get_large_pex_threshold() if threshold is None else threshold)
                 or files > (settings.MAX_ZIPAPP_ENTRIES if max_entries is None
                             else max_entries))
    optimization = (settings.get_layout_optimization() if optimization is None
                    else LayoutOptimization.from_string(optimization))
    compress = settings.get_compress() if compress is None else compress
    return LayoutChoice(requested, FileKind.of(large, optimization), optimization,
                        compress or (large and optimization.compress))
