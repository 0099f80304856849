"""The venv's base interpreter as one more content-addressed part (``include_interpreter``).

A PEX needs a compatible Python on every node; when the nodes lack the venv's X.Y, the
interpreter itself can be shipped: its installation prefix (the binary, the shared
``libpython`` of an ``--enable-shared`` build, the standard library) as one
deterministic tar, named by its sha256 like every part, so it is published once per
interpreter and cached on the nodes like any part. The node side (extracting it once,
``PATH`` and ``LD_LIBRARY_PATH``) is :func:`cluster_pack.launch.script.interpreter_lines`.

Left out: the standard library's tests, ``idlelib``, ``tkinter``/``turtledemo`` (and
``_tkinter``, which needs Tk), ``site-packages`` (a venv never reads the base's), the
``config-*`` directory (the static library and Makefile, used only to build C
extensions against this Python) and, unless asked, the stdlib's ``__pycache__`` (the node
compiles what it imports once, into its cached copy).

What cannot be shipped is refused with :class:`~cluster_pack.errors.InterpreterError`:
a missing or incomplete prefix, another platform than Linux, and a binary or
``libpython`` needing shared libraries that are neither in the prefix nor in the base set
every Linux node has (libc, libm, libpthread, libdl, librt, libutil, ld-linux, libz...).
Extension modules of the standard library may need more (``_ssl``: libssl, ``_sqlite3``:
libsqlite3): these are only logged, the nodes must have them to import those modules.

>>> layout = select_layout(current_config())                       # doctest: +SKIP
>>> layout.binary, layout.library_dirs                              # doctest: +SKIP
('bin/python3.12', ('lib',))
"""

from __future__ import annotations

import hashlib
import json
import logging
import os
import re
import shutil
import subprocess
import sys
import sysconfig
import tarfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Callable, Dict, Iterator, List, Mapping, Optional, Sequence, Set, Tuple

from cluster_pack import settings
from cluster_pack.cache import CacheDir
from cluster_pack.errors import IntegrityError, InterpreterError
from cluster_pack.pack.parts import HashCache

_logger = logging.getLogger(__name__)

# Bump when what goes into the tar changes (its name in the local cache, the fingerprint).
INTERPRETER_FORMAT = 1
# The interpreter's path in a manifest's list of pool parts (never assembled into the pex)
INTERPRETER_PART_PATH = "interpreter.tar"
# Libraries every Linux node is expected to have (sonames without their version).
BASE_LIBRARIES = frozenset({
    "linux-vdso.so", "linux-gate.so", "ld-linux.so", "ld-linux-x86-64.so",
    "ld-linux-aarch64.so", "ld64.so", "libc.so", "libm.so", "libpthread.so", "libdl.so",
    "librt.so", "libutil.so", "libz.so", "libgcc_s.so", "libcrypt.so", "libresolv.so",
})
# First components of the standard library left out
EXCLUDED_STDLIB = frozenset({"test", "idlelib", "tkinter", "turtledemo", "site-packages",
                             "dist-packages", "__phello__"})
_EXCLUDED_PATTERNS = (re.compile(r"^config-[^/]*$"),  # static lib, Makefile: C builds only
                      re.compile(r"^lib-dynload/_tkinter\..*"),  # needs the Tk libraries
                      re.compile(r"^(.*/)?tests?/"),  # packages' own tests (lib2to3/tests...)
                      re.compile(r"^turtle\.py$"))
_GLIBC_VERSION = re.compile(rb"GLIBC_([0-9]+)\.([0-9]+)")


@dataclass(frozen=True)
class InterpreterLayout:
    """Where the interesting files of an installation are, relative to its prefix."""

    prefix: Path
    binary: str  # "bin/python3.12"
    stdlib: str  # "lib/python3.12"
    shared_libraries: Tuple[str, ...]  # ("lib/libpython3.12.so.1.0",); () when static
    library_dirs: Tuple[str, ...]  # directories of those libraries: LD_LIBRARY_PATH
    version: str  # "3.12.1"
    machine: str  # "x86_64"


