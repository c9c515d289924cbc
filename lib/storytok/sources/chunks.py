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


NO_SPECIAL = -1   # after a segment: nothing
DOC_END = -2      # after a segment: the end of a document (the pipeline puts its separator there)


@dataclass
class Chunk:
    """A piece of input text in a padded buffer, ready for the kernels, and where it came from.

    A text chunk (.txt) carries the special tokens found while cutting it (`matches`); the
    text between them is what gets pre-tokenized. A chunk of documents (JSONL, Parquet, an
    iterator of str) carries its segments instead: one per document, each followed by
    DOC_END, and no special-token matching at all (documents are ordinary text).
    """
    offset: int                            # where the chunk starts in its input (text bytes; JSONL bytes; Parquet rows)
    buf: np.ndarray                        # padded buffer; the chunk's text is buf[:length]
    words: np.ndarray                      # buf as uint64, for the kernels
    length: int
    matches: Matches | None = None         # the special tokens in the chunk (text chunks)
    seg: tuple | None = None               # (starts, ends, after) of documents (document chunks)
    end: int | None = None                 # where the chunk ends in its input (default offset + length)
    path: str = ""                         # the input file, for messages
    file: int = 0                          # index of that file among the split's inputs
    last: bool = False                     # the last chunk of its file
    ends_doc: bool = False                 # a text chunk whose last segment ends a document (end of a file)
    line: int = 0                          # JSONL: lines before the chunk (1-based line = line + k + 1)
    end_line: int = 0
    docs: int = 0                          # documents that end in this chunk (DOC_END segments)
    bad_docs: int = 0                      # null or missing texts read as empty documents (skip_bad_docs)
    utf8_checked: bool = False             # the source already validated the text
    compressed: bool = False               # offsets count decompressed bytes
    disk_pos: int = 0                      # bytes of the input file read so far (for progress)
    position: tuple | None = None          # the split position right after this chunk (sources.split)

    @property
    def data(self) -> np.ndarray:
        return self.buf[:self.length]

    def __post_init__(self):
        if self.end is None:
            self.end = self.offset + self.length

    def segments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(starts, ends, after): the text runs to pre-tokenize, and what follows each one:
        a special token's index (>= 0), DOC_END, or NO_SPECIAL."""
        if self.seg is not None:
            return self.seg
        starts, ends, after = SpecialMatcher.segments(self.matches, 0, self.length)
        if self.ends_doc:
            after[-1] = DOC_END
        return starts, ends, after

    def check_utf8(self) -> None:
        """One line naming the file and the byte offset of the first invalid UTF-8 (text chunks;
        document chunks are checked by their source, which knows the row)."""
        if self.utf8_checked:
            return
        bad = first_invalid_utf8(self.buf, self.words, 0, self.length)
        if bad >= 0:
            where = " of the decompressed text" if self.compressed else ""
            raise StorytokError(f"{self.path}: invalid UTF-8 at byte {self.offset + bad}{where}; "
                                f"the input must be UTF-8 text")


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
    if not chunk.path:
        chunk.path = os.fspath(path)
    chunk.check_utf8()


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


def chunk_target(offset: int, size: int | None, chunk_bytes: int) -> int:
    """Bytes to aim for in the chunk at offset: chunk_bytes, but smaller near both ends of
    the file, so all cores start working sooner and finish together (the last chunk is
    not a long one that one core works through alone). Depends only on where the chunk
    starts, so a resumed run cuts the same chunks. With size unknown (a compressed
    stream) only the start tapers."""
    tail = chunk_bytes if size is None else (size - offset) >> 2
    return max(min(chunk_bytes, offset, tail), min(chunk_bytes, MIN_CHUNK_BYTES))


def iter_chunks(path, matcher: SpecialMatcher, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                start_byte: int = 0) -> Iterator[Chunk]:
    """Chunks of up to about chunk_bytes (chunk_target), from start_byte (which must itself
    be a chunk end) to EOF."""
    size = check_text_file(path)
    with open(path, "rb") as f:
        f.seek(start_byte)
        yield from iter_stream_chunks(f.readinto, matcher, chunk_bytes, start_byte, size, path=os.fspath(path))


def read_full(readinto, view: memoryview) -> int:
    """Fill `view` from a readinto function; fewer bytes only at the end of the stream."""
    got = 0
    while got < len(view):
        n = readinto(view[got:])
        if not n:
            break
        got += n
    return got


def iter_stream_chunks(readinto, matcher: SpecialMatcher, chunk_bytes: int = DEFAULT_CHUNK_BYTES,
                       start_byte: int = 0, size: int | None = None, *, path: str = "",
                       taper: int | None = None) -> Iterator[Chunk]:
    """Chunks of a binary stream positioned at start_byte (a chunk end), read with
    `readinto` straight into padded buffers; size None when it is not known up front (a
    compressed stream): the end is where a read comes back short.

    The text a chunk is cut from is always the bytes [offset, offset + L), L depending only
    on the offset (chunk_target, doubled while no safe cut is found), so a run started at
    any chunk's end cuts exactly the chunks an uninterrupted run cuts after it. `taper`, an
    estimate of the size when it is not known, makes chunks smaller near the end too.
    """
    offset = start_byte
    carry = np.empty(0, np.uint8)     # bytes read past the last cut, starting at offset
    at_end = False
    while True:
        want = max(chunk_target(offset, size if size is not None else taper, chunk_bytes), 1 << 16)
        while True:
            take = min(len(carry), want)
            buf, words = padded_buffer(want)
            buf[:take] = carry[:take]
            rest = carry[take:]
            got = 0
            if take < want and not at_end:
                got = read_full(readinto, memoryview(buf)[take:want])
                at_end = take + got < want
            n = take + got
            if n == 0:
                return
            final = (at_end and not len(rest)) or (size is not None and offset + n >= size)
            cut, matches = safe_cut(buf, words, n, matcher, final)
            if cut:
                break
            carry = np.concatenate([buf[:n], rest])   # no boundary yet: read on until there is one
            want *= 2
        carry = np.concatenate([buf[cut:n], rest]) if len(rest) else buf[cut:n].copy()
        yield Chunk(offset, buf, words, cut, matches, path=path, last=final and cut == n)
        offset += cut
