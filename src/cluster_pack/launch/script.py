"""The shell lines every engine runs on a node before the job: re-creating the packed pex
directory from its localized parts, and choosing ``PEX_ROOT`` (one policy for all engines).

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
_PEX_ROOT_LINES = r"""root=${PEX_ROOT:-__DEFAULT__}
[ -n "$root" ] || root=.pex
case "$root" in
  /*)
    (umask 077 && mkdir -p "$root") 2>/dev/null || true
    if [ -L "$root" ] || [ -z "$(find "$root" -prune -type d -user "$(id -u)" ! -perm -020 ! -perm -002 2>/dev/null)" ]; then
      echo "cluster-pack: PEX_ROOT $root is not a private directory of $(id -un), using $PWD/.pex" >&2
      root="$PWD/.pex"
    fi ;;
  *) root="$PWD/$root" ;;
esac
export PEX_ROOT="$root"
"""  # noqa: E501

# YARN's default: one cache per user and node, kept between applications
NODE_PEX_ROOT = "${HOME:+$HOME/.cache/cluster-pack/pex_root}"
# a directory of the working directory: one installation per container or executor
WORKDIR_PEX_ROOT = ".pex"


def pex_root_lines(default: str) -> str:
    """POSIX shell lines exporting ``PEX_ROOT``: the one already set in the environment,
    else ``default`` (a shell word, :data:`NODE_PEX_ROOT` or :data:`WORKDIR_PEX_ROOT`),
    checked as the policy above says. Relative values are made absolute from ``$PWD``.
    The lines run under ``set -e``: no command of theirs fails the script."""
    return _PEX_ROOT_LINES.replace("__DEFAULT__", default)
