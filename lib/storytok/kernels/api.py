"""The stable kernel API: the four steps of byte-level BPE as functions over NumPy arrays.

The kernels in this folder take whatever layout is fastest today (padded buffers read 8
bytes at a time, per-thread caches, packed tables) and that layout changes as they get
faster. Code outside storytok that wants the kernels without the pipeline around them
(its own readers, its own storage, another framework's workers) calls these functions
instead: their arguments and results are plain arrays whose meaning is fixed here.

    spans    scan_pretokens(data)                      -> (starts, ends)
    counts   count_pretokens(data)                     -> (words, offsets, counts)
    merges   train_merges(words, offsets, counts, n)   -> (left, right)
    ids      encode_spans(data, starts, ends, table)   -> ids, with table = merge_table(left, right)

Token ids are those of a byte-level BPE trained from scratch: 0..255 are the bytes, merge
r makes token 256 + r. Text is UTF-8 bytes with no special tokens in it (split those off
first; `storytok.Tokenizer` does it for you). Every function copies its input into the
padded buffer the kernels need, so any bytes-like object or uint8 array is fine.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np

__all__ = ["scan_pretokens", "count_pretokens", "train_merges", "MergeTable", "merge_table", "encode_spans"]


def _padded(data):
    from storytok.pretokenize.pretokenizer import text_buffer

    raw = np.frombuffer(data, np.uint8) if not isinstance(data, np.ndarray) else np.ascontiguousarray(data, np.uint8)
    buf, words = text_buffer(raw)
    return buf, words, len(raw)


def _check_utf8(buf, words, n) -> None:
    from storytok.kernels.utf8 import first_invalid_utf8

    bad = first_invalid_utf8(buf, words, 0, n)
    if bad >= 0:
        raise ValueError(f"data is not UTF-8: invalid byte at offset {bad}")


def scan_pretokens(data) -> tuple[np.ndarray, np.ndarray]:
    """GPT-2 pre-token spans of UTF-8 text: pre-token k is data[starts[k]:ends[k]] (int64
    byte offsets). Equal to what the GPT-2 regex finds, as byte ranges."""
    from storytok.kernels.scanner import scan_spans
    from storytok.pretokenize.pretokenizer import scanner_classes

    buf, words, n = _padded(data)
    _check_utf8(buf, words, n)
    return scan_spans(buf, words, 0, n, scanner_classes())


def count_pretokens(data, workers: int = 1) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Every distinct pre-token of UTF-8 text with its count: pre-token k is
    words[offsets[k]:offsets[k + 1]] (uint8), occurring counts[k] times (int64). Order
    carries no meaning. `workers` threads share the work when > 1."""
    from storytok.bpe.train import PretokenCounter

    buf, words, n = _padded(data)
    _check_utf8(buf, words, n)
    counter = PretokenCounter()
    if n:
        from storytok.parallel import ordered_map

        bounds = _pretoken_cuts(buf, words, n, max(1, -(-n // max(1, workers))))
        pieces = range(len(bounds) - 1)
        for _ in ordered_map(lambda k: counter.add(buf, words, bounds[k:k + 1], bounds[k + 1:k + 2]),
                             pieces, len(pieces)):
            pass
    c = counter.result()
    return c.data, c.starts, c.counts


def _pretoken_cuts(buf, words, n, step) -> np.ndarray:
    """0, cut points about `step` apart, n. A cut is the start of a pre-token whose
    predecessor ends in an ASCII letter, digit or mark: such a pre-token's end does not
    depend on what follows it (a run of whitespace's does), so each piece scans alone
    exactly as inside the whole."""
    if step >= n:
        return np.array([0, n], np.int64)
    from storytok.kernels.scanner import scan_spans
    from storytok.pretokenize.pretokenizer import scanner_classes
    from storytok.pretokenize.unicode_classes import SPACE

    classes = scanner_classes()
    starts, ends = scan_spans(buf, words, 0, n, classes)   # cheap next to counting; keeps the cuts exact
    last = buf[np.maximum(ends - 1, 0)].astype(np.int64)
    settled = last < 0x80
    settled[settled] = classes[last[settled]] != SPACE
    candidates = starts[np.flatnonzero(settled[:-1]) + 1]   # pre-token k + 1 may start a piece when k is settled
    if not len(candidates):
        return np.array([0, n], np.int64)
    picked = candidates[np.searchsorted(candidates, np.arange(step, n, step)).clip(0, len(candidates) - 1)]
    cuts = np.unique(picked[(picked > 0) & (picked < n)])
    return np.concatenate(([0], cuts, [n])).astype(np.int64)


def train_merges(words, offsets, counts, n_merges: int) -> tuple[np.ndarray, np.ndarray]:
    """The BPE merge loop over distinct pre-tokens and their counts (as count_pretokens
    gives them): up to n_merges merges, each the most frequent pair of adjacent tokens,
    ties to the greatest pair by bytes. Returns (left, right) token ids (int32) in merge
    order; fewer than n_merges when no pair is left."""
    from storytok.kernels.bpe_train import train_merges as merge_loop

    words = np.ascontiguousarray(words, np.uint8)
    offsets = np.ascontiguousarray(offsets, np.int64)
    counts = np.ascontiguousarray(counts, np.int64)
    if offsets.shape != (len(counts) + 1,) or (len(counts) and (offsets[0] != 0 or offsets[-1] > len(words)
                                                                 or (np.diff(offsets) < 0).any())):
        raise ValueError("offsets must hold len(counts) + 1 ascending positions into words, from 0")
    return merge_loop(words, offsets, counts, int(n_merges), np.zeros(1, np.int64))


@dataclass(frozen=True)
class MergeTable:
    """What encode_spans needs of a merge list (built once by merge_table)."""
    byte_ids: np.ndarray
    grid: np.ndarray
    pairs: np.ndarray
    new_of_rank: np.ndarray


def merge_table(left, right, new_ids=None, byte_ids=None) -> MergeTable:
    """The table of merges (left[r], right[r]) -> new_ids[r] in rank order r. By default
    new_ids[r] = 256 + r and byte b is token b (a BPE trained by train_merges); pass both
    to encode with another numbering (GPT-2's, say). Ids must be below 2**21."""
    from storytok.kernels.bpe_encode import build_merge_table
    from storytok.kernels.encode_cache import ID_LIMIT

    left = np.asarray(left, np.int64)
    right = np.asarray(right, np.int64)
    new_ids = np.arange(256, 256 + len(left), dtype=np.int64) if new_ids is None else np.asarray(new_ids, np.int64)
    byte_ids = np.arange(256, dtype=np.int64) if byte_ids is None else np.asarray(byte_ids, np.int64)
    if left.shape != right.shape or left.shape != new_ids.shape or byte_ids.shape != (256,):
        raise ValueError("left, right and new_ids must have one entry per merge; byte_ids one per byte value")
    for ids in (left, right, new_ids, byte_ids):
        if len(ids) and (ids.min() < 0 or ids.max() >= ID_LIMIT):
            raise ValueError(f"token ids must be in 0..{ID_LIMIT - 1}")
    return MergeTable(byte_ids, *build_merge_table(left, right, new_ids, byte_ids))


def encode_spans(data, starts, ends, table: MergeTable) -> np.ndarray:
    """Token ids (int64) of the pre-tokens data[starts[k]:ends[k]], in span order: each span
    is split into bytes and merged by rank (lowest first, leftmost on ties), as tiktoken
    does. No cache: the pipeline's encoder (`storytok.Tokenizer`) adds one in front."""
    from storytok.kernels.bpe_spans import encode_spans as encode_kernel

    buf, _, n = _padded(data)
    starts = np.ascontiguousarray(starts, np.int64)
    ends = np.ascontiguousarray(ends, np.int64)
    if starts.shape != ends.shape or (len(starts) and (starts.min() < 0 or ends.max() > n or (ends < starts).any())):
        raise ValueError("starts and ends must be spans of equal count inside data")
    return encode_kernel(buf, starts, ends, table.byte_ids, table.grid, table.pairs, table.new_of_rank)
