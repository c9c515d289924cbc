"""What every stage script shares: one-line errors, the console, and the closing summary.

Users run the stages through `make`; a Python traceback there reads as "storytok is
broken" even when the input is at fault. So stage scripts wrap their `main` in
`run_stage`, which turns a StorytokError (and Ctrl-C, and an operating-system error such
as a full disk that no stage put in its own words) into a single line on stderr and exit
status 1. Anything else is a bug in storytok and keeps its traceback.
"""
from __future__ import annotations

import sys
import time
from typing import Callable, Sequence

from rich.console import Console

from storytok.errors import StorytokError

console = Console(stderr=False, highlight=False)


def run_stage(main: Callable[[Sequence[str] | None], None], argv: Sequence[str] | None = None) -> int:
    """Run a stage's `main(argv)`; return the process exit status (0, or 1 with one line printed)."""
    try:
        main(argv)
    except StorytokError as e:
        print(f"error: {' '.join(str(e).split())}", file=sys.stderr, flush=True)
        return 1
    except OSError as e:   # the stages name the path where they can; this is the net below them
        where = f"{e.filename}: " if getattr(e, "filename", None) else ""
        print(f"error: {where}{' '.join(str(e.strerror or e).split())} (an operating-system error; free space or "
              f"fix permissions, then run the same command again)", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("interrupted: unfinished outputs stay under temporary names; run the same command again to continue",
              file=sys.stderr, flush=True)
        return 1
    return 0


def summary(title: str, rows: Sequence[tuple[str, str]]) -> None:
    """Print the short closing summary of a stage: a title, then one `key  value` line per row.

    Lines are never wrapped (soft_wrap), so a log file keeps one row per line for grep.
    """
    console.print(title, style="bold", soft_wrap=True, markup=False)
    width = max((len(k) for k, _ in rows), default=0)
    for key, value in rows:
        console.print(f"  {key:<{width}}  {value}", soft_wrap=True, markup=False)


def mb(n_bytes: float) -> str:
    return f"{n_bytes / 1e6:,.1f} MB"


def rate(amount: float, seconds: float, unit: str) -> str:
    return f"{amount / seconds:,.1f} {unit}/s" if seconds > 0 else "-"


class Timer:
    """`with Timer() as t: ...; t.seconds`"""

    def __enter__(self) -> "Timer":
        self.t0 = time.perf_counter()
        self.seconds = 0.0
        return self

    def __exit__(self, *exc) -> None:
        self.seconds = time.perf_counter() - self.t0