@dataclass(frozen=True)
class InterpreterInfo:
    """The interpreter part as the manifest names it."""

    sha256: str
    size: int
    version: str
    binary: str
    library_dirs: Tuple[str, ...]
    machine: str
    glibc: str = ""  # highest GLIBC_x.y the binary and libpython need ("" when unknown)

    def to_json(self) -> Dict[str, Any]:
        data = asdict(self)
        data["library_dirs"] = list(self.library_dirs)
        return data

    @classmethod
    def from_json(cls, raw: Any, where: str) -> "InterpreterInfo":
        if not isinstance(raw, dict):
            raise IntegrityError(f"{where}: its interpreter is not a JSON object")
        try:
            info = cls(str(raw["sha256"]), raw["size"], str(raw["version"]), str(raw["binary"]),
                       tuple(str(d) for d in raw.get("library_dirs") or ()),
                       str(raw["machine"]), str(raw.get("glibc") or ""))
        except KeyError as exc:
            raise IntegrityError(f"{where}: its interpreter lacks {exc}") from None
        for rel in (info.binary, *info.library_dirs):
            if not _is_plain_relative(rel):
                raise IntegrityError(f"{where}: its interpreter names {rel!r}, not a plain "
                                     "relative path")
        if not re.fullmatch(r"[0-9a-f]{64}", info.sha256) or not isinstance(info.size, int):
            raise IntegrityError(f"{where}: its interpreter has an invalid sha256 or size")
        if not re.fullmatch(r"[A-Za-z0-9_.+-]+", info.version + info.machine + "x"):
            raise IntegrityError(f"{where}: its interpreter has an invalid version or machine")
        return info


def _is_plain_relative(path: str) -> bool:
    parts = path.split("/")
    return bool(re.fullmatch(r"[A-Za-z0-9_.+-]+(/[A-Za-z0-9_.+-]+)*", path)) and \
        not any(p in (".", "..") for p in parts)


# -- selecting the prefix -------------------------------------------------------------------

def current_config() -> Dict[str, Any]:
    """What :func:`select_layout` reads, from the running interpreter (a venv's python:
    its *base* interpreter is what is shipped)."""
    # a venv's own paths name the venv for the platform library: ask for the base's
    paths = sysconfig.get_paths(vars={"base": sys.base_prefix, "platbase": sys.base_exec_prefix,
                                      "installed_base": sys.base_prefix,
                                      "installed_platbase": sys.base_exec_prefix})
    return {
        "platform": sys.platform,
        "machine": os.uname().machine if hasattr(os, "uname") else "",
        "base_prefix": sys.base_prefix,
        "base_executable": getattr(sys, "_base_executable", sys.executable),
        "stdlib": paths.get("stdlib", ""),
        "platstdlib": paths.get("platstdlib", ""),
        "version": "%d.%d.%d" % sys.version_info[:3],
        "Py_ENABLE_SHARED": sysconfig.get_config_var("Py_ENABLE_SHARED"),
        "LIBDIR": sysconfig.get_config_var("LIBDIR") or "",
        "prefix": sysconfig.get_config_var("prefix") or "",  # where it was built for
        "INSTSONAME": sysconfig.get_config_var("INSTSONAME") or "",
        "implementation": sys.implementation.name,
    }


