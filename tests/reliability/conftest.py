"""Reliability & security suite: a shared summary of what was tried (issue 9).

Every test records what it did in the session-wide :data:`SUMMARY` through the
``summary`` fixture (``summary.add("faults_injected")``...). At the end of the session
the table is printed (``pytest_terminal_summary``) and written as JSON to the pytest
base temp directory (``<basetemp>/reliability-summary.json``), never into the repository.

The counters that must stay 0 (``artifacts_corrupted``, ``leaked_temporaries``,
``secrets_leaked``) are also asserted by the tests that count them: the table reports,
the tests fail.
"""

from __future__ import annotations

import json
import os
import threading
import zipfile
from collections import OrderedDict
from pathlib import Path
from typing import Dict, Optional

import pytest

# counters, in the order they are printed; (name, label, must_be_zero)
COUNTERS = (
    ("faults_injected", "faults injected", False),
    ("runs", "runs", False),
    ("artifacts_corrupted", "artifacts corrupted", True),
    ("torn_states_refused", "torn artifact/manifest pairs (refused by readers)", False),
    ("leaked_temporaries", "leaked temporaries", True),
    ("stale_temporaries_swept", "stale temporaries swept", False),
    ("reader_checks", "reader checks (manifest+artifact sha256)", False),
    ("hostile_inputs", "hostile inputs tried", False),
    ("secrets_scanned", "places scanned for secrets", False),
    ("secrets_leaked", "secrets leaked", True),
    ("integrity_refusals", "tampered/truncated artifacts refused", False),
    ("permission_checks", "permission checks", False),
)


class Summary:
    """Thread-safe counters plus free-form figures (throughput...)."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.counts: Dict[str, int] = OrderedDict((name, 0) for name, _, _ in COUNTERS)
        self.figures: Dict[str, str] = OrderedDict()

    def add(self, name: str, n: int = 1) -> None:
        if name not in self.counts:
            raise KeyError(f"unknown summary counter {name!r}")
        with self._lock:
            self.counts[name] += n

    def figure(self, name: str, value: str) -> None:
        with self._lock:
            self.figures[name] = value

    def as_dict(self) -> Dict[str, object]:
        return {"counters": dict(self.counts), "figures": dict(self.figures)}

    def table(self) -> str:
        width = max(len(label) for _, label, _ in COUNTERS)
        lines = [f"{'what':<{width}}  {'count':>7}  expected", "-" * (width + 20)]
        for name, label, zero in COUNTERS:
            value = self.counts[name]
            flag = ("0  " + ("OK" if value == 0 else "FAIL")) if zero else ""
            lines.append(f"{label:<{width}}  {value:>7}  {flag}")
        for name, value in self.figures.items():
            lines.append(f"{name:<{width}}  {value}")
        return "\n".join(lines)


SUMMARY = Summary()


@pytest.fixture(scope="session")
def summary() -> Summary:
    return SUMMARY


def fault_runs(default: int) -> int:
    """How many runs a fault loop does: ``CPACK_FAULT_RUNS`` or ``default``."""
    raw = os.environ.get("CPACK_FAULT_RUNS")
    return int(raw) if raw else default


def pytest_terminal_summary(terminalreporter, exitstatus, config):
    if not any(SUMMARY.counts.values()) and not SUMMARY.figures:
        return
    terminalreporter.section("cluster-pack reliability & security summary")
    for line in SUMMARY.table().splitlines():
        terminalreporter.write_line(line)
    path = _summary_path(config)
    if path is not None:
        terminalreporter.write_line(f"(also written to {path})")


def _summary_path(config) -> Optional[Path]:
    try:
        base = config._tmp_path_factory.getbasetemp()  # the session's pytest basetemp
    except Exception:
        return None
    path = Path(base) / "reliability-summary.json"
    try:
        path.write_text(json.dumps(SUMMARY.as_dict(), indent=2) + "\n")
    except OSError:
        return None
    return path


# -- helpers shared by the tests ---------------------------------------------------------

def make_pex(path: Path, payload_size: int = 0, main: str = "print('hello from pex')\n",
             seed: bytes = b"") -> Path:
    """A minimal runnable PEX-like zipapp (shebang + PEX-INFO + __main__.py).

    ``payload_size`` bytes of incompressible data make it large (stored, not deflated).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"#!/usr/bin/env python3\n")
    with zipfile.ZipFile(path, "a") as zf:
        zf.writestr("PEX-INFO", json.dumps(
            {"distributions": {"six-1.16.0-py2.py3-none-any.whl": "x"}}))
        zf.writestr("__main__.py", main)
        zf.writestr("seed.txt", seed or os.urandom(16).hex())
        if payload_size:
            chunk = 8 << 20
            with zf.open("payload.bin", "w", force_zip64=True) as out:
                left = payload_size
                while left > 0:
                    n = min(chunk, left)
                    out.write(os.urandom(n))
                    left -= n
    os.chmod(path, 0o755)
    return path


def tmp_entries(directory: Path):
    """Names in ``directory`` that are cluster-pack temporaries."""
    from cluster_pack.store import TMP_MARKER

    if not Path(directory).is_dir():
        return []
    return sorted(p.name for p in Path(directory).iterdir() if TMP_MARKER in p.name)
