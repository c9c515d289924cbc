"""Resumable HTTP download of the TinyStories text files.

The train file is 2.2 GB: a dropped connection must not cost the whole transfer, so bytes
go to `<name>.partial` and a later attempt (in the same run, or a re-run of `make data`)
asks the server for the rest with an HTTP Range request. The file gets its real name only
once its size equals what the server announced, so `data/` never holds a truncated file
under the name the other stages read. Without network the user gets one line saying so,
not a stack of urllib exceptions.

The base URL can be pointed elsewhere (a mirror, or a local server in the tests) with the
`STORYTOK_DATA_URL` environment variable or the `--base-url` flag of stages/data.py.
"""
from __future__ import annotations

import os
import re
import socket
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from http.client import HTTPException
from pathlib import Path
from urllib.parse import urlsplit

from storytok.errors import StorytokError
from storytok.fsutil import tmp_path
from storytok.progress import ProgressBar

BASE_URL_ENV = "STORYTOK_DATA_URL"
DEFAULT_BASE_URL = "https://huggingface.co/datasets/roneneldan/TinyStories/resolve/main"
TINYSTORIES_FILES = ("TinyStoriesV2-GPT4-train.txt", "TinyStoriesV2-GPT4-valid.txt")
BLOCK_BYTES = 1 << 20
USER_AGENT = "storytok-download/0.1"

_CONTENT_RANGE = re.compile(r"bytes\s+(\d+)-(\d+)/(\d+|\*)")
_UNSATISFIED_RANGE = re.compile(r"bytes\s+\*/(\d+)")


def base_url(override: str | None = None) -> str:
    """The flag value if given, else $STORYTOK_DATA_URL, else the Hugging Face dataset."""
    url = override or os.environ.get(BASE_URL_ENV) or DEFAULT_BASE_URL
    return url.rstrip("/")


@dataclass
class DownloadResult:
    path: Path
    size: int            # bytes of the finished file
    fetched: int         # bytes transferred by this run (0 when the file was already there)
    resumed_from: int    # bytes already in .partial when this run started
    seconds: float
    skipped: bool        # the file was already complete; nothing was fetched


class _Interrupted(Exception):
    """The transfer broke off in a way worth resuming from where it got to."""


def download(url: str, dest: Path, *, retries: int = 3, timeout: float = 30.0,
             progress: bool = True, retry_wait: float = 1.0) -> DownloadResult:
    """Fetch `url` into `dest`, resuming from `dest.partial` if an earlier attempt left one.

    A file already at `dest` is taken as complete (no network needed). `retries` is how
    many times a transfer that broke off is resumed within this call. Raises StorytokError
    (one line) when the host cannot be reached, the server refuses, or the transfer keeps
    breaking off; the partial file is kept so the next run resumes.
    """
    dest = Path(dest)
    if dest.exists():
        size = dest.stat().st_size
        return DownloadResult(dest, size, 0, size, 0.0, skipped=True)
    dest.parent.mkdir(parents=True, exist_ok=True)
    job = _Transfer(url, dest, timeout, progress)
    t0 = time.perf_counter()
    resumed_from = job.have()
    try:
        for attempt in range(retries + 1):
            try:
                job.request()
                break
            except _Interrupted as e:
                if attempt == retries:
                    of = f" of {job.total:,}" if job.total else ""
                    raise StorytokError(
                        f"{dest}: download stopped at {job.have():,}{of} bytes ({e}); "
                        f"run `make data` again to resume from there") from None
                time.sleep(retry_wait)
    finally:
        job.bar.__exit__(None, None, None)
    size = job.have()
    if job.total is not None and size != job.total:
        raise StorytokError(f"{dest}: size mismatch, got {size:,} bytes but the server announced "
                            f"{job.total:,}; delete {job.part} and run `make data` again")
    os.replace(job.part, dest)
    return DownloadResult(dest, size, job.fetched, resumed_from, time.perf_counter() - t0, skipped=False)


