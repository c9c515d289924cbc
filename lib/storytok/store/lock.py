"""One writer per split directory: a second run is refused, not raced.

Two `make encode` runs into the same OUT used to race: the second deleted the first one's
temporary part (its cleanup of a killed run's leftovers) and the first died with a
FileNotFoundError traceback. Each writer now holds an exclusive lock on `.lock` in the
directory (flock, non-blocking). The kernel releases it when the holder exits in any way,
kill -9 included, so a stale lock file never blocks anyone; the file's content (pid,
command, start time, written by the holder) only serves to say who holds it.
"""
from __future__ import annotations

import fcntl
import os
import sys
import time
from contextlib import contextmanager
from pathlib import Path

from storytok.errors import StorytokError
from storytok.fsutil import os_error

LOCK_FILE = ".lock"


@contextmanager
def split_lock(directory: Path, what: str):
    """Hold the lock of `directory` (created if needed) for the block, or raise a one-line
    StorytokError naming the process that holds it."""
    directory = Path(directory)
    path = directory / LOCK_FILE
    try:
        directory.mkdir(parents=True, exist_ok=True)
        fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    except OSError as e:
        raise os_error(e, path, "check that OUT is writable") from None
    try:
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            holder = _read_holder(fd)
            raise StorytokError(f"{directory}: another run is writing this split ({holder}); wait for it to "
                                f"finish or stop it, then run again") from None
        info = f"pid {os.getpid()}, {what}, started {time.strftime('%Y-%m-%d %H:%M:%S')}: {' '.join(sys.argv)[:200]}"
        try:
            os.ftruncate(fd, 0)
            os.pwrite(fd, info.encode("utf-8", "replace"), 0)
        except OSError:
            pass   # a full disk: the lock still holds, only the note on who holds it is missing
        yield
    finally:
        os.close(fd)   # releases the lock


def _read_holder(fd: int) -> str:
    try:
        text = os.pread(fd, 400, 0).decode("utf-8", "replace").strip()
    except OSError:
        text = ""
    return text or "a process that has not said which yet"