def select_layout(config: Mapping[str, Any]) -> InterpreterLayout:
    """The installation to ship, from :func:`current_config` (or a test's); raises
    :class:`InterpreterError` naming what makes it impossible."""
    if config.get("platform") != "linux":
        raise InterpreterError(
            f"include_interpreter: cannot ship a {config.get('platform')} interpreter to Linux "
            "nodes; publish from a Linux machine of the nodes' architecture")
    if config.get("implementation", "cpython") != "cpython":
        raise InterpreterError(
            f"include_interpreter: only CPython can be shipped, not {config['implementation']}")
    prefix = Path(os.path.realpath(str(config.get("base_prefix") or "")))
    version = str(config["version"])
    xy = ".".join(version.split(".")[:2])
    if not config.get("base_prefix") or not prefix.is_dir():
        raise InterpreterError(
            f"include_interpreter: the base interpreter's prefix {config.get('base_prefix')!r} "
            "does not exist; recreate the venv from an installed Python")
    binary = Path(os.path.realpath(str(config.get("base_executable") or "")))
    if not binary.is_file() or not binary.is_relative_to(prefix):
        raise InterpreterError(
            f"include_interpreter: the base interpreter {binary} is not inside its prefix "
            f"{prefix}; only a self-contained installation can be shipped")
    stdlib = Path(os.path.realpath(str(config.get("stdlib") or "")))
    if not (stdlib / "os.py").is_file() or not stdlib.is_relative_to(prefix):
        raise InterpreterError(
            f"include_interpreter: the standard library of {prefix} is not at {stdlib} "
            "(no os.py there); the installation is incomplete or not relocatable")
    platstdlib = Path(os.path.realpath(str(config.get("platstdlib") or stdlib)))
    if platstdlib != stdlib:
        raise InterpreterError(
            f"include_interpreter: {prefix} keeps its platform library apart ({platstdlib}); "
            "this layout cannot be relocated")
    if stdlib.relative_to(prefix).as_posix() != f"lib/python{xy}":
        # CPython finds its prefix from the binary by looking for lib/pythonX.Y/os.py
        raise InterpreterError(
            f"include_interpreter: the standard library of {prefix} is at {stdlib}, not at "
            f"<prefix>/lib/python{xy}: CPython could not find it once moved")
    shared: List[str] = []
    if config.get("Py_ENABLE_SHARED"):
        soname = str(config.get("INSTSONAME") or "")
        libdir = str(config.get("LIBDIR") or "")
        candidates = [Path(libdir) / soname]
        build_prefix = str(config.get("prefix") or "")
        if build_prefix and libdir.startswith(build_prefix.rstrip("/") + "/"):
            # a moved installation: LIBDIR still names where it was built
            candidates.insert(0, prefix / os.path.relpath(libdir, build_prefix) / soname)
        library = Path(os.path.realpath(next((c for c in candidates if c.is_file()),
                                             candidates[-1])))
        if not soname or not library.is_file():
            raise InterpreterError(
                f"include_interpreter: {binary} is a shared build but its library "
                f"{config.get('LIBDIR')}/{soname} is missing")
        if not library.is_relative_to(prefix):
            raise InterpreterError(
                f"include_interpreter: {binary} needs {library}, outside its prefix {prefix}: "
                "it cannot be relocated")
        shared.append(library.relative_to(prefix).as_posix())
    return InterpreterLayout(
        prefix=prefix,
        binary=binary.relative_to(prefix).as_posix(),
        stdlib=stdlib.relative_to(prefix).as_posix(),
        shared_libraries=tuple(shared),
        library_dirs=tuple(sorted({s.rsplit("/", 1)[0] for s in shared})),
        version=version,
        machine=str(config.get("machine") or ""),
    )


# -- what goes in ---------------------------------------------------------------------------

def is_excluded(relpath: str, include_bytecode: bool = False) -> bool:
    """Whether ``relpath`` (relative to the standard library) is left out."""
    first = relpath.split("/", 1)[0]
    if first in EXCLUDED_STDLIB:
        return True
    if not include_bytecode and ("__pycache__/" in f"{relpath}/" or relpath.endswith(".pyc")):
        return True
    return any(p.search(relpath) for p in _EXCLUDED_PATTERNS)


def stdlib_files(layout: InterpreterLayout, include_bytecode: bool = False
                 ) -> Iterator[Tuple[str, Path]]:
    """(relative path in the prefix, file) of the standard library kept, directory by
    directory (each sorted)."""
    root = layout.prefix / layout.stdlib
    for directory, dirs, names in os.walk(root):
        rel_dir = Path(directory).relative_to(root).as_posix()
        rel_dir = "" if rel_dir == "." else rel_dir + "/"
        dirs[:] = sorted(d for d in dirs if not is_excluded(rel_dir + d, include_bytecode))
        for name in sorted(names):
            rel = rel_dir + name
            path = Path(directory) / name
            if is_excluded(rel, include_bytecode) or not path.is_file():
                continue
            yield f"{layout.stdlib}/{rel}", path


# -- refusing what cannot be relocated ------------------------------------------------------

def _soname_key(name: str) -> str:
    """``libc.so.6`` -> ``libc.so``; ``ld-linux-x86-64.so.2`` -> ``ld-linux-x86-64.so``."""
    head, sep, _ = name.partition(".so")
    return head + sep


