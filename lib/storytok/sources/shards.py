"""A split's input cut into shards: pieces of whole documents that can be read on their own.

An engine that spreads work over machines (storytok.engines.ray) hands out shards, not
chunks: each shard is read by one task from its own start, so no task needs what another
read. A shard is a whole input file, or a piece of a big one cut where a document ends:

    .txt (uncompressed)   byte ranges of about shard_bytes, each ending right after an
                          `<|endoftext|>` separator (found by reading a small window at each
                          target offset, with the tokenizer's special-token matcher)
    .parquet              runs of row groups holding about shard_bytes of text (the column's
                          uncompressed size in the footer)
    anything else         the whole file (.gz / .zst streams cannot seek; JSONL line numbers,
                          which error messages give, are only known by reading from the start)

The plan depends only on the files and shard_bytes, so a resumed run makes the same plan
(the manifest records it and compares). Documents keep their order: shard k's documents
come before shard k + 1's, and a shard's documents are exactly those the local engine
reads between the same positions, so the rows of all shards in order are the split's rows.
"""
from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

from storytok.pretokenize.pretokenizer import padded_buffer
from storytok.pretokenize.specials import SpecialMatcher
from storytok.sources.chunks import DEFAULT_CHUNK_BYTES, Chunk, read_full
from storytok.sources.inputs import EOT
from storytok.sources.parquet import open_parquet
from storytok.sources.split import Source
from storytok.sources.streams import InputStream

DEFAULT_SHARD_BYTES = 64 << 20
WINDOW = 1 << 20          # bytes read at a cut's target to find the separator after it


@dataclass(frozen=True)
class Shard:
    """Documents of file `file` from `start` to `stop` (bytes of a .txt file, rows of a
    Parquet file; stop None: to the file's end, which also ends its last document)."""
    index: int
    file: int
    start: int = 0
    stop: int | None = None
    size: int = 0            # bytes on disk it covers (Parquet: estimated), for progress and summaries

    @property
    def start_position(self) -> tuple:
        """Its start as a split position (storytok.sources.split: file, offset, line)."""
        return (self.file, self.start, 0)

    @property
    def end_position(self) -> tuple:
        return (self.file + 1, 0, 0) if self.stop is None else (self.file, self.stop, 0)

    def as_list(self) -> list:
        """[file, start, stop]: what the manifest records of it."""
        return [self.file, self.start, self.stop]


def plan_shards(src: Source, matcher: SpecialMatcher, shard_bytes: int = DEFAULT_SHARD_BYTES) -> list[Shard]:
    """The shards of a split, in document order (see the module docstring)."""
    if shard_bytes < 1:
        raise ValueError(f"shard_bytes must be positive, got {shard_bytes}")
    shards: list[Shard] = []
    for i, f in enumerate(src.files):
        if f.kind == "txt" and not f.compression and f.size > shard_bytes + shard_bytes // 2 and cuttable(matcher):
            ranges = _text_ranges(src, i, matcher, shard_bytes)
        elif f.kind == "parquet":
            ranges = _row_group_ranges(src, i, shard_bytes)
        else:
            ranges = [(0, None, f.size)]
        shards += [Shard(len(shards) + k, i, a, b, size) for k, (a, b, size) in enumerate(ranges)]
    return shards


def cuttable(matcher: SpecialMatcher) -> bool:
    """Can a .txt file be cut at a separator found by reading only a window around it? Yes
    when `<|endoftext|>` is a special and no special overlaps another or itself (no special
    holds another, none ends with what one begins with): then every occurrence of a
    special's bytes is a match, whatever came before. With overlapping specials
    (`<|endoftext|>` and `<|endoftext|><|endoftext|>`) which occurrences match can depend on
    text far before them, so such files are not cut."""
    if EOT not in matcher.tokens:
        return False
    toks = matcher.encoded
    for a in toks:
        for b in toks:
            if a is not b and a in b:
                return False
            if any(a[-k:] == b[:k] for k in range(1, min(len(a), len(b)) if a is not b else len(a))):
                return False
    return True


def shard_chunks(src: Source, shard: Shard, matcher: SpecialMatcher, *,
                 chunk_bytes: int = DEFAULT_CHUNK_BYTES) -> Iterator[Chunk]:
    """The chunks of one shard's documents, as the pipeline's encoder and counter take them."""
    return src.file_chunks(shard.file, matcher, chunk_bytes=chunk_bytes, offset=shard.start, stop=shard.stop)


def _text_ranges(src: Source, i: int, matcher: SpecialMatcher, shard_bytes: int) -> list[tuple]:
    f = src.files[i]
    cuts = [0]
    target = shard_bytes
    while target < f.size - shard_bytes // 2:
        cut = next_separator_end(src, i, target, matcher)
        if cut is None or cut >= f.size:
            break
        cuts.append(cut)
        target = cut + shard_bytes
    bounds = cuts + [f.size]
    return [(a, b if b < f.size else None, b - a) for a, b in zip(bounds[:-1], bounds[1:])]


def next_separator_end(src: Source, i: int, at: int, matcher: SpecialMatcher, window: int = WINDOW) -> int | None:
    """The byte right after the first `<|endoftext|>` of file i that starts at or after
    `at`, or None if there is none, for a matcher whose specials do not overlap (cuttable):
    then the matches found in any window are matches of the whole file. Reads a window at a
    time; a match is taken only when no special starting before the window, or running past
    its end, could hold it, and the windows overlap so that every match is taken in one."""
    f = src.files[i]
    eot = matcher.tokens.index(EOT)
    margin = matcher.max_len
    with InputStream(f) as s:
        pos = max(at - margin, 0)
        s.skip(pos)
        carry = np.empty(0, np.uint8)
        while True:
            buf, words = padded_buffer(len(carry) + window)
            buf[:len(carry)] = carry
            got = read_full(s.readinto, memoryview(buf)[len(carry):len(carry) + window])
            n = len(carry) + got
            at_end = got < window
            found = matcher.find(buf, words, 0, n)
            lo = 0 if pos == 0 else margin                    # a match starting earlier may belong to a longer one
            hi = n if at_end else n - margin                  # a match ending later may grow
            ok = ((found.which == eot) & (found.starts >= lo) & (found.ends <= hi)
                  & (found.starts + pos >= at))
            hits = np.flatnonzero(ok)
            if hits.size:
                return pos + int(found.ends[hits[0]])
            if at_end:
                return None
            keep = min(3 * margin, n)
            carry = buf[n - keep:n].copy()
            pos += n - keep


def _row_group_ranges(src: Source, i: int, shard_bytes: int) -> list[tuple]:
    f = src.files[i]
    md = open_parquet(f, src.field).metadata
    out, start, row, text = [], 0, 0, 0
    for g in range(md.num_row_groups):
        rg = md.row_group(g)
        text += sum(rg.column(c).total_uncompressed_size for c in range(rg.num_columns)
                    if rg.column(c).path_in_schema == src.field)
        row += rg.num_rows
        if text >= shard_bytes and g < md.num_row_groups - 1:
            out.append([start, row, text])
            start, text = row, 0
    out.append([start, None, text])
    total = sum(t for _, _, t in out) or 1
    return [(a, b, int(f.size * t / total)) for a, b, t in out]
