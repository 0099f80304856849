"""Progress reporting: silent (logging only) for library calls, rich bars in the CLI."""

from __future__ import annotations

import logging
from typing import Optional

_logger = logging.getLogger("cluster_pack")


class Reporter:
    """Receives progress events; the default only logs them."""

    def step(self, message: str) -> None:
        _logger.info(message)

    def start_transfer(self, description: str, total: int) -> None:
        _logger.info("%s (%d bytes)", description, total)

    def advance(self, nbytes: int) -> None:
        pass

    def end_transfer(self) -> None:
        pass


class RichReporter(Reporter):  # pragma: no cover - exercised by hand on a terminal
    """Spinner for steps, a byte bar for transfers (only on a terminal)."""

    def __init__(self, console=None):
        from rich.console import Console
        from rich.progress import (
            BarColumn,
            DownloadColumn,
            Progress,
            SpinnerColumn,
            TextColumn,
            TransferSpeedColumn,
        )

        self.console = console or Console(stderr=True)
        self._progress = Progress(SpinnerColumn(), TextColumn("{task.description}"),
                                  BarColumn(), DownloadColumn(), TransferSpeedColumn(),
                                  console=self.console, transient=True)
        self._task: Optional[int] = None

    def __enter__(self):
        self._progress.start()
        return self

    def __exit__(self, *exc):
        self._progress.stop()

    def step(self, message: str) -> None:
        super().step(message)
        self.console.print(f"[dim]•[/dim] {message}")

    def start_transfer(self, description: str, total: int) -> None:
        self._task = self._progress.add_task(description, total=total)

    def advance(self, nbytes: int) -> None:
        if self._task is not None:
            self._progress.advance(self._task, nbytes)

    def end_transfer(self) -> None:
        if self._task is not None:
            self._progress.remove_task(self._task)
            self._task = None