def parse_ldd(output: str) -> List[Tuple[str, Optional[str]]]:
    """(soname, resolved path or None when not found) of each line of ``ldd``'s output."""
    out: List[Tuple[str, Optional[str]]] = []
    for line in output.splitlines():
        line = line.strip()
        if not line or "statically linked" in line:
            continue
        name, arrow, rest = line.partition("=>")
        if arrow:
            target = rest.strip().split(" (", 1)[0].strip()
            out.append((name.strip(), None if target in ("not found", "") else target))
        else:  # "/lib64/ld-linux-x86-64.so.2 (0x...)" or "linux-vdso.so.1 (0x...)"
            path = name.split(" (", 1)[0].strip()
            out.append((os.path.basename(path), path if path.startswith("/") else None))
    return out


def foreign_libraries(dependencies: Sequence[Tuple[str, Optional[str]]], prefix: Path,
                      shipped: Sequence[str] = ()) -> List[str]:
    """The dependencies neither in the base set nor inside ``prefix`` nor ``shipped`` (file
    names of the libraries shipped with it, found through LD_LIBRARY_PATH on the node)."""
    out = []
    for soname, path in dependencies:
        if _soname_key(soname) in BASE_LIBRARIES or soname in shipped:
            continue
        if path and Path(os.path.realpath(path)).is_relative_to(prefix):
            continue
        out.append(f"{soname} ({path or 'not found'})")
    return out


def ldd(path: Path) -> List[Tuple[str, Optional[str]]]:
    """The shared libraries ``path`` loads, by ``ldd``; [] when ldd is not installed."""
    tool = shutil.which("ldd")
    if tool is None:
        _logger.warning("ldd not found: the shared libraries of %s are not checked", path)
        return []
    proc = subprocess.run([tool, str(path)], capture_output=True, text=True)
    if proc.returncode != 0 and "not a dynamic executable" in (proc.stdout + proc.stderr):
        return []
    return parse_ldd(proc.stdout)


def check_relocatable(layout: InterpreterLayout,
                      dependencies_of: Callable[[Path], List[Tuple[str, Optional[str]]]] = ldd
                      ) -> None:
    """Refuse an interpreter whose binary or libpython needs a library the nodes may lack;
    log (only) the extension modules' own needs."""
    shipped = [rel.rsplit("/", 1)[-1] for rel in layout.shared_libraries]
    for rel in (layout.binary, *layout.shared_libraries):
        foreign = foreign_libraries(dependencies_of(layout.prefix / rel), layout.prefix, shipped)
        if foreign:
            raise InterpreterError(
                f"include_interpreter: {layout.prefix / rel} needs {', '.join(foreign)}, outside "
                f"its prefix and not a base system library: it cannot be relocated to the nodes")
    if _logger.isEnabledFor(logging.INFO):
        needs: Set[str] = set()
        for so in (layout.prefix / layout.stdlib / "lib-dynload").glob("*.so"):
            if not is_excluded(f"lib-dynload/{so.name}"):
                needs.update(f.split(" ", 1)[0]
                             for f in foreign_libraries(dependencies_of(so), layout.prefix,
                                                        shipped))
        if needs:
            _logger.info("the shipped interpreter's extension modules need, on the nodes: %s",
                         ", ".join(sorted(needs)))


def required_glibc(paths: Sequence[Path]) -> str:
    """The highest ``GLIBC_x.y`` symbol version named in these ELF files ("" if none)."""
    best: Tuple[int, int] = (0, 0)
    for path in paths:
        with open(path, "rb") as f:
            data = f.read()
        for major, minor in _GLIBC_VERSION.findall(data):
            best = max(best, (int(major), int(minor)))
    return f"{best[0]}.{best[1]}" if best != (0, 0) else ""


# -- the part -------------------------------------------------------------------------------

def _tar_info(arcname: str, st: os.stat_result, kind: bytes = tarfile.REGTYPE,
              link: str = "") -> tarfile.TarInfo:
    info = tarfile.TarInfo(arcname)
    info.type = kind
    info.linkname = link
    info.size = st.st_size if kind == tarfile.REGTYPE else 0
    # the file's own mtime: a shipped .pyc is validated against its source's
    info.mtime = int(st.st_mtime)
    info.mode = 0o755 if (kind != tarfile.REGTYPE or st.st_mode & 0o100) else 0o644
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    return info