class _Transfer:
    """State of one file's download across resumed requests: where bytes go, how many
    the server announced, how many this run fetched, and the progress bar."""

    def __init__(self, url: str, dest: Path, timeout: float, progress: bool):
        self.url, self.dest, self.timeout = url, dest, timeout
        self.part = tmp_path(dest)
        self.total: int | None = None
        self.fetched = 0
        self.progress = progress
        self.bar = ProgressBar(None, f"download {dest.name}", unit="bytes", enabled=False)

    def have(self) -> int:
        return self.part.stat().st_size if self.part.exists() else 0

    def request(self) -> None:
        """One HTTP request appending to the partial file from where it ends."""
        have = self.have()
        headers = {"User-Agent": USER_AGENT}
        if have:
            headers["Range"] = f"bytes={have}-"
        try:
            resp = urllib.request.urlopen(urllib.request.Request(self.url, headers=headers), timeout=self.timeout)
        except urllib.error.HTTPError as e:
            if e.code == 416 and have:
                self._range_not_satisfiable(e, have)
                return
            raise StorytokError(f"{self.url}: the server answered HTTP {e.code} {e.reason}; "
                                f"check the URL (or ${BASE_URL_ENV})") from None
        except urllib.error.URLError as e:
            if isinstance(e.reason, (socket.timeout, TimeoutError)):
                raise _Interrupted(f"timed out after {self.timeout:g}s") from None
            host = urlsplit(self.url).netloc or self.url
            raise StorytokError(f"cannot reach {host} to download {self.dest.name} ({_reason(e.reason)}): "
                                f"no network? Copy the file into {self.dest.parent}/ by hand, or run "
                                f"`make demo`, which needs no download") from None
        except (TimeoutError, ConnectionError, HTTPException, OSError) as e:
            raise _Interrupted(_reason(e)) from None
        with resp:
            if resp.status == 206:
                m = _CONTENT_RANGE.search(resp.headers.get("Content-Range", ""))
                if not m or int(m.group(1)) != have:
                    raise StorytokError(
                        f"{self.url}: asked for bytes from {have:,} but the server sent "
                        f"Content-Range {resp.headers.get('Content-Range')!r}; delete {self.part} "
                        f"and run `make data` again")
                total = int(m.group(3)) if m.group(3) != "*" else None
                mode = "ab"
            else:  # 200: the server ignored the range (or none was asked): start from zero
                length = resp.headers.get("Content-Length")
                total = int(length) if length is not None else None
                have, mode = 0, "wb"
            self._announce(total)
            got = 0
            try:
                with open(self.part, mode) as f:
                    while block := resp.read(BLOCK_BYTES):
                        f.write(block)
                        got += len(block)
                        self.bar.update(have + got)
            except (TimeoutError, ConnectionError, HTTPException, OSError) as e:
                raise _Interrupted(_reason(e)) from None
            finally:
                self.fetched += got
            if total is not None and have + got < total:
                raise _Interrupted("connection closed early")

    def _announce(self, total: int | None) -> None:
        """Remember the size the server announced; start the bar the first time we know it."""
        if self.total is not None and total is not None and total != self.total:
            before, self.total = self.total, None
            self.part.unlink(missing_ok=True)
            self.bar.__exit__(None, None, None)
            raise _Interrupted(f"the remote file changed size ({before:,} -> {total:,} bytes), restarting")
        if self.total is None:
            self.total = total
            self.bar = ProgressBar(total, f"download {self.dest.name}", unit="bytes",
                                   enabled=self.progress).__enter__()
            self.bar.update(self.have())

    def _range_not_satisfiable(self, err: urllib.error.HTTPError, have: int) -> None:
        """HTTP 416: our partial file reaches (or passes) the end of the remote file."""
        m = _UNSATISFIED_RANGE.search(err.headers.get("Content-Range", "") or "")
        remote = int(m.group(1)) if m else None
        if remote == have:
            self._announce(remote)
            return
        self.part.unlink(missing_ok=True)  # longer than the remote file: not a prefix of it
        raise _Interrupted(f"partial file of {have:,} bytes does not fit the remote file, restarting")


def _reason(e) -> str:
    text = str(e) or type(e).__name__
    return " ".join(text.split())
