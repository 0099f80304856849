"""Every knob of cluster-pack in one typed place.

Settings come from environment variables (read when used, never at import time) and
can be overridden from Python with the ``set_*`` functions kept from the original API.

======================================  ===========================================================
variable                                meaning
======================================  ===========================================================
``C_PACK_USER``                         user name for default storage paths and YARN impersonation
                                        (default: the login user)
``C_PACK_ENV_FALLBACK_PATH``            a pre-built ``.pex`` (path or http(s) URL) reused when its
                                        requirements match the environment, and the environment to
                                        use when not running in a virtualenv
``C_PACK_VENV_OPTIMIZATION_LEVEL``      1 (default): build from the files installed in the venv,
                                        no network; 0: resolve every requirement again from the
                                        package index like cluster-pack < 0.3 did (slow, needs network)
``C_PACK_LAYOUT_OPTIMIZATION``          layout of large (``.pex.zip``) environments, see
                                        :class:`LayoutOptimization`
``C_PACK_UV``                           the ``uv`` binary used to add packages that are not
                                        installed (default: next to the interpreter, or PATH)
``C_PACK_PYPI_URL``                     package index for packages that are not installed,
                                        and for upload_spec's requirements
``C_PACK_CACHE_DIR``                    local cache and local store root
                                        (default ``$XDG_CACHE_HOME/cluster-pack`` or
                                        ``~/.cache/cluster-pack``)
``C_PACK_COMPRESS``                     ``1`` to deflate artifacts (smaller, slower to build and
                                        start); default ``0``: stored, which is faster on any network
                                        faster than ~100 MB/s
``C_PACK_LARGE_PEX_THRESHOLD``          bytes above which the single file's
                                        ``.pex.zip`` layout is chosen automatically (default
                                        3.5 GiB: CPython < 3.13 cannot run a zipapp over 4 GiB)
``C_PACK_LAYOUT``                       ``pex+parts`` (default): the original's single-file ``.pex``
                                        (``.pex.zip`` when large) at the returned path, plus
                                        content-addressed parts beside it for cluster-pack's own
                                        launchers; ``parts``: the parts only; ``pex``: the file only
``C_PACK_INCLUDE_INTERPRETER``          ``1``: also publish the venv's base interpreter as a part and
                                        start jobs with it (``upload_env(include_interpreter=True)``)
``C_PACK_INTERPRETER_BYTECODE``         ``1``: ship the interpreter's stdlib ``__pycache__`` too
======================================  ===========================================================
"""

from __future__ import annotations

import enum
import getpass
import os
import shutil
import sys
from pathlib import Path
from typing import NamedTuple, Optional, Union

from cluster_pack.errors import ConfigurationError

_DEFAULT_LARGE_PEX_THRESHOLD = int(3.5 * 1024**3)
# zipimport before CPython 3.13 cannot read ZIP64 archives, which any zip with
# more entries than this needs.
MAX_ZIPAPP_ENTRIES = 65_000


class LayoutOptimizationParams(NamedTuple):
    """pex layout and zip settings of a :class:`LayoutOptimization` (the original's API)."""

    pex_layout: str
    use_zipfile: bool
    compress_level: int


class LayoutOptimization(enum.Enum):
    """How a large environment (``.pex.zip``) is laid out and compressed.

    ============== ============== ============ ============================================
    member          pex layout     compression  trade-off
    ============== ============== ============ ============================================
    SLOW_FAST_SMALL packed         stored       default: slower build, fastest first start
    FAST_MID_BIG    loose          stored       fastest build, biggest artifact
    MID_SLOW_SMALL  loose          deflate      small artifact, slowest first start
    DISABLED        packed         deflate      the legacy behaviour
    ============== ============== ============ ============================================
    """

    SLOW_FAST_SMALL = "SLOW_FAST_SMALL"
    FAST_MID_BIG = "FAST_MID_BIG"
    MID_SLOW_SMALL = "MID_SLOW_SMALL"
    DISABLED = "DISABLED"

    @property
    def pex_layout(self) -> str:
        return "loose" if self in (LayoutOptimization.FAST_MID_BIG,
                                   LayoutOptimization.MID_SLOW_SMALL) else "packed"

    @property
    def compress(self) -> bool:
        return self in (LayoutOptimization.MID_SLOW_SMALL, LayoutOptimization.DISABLED)

    @classmethod
    def from_string(cls, value: Union["LayoutOptimization", str]) -> "LayoutOptimization":
        """Case-insensitive lookup; ``ValueError`` lists the valid names."""
        return _parse_layout(value, "layout optimization")

    def get_params(self) -> LayoutOptimizationParams:
        """The original master's values (DISABLED: ``use_zipfile=False, compress_level=0``;
        its ``shutil.make_archive`` ignores the level)."""
        level = 1 if self is LayoutOptimization.MID_SLOW_SMALL else 0
        return LayoutOptimizationParams(self.pex_layout, self is not LayoutOptimization.DISABLED,
                                        level)


