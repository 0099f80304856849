"""Running the pex tool: the one place that knows how cluster-pack calls pex."""

from __future__ import annotations

import sys
from typing import List, Optional


def pex_command(python: Optional[str] = None) -> List[str]:
    """The argv prefix that runs the pex CLI installed with cluster-pack."""
    return [python or sys.executable, "-m", "pex"]
