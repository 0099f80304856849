"""The original ``cluster_pack.process.call`` helper."""

from __future__ import annotations

import logging
import shlex
import subprocess
from typing import Any, List, Tuple

_logger = logging.getLogger(__name__)


def call(cmd: List[str], throw_on_error: bool = True, **kwargs: Any) -> Tuple[int, bytes, bytes]:
    """Run ``cmd`` (a list, never through a shell); returns (returncode, stdout, stderr)."""
    _logger.info(shlex.join(cmd))
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, **kwargs)
    out, err = proc.communicate()
    if throw_on_error and proc.returncode != 0:
        _logger.error(out.decode(errors="replace"))
        _logger.error(err.decode(errors="replace"))
        raise subprocess.CalledProcessError(proc.returncode, cmd, out, err)
    return proc.returncode, out, err
