"""The shell lines every engine runs on a node before the job: re-creating the packed pex
directory from its localized parts, starting with the shipped interpreter (when the
manifest names one), and choosing ``PEX_ROOT`` (one policy for all engines).

Every engine localizes each part under a flat link name (``cpack-<sha256>``) through its own
cache (YARN's localization cache with ``private`` visibility, Spark's fetch cache, the local
runner's node cache); :func:`assembly_script` then re-creates the packed directory with
relative symlinks, which the standard pex runtime runs.
"""

from __future__ import annotations

import os
import shlex
from pathlib import Path
from typing import Callable, Sequence

from cluster_pack.pack.interpreter import InterpreterInfo
from cluster_pack.pack.parts import COPIED, Part, link_name


def assembly_script(dest: str, parts: Sequence[Part]) -> str:
    """POSIX shell lines re-creating the packed pex directory ``dest`` in the working
    directory from the parts localized there under their :func:`link_name`.

    Assembled once per working directory (a temporary directory renamed into place, so a
    second process of the same container waits for nothing and never sees half of it).
    Links are relative: the directory stays valid wherever the working directory is seen.
    """
    q = shlex.quote
    # the quoted name then the shell's $$ (one word): dest may hold any character
    tmp = q(f"{dest}.cpack-tmp-") + "$$"
    lines = [f"if [ ! -f {q(dest + '/PEX-INFO')} ]; then",
             f"  rm -rf {tmp}"]
    directories = sorted({p.path.rsplit("/", 1)[0] for p in parts if "/" in p.path})
    if directories:
        lines.append("  mkdir -p " + " ".join(f"{tmp}/{q(d)}" for d in directories))
    else:
        lines.append(f"  mkdir -p {tmp}")
    for part in sorted(parts, key=lambda p: p.path):
        target = f"{tmp}/{q(part.path)}"
        if part.path in COPIED:
            lines.append(f"  cp {q(link_name(part))} {target}")
            if part.executable:
                lines.append(f"  chmod 755 {target}")
        else:
            up = "../" * (part.path.count("/") + 1)
            lines.append(f"  ln -s {q(up + link_name(part))} {target}")
    # GNU mv -T refuses to move into an existing directory (another process won the race);
    # where -T is unknown (BSD), move only if nothing is there yet
    lines.append(f"  mv -T {tmp} {q(dest)} 2>/dev/null || "
                 f"{{ [ -e {q(dest)} ] || mv {tmp} {q(dest)}; }} 2>/dev/null")
    lines.append(f"  rm -rf {tmp}")
    lines.append("fi")
    return "\n".join(lines) + "\n"


# The shipped interpreter (include_interpreter) is extracted once per node and user into a
# private directory (the same policy as PEX_ROOT: another user's writable copy would run
# as the job), then put first on PATH: the pex's shebang (``/usr/bin/env pythonX.Y``) and
# every engine's command find it there, and CPython finds its prefix (sys.prefix) from the
# binary's location, so nothing of the publishing machine is read. An --enable-shared build
# loads its libpython through LD_LIBRARY_PATH (its RUNPATH names the publisher's prefix).
_INTERPRETER_LINES = r"""__ROOT__
if [ "$(uname -m)" != __MACHINE__ ]; then
  echo "cluster-pack: the shipped Python __VERSION__ is built for __MACHINE__, this node is $(uname -m)" >&2
  exit 1
fi
cpack_glibc=$(getconf GNU_LIBC_VERSION 2>/dev/null | sed 's/^glibc //') || cpack_glibc=""
case "$cpack_glibc" in
  [0-9]*.[0-9]*)
    cpack_major=${cpack_glibc%%.*}; cpack_minor=${cpack_glibc#*.}; cpack_minor=${cpack_minor%%.*}
    if [ "$cpack_major" -lt __GLIBC_MAJOR__ ] || { [ "$cpack_major" -eq __GLIBC_MAJOR__ ] && [ "$cpack_minor" -lt __GLIBC_MINOR__ ]; }; then
      echo "cluster-pack: the shipped Python __VERSION__ needs glibc __GLIBC__, this node has $cpack_glibc: publish from a machine with a glibc no newer than the nodes'" >&2
      exit 1
    fi ;;
esac
cpack_py="$cpack_py_root"/__KEY__
if [ ! -x "$cpack_py"/__BINARY__ ]; then
  (umask 077 && mkdir -p "$cpack_py_root")
  # mktemp: containers of one node may share PIDs (PID namespaces) but not this name
  cpack_tmp=$(mktemp -d "$cpack_py.cpack-tmp-XXXXXX")
  tar -xf __ARCHIVE__ -C "$cpack_tmp" || { echo "cluster-pack: cannot extract the shipped Python __VERSION__ into $cpack_tmp" >&2; rm -rf "$cpack_tmp"; exit 1; }
  mv -T "$cpack_tmp" "$cpack_py" 2>/dev/null || { [ -e "$cpack_py" ] || mv "$cpack_tmp" "$cpack_py"; } 2>/dev/null
  rm -rf "$cpack_tmp"
fi
export PATH="$cpack_py/bin:$PATH"
__LIBRARY_PATH__"""  # noqa: E501


