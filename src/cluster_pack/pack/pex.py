"""Running the pex tool: the one place that knows how cluster-pack calls pex.

Every pex cluster-pack builds (the builder's packed directories and runtime,
``upload_spec``'s resolved environments, the original's ``packaging.pack_in_pex``) is
built by :func:`run_pex` with the same base options: pex's ``--venv`` execution mode,
first starts installing the distributions in parallel, and the original's
``--inherit-path`` behaviour (:func:`inherit_path_options`).

>>> inherit_path_options("false")
['--inherit-path=false', '--non-hermetic-venv-scripts']
"""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from cluster_pack.errors import BuildError

_logger = logging.getLogger(__name__)
_TAIL_LINES = 25

# The original built a plain zipapp with ``--inherit-path=fallback``: packages left out on
# purpose (``ignored_packages=["pyspark"]``) are found in the node's own site-packages,
# after the environment's, and ``PYTHONPATH`` is honoured (Spark puts its pyspark.zip
# there). In pex's venv mode these are the venv's view of the system site-packages and
# non-hermetic scripts (the runtime template is built with the same options, because its
# ``__main__.py`` carries the hermetic switch too).
PEX_INFO_OPTIONS = {"inherit_path": "fallback", "venv_system_site_packages": True,
                    "venv_hermetic_scripts": False}


def pex_command(python: Optional[str] = None) -> List[str]:
    """The argv prefix that runs the pex CLI installed with cluster-pack."""
    return [python or sys.executable, "-m", "pex"]


def inherit_path_options(inherit_path: str = "fallback") -> List[str]:
    """pex options giving a ``--venv`` pex the zipapp's ``--inherit-path`` behaviour
    (``false``: the environment alone)."""
    system_site = [] if inherit_path == "false" else ["--venv-system-site-packages"]
    return [f"--inherit-path={inherit_path}", *system_site, "--non-hermetic-venv-scripts"]


# what PEX_INFO_OPTIONS are on the pex command line
PEX_TOOL_OPTIONS = inherit_path_options("fallback")


def run_tool(cmd: Sequence[str], what: str, env: Optional[dict] = None) -> None:
    """Run a build tool; a failure is a :class:`BuildError` naming ``what`` with the
    tail of the tool's stderr (its stdout when stderr is empty)."""
    _logger.debug("running %s", " ".join(cmd))
    proc = subprocess.run(list(cmd), stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          env=env, text=True)
    if proc.returncode != 0:
        output = proc.stderr.strip() or proc.stdout.strip()
        tail = "\n".join(output.splitlines()[-_TAIL_LINES:])
        raise BuildError(f"{what} failed (exit {proc.returncode}):\n{tail}")


def run_pex(
    output: Path,
    *,
    layout: Optional[str] = None,
    python: Optional[str] = None,
    requirements: Sequence[str] = (),
    requirements_file: Optional[Path] = None,
    venv_repository: Optional[Path] = None,
    intransitive: bool = False,
    index_urls: Sequence[str] = (),
    find_links: Sequence[str] = (),
    compress: Optional[bool] = None,
    inherit_path: str = "fallback",
    include_tools: bool = False,
    sources_directory: Optional[Path] = None,
) -> None:
    """Build a ``--venv`` pex at ``output`` with the pex tool.

    :param layout: ``--layout`` (``zipapp``, ``packed``, ``loose``; default: pex's, zipapp)
    :param python: the interpreter running pex (default: this one)
    :param requirements: requirement strings given on the command line
    :param requirements_file: a requirements file (``-r``)
    :param venv_repository: take the distributions from this venv's installed files
        (no resolve, no network)
    :param intransitive: take the requirements as the full list (no dependency resolve)
    :param index_urls: ``--index-url`` in order (the first replaces PyPI)
    :param find_links: ``-f`` repositories
    :param compress: ``--compress``/``--no-compress`` (default: pex's, compressed)
    :param inherit_path: see :func:`inherit_path_options`
    :param include_tools: ``--include-tools``
    :param sources_directory: the pex's own code (``--sources-directory``)

    Raises :class:`BuildError` naming the output with the tail of pex's stderr. An outer
    pex runtime's ``PEX`` variable is not passed to the build.
    """
    cmd = pex_command(python) + [
        "--venv",  # warm starts re-exec an installed venv: as fast as a plain venv
        "--no-emit-warnings",
        "--max-install-jobs", "0",  # first start installs distributions in parallel
        *inherit_path_options(inherit_path),
    ]
    if layout is not None:
        cmd += ["--layout", layout]
    if compress is not None:
        cmd.append("--compress" if compress else "--no-compress")
    if venv_repository is not None:
        cmd += ["--venv-repository", str(venv_repository)]
    if intransitive:
        cmd.append("--intransitive")
    cmd += [f"--index-url={url}" for url in index_urls]
    for repository in find_links:
        cmd += ["-f", repository]
    if include_tools:
        cmd.append("--include-tools")
    if sources_directory is not None:
        cmd.append(f"--sources-directory={sources_directory}")
    if requirements_file is not None:
        cmd += ["-r", str(requirements_file)]
    cmd += [*requirements, "-o", str(output)]
    env = dict(os.environ)
    env.pop("PEX", None)  # never let an outer pex runtime leak into the build
    run_tool(cmd, f"pex (building {output})", env=env)
