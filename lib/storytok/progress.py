"""Progress reporting that suits both a terminal and a log file.

On a terminal long work shows a live rich bar; when stderr is not a terminal
(`nohup make encode > encode.log &`, CI) the same calls print a plain line every few
seconds instead, so logs stay readable and never fill with control codes.
"""
from __future__ import annotations

import sys
import time

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    MofNCompleteColumn,
    Progress,
    TaskProgressColumn,
    TextColumn,
    TimeElapsedColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

LOG_INTERVAL_S = 10.0


class ProgressBar:
    """`with ProgressBar(total, "merging", unit="merges") as bar: bar.advance(n)`.

    unit="bytes" shows sizes and transfer speed; anything else shows "done/total unit".
    enabled=False turns every call into a no-op, so callers never branch on it.
    """

    def __init__(self, total: float | None, description: str, unit: str = "", enabled: bool = True,
                 console: Console | None = None, log_interval: float = LOG_INTERVAL_S):
        self.total = total
        self.description = description
        self.unit = unit
        self.enabled = enabled
        self.console = console or Console(stderr=True)
        self.log_interval = log_interval
        self.completed = 0.0
        self._progress: Progress | None = None
        self._task = None
        self._t0 = 0.0
        self._last_log = 0.0

    def __enter__(self) -> "ProgressBar":
        if not self.enabled:
            return self
        self._t0 = self._last_log = time.perf_counter()
        if self.console.is_terminal:
            if self.unit == "bytes":
                columns = [TextColumn("{task.description}"), BarColumn(), DownloadColumn(),
                           TransferSpeedColumn(), TimeRemainingColumn()]
            else:
                columns = [TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(),
                           TextColumn(self.unit), TaskProgressColumn(), TimeElapsedColumn()]
            self._progress = Progress(*columns, console=self.console, transient=False)
            self._progress.start()
            self._task = self._progress.add_task(self.description, total=self.total)
        return self

    def advance(self, n: float = 1) -> None:
        self.update(self.completed + n)

    def update(self, completed: float) -> None:
        if not self.enabled:
            return
        self.completed = completed
        if self._progress is not None:
            self._progress.update(self._task, completed=completed)
            return
        now = time.perf_counter()
        if now - self._last_log >= self.log_interval:
            self._last_log = now
            self._log_line(now)

    def _log_line(self, now: float) -> None:
        elapsed = now - self._t0
        if self.unit == "bytes":
            done = f"{self.completed / 1e6:,.1f} MB"
            of = f" / {self.total / 1e6:,.1f} MB" if self.total else ""
            rate = f", {self.completed / 1e6 / elapsed:,.1f} MB/s" if elapsed > 0 else ""
        else:
            done = f"{self.completed:,.0f}"
            of = f" / {self.total:,.0f}" if self.total else ""
            rate = ""
            of += f" {self.unit}" if self.unit else ""
        pct = f" ({100 * self.completed / self.total:.0f}%)" if self.total else ""
        print(f"[{elapsed:7.1f}s] {self.description}: {done}{of}{pct}{rate}", file=sys.stderr, flush=True)

    def __exit__(self, *exc) -> None:
        if not self.enabled:
            return
        if self._progress is not None:
            self._progress.stop()
        elif exc[0] is None:
            self._log_line(time.perf_counter())
