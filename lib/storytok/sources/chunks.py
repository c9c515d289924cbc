"""Reading a big text file as chunks that can be pre-tokenized independently.

A chunk may end only where the pre-tokenization of the whole file has a boundary that no
look-ahead crosses: right after a special token (the text is split there first), or, in
text with no specials nearby, between an ASCII non-space byte and an ASCII whitespace byte
(the GPT-2 pattern never joins those, and nothing before that point looks past it). Cuts
are made from the previous cut onward, so the same file and chunk size always give the
same chunks, and a run resumed at a chunk's end sees exactly the chunks an uninterrupted
run would. Chunks are read straight into padded buffers the kernels take as they are, and
carry the special-token matches found while cutting, so nothing is copied or searched twice.
"""
from __future__ import annotations

import os
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from storytok.errors import StorytokError
from storytok.kernels.utf8 import first_invalid_utf8
from storytok.pretokenize.pretokenizer import padded_buffer, text_buffer
from storytok.pretokenize.specials import Matches, SpecialMatcher

DEFAULT_CHUNK_BYTES = 16 << 20
MIN_CHUNK_BYTES = 1 << 20
FALLBACK_WINDOW = 1 << 16
_ASCII_SPACE = np.zeros(256, bool)
_ASCII_SPACE[list(b"\t\n\x0b\x0c\r ")] = True


@dataclass
class Chunk:
    offset: int                            # where the chunk starts in the file
    buf: np.ndarray                        # padded buffer; the chunk's text is buf[:length]
    words: np.ndarray                      # buf as uint64, for the kernels
    length: int
    matches: Matches                       # the special tokens in the chunk

    @property
    def data(self) -> np.ndarray:
        return self.buf[:self.length]


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


def check_utf8(path, chunk) -> None:
    """One line naming the file and the byte offset of the chunk's first invalid UTF-8."""
    bad = first_invalid_utf8(chunk.buf, chunk.words, 0, chunk.length)
    if bad >= 0:
        raise StorytokError(f"{os.fspath(path)}: invalid UTF-8 at byte {chunk.offset + bad}; the input must be UTF-8 text")


def safe_cut(buf: np.ndarray, words: np.ndarray, n: int, matcher: SpecialMatcher, final: bool) -> tuple[int, Matches]:
    """(cut, matches): the largest prefix length of buf[:n] that tokenizes the same alone as
    inside the whole text (0 if none), and the special tokens inside that prefix.

    Special matches that start within max_len of the end could still grow once more data
    arrives, so only matches that end before that margin are trusted (unless final).
    """
    found = matcher.find(buf, words, 0, n)
    if final:
        return n, found
    limit = n - max(matcher.max_len, 1)
    if limit <= 0:
        return 0, found.upto(0)
    trusted = found.upto(limit)
    if len(trusted.ends):
        return int(trusted.ends[-1]), trusted
    # No special to cut after: the last ASCII whitespace byte after an ASCII non-space byte,
    # outside any special (a match overlapping the window leaves no safe place before it).
    lo = max(int(found.ends[-1]) if len(found.ends) else 0, limit - FALLBACK_WINDOW, 1)
    window = buf[lo - 1:limit]
    ok = _ASCII_SPACE[window[1:]] & ~_ASCII_SPACE[window[:-1]] & (window[:-1] < 0x80)
    hits = np.flatnonzero(ok)
    if not hits.size:
        return 0, found.upto(0)
    return lo + int(hits[-1]), found.upto(0)


def safe_cut_bytes(data: bytes, matcher: SpecialMatcher) -> int:
    """safe_cut for a bytes object (streaming encode): just the cut."""
    buf, words = text_buffer(data)
    return safe_cut(buf, words, len(data), matcher, final=False)[0]


def chunk_target(offset: int, size: int, chunk_bytes: int) -> int:
    """Bytes to aim for in the chunk at offset: chunk_bytes, but smaller near both ends of
    the file, so all cores start working sooner and finish together (the last chunk is
    not a long one that one core works through alone). Depends only on where the chunk
    starts, so a resumed run cuts the same chunks."""
    return max(min(chunk_bytes, offset, (size - offset) >> 2), min(chunk_bytes, MIN_CHUNK_BYTES))


def iter_chunks(path, matcher: SpecialMatcher, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                start_byte: int = 0) -> Iterator[Chunk]:
    """Chunks of up to about chunk_bytes (chunk_target), from start_byte (which must itself
    be a chunk end) to EOF."""
    size = check_text_file(path)
    with open(path, "rb") as f:
        f.seek(start_byte)
        offset = start_byte
        carry = np.empty(0, np.uint8)
        while offset < size:
            want = max(chunk_target(offset, size, chunk_bytes) - len(carry), len(carry), 1 << 16)
            buf, words = padded_buffer(len(carry) + want)
            buf[:len(carry)] = carry
            got = f.readinto(memoryview(buf)[len(carry):len(carry) + want])
            n = len(carry) + got
            final = offset + n >= size or got == 0
            cut, matches = safe_cut(buf, words, n, matcher, final)
            if cut == 0:
                carry = buf[:n].copy()  # no boundary yet: read on until there is one
                continue
            carry = buf[cut:n].copy()
            yield Chunk(offset, buf, words, cut, matches)
            offset += cut