_overrides: dict = {}


def _env(name: str) -> Optional[str]:
    value = os.environ.get(name, "").strip()
    return value or None


def set_current_user(user: Optional[str]) -> None:
    """Set the user of default storage paths and YARN impersonation for this process.

    Overrides ``C_PACK_USER``; the name is stripped, and ``None`` or a blank name means
    the login user (``getpass.getuser()``), as an empty ``C_PACK_USER`` does.
    """
    _overrides["user"] = (user or "").strip()


def get_current_user() -> str:
    """The user for storage paths and YARN impersonation: the one given to
    :func:`set_current_user`, else ``C_PACK_USER`` if set, else the login user."""
    if "user" in _overrides:
        return _overrides["user"] or getpass.getuser()
    return _env("C_PACK_USER") or getpass.getuser()


# The original master's private name.
_get_current_user = get_current_user


def get_env_fallback_path() -> Optional[str]:
    return _env("C_PACK_ENV_FALLBACK_PATH")


def set_venv_optimization_level(level: int) -> None:
    """Override ``C_PACK_VENV_OPTIMIZATION_LEVEL`` for this process (0 or 1; 2 means 1)."""
    if int(level) not in (0, 1, 2):
        raise ConfigurationError(f"venv optimization level must be 0, 1 or 2, got {level!r}")
    _overrides["venv_optimization_level"] = int(level)


def get_venv_optimization_level() -> int:
    """0: resolve from the package index; 1 (default): build from the venv's installed files."""
    if "venv_optimization_level" in _overrides:
        return _overrides["venv_optimization_level"]
    raw = _env("C_PACK_VENV_OPTIMIZATION_LEVEL")
    if raw is None:
        return 1
    try:
        level = int(raw)
    except ValueError:
        raise ConfigurationError(
            f"C_PACK_VENV_OPTIMIZATION_LEVEL must be 0, 1 or 2, got {raw!r}") from None
    if level not in (0, 1, 2):
        raise ConfigurationError(f"C_PACK_VENV_OPTIMIZATION_LEVEL must be 0, 1 or 2, got {raw!r}")
    return level


def set_layout_optimization(mode: Union[LayoutOptimization, str]) -> None:
    """Override ``C_PACK_LAYOUT_OPTIMIZATION`` for this process."""
    _overrides["layout_optimization"] = _parse_layout(mode, "layout optimization")


def get_layout_optimization() -> LayoutOptimization:
    if "layout_optimization" in _overrides:
        return _overrides["layout_optimization"]
    raw = _env("C_PACK_LAYOUT_OPTIMIZATION")
    return _parse_layout(raw, "C_PACK_LAYOUT_OPTIMIZATION") if raw else \
        LayoutOptimization.SLOW_FAST_SMALL


def _parse_layout(value: Union[LayoutOptimization, str], source: str) -> LayoutOptimization:
    if isinstance(value, LayoutOptimization):
        return value
    try:
        return LayoutOptimization[str(value).strip().upper()]
    except KeyError:
        choices = ", ".join(m.name for m in LayoutOptimization)
        raise ConfigurationError(f"{source} must be one of {choices}, got {value!r}") from None


# The original's private index URLs, kept so that imports of these names still work;
# cluster-pack never contacts them.
CRITEO_PYPI_URL = "https://filer-pypi-integration.crto.in/repository/criteo.moab.pypi-read/simple"


def set_pypi_index(pypi_index: Optional[str]) -> None:
    """Index used to resolve packages that are not installed (``C_PACK_PYPI_URL``)."""
    _overrides["pypi_index"] = pypi_index or None


def get_pypi_index() -> Optional[str]:
    if "pypi_index" in _overrides:
        return _overrides["pypi_index"]
    return _env("C_PACK_PYPI_URL")


def __getattr__(name: str):
    # The original exposed these as globals computed at import; here they are computed
    # when read, so importing cluster_pack reads no environment variable.
    computed = {
        "UV_AVAILABLE": is_uv_available,
        "LAYOUT_OPTIMIZATION": get_layout_optimization,
        "VENV_OPTIMIZATION_LEVEL": get_venv_optimization_level,
        "PYPI_INDEX_URL": get_pypi_index,
    }
    if name in computed:
        return computed[name]()
    raise AttributeError(f"module 'cluster_pack.settings' has no attribute {name!r}")


