"""Encoding of given pre-token spans with a merge table, without the encoder's cache.

The kernel behind `storytok.kernels.api.encode_spans`: callers that bring their own
pre-token spans get exact ids from the same BPE step the encoder runs on a cache miss.
"""
from __future__ import annotations

import numpy as np
from numba import njit

from storytok.kernels.bpe_encode import _shift_of, bpe_bytes


@njit(cache=True, nogil=True)
def encode_spans(buf, starts, ends, byte_ids, grid, ptab, new_of_rank):
    """Ids of the pre-tokens buf[starts[k]:ends[k]], back to back (int64); empty spans give none."""
    n = starts.shape[0]
    total = 0
    longest = 1
    for k in range(n):
        m = ends[k] - starts[k]
        total += m
        longest = max(longest, m)
    out = np.empty(total, np.int64)
    parts = np.empty(longest, np.int64)
    ranks = np.empty(longest, np.int64)
    shift = _shift_of(ptab.shape[0])
    o = 0
    for k in range(n):
        if ends[k] == starts[k]:
            continue
        m = bpe_bytes(buf, starts[k], ends[k] - starts[k], byte_ids, grid, ptab, shift, new_of_rank, parts, ranks)
        for i in range(m):
            out[o + i] = parts[i]
        o += m
    return out[:o]
