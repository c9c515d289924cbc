"""Pre-token counts as compact arrays, cut by hash and combined: counting on many machines.

storytok.bpe.train counts into `PretokenCounts`: every distinct pre-token's UTF-8 bytes back
to back (`data`), where each starts (`starts`) and how often it occurs (`counts`). Three
arrays, no Python object per pre-token: exactly what an engine that counts on many
machines should move between them (zero-copy through Ray's object store; a pyarrow
`large_binary` array is data + starts). This module adds what such an engine needs on
top of storytok.bpe.train's two stages (count_chunks: chunks -> counts, on the kernels;
train_from_counts: counts -> merges):

    partition_counts    counts -> n parts by a hash of the bytes, so the same pre-token from
                        any task lands in the same part, and parts can be combined apart
    combine_counts      parts holding the same pre-tokens -> one, counts summed (pyarrow's
                        hash aggregation, in C++)
    concat_counts       parts holding different pre-tokens -> one
    merges_from_counts  counts -> (vocab, merges): storytok.bpe.train.train_from_counts

The merges depend only on the multiset of (pre-token, count), never on how the text was
cut, counted or combined, so they are train_bpe's.
"""
from __future__ import annotations

import numpy as np
import pyarrow as pa

from storytok.bpe.train import PretokenCounts, check_vocab_size, train_from_counts
from storytok.errors import StorytokError
from storytok.kernels.partition import span_partitions
from storytok.sources.arrow_docs import strings_of

def empty() -> PretokenCounts:
    return PretokenCounts(np.zeros(0, np.uint8), np.zeros(1, np.int64), np.zeros(0, np.int64))


def as_arrow(c: PretokenCounts) -> pa.LargeBinaryArray:
    """The pre-tokens as a pyarrow large_binary array over the same memory (no copy)."""
    return pa.Array.from_buffers(pa.large_binary(), len(c), [None, pa.py_buffer(c.starts), pa.py_buffer(c.data)])


def _of_arrow(arr: pa.Array, counts: np.ndarray) -> PretokenCounts:
    s = strings_of(arr)
    return PretokenCounts(np.ascontiguousarray(s.data), np.ascontiguousarray(s.offsets, np.int64),
                          np.ascontiguousarray(counts, np.int64))


def partition_counts(c: PretokenCounts, n_parts: int) -> list[PretokenCounts]:
    """c cut into n_parts by a hash of each pre-token's bytes (kernels.partition): the same
    pre-token always goes to the same part, whichever task counted it."""
    if n_parts <= 1:
        return [c]
    part = span_partitions(c.data, c.starts, n_parts)
    order = np.argsort(part, kind="stable")
    bounds = np.searchsorted(part[order], np.arange(n_parts + 1))
    taken = as_arrow(c).take(pa.array(order))
    counts = c.counts[order]
    return [_of_arrow(taken.slice(a, b - a), counts[a:b]) for a, b in zip(bounds[:-1].tolist(), bounds[1:].tolist())]


def combine_counts(parts: list[PretokenCounts]) -> PretokenCounts:
    """Every pre-token of `parts` once, its counts summed."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty()
    if len(parts) == 1:
        return parts[0]
    table = pa.table({"t": pa.concat_arrays([as_arrow(p) for p in parts]),
                      "n": pa.array(np.concatenate([p.counts for p in parts]))})
    g = table.group_by("t").aggregate([("n", "sum")])
    return _of_arrow(g.column("t").combine_chunks(), g.column("n_sum").to_numpy())


def concat_counts(parts: list[PretokenCounts]) -> PretokenCounts:
    """Parts holding different pre-tokens (the partitions, each combined) side by side."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return empty()
    if len(parts) == 1:
        return parts[0]
    sizes = np.array([p.data.size for p in parts], np.int64)
    shift = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    starts = np.concatenate([p.starts[:-1] + s for p, s in zip(parts, shift)] + [[int(sizes.sum())]])
    return PretokenCounts(np.concatenate([p.data for p in parts]), starts.astype(np.int64),
                          np.concatenate([p.counts for p in parts]))


def merges_from_counts(c: PretokenCounts, vocab_size: int, special_tokens: list[str] | None = None,
                       progress: bool = False, source: str = "input"):
    """(vocab, merges) of the BPE trained on these counts: train_bpe's for the text they
    were counted on (storytok.bpe.train.train_from_counts)."""
    specials = check_vocab_size(vocab_size, special_tokens)
    if not len(c):
        raise StorytokError(f"{source}: no text to train on: the input holds no documents")
    return train_from_counts(c, vocab_size, specials, progress, source=source)
