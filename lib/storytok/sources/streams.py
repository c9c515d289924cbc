"""Reading an input file's bytes, decompressing .gz / .zst on the way (pyarrow's codecs).

Every reader below sees the decompressed bytes through one `readinto`, so a .txt.zst or a
.jsonl.gz is cut into chunks exactly like its plain version, in the same bounded memory.
A compressed stream cannot seek: resuming at a byte offset decompresses and discards the
bytes before it. Decompression errors (a corrupt or truncated file) become one line naming
the file instead of pyarrow's OSError.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from storytok.errors import StorytokError
from storytok.sources.resolve import InputFile

SKIP_BLOCK = 1 << 22
_FORMAT = {"gzip": "gzip", "zstd": "zstd"}


class InputStream:
    """The decompressed bytes of one input file: `readinto`, `skip`, and `disk_pos` (how far
    into the file on disk, for progress)."""

    def __init__(self, f: InputFile):
        self.file = f
        try:
            self._raw = pa.OSFile(f.path, "rb")
        except OSError as e:
            raise StorytokError(f"{f.path}: cannot open it ({_reason(e)})") from None
        self._stream = pa.CompressedInputStream(self._raw, f.compression) if f.compression else self._raw
        self.pos = 0    # decompressed bytes read so far

    def readinto(self, view) -> int:
        try:
            n = self._stream.readinto(view)
        except OSError as e:
            raise self.corrupt(e) from None
        self.pos += n
        return n

    def read(self, n: int) -> bytes:
        try:
            data = self._stream.read(n)
        except OSError as e:
            raise self.corrupt(e) from None
        self.pos += len(data)
        return data

    def skip(self, n: int) -> None:
        """Move to decompressed byte n (seek when plain, else decompress and discard)."""
        if not self.file.compression:
            self._raw.seek(n)
            self.pos = n
            return
        scratch = np.empty(min(SKIP_BLOCK, max(n, 1)), np.uint8)
        while self.pos < n:
            got = self.readinto(memoryview(scratch)[:min(len(scratch), n - self.pos)])
            if not got:
                raise StorytokError(f"{self.file.path}: ends at byte {self.pos:,} of its decompressed text, before "
                                    f"byte {n:,} where the earlier run stopped; the file changed, run again to start over")

    @property
    def disk_pos(self) -> int:
        try:
            return self._raw.tell()
        except OSError:
            return 0

    def corrupt(self, e: Exception) -> StorytokError:
        if self.file.compression:
            return StorytokError(f"{self.file.path}: cannot decompress it ({_reason(e)}); the {self.file.compression} "
                                 f"data is corrupt or truncated, fetch the file again")
        return StorytokError(f"{self.file.path}: cannot read it ({_reason(e)})")

    def close(self) -> None:
        try:
            self._stream.close()
        finally:
            if self._stream is not self._raw:
                self._raw.close()

    def __enter__(self) -> "InputStream":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def _reason(e: Exception) -> str:
    return " ".join((str(e) or type(e).__name__).split())
