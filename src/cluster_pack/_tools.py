"""Locating the external tools cluster-pack drives (pex, uv)."""

from __future__ import annotations

import os
import shutil
import sys
from pathlib import Path
from typing import List, Optional


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
    except Exception:
        pass
    return shutil.which("uv")


def pex_command(python: Optional[str] = None) -> List[str]:
    """The argv prefix that runs the pex CLI installed with cluster-pack."""
    return [python or sys.executable, "-m", "pex"]