def get_cache_dir() -> Path:
    """Root of the local cache and of the local store (created private to the user)."""
    raw = _env("C_PACK_CACHE_DIR")
    if raw:
        return Path(raw).expanduser()
    xdg = _env("XDG_CACHE_HOME")
    base = Path(xdg) if xdg else Path.home() / ".cache"
    return base / "cluster-pack"


def get_compress() -> bool:
    return (_env("C_PACK_COMPRESS") or "0").lower() in ("1", "true", "yes", "on")


def get_include_interpreter() -> bool:
    """``C_PACK_INCLUDE_INTERPRETER``: ship the venv's base interpreter (default: no)."""
    return (_env("C_PACK_INCLUDE_INTERPRETER") or "0").lower() in ("1", "true", "yes", "on")


def get_interpreter_bytecode() -> bool:
    """``C_PACK_INTERPRETER_BYTECODE``: ship the interpreter's stdlib bytecode too."""
    return (_env("C_PACK_INTERPRETER_BYTECODE") or "0").lower() in ("1", "true", "yes", "on")


class StringEnum(str, enum.Enum):
    """An enum whose members are the strings they replace: equal to them, printed as them."""

    def __str__(self) -> str:
        return str(self.value)

    def __format__(self, spec: str) -> str:
        return str(self.value).__format__(spec)


class Layout(StringEnum):
    """What ``upload_env`` publishes (``C_PACK_LAYOUT``); equal to its value as a string.

    - ``pex+parts`` (default): the original's single file at the returned path, plus the
      content-addressed parts beside it that cluster-pack's own launchers localize;
    - ``parts``: the parts only (nothing at the returned path: for code that only goes
      through cluster-pack's launchers, and re-uploads only what changed);
    - ``pex``: the single file only.
    """

    PEX_AND_PARTS = "pex+parts"
    PARTS = "parts"
    PEX = "pex"

    @property
    def parts(self) -> bool:
        return self is not Layout.PEX

    @property
    def single_file(self) -> bool:
        return self is not Layout.PARTS

    @classmethod
    def parse(cls, value: Union["Layout", str], source: str = "layout") -> "Layout":
        """Case-insensitive; :class:`ConfigurationError` lists the valid values."""
        try:
            return cls(str(value).strip().lower())
        except ValueError:
            choices = ", ".join(m.value for m in cls)
            raise ConfigurationError(f"{source} must be one of {choices}, got {value!r}") \
                from None


# The names the layouts had as strings, kept for the code and docs that use them.
LAYOUT_PEX_AND_PARTS = Layout.PEX_AND_PARTS
LAYOUT_PARTS = Layout.PARTS
LAYOUT_PEX = Layout.PEX
ARTIFACT_LAYOUTS = tuple(Layout)


def get_artifact_layout() -> Layout:
    """``C_PACK_LAYOUT``: what ``upload_env`` publishes (see :class:`Layout`)."""
    return Layout.parse(_env("C_PACK_LAYOUT") or Layout.PEX_AND_PARTS, "C_PACK_LAYOUT")


def get_large_pex_threshold() -> int:
    raw = _env("C_PACK_LARGE_PEX_THRESHOLD")
    if raw is None:
        return _DEFAULT_LARGE_PEX_THRESHOLD
    try:
        return int(raw)
    except ValueError:
        raise ConfigurationError(
            f"C_PACK_LARGE_PEX_THRESHOLD must be a number of bytes, got {raw!r}") from None


def is_uv_available() -> bool:
    """True when the ``uv`` tool can be used (to add packages to a transient venv fast)."""
    return find_uv() is not None


def ensure_private_dir(path: Path) -> Path:
    """Create ``path`` (and parents) with mode 0700 for what we create; return it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    return path


def find_uv() -> Optional[str]:
    """Path of a usable ``uv`` binary: ``$C_PACK_UV``, next to this interpreter, the uv
    package, or PATH."""
    explicit = os.environ.get("C_PACK_UV", "").strip()
    if explicit:
        return explicit if os.access(explicit, os.X_OK) else None
    candidate = Path(sys.executable).parent / "uv"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    try:
        import uv  # type: ignore[import-not-found]  # optional: absent when uv is not installed

        return uv.find_uv_bin()
    except (ImportError, OSError):  # no uv package, or it ships no binary
        pass
    return shutil.which("uv")
