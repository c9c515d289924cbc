"""Reading a big text file as chunks that can be pre-tokenized independently.

A chunk may end only where the pre-tokenization of the whole file has a boundary that no
look-ahead crosses: right after a special token (the text is split there first), or, in
text with no specials nearby, between an ASCII non-space byte and a newline (the GPT-2
pattern never joins those, and nothing before the newline looks past it). Cuts are made
from the previous cut onward, so the same file and chunk size always give the same chunks,
and a run resumed at a chunk's end sees exactly the chunks an uninterrupted run would.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

from storytok.errors import StorytokError
from storytok.specials import SpecialMatcher

DEFAULT_CHUNK_BYTES = 16 << 20
_ASCII_SPACE = frozenset(b"\t\n\x0b\x0c\r ")


@dataclass
class Chunk:
    offset: int       # where the chunk starts in the file
    data: bytes


def check_text_file(path) -> int:
    """Size of a readable, non-empty file, or a one-line StorytokError saying what is wrong."""
    path = os.fspath(path)
    if not os.path.exists(path):
        raise StorytokError(f"{path}: no such file (run `make data`, or pass the path of a text file)")
    if os.path.isdir(path):
        raise StorytokError(f"{path}: is a directory, expected a UTF-8 text file")
    size = os.path.getsize(path)
    if size == 0:
        raise StorytokError(f"{path}: file is empty; expected UTF-8 text with stories separated by <|endoftext|>")
    return size


def safe_cut(data: bytes, matcher: SpecialMatcher, final: bool) -> int:
    """Largest prefix length of data that tokenizes the same alone as inside the whole text (0 if none).

    Special matches that start within max_len of the end could still grow once more data
    arrives, so only matches that end before that margin are trusted (unless final).
    """
    if final:
        return len(data)
    margin = max(matcher.max_len, 1)
    limit = len(data) - margin
    if limit <= 0:
        return 0
    found = matcher.matches(data, 0, len(data))
    ends = [e for _, e, _ in found if e <= limit]
    if ends:
        return ends[-1]
    # No special to cut after: the last "\n" that follows an ASCII non-space byte, outside any special.
    last_special_end = found[-1][1] if found else 0
    p = data.rfind(b"\n", last_special_end + 1, limit)
    while p > last_special_end:
        if data[p - 1] not in _ASCII_SPACE and data[p - 1] < 0x80:
            return p
        p = data.rfind(b"\n", last_special_end + 1, p)
    return 0


def iter_chunks(path, matcher: SpecialMatcher, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                start_byte: int = 0) -> Iterator[Chunk]:
    """Chunks of about chunk_bytes, from start_byte (which must itself be a chunk end) to EOF."""
    size = check_text_file(path)
    with open(path, "rb") as f:
        f.seek(start_byte)
        offset = start_byte
        pending = b""
        while offset < size:
            want = max(chunk_bytes - len(pending), len(pending), 1 << 16)
            more = f.read(want)
            data = pending + more if pending else more
            final = f.tell() >= size or not more
            cut = safe_cut(data, matcher, final)
            if cut == 0:
                pending = data  # no boundary yet: read on until there is one
                continue
            yield Chunk(offset, data[:cut])
            offset += cut
            pending = data[cut:]