def write_tar(layout: InterpreterLayout, out: Path, include_bytecode: bool = False) -> None:
    """The prefix's kept files as an uncompressed tar, deterministic (sorted entries, no
    owner): the same installation always gives the same bytes, so the same part."""
    files: Dict[str, Path] = {layout.binary: layout.prefix / layout.binary}
    for rel in layout.shared_libraries:
        files[rel] = layout.prefix / rel
    files.update(stdlib_files(layout, include_bytecode))
    directories = sorted({"/".join(rel.split("/")[:i]) for rel in files
                          for i in range(1, rel.count("/") + 1)})
    bin_dir, name = layout.binary.rsplit("/", 1)
    xy = ".".join(layout.version.split(".")[:2])
    # the names a pex's shebang (python3.12) or a job (python3) may look up on PATH
    aliases = {f"{bin_dir}/{a}": name for a in (f"python{xy}", "python3") if a != name}
    with open(out, "wb") as raw, tarfile.open(fileobj=raw, mode="w",
                                              format=tarfile.PAX_FORMAT) as tar:
        for rel in directories:
            tar.addfile(_tar_info(rel, (layout.prefix / rel).stat(), tarfile.DIRTYPE))
        for rel in sorted(files):
            path = files[rel]
            with open(path, "rb") as f:
                tar.addfile(_tar_info(rel, os.stat(path)), f)
        for rel, target in sorted(aliases.items()):
            tar.addfile(_tar_info(rel, os.stat(files[layout.binary]), tarfile.SYMTYPE, target))


def identity(layout: InterpreterLayout, include_bytecode: bool = False) -> str:
    """A cheap digest of the installation (no file read): what the fingerprint and the
    local cache of tars are keyed by. A re-installed or upgraded interpreter changes it."""
    stamps = []
    for rel in (layout.binary, *layout.shared_libraries, layout.stdlib,
                f"{layout.stdlib}/lib-dynload", f"{layout.stdlib}/os.py"):
        with_stat = layout.prefix / rel
        st = with_stat.stat() if with_stat.exists() else None
        stamps.append([rel, st.st_size if st else -1, st.st_mtime_ns if st else -1])
    payload = {"format": INTERPRETER_FORMAT, "prefix": str(layout.prefix),
               "version": layout.version, "bytecode": include_bytecode, "files": stamps}
    return hashlib.sha256(json.dumps(payload, sort_keys=True).encode()).hexdigest()


@dataclass(frozen=True)
class BuiltInterpreter:
    info: InterpreterInfo
    path: Path  # the local tar


def build(config: Optional[Mapping[str, Any]] = None, include_bytecode: bool = False,
          cache_dir: Optional[Path] = None) -> BuiltInterpreter:
    """The interpreter part of the running venv's base interpreter, written once per
    installation into the local cache (``C_PACK_CACHE_DIR/interpreters``)."""
    layout = select_layout(config or current_config())
    key = identity(layout, include_bytecode)
    directory = settings.ensure_private_dir(Path(cache_dir)) if cache_dir \
        else CacheDir.INTERPRETERS.ensure()
    tar = directory / f"{key[:32]}.tar"
    meta = directory / f"{key[:32]}.json"
    if tar.is_file() and meta.is_file():
        try:
            info = InterpreterInfo.from_json(json.loads(meta.read_text()), str(meta))
            if info.size == tar.stat().st_size:
                return BuiltInterpreter(info, tar)
        except Exception as exc:  # a damaged cache entry is rebuilt
            _logger.debug("rebuilding %s: %s", tar, exc)
    check_relocatable(layout)
    tmp = directory / f".{tar.name}.tmp-{os.getpid()}"
    try:
        write_tar(layout, tmp, include_bytecode)
        os.replace(tmp, tar)
    finally:
        if tmp.exists():
            tmp.unlink()
    info = InterpreterInfo(
        sha256=HashCache().sha256(tar), size=tar.stat().st_size, version=layout.version,
        binary=layout.binary, library_dirs=layout.library_dirs, machine=layout.machine,
        glibc=required_glibc([layout.prefix / r for r in (layout.binary,
                                                          *layout.shared_libraries)]))
    meta.write_text(json.dumps(info.to_json(), sort_keys=True))
    return BuiltInterpreter(info, tar)
