"""Pre-token counts as compact arrays: made from chunks, cut by hash, combined, turned into merges.

An engine that counts on many machines moves counts between them, so it keeps them in the
most compact form there is: every distinct pre-token's UTF-8 bytes back to back (`data`),
where each starts (`starts`, one more than there are pre-tokens) and how often it occurs
(`counts`). Three arrays, no Python object per pre-token, and zero-copy through Ray's
object store and pyarrow (a `large_binary` array is exactly data + starts).

    count_chunks        chunks -> counts, through storytok.bpe.train (the counting kernels)
    partition_counts    counts -> n parts by a hash of the bytes, so the same pre-token from
                        any task lands in the same part, and parts can be combined apart
    combine_counts      parts holding the same pre-tokens -> one, counts summed (pyarrow's
                        hash aggregation, in C++)
    merges_from_counts  counts -> (vocab, merges), through storytok.bpe.train's merge loop

This module is the one seam between the engines and the training code. The training
kernels are being rewritten (their counting result and a `train_from_counts` function may
change shape); whatever storytok.bpe.train offers is used here, so nothing else has to change.
"""
from __future__ import annotations

import warnings
from typing import NamedTuple

import numpy as np
import pyarrow as pa

from storytok.errors import StorytokError, StorytokWarning
from storytok.kernels.partition import span_partitions
from storytok.pretokenize.specials import SpecialMatcher
from storytok.sources.arrow_docs import strings_of


class Counts(NamedTuple):
    """Distinct pre-tokens with counts: pre-token k is data[starts[k]:starts[k + 1]], counts[k] times."""
    data: np.ndarray     # uint8
    starts: np.ndarray   # int64, len(counts) + 1
    counts: np.ndarray   # int64

    def __len__(self) -> int:
        return self.counts.size

    def to_dict(self) -> dict[bytes, int]:
        """{pre-token: count}; for tests and small inputs."""
        raw = self.data.tobytes()
        s = self.starts.tolist()
        return {raw[s[k]:s[k + 1]]: int(c) for k, c in enumerate(self.counts.tolist())}


EMPTY = Counts(np.zeros(0, np.uint8), np.zeros(1, np.int64), np.zeros(0, np.int64))


def count_chunks(chunks, workers: int | None = None) -> Counts:
    """Every distinct pre-token of the chunks' text runs, with its count (storytok.bpe.train's
    counting, on `workers` threads). Raises its StorytokError for bad input (invalid UTF-8),
    or when the chunks hold no text at all."""
    from storytok.bpe import train
    if hasattr(train, "count_chunk_pretokens"):      # (arena, offsets, lengths, counts)
        arena, offs, lens, counts = train.count_chunk_pretokens(chunks, workers)
        return _gather(arena, offs, lens, counts)
    counted = train.count_chunks(chunks, workers, check=lambda c: c.check_utf8())   # PretokenCounts
    return Counts(counted.data, counted.starts, counted.counts.astype(np.int64))


def _gather(arena: np.ndarray, offs: np.ndarray, lens: np.ndarray, counts: np.ndarray) -> Counts:
    starts = np.zeros(lens.size + 1, np.int64)
    np.cumsum(lens, out=starts[1:])
    gather = np.repeat(offs.astype(np.int64) - starts[:-1], lens) + np.arange(starts[-1])
    return Counts(np.ascontiguousarray(arena[gather], np.uint8), starts, counts.astype(np.int64))


def as_arrow(c: Counts) -> pa.LargeBinaryArray:
    """The pre-tokens as a pyarrow large_binary array over the same memory (no copy)."""
    return pa.Array.from_buffers(pa.large_binary(), len(c), [None, pa.py_buffer(c.starts), pa.py_buffer(c.data)])


def _of_arrow(arr: pa.Array, counts: np.ndarray) -> Counts:
    s = strings_of(arr)
    return Counts(np.ascontiguousarray(s.data), np.ascontiguousarray(s.offsets, np.int64),
                  np.ascontiguousarray(counts, np.int64))


def partition_counts(c: Counts, n_parts: int) -> list[Counts]:
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


def combine_counts(parts: list[Counts]) -> Counts:
    """One Counts with every pre-token of `parts` once, its counts summed."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return EMPTY
    if len(parts) == 1:
        return parts[0]
    table = pa.table({"t": pa.concat_arrays([as_arrow(p) for p in parts]),
                      "n": pa.array(np.concatenate([p.counts for p in parts]))})
    g = table.group_by("t").aggregate([("n", "sum")])
    return _of_arrow(g.column("t").combine_chunks(), g.column("n_sum").to_numpy())


def concat_counts(parts: list[Counts]) -> Counts:
    """Parts holding different pre-tokens (the partitions, each combined) as one Counts."""
    parts = [p for p in parts if len(p)]
    if not parts:
        return EMPTY
    if len(parts) == 1:
        return parts[0]
    sizes = np.array([p.data.size for p in parts], np.int64)
    shift = np.concatenate([[0], np.cumsum(sizes)[:-1]])
    starts = np.concatenate([p.starts[:-1] + s for p, s in zip(parts, shift)] + [[int(sizes.sum())]])
    return Counts(np.concatenate([p.data for p in parts]), starts.astype(np.int64),
                  np.concatenate([p.counts for p in parts]))


def check_vocab_size(vocab_size, special_tokens: list[str] | None) -> list[str]:
    """train_bpe's rule (before any counting): room for the 256 bytes and the specials."""
    specials = SpecialMatcher(list(special_tokens or [])).tokens
    if not isinstance(vocab_size, (int, np.integer)) or vocab_size < 256 + len(specials):
        raise StorytokError(f"vocab_size {vocab_size} is too small: it must hold the 256 bytes "
                            f"and {len(specials)} special token(s), so at least {256 + len(specials)}")
    return specials


def merges_from_counts(c: Counts, vocab_size: int, special_tokens: list[str] | None = None,
                       progress: bool = False, source: str = "input"):
    """(vocab, merges) of the BPE trained on these counts, exactly as train_bpe returns them
    for the text they were counted on (the merge loop of storytok.bpe.train)."""
    from storytok.bpe import train
    specials = check_vocab_size(vocab_size, special_tokens)
    if not len(c):
        raise StorytokError("no text to train on: the input holds no documents")
    if hasattr(train, "train_from_counts"):
        return train.train_from_counts(train.PretokenCounts(c.data, c.starts, c.counts), vocab_size, specials,
                                       progress, source=source)
    # storytok.bpe.train as of issue 10: train_bpe's own steps after counting
    n_merges = int(vocab_size) - 256 - len(specials)
    left, right = train._run_merges(c.data.astype(np.int64), c.starts, c.counts.astype(np.int64), n_merges, progress)
    vocab = {i: bytes([i]) for i in range(256)}
    merges = []
    for a, b in zip(left.tolist(), right.tolist()):
        merges.append((vocab[a], vocab[b]))
        vocab[len(vocab)] = vocab[a] + vocab[b]
    for s in specials:
        vocab[len(vocab)] = s.encode("utf-8")
    if len(merges) < n_merges:
        warnings.warn(f"{source}: no pair left to merge after {len(merges)} merges; "
                      f"vocabulary stops at {len(vocab)} of the {vocab_size} asked for", StorytokWarning, stacklevel=2)
    return vocab, merges