def interpreter_lines(info: InterpreterInfo, archive: str) -> str:
    """POSIX shell lines starting the environment with the shipped interpreter: the part
    localized in the working directory as ``archive`` is extracted once per node (checked
    against the node's architecture and glibc first), then its ``bin`` goes first on
    ``PATH`` and its library directories on ``LD_LIBRARY_PATH``. They exit the script with
    a one-line message when the interpreter cannot run on the node."""
    q = shlex.quote
    glibc = info.glibc if info.glibc.count(".") == 1 else "0.0"
    major, minor = (int(x) if x.isdigit() else 0 for x in glibc.split("."))
    library_path = ""
    if info.library_dirs:
        # plain relative paths (the manifest is validated): nothing to quote in "..."
        dirs = ":".join(f"$cpack_py/{d}" for d in info.library_dirs)
        library_path = f'export LD_LIBRARY_PATH="{dirs}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"\n'
    return (_INTERPRETER_LINES
            .replace("__MACHINE__", q(info.machine)).replace("__VERSION__", q(info.version))
            .replace("__GLIBC_MAJOR__", str(major)).replace("__GLIBC_MINOR__", str(minor))
            .replace("__GLIBC__", q(glibc)).replace("__KEY__", q(info.sha256[:32]))
            .replace("__BINARY__", q(info.binary)).replace("__ARCHIVE__", q(archive))
            .replace("__LIBRARY_PATH__", library_path)
            .replace("__ROOT__\n", private_dir_lines(
                "cpack_py_root", "C_PACK_INTERPRETER_ROOT",
                "${HOME:+$HOME/.cache/cluster-pack/interpreters}", ".cpack-interpreters")))


_RUNNER = r"""#!/bin/sh
# Generated by cluster-pack fetch: runs the environment beside this directory with the
# interpreter shipped with it (extracted here).
here=$(cd "$(dirname "$0")" && pwd)
export PATH="$here/bin:$PATH"
__LIBRARY_PATH__exec "$here"/__BINARY__ "$here/../"__PEX__ "$@"
"""


def write_interpreter_runner(home: Path, info: InterpreterInfo, pex_name: str) -> Path:
    """``home/run``: a relocatable sh script running the fetched environment ``pex_name``
    (beside ``home``) with the interpreter extracted in ``home``."""
    q = shlex.quote
    library_path = ""
    if info.library_dirs:
        dirs = ":".join(f"$here/{d}" for d in info.library_dirs)  # plain relative paths
        library_path = f'export LD_LIBRARY_PATH="{dirs}${{LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}}"\n'
    text = (_RUNNER.replace("__LIBRARY_PATH__", library_path)
            .replace("__BINARY__", q(info.binary)).replace("__PEX__", q(pex_name)))
    path = home / "run"
    path.write_text(text)
    os.chmod(path, 0o755)
    return path


def materialize(parts: Sequence[Part], dest: Path,
                fetch: Callable[[Part, Path], None]) -> Path:
    """Write the packed pex directory ``dest`` with real files (``fetch(part, local_path)``
    writes one part); ``python dest`` then runs it with the standard pex runtime."""
    for part in parts:
        target = dest / part.path
        target.parent.mkdir(parents=True, exist_ok=True)
        fetch(part, target)
        if part.executable:
            os.chmod(target, 0o755)
    return dest


# The pex runtime installs the environment into PEX_ROOT on its first start and re-uses it;
# whoever can write there can change the code of every later job, so an absolute PEX_ROOT
# (the engine's per-node default, or the user's) is used only when it is a directory of
# this user that nobody else can write, else the job uses its own working directory.
# Shared by PEX_ROOT and the shipped interpreter's directory: a default that is absolute is
# used only when it is a private directory of this user, else ``$PWD/<fallback>``.
_PRIVATE_DIR_LINES = r"""__VAR__=${__ENV__:-__DEFAULT__}
[ -n "$__VAR__" ] || __VAR__=__FALLBACK__
case "$__VAR__" in
  /*)
    (umask 077 && mkdir -p "$__VAR__") 2>/dev/null || true
    if [ -L "$__VAR__" ] || [ -z "$(find "$__VAR__" -prune -type d -user "$(id -u)" ! -perm -020 ! -perm -002 2>/dev/null)" ]; then
      echo "cluster-pack: __LABEL__$__VAR__ is not a private directory of $(id -un), using $PWD/__FALLBACK__" >&2
      __VAR__="$PWD/__FALLBACK__"
    fi ;;
  *) __VAR__="$PWD/$__VAR__" ;;
esac
"""  # noqa: E501


def private_dir_lines(var: str, env: str, default: str, fallback: str, label: str = "") -> str:
    """POSIX shell lines setting the shell variable ``var`` to ``$env``, else ``default``
    (a shell word), used only if it is a directory of this user that nobody else can write
    (created private if missing), else ``$PWD/fallback``; relative values are made absolute
    from ``$PWD``. ``label`` prefixes the warning. No command of theirs fails ``set -e``."""
    return (_PRIVATE_DIR_LINES.replace("__VAR__", var).replace("__ENV__", env)
            .replace("__DEFAULT__", default).replace("__FALLBACK__", fallback)
            .replace("__LABEL__", label))

# YARN's default: one cache per user and node, kept between applications
NODE_PEX_ROOT = "${HOME:+$HOME/.cache/cluster-pack/pex_root}"
# a directory of the working directory: one installation per container or executor
WORKDIR_PEX_ROOT = ".pex"


def pex_root_lines(default: str) -> str:
    """POSIX shell lines exporting ``PEX_ROOT``: the one already set in the environment,
    else ``default`` (a shell word, :data:`NODE_PEX_ROOT` or :data:`WORKDIR_PEX_ROOT`),
    checked as the policy above says. Relative values are made absolute from ``$PWD``.
    The lines run under ``set -e``: no command of theirs fails the script."""
    return (private_dir_lines("root", "PEX_ROOT", default, ".pex", label="PEX_ROOT ")
            + 'export PEX_ROOT="$root"\n')
